"""``exports[].freshness`` is spec 5.2's pre-export gate (issue 17): a source whose newest
cursor value is older than the limit at the logical time fails before anything is staged
(exit 1, FAILURE, a DLQ entry naming the newest value), and a fresh one exports."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest

from tests.e2e.cli import dpexport

AT = "2025-09-16T14:30:22Z"
CONFIG = """\
project: p
environment: test
warehouse: {{engine: duckdb, path: warehouse.duckdb}}
buckets: {{exports: gs://b}}
exports:
  - source: ds.events
    destination: gs://b/events/
    mode: APPEND
    change_column: {cursor}
    {freshness}
"""


def _base(tmp_path: Path, newest: str, cursor: str = "updated_at", kind: str = "TIMESTAMP") -> Path:
    con = duckdb.connect(str(tmp_path / "warehouse.duckdb"))
    con.execute("CREATE SCHEMA ds")
    con.execute(
        f"CREATE TABLE ds.events AS SELECT i AS id, "
        f"CAST(TIMESTAMP '{newest}' - INTERVAL (i) MINUTE AS {kind}) AS {cursor} "
        "FROM range(0, 30) t(i)"
    )
    con.close()
    return tmp_path


def _run(
    base: Path, freshness: str, cursor: str = "updated_at"
) -> tuple[int, list[dict[str, object]], str]:
    text = CONFIG.format(cursor=cursor, freshness=f"freshness: {freshness}" if freshness else "")
    (base / "dpexport.yaml").write_text(text, encoding="utf-8")
    result = dpexport(
        "-c", base / "dpexport.yaml", "--local-root", base / "out",
        "run", "--at", AT, "--json",
    )  # fmt: skip
    return result.code, json.loads(result.out), result.err


def _published(base: Path) -> list[Path]:
    return sorted((base / "out" / "gs" / "b" / "events").rglob("*.parquet.snappy"))


def test_a_stale_source_fails_before_anything_is_staged(tmp_path: Path) -> None:
    base = _base(tmp_path, "2025-09-14 14:00:00")  # two days before the logical time
    code, [record], err = _run(base, "1 hour")
    assert code == 1, err
    assert record["status"] == "FAILURE"
    error = str(record["error"])
    assert "the source is stale" in error
    assert "its newest updated_at is 2025-09-14 14:00:00" in error
    assert "freshness allows 1 hour(s)" in error
    assert _published(base) == []
    assert not list((base / "out" / "gs" / "b").rglob("_staging/*"))
    listed = dpexport(
        "-c", base / "dpexport.yaml", "--local-root", base / "out", "dlq", "list", "--json"
    )
    assert listed.code == 0, listed.err
    [entry] = json.loads(listed.out)
    assert "the source is stale" in json.dumps(entry)


def test_a_fresh_source_exports(tmp_path: Path) -> None:
    base = _base(tmp_path, "2025-09-16 14:00:00")  # 30 minutes before the logical time
    code, [record], err = _run(base, "1 hour")
    assert code == 0, err
    assert record["status"] == "SUCCESS" and record["rows"] == 30
    assert len(_published(base)) == 1


def test_without_freshness_a_stale_source_exports(tmp_path: Path) -> None:
    base = _base(tmp_path, "2025-09-14 14:00:00")
    code, [record], err = _run(base, "")
    assert code == 0, err
    assert record["status"] == "SUCCESS" and record["rows"] == 30


@pytest.mark.parametrize(("newest", "code"), [("2025-09-16", 0), ("2025-09-15", 1)])
def test_a_date_cursor_is_fresh_until_its_day_is_over(
    tmp_path: Path, newest: str, code: int
) -> None:
    base = _base(tmp_path, f"{newest} 00:30:00", cursor="event_date", kind="DATE")
    got, [record], err = _run(base, "12 hours", cursor="event_date")
    assert got == code, err
    # 2025-09-15's rows stand until 2025-09-16 00:00, 14.5 hours before the logical time
    assert (record["status"] == "SUCCESS") == (code == 0), record
