"""Crash tests of the concurrent commit: the export runs against a local folder that
behaves as a bucket (staging uploaded, the commit's writes on threads), is killed at a
step, and the next run - the same kind of store, so recovery runs on threads too -
publishes every row exactly once."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from tests.e2e.test_crash import BUCKET, REPO, _assert_clean, _published

APPEND = "reddit_diagnostic_posts"
REFRESH = "dtc_code_definitions"


def _bucket_run(base: Path, table: str, at: str, step: str = "", nth: int = 0) -> int:
    """One export through ``tests.e2e.bucket_crash_child``; its exit code (-9: killed)."""
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "tests.e2e.bucket_crash_child",
            str(base / "dpexport.yaml"),
            str(base / "buckets"),
            table,
            at,
            step or "-",
            str(nth),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    if step:
        assert proc.returncode == -9, (step, nth, proc.returncode, proc.stdout, proc.stderr)
    else:
        assert proc.returncode == 0, proc.stderr
        assert "SUCCESS" in proc.stdout and "16" in proc.stdout.split("]")[-1], proc.stdout
    return proc.returncode


def _source(base: Path, sql: str) -> list[object]:
    with duckdb.connect(str(base / "warehouse.duckdb"), read_only=True) as con:
        return [r[0] for r in con.execute(sql).fetchall()]


@pytest.mark.parametrize(
    ("step", "nth"),
    [("manifest", 1), ("move", 1), ("move", 25), ("marker", 2), ("watermark", 1), ("clean", 1)],
)
def test_append_on_threads_killed_then_rerun(demo_dir: Path, step: str, nth: int) -> None:
    at = "2025-09-16T14:30:22Z"
    _bucket_run(demo_dir, APPEND, at, step, nth)
    journals = list((demo_dir / "buckets" / BUCKET / "_staging").glob("*/_commit.json"))
    assert len(journals) == (step != "clean")  # killed past the commit point
    _bucket_run(demo_dir, APPEND, at)
    root = demo_dir / "buckets"
    _assert_clean(root, APPEND)
    ids = [r["post_id"] for r in _published(root, APPEND)]
    assert len(ids) == len(set(ids)), "a row was published twice"
    expected = _source(demo_dir, f"SELECT post_id FROM diagnosticpro_prod.{APPEND}")
    assert set(ids) == set(expected), "rows lost"
    # every data file has its sidecar, with the data file's checksum
    folder = root / "gs/diagnosticpro-exports/prod/diagnosticpro_prod" / APPEND
    for manifest in folder.rglob("manifest_*.json"):
        for entry in json.loads(manifest.read_text())["files"]:
            side = json.loads((manifest.parent / (entry["name"] + ".metadata.json")).read_text())
            assert side["checksum"] == entry["checksum"]


@pytest.mark.parametrize(("step", "nth"), [("move", 2), ("retire", 1), ("retire", 3)])
def test_full_refresh_on_threads_killed_then_rerun(demo_dir: Path, step: str, nth: int) -> None:
    _bucket_run(demo_dir, REFRESH, "2025-09-15T00:00:00Z")
    _bucket_run(demo_dir, REFRESH, "2025-09-16T00:00:00Z", step, nth)
    root = demo_dir / "buckets"
    rows = _published(root, REFRESH)
    assert len(rows) in (0, 36), len(rows)  # a consumer sees one whole snapshot
    _bucket_run(demo_dir, REFRESH, "2025-09-16T00:00:00Z")
    _assert_clean(root, REFRESH)
    codes = sorted(str(r["code"]) for r in _published(root, REFRESH))
    assert codes == sorted(
        str(c) for c in _source(demo_dir, f"SELECT code FROM diagnosticpro_prod.{REFRESH}")
    )
