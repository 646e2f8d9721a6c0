"""What the committed manifests determine cannot be lost with the state objects beside
them (issue 15, cases 4-7): watermarks are kept per export, rebuilt from the manifests
when missing, damaged or contradicted; NULL cursors are counted, never silently left
out; a FULL_REFRESH never retires what it cannot read."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import duckdb
import pyarrow.parquet as pq
import pytest

from tests.e2e.cli import Result, dpexport

T1, T2, T3 = "2025-09-16T12:00:00Z", "2025-09-17T12:00:00Z", "2025-09-18T12:00:00Z"
BUCKET = "gs/bk"
DEST = "gs://bk/prod/ds/events/"

CONFIG = """\
project: p
environment: prod
warehouse: {engine: duckdb, path: warehouse.duckdb}
buckets: {exports: gs://bk}
exports:
  - source: ds.events
    destination: %s
    format: PARQUET
    compression: SNAPPY
    partitioning: {field: at, granularity: daily}
    mode: APPEND
"""


def _sql(base: Path, sql: str) -> list[tuple[Any, ...]]:
    con = duckdb.connect(str(base / "warehouse.duckdb"))
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


@pytest.fixture
def base(tmp_path: Path) -> Path:
    _sql(
        tmp_path,
        "CREATE SCHEMA ds; CREATE TABLE ds.events AS SELECT i AS id, "
        "TIMESTAMP '2025-09-15 00:00:00' + i * INTERVAL 1 HOUR AS at FROM range(30) t(i)",
    )
    (tmp_path / "dpexport.yaml").write_text(CONFIG % DEST, encoding="utf-8")
    return tmp_path


def _run(base: Path, at: str, config: str = "dpexport.yaml") -> Result:
    return dpexport(
        "-c", base / config, "--local-root", base / "out", "run", "--at", at, "--json"
    )  # fmt: skip


def _ok(base: Path, at: str, config: str = "dpexport.yaml") -> list[dict[str, Any]]:
    result = _run(base, at, config)
    assert result.code == 0, result.err
    return list(json.loads(result.out))


def _published_ids(base: Path, folder: str = "prod/ds/events") -> list[int]:
    ids: list[int] = []
    for success in sorted((base / "out" / BUCKET / folder).rglob("SUCCESS")):
        for name in json.loads(success.read_text())["manifests"]:
            for entry in json.loads((success.parent / name).read_text())["files"]:
                ids += [r["id"] for r in pq.read_table(success.parent / entry["name"]).to_pylist()]
    return ids


def _add(base: Path, first: int, n: int, at: str = "2025-09-16 18:00:00") -> None:
    _sql(
        base,
        f"INSERT INTO ds.events SELECT i, TIMESTAMP '{at}' FROM range({first}, {first + n}) t(i)",
    )


def _watermark(base: Path) -> Path:
    [path] = (base / "out" / BUCKET / "_state").rglob("watermark.json")
    return path


def _exactly_once(base: Path, folder: str = "prod/ds/events") -> None:
    ids = _published_ids(base, folder)
    source = {r[0] for r in _sql(base, "SELECT id FROM ds.events")}
    assert len(ids) == len(set(ids)), "a row was published twice"
    assert set(ids) == source, "rows lost"


def test_watermark_deleted_is_rebuilt_from_the_manifests(base: Path) -> None:
    _ok(base, T1)
    _watermark(base).unlink()
    _add(base, 100, 3)
    [result] = _ok(base, T2)
    assert result["rows"] == 3, "only the new rows: nothing published again"
    _exactly_once(base)
    # the rebuilt value is the max cursor the manifests published
    assert json.loads(_watermark(base).read_text())["value"] == "2025-09-16T18:00:00.000000Z"


def test_watermark_in_the_future_is_not_trusted(base: Path) -> None:
    _ok(base, T1)
    path = _watermark(base)
    doc = json.loads(path.read_text())
    path.write_text(json.dumps({**doc, "value": "2099-01-01T00:00:00.000000Z"}))
    _add(base, 100, 3)
    result = _run(base, T2)
    assert result.code == 0, result.err
    assert json.loads(result.out)[0]["rows"] == 3, "the new rows were skipped"
    assert "2099-01-01" in result.err and "do not confirm" in result.err
    _exactly_once(base)


def test_watermark_garbled_is_rebuilt(base: Path) -> None:
    _ok(base, T1)
    _watermark(base).write_text('{"garbage')
    _add(base, 100, 2)
    result = _run(base, T2)
    assert result.code == 0, result.err
    assert "unreadable" in result.err
    _exactly_once(base)


def test_watermark_turned_into_a_folder_fails_loudly_and_publishes_once(base: Path) -> None:
    _ok(base, T1)
    path = _watermark(base)
    path.unlink()
    path.mkdir()
    (path / "x").write_text("x")
    _add(base, 100, 2)
    first = _run(base, T2)
    assert first.code == 1
    [record] = json.loads(first.out)
    assert "committed but not finished" in record["error"]
    _exactly_once(base)
    again = _run(base, T3)
    assert again.code == 1, again.err
    assert "cannot be finished" in json.loads(again.out)[0]["error"]
    _exactly_once(base)
    (path / "x").unlink()
    path.rmdir()
    _ok(base, T3)
    _exactly_once(base)


def test_one_table_to_two_destinations_keeps_two_watermarks(base: Path) -> None:
    """Case 4: watermarks were keyed by table per bucket, so a second export of the same
    table into the same bucket exported 0 rows, SUCCESS."""
    _ok(base, T1)
    (base / "copy.yaml").write_text(CONFIG % "gs://bk/partner/events/", encoding="utf-8")
    [second] = _ok(base, T1, "copy.yaml")
    assert second["rows"] == 30
    _exactly_once(base, "partner/events")
    _add(base, 100, 2)
    assert _ok(base, T2)[0]["rows"] == 2
    assert _ok(base, T2, "copy.yaml")[0]["rows"] == 2
    _exactly_once(base)
    _exactly_once(base, "partner/events")


def test_null_cursors_are_counted_and_reported(base: Path) -> None:
    """Case 5: APPEND never exported a row whose cursor is NULL, and said nothing."""
    _sql(base, "INSERT INTO ds.events VALUES (900, NULL), (901, NULL)")
    result = _run(base, T1)
    assert result.code == 0, result.err
    assert "2 row(s) have a NULL cursor (at)" in result.err
    [log] = (base / "out" / BUCKET / "export-logs").rglob("*.json")
    assert json.loads(log.read_text())["null_cursor_rows"] == 2
    assert 900 not in _published_ids(base)


FULL = """\
project: p
environment: prod
warehouse: {engine: duckdb, path: warehouse.duckdb}
buckets: {exports: gs://bk}
exports:
  - source: ds.events
    destination: gs://bk/prod/ds/events/
    format: PARQUET
    compression: SNAPPY
    mode: FULL_REFRESH
"""


def test_full_refresh_refuses_to_retire_an_unreadable_manifest(base: Path) -> None:
    """Case 7: the unreadable manifest was deleted and its files and SUCCESS kept, so
    two snapshots were visible and verify said OK."""
    (base / "dpexport.yaml").write_text(FULL, encoding="utf-8")
    _ok(base, T1)
    [manifest] = (base / "out" / BUCKET).rglob("manifest_*.json")
    manifest.write_text("{not json")
    result = _run(base, T2)
    assert result.code == 1
    error = json.loads(result.out)[0]["error"]
    assert "cannot be retired" in error and manifest.name in error
    assert manifest.exists()
    new = base / "out" / BUCKET / "prod/ds/events/2025/09/17"
    assert sorted(p.name for p in new.iterdir()) == ["FAILURE"], "nothing new published"
    assert (manifest.parent / "SUCCESS").exists(), "the old snapshot stays whole"


def test_reserved_source_column_is_refused_by_the_python_api(base: Path) -> None:
    """Case 10: a source column named ``_schema_version`` was published as dpexport's
    version column. ``dpexport.run`` refuses it as ``check`` and ``run`` do, before the
    run starts; a run below it (``run_exports``) fails the export before anything is
    staged."""
    from datetime import UTC, datetime

    import dpexport
    from dpexport.flow.context import RunOptions
    from dpexport.flow.runner import run_exports

    _sql(base, "ALTER TABLE ds.events ADD COLUMN _schema_version VARCHAR DEFAULT 'mine'")
    config = dpexport.load_config(base / "dpexport.yaml")
    at = datetime(2025, 9, 16, 12, tzinfo=UTC)
    with pytest.raises(dpexport.ConfigError, match=r"_schema_version.*reserved"):
        dpexport.run(config, at=at, local_root=base / "out")
    assert not (base / "out").exists()
    engine = dpexport.Workspace(config).open_engine()
    try:
        [result] = run_exports(config, engine, RunOptions(at=at, local_root=base / "out"))
    finally:
        engine.close()
    assert result.status == "FAILURE"
    assert "_schema_version" in str(result.error) and "reserved" in str(result.error)
    assert _published_ids(base) == []
    assert not (base / "out" / BUCKET / "_staging").exists() or not any(
        p.is_file() for p in (base / "out" / BUCKET / "_staging").rglob("*")
    )


@pytest.mark.parametrize("uri", ["gs:/bk/x/", "gs://bk//x/", "gs://bk/a\nb/", "gs://bk/../x/"])
def test_verify_refuses_a_malformed_uri(tmp_path: Path, uri: str) -> None:
    """Issue 15, case 12: a one-slash URI was taken as a local path."""
    result = dpexport("--local-root", tmp_path / "out", "verify", uri)
    assert result.code == 2, result.out + result.err
    assert "verify" in result.err and "expected" in result.err
    assert not (tmp_path / "out").exists() and not Path("gs:").exists()
