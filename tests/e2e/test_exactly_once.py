"""Repeated and racing runs: the same config and logical time export once."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq

from tests.e2e.cli import dpexport

REPO = Path(__file__).resolve().parents[2]
AT = "2025-09-16T14:30:22Z"


def _published(root: Path, table_folder: str) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    base = root / "gs/diagnosticpro-exports/prod/diagnosticpro_prod" / table_folder
    for success in sorted(base.rglob("SUCCESS")):
        for name in json.loads(success.read_text())["manifests"]:
            for entry in json.loads((success.parent / name).read_text())["files"]:
                rows += pq.read_table(success.parent / entry["name"]).to_pylist()
    return rows


def test_same_logical_time_twice_is_skipped(demo_dir: Path) -> None:
    args = (
        "-c",
        demo_dir / "dpexport.yaml",
        "--local-root",
        demo_dir / "out",
        "run",
        "--table",
        "parts_catalog",
        "--at",
        AT,
        "--json",
    )
    first = json.loads(dpexport(*args).out)[0]
    second_run = dpexport(*args)
    assert second_run.code == 0
    second = json.loads(second_run.out)[0]
    assert first["status"] == "SUCCESS"
    assert second["status"] == "SKIPPED"
    assert second["export_id"] == first["export_id"]
    assert second["manifests"] == first["manifests"] and second["rows"] == first["rows"]
    assert first["export_id"] in second["reason"]
    tokens = list((demo_dir / "out/gs/diagnosticpro-exports/idempotency-tokens").glob("*.json"))
    [token] = tokens
    doc = json.loads(token.read_text())
    assert token.stem.startswith("parts_catalog_20250916_1758033022_")
    assert doc["status"] == "DONE" and doc["export_id"] == first["export_id"]
    manifest = json.loads(next((demo_dir / "out").rglob("manifest_*.json")).read_text())
    assert manifest["idempotency_token"] == token.stem
    # a changed config is a new token, so it exports again
    config = (demo_dir / "dpexport.yaml").read_text()
    changed = demo_dir / "changed.yaml"
    changed.write_text(config.replace('frequency: "daily"', 'frequency: "weekly"'))
    assert changed.read_text() != config
    third = json.loads(dpexport("-c", changed, *args[2:]).out)[0]
    assert third["status"] == "SUCCESS" and third["export_id"] != first["export_id"]


def test_four_racing_runners_export_once(demo_dir: Path, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DPEXPORT_")}
    command = [
        sys.executable,
        "-m",
        "dpexport",
        "-c",
        str(demo_dir / "dpexport.yaml"),
        "--local-root",
        str(demo_dir / "race"),
        "run",
        "--table",
        "reddit_diagnostic_posts",
        "--at",
        AT,
        "--json",
    ]
    procs = [
        subprocess.Popen(
            command, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for _ in range(4)
    ]
    outcomes = []
    for proc in procs:
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
        outcomes.append(json.loads(out)[0])
    statuses = sorted(o["status"] for o in outcomes)
    assert statuses == ["SKIPPED", "SKIPPED", "SKIPPED", "SUCCESS"], outcomes
    for o in outcomes:
        if o["status"] == "SKIPPED":
            assert o["reason"] == "in progress elsewhere" or "already exported" in o["reason"]
    single = dpexport(
        "-c",
        demo_dir / "dpexport.yaml",
        "--local-root",
        demo_dir / "single",
        "run",
        "--table",
        "reddit_diagnostic_posts",
        "--at",
        AT,
    )
    assert single.code == 0, single.err
    raced = _published(demo_dir / "race", "reddit_diagnostic_posts")
    alone = _published(demo_dir / "single", "reddit_diagnostic_posts")
    assert sorted(raced, key=_post_id) == sorted(alone, key=_post_id)
    assert len(raced) == len({r["post_id"] for r in raced})
    assert _folders(demo_dir / "race") == _folders(demo_dir / "single")


def _post_id(row: dict[str, object]) -> str:
    return str(row["post_id"])


def _folders(root: Path) -> list[str]:
    return sorted(p.relative_to(root).parent.as_posix() for p in root.rglob("*.parquet.snappy"))
