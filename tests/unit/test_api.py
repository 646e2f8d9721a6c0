"""The Python API mirrors the CLI, and importing it stays light."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

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

    from dpexport.publish.tokens import config_hash, token_name

    config = dpexport.load_config(demo_dir / "dpexport.yaml")
    spec = config.table("parts_catalog")
    at = datetime(2025, 9, 16, tzinfo=UTC)
    moved = dataclasses.replace(spec, origins={"source": "exports[9].source"})
    assert token_name(moved, at) == token_name(spec, at)
    changed = dataclasses.replace(spec, compression="ZSTD")
    assert config_hash(changed) != config_hash(spec)


# What a process must not load just to reach a run: the config reader's libraries load
# with load_config, each format with its first file, cryptography with encryption,
# croniter with a schedule, cloud SDKs with a cloud URI (start-up cost, not behaviour).
_NOT_ON_IMPORT = (
    "pyarrow.compute",
    "pydantic",
    "yaml",
    "croniter",
    "cryptography",
    "pyarrow.csv",
    "pyarrow.json",
    "dpexport.formats.csv",
    "dpexport.formats.jsonl",
    "dpexport.config.resolve",
    "sqlglot",
    "boto3",
    "google.cloud.storage",
    "azure.storage.blob",
)
_NOT_IN_PARQUET_RUN = tuple(
    m for m in _NOT_ON_IMPORT if m not in ("pydantic", "yaml", "dpexport.config.resolve")
)


def _loaded(code: str, names: tuple[str, ...]) -> list[str]:
    check = f"{code}\nimport sys\nprint([m for m in {names!r} if m in sys.modules])"
    out = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    return list(eval(out.stdout.strip().splitlines()[-1]))


def test_run_command_modules_load_no_config_reader_codec_or_cloud_library() -> None:
    code = "import dpexport.cli, dpexport.flow.runner, dpexport.engines, dpexport.engines.duckdb"
    assert _loaded(code, _NOT_ON_IMPORT) == []


def test_parquet_run_loads_no_other_format_crypto_cron_or_cloud_library(tmp_path: Path) -> None:
    import duckdb

    db = tmp_path / "wh.duckdb"
    con = duckdb.connect(str(db))
    con.execute("CREATE SCHEMA s")
    con.execute("CREATE TABLE s.t AS SELECT i AS id, 'x' || i AS name FROM range(100) r(i)")
    con.close()
    config = tmp_path / "dpexport.yaml"
    config.write_text(
        f"warehouse: {{engine: duckdb, path: {db}}}\n"
        "exports:\n"
        "  - source: s.t\n"
        "    destination: gs://b/t/\n"
        "    format: PARQUET\n"
        "    compression: SNAPPY\n",
        encoding="utf-8",
    )
    out = tmp_path / "out"
    args = ["-c", str(config), "--local-root", str(out), "run", "--at", "2025-09-17T00:00:00Z"]
    code = (
        "from dpexport.cli import main\n"
        f"try:\n    main({args!r})\nexcept SystemExit as exc:\n    assert exc.code == 0, exc"
    )
    assert _loaded(code, _NOT_IN_PARQUET_RUN) == []
    assert (out / "gs/b/t/2025/09/17/SUCCESS").exists()
    assert len(list(out.rglob("t_*.parquet.snappy"))) == 1


def test_token_name_holds_when_dpexport_adds_a_setting_at_its_default() -> None:
    """A token names the settings that differ from their defaults: a field dpexport adds
    later, left at its default, must not rename every token (the next run at a logical
    time already exported would export it again). The hash of a minimal table is pinned."""
    import dataclasses

    from dpexport.config.spec import Partitioning, TableSpec
    from dpexport.publish.tokens import config_hash

    required: dict[str, Any] = {
        "dataset": "ds", "table": "t", "destination": "gs://b/t/", "format": "PARQUET",
        "compression": "SNAPPY", "mode": "APPEND", "partitioning": Partitioning(),
    }  # fmt: skip
    minimal = TableSpec(**required)
    assert config_hash(minimal) == "853d4dfb"

    @dataclasses.dataclass(frozen=True)
    class Later(TableSpec):
        a_setting_added_later: int = 7

    later = Later(**required)
    assert config_hash(later) == config_hash(minimal)
    assert config_hash(dataclasses.replace(later, a_setting_added_later=8)) != config_hash(minimal)
