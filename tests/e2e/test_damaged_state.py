"""Damaged state objects are named, rebuilt where the committed manifests determine
them, and otherwise fail one export with a way out (issue 18, cases 3, 4, 7, 10, 13):
never a JSONDecodeError/TypeError/ArrowInvalid traceback, never another table stopped."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import duckdb
import pyarrow.parquet as pq
import pytest

from tests.e2e.cli import Result, dpexport

T1, T2 = "2025-09-16T12:00:00Z", "2025-09-17T12:00:00Z"
OUT = "gs/bk"

ITEM = """\
  - source: ds.%s
    destination: gs://bk/prod/ds/%s/
    format: PARQUET
    partitioning: {field: at, granularity: daily}
    mode: %s
"""
HEAD = """\
project: p
environment: prod
warehouse: {engine: duckdb, path: warehouse.duckdb}
buckets: {exports: gs://bk}
exports:
"""


def _sql(base: Path, sql: str) -> list[tuple[Any, ...]]:
    con = duckdb.connect(str(base / "warehouse.duckdb"))
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def _config(base: Path, events: str = "APPEND", extra: str = "") -> None:
    text = HEAD + ITEM % ("events", "events", events) + extra + ITEM % ("other", "other", "APPEND")
    (base / "dpexport.yaml").write_text(text, encoding="utf-8")


@pytest.fixture
def base(tmp_path: Path) -> Path:
    for table in ("events", "other"):
        _sql(
            tmp_path,
            f"CREATE SCHEMA IF NOT EXISTS ds; CREATE TABLE ds.{table} AS SELECT i AS id, "
            "TIMESTAMP '2025-09-15 00:00:00' + i * INTERVAL 1 HOUR AS at FROM range(30) t(i)",
        )
    _config(tmp_path)
    return tmp_path


def _run(base: Path, at: str) -> Result:
    config, out = base / "dpexport.yaml", base / "out"
    return dpexport("-c", config, "--local-root", out, "run", "--at", at, "--json")


def _results(result: Result) -> dict[str, dict[str, Any]]:
    return {r["table"]: r for r in json.loads(result.out)}


def _add(base: Path, table: str, first: int, n: int) -> None:
    _sql(
        base,
        f"INSERT INTO ds.{table} SELECT i, TIMESTAMP '2025-09-16 18:00:00' "
        f"FROM range({first}, {first + n}) t(i)",
    )


def _published(base: Path, table: str) -> list[int]:
    ids: list[int] = []
    for success in sorted((base / "out" / OUT / "prod/ds" / table).rglob("SUCCESS")):
        for name in json.loads(success.read_text())["manifests"]:
            for entry in json.loads((success.parent / name).read_text())["files"]:
                ids += [r["id"] for r in pq.read_table(success.parent / entry["name"]).to_pylist()]
    return ids


def _exactly_once(base: Path, table: str) -> None:
    ids = _published(base, table)
    assert len(ids) == len(set(ids)), "a row was published twice"
    assert set(ids) == {r[0] for r in _sql(base, f"SELECT id FROM ds.{table}")}, "rows lost"


def _state(base: Path, pattern: str) -> Path:
    root = base / "out" / OUT
    [path] = [p for p in root.rglob(pattern) if "events" in p.relative_to(root).as_posix()]
    return path


def _dlq(base: Path) -> list[dict[str, Any]]:
    root = base / "out" / OUT / "dead-letter-queue"
    return [json.loads(p.read_text()) for p in root.rglob("export_request.json")]


def _both_run(base: Path) -> None:
    first = _run(base, T1)
    assert first.code == 0, first.err
    _add(base, "events", 100, 3)
    _add(base, "other", 100, 3)


def _other_exported(base: Path, result: Result) -> None:
    assert _results(result)["other"]["status"] == "SUCCESS", result.out
    _exactly_once(base, "other")


def _failed_with_way_out(base: Path, result: Result, key: str, *words: str) -> str:
    assert result.code == 1, result.out + result.err
    events = _results(result)["events"]
    assert events["status"] == "FAILURE"
    error = str(events["error"])
    assert key in error, error
    for word in words:
        assert word in error, error
    assert "Traceback" not in result.err
    assert any(entry.get("table") == "ds.events" for entry in _dlq(base))
    _other_exported(base, result)
    return error


@pytest.mark.parametrize("garbage", ['{"garbage\n', "[]", '{"value": 5}'])
def test_watermark_garbled_is_named_rebuilt_and_logged(base: Path, garbage: str) -> None:
    _both_run(base)
    path = _state(base, "watermark.json")
    path.write_text(garbage)
    result = _run(base, T2)
    assert result.code == 0, result.err
    assert _results(result)["events"]["rows"] == 3, "only the new rows"
    key = path.relative_to(base / "out" / OUT).as_posix()
    lines = [x for x in result.err.splitlines() if key in x]
    assert any("unreadable" in x and "2025-09-16T05:00:00" in x for x in lines), result.err
    _exactly_once(base, "events")
    _other_exported(base, result)


def test_schema_history_garbled_fails_with_a_way_out(base: Path) -> None:
    _both_run(base)
    path = _state(base, "ds.events.json")
    path.write_text('{"versions": [')
    result = _run(base, T2)
    _failed_with_way_out(base, result, "_state/schemas/ds.events.json", "delete")
    path.unlink()
    assert _run(base, T2).code == 0
    _exactly_once(base, "events")


def test_dedup_state_garbled_fails_with_a_way_out(base: Path) -> None:
    _config(base, extra="    deduplication: by id\n    lookback_window: 2 days\n")
    _both_run(base)
    path = _state(base, "dedup.parquet")
    kept = path.read_bytes()
    path.write_bytes(b"PAR1 not parquet")
    result = _run(base, T2)
    error = _failed_with_way_out(base, result, "dedup.parquet", "restore it", "delete it")
    assert "ArrowInvalid" not in error
    path.write_bytes(kept)  # restored from the bucket's object versions
    assert _run(base, T2).code == 0
    _exactly_once(base, "events")


@pytest.mark.parametrize("files", [5, [5], [{"rows": 3}]])
def test_previous_manifest_with_bad_files_is_named(base: Path, files: object) -> None:
    _config(base, events="FULL_REFRESH")
    _both_run(base)
    path = sorted((base / "out" / OUT / "prod/ds/events").rglob("manifest_*.json"))[0]
    path.write_text(json.dumps({**json.loads(path.read_text()), "files": files}))
    result = _run(base, T2)
    error = _failed_with_way_out(base, result, path.name, "cannot be retired")
    assert "TypeError" not in error


def _journal(base: Path, export_id: str, doc: object) -> Path:
    path = base / "out" / OUT / "_staging" / export_id / "_commit.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(doc))
    return path


def test_empty_journal_is_named_and_stops_no_table(base: Path) -> None:
    _both_run(base)
    path = _journal(base, "20250101T000000Z_deadbeef", {})
    result = _run(base, T2)
    assert result.code == 0, result.out + result.err
    assert "_staging/20250101T000000Z_deadbeef/_commit.json" in result.err
    assert "KeyError" not in result.err and "Traceback" not in result.err
    assert path.exists(), "a journal that cannot be read is never rolled back"
    _exactly_once(base, "events")
    _other_exported(base, result)


def test_damaged_journal_of_a_table_fails_that_table(base: Path) -> None:
    _both_run(base)
    path = _journal(base, "20250101T000000Z_deadbeef", {"table": "ds.events", "moves": 7})
    result = _run(base, T2)
    _failed_with_way_out(base, result, "_staging/20250101T000000Z_deadbeef/_commit.json", "aside")
    assert path.exists()


@pytest.mark.parametrize("names_table", [True, False])
def test_journal_naming_a_gone_staged_file_fails_that_table(base: Path, names_table: bool) -> None:
    """Without ``table`` (a journal written before journals named it) the destination of
    its keys says whose it is: exporting on top of it could publish its rows twice."""
    _both_run(base)
    staged = "_staging/20250101T000000Z_deadbeef/part-00001.parquet"
    doc = {
        "export_id": "20250101T000000Z_deadbeef",
        "timestamp": "2025-01-01T00:00:00Z",
        "table": "ds.events",
        "destination": "prod/ds/events/",
        "moves": [[staged, "prod/ds/events/2025/01/01/events_x.parquet"]],
        "manifests": [],
        "markers": [],
        "replace": False,
        "retire": [],
        "watermark": None,
    }
    if not names_table:
        del doc["table"], doc["destination"]
    _journal(base, "20250101T000000Z_deadbeef", doc)
    result = _run(base, T2)
    _failed_with_way_out(base, result, staged, "_commit.json", "aside")
    assert "Traceback" not in result.err


def _token(base: Path) -> Path:
    [path] = [p for p in (base / "out" / OUT / "idempotency-tokens").glob("events_*.json")]
    return path


def test_truncated_token_is_repaired(base: Path) -> None:
    assert _run(base, T1).code == 0
    path = _token(base)
    path.write_text(path.read_text()[:20])
    result = _run(base, T1)
    assert result.code == 0, result.out + result.err
    assert "object changed since it was read" not in result.out + result.err
    assert path.name in result.err and "not valid JSON" in result.err
    assert _results(result)["events"]["status"] == "SUCCESS"
    _exactly_once(base, "events")
    assert json.loads(path.read_text())["status"] == "DONE", "the token was repaired"


def test_token_with_null_result_reports_the_table(base: Path) -> None:
    assert _run(base, T1).code == 0
    path = _token(base)
    path.write_text(json.dumps({**json.loads(path.read_text()), "result": None}))
    result = _run(base, T1)
    assert result.code == 0, result.err
    assert set(_results(result)) == {"events", "other"}


def test_journal_naming_a_key_too_long_for_the_store_says_to_set_it_aside(base: Path) -> None:
    """A journal an older version wrote with a partition folder over 255 bytes can never
    be finished: the error says so and how to go on (issue 18, case 11a)."""
    _both_run(base)
    export_id = "20250101T000000Z_0badf00d"
    staged = f"_staging/{export_id}/part-00001.parquet"
    doc = {
        "export_id": export_id,
        "timestamp": "2025-01-01T00:00:00Z",
        "table": "ds.events",
        "destination": "prod/ds/events/",
        "moves": [[staged, "prod/ds/events/2025/01/01/" + "x" * 300 + "/events_x.parquet"]],
        "manifests": [],
        "markers": [],
        "replace": False,
        "retire": [],
        "watermark": None,
    }
    _journal(base, export_id, doc)
    (base / "out" / OUT / staged).write_bytes(b"PAR1")
    result = _run(base, T2)
    _failed_with_way_out(base, result, "_commit.json", "cannot hold", "aside")
    assert "Traceback" not in result.err
