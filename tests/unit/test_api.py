"""The Python API mirrors the CLI, and importing it stays light."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import dpexport


def test_import_loads_no_engine_format_or_cloud_library() -> None:
    code = (
        "import sys, dpexport, dpexport.cli; heavy = [m for m in ('pyarrow', 'duckdb', "
        "'boto3', 'google.cloud.storage', 'azure.storage.blob') if m in sys.modules]; "
        "print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_run_and_verify_from_python(demo_dir: Path) -> None:
    config = dpexport.load_config(demo_dir / "dpexport.yaml")
    at = datetime(2025, 9, 16, 14, 30, 22, tzinfo=UTC)
    results = dpexport.run(
        config, tables=["configuration_settings"], at=at, local_root=demo_dir / "out"
    )
    assert [(r.table, r.status, r.rows) for r in results] == [
        ("configuration_settings", "SUCCESS", 20)
    ]
    report = dpexport.verify("gs://diagnosticpro-exports/prod/", local_root=demo_dir / "out")
    assert report.ok and report.rows == 20 and len(report.manifests) == 1


def test_token_ignores_where_settings_came_from(demo_dir: Path) -> None:
    import dataclasses

    from dpexport.tokens import config_hash, token_name

    config = dpexport.load_config(demo_dir / "dpexport.yaml")
    spec = config.table("parts_catalog")
    at = datetime(2025, 9, 16, tzinfo=UTC)
    moved = dataclasses.replace(spec, origins={"source": "exports[9].source"})
    assert token_name(moved, at) == token_name(spec, at)
    changed = dataclasses.replace(spec, compression="ZSTD")
    assert config_hash(changed) != config_hash(spec)
