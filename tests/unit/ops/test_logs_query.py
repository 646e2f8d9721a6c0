"""``logs query``: BigQuery SQL over the export logs, the spec 9.2 queries verbatim."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from dpexport.errors import UsageError
from dpexport.ops.logs import as_objects, load_records, query, query_all, render_table, transpile
from dpexport.publish.manifest import dumps
from dpexport.storage.local import LocalStore
from tests.unit.ops.log_records import (
    EXPECTED_STALE,
    EXPECTED_SUCCESS_RATE,
    FRESHNESS_SQL,
    NOW,
    SUCCESS_RATE_SQL,
    records,
)


def _store(tmp_path: Path) -> LocalStore:
    store = LocalStore(tmp_path / "bucket", url="gs://diagnosticpro-exports")
    for r in records():
        day = r["export_timestamp"][:10].replace("-", "/")
        store.put_bytes(f"export-logs/{day}/{r['export_id']}.json", dumps(r))
    store.put_bytes("export-logs/2025/09/16/broken.json", b"{not json")
    store.put_bytes("prod/diagnosticpro_prod/x/2025/09/16/SUCCESS", b"{}")
    return store


def test_spec_success_rate_query_runs_verbatim(tmp_path: Path) -> None:
    columns, rows = query(_store(tmp_path), SUCCESS_RATE_SQL, now=NOW)
    assert columns == ["export_date", "table_name", "total_exports", "successful", "success_rate"]
    got = [(d.isoformat(), t, n, int(s), float(r)) for d, t, n, s, r in rows]
    assert got == EXPECTED_SUCCESS_RATE


def test_spec_freshness_query_runs_verbatim(tmp_path: Path) -> None:
    result = query(_store(tmp_path), FRESHNESS_SQL, now=NOW)
    assert result[0] == ["table_name", "last_export", "hours_since_export", "freshness_status"]
    got = sorted(
        (o["table_name"], o["last_export"], o["hours_since_export"], o["freshness_status"])
        for o in as_objects(result)
    )
    assert got == EXPECTED_STALE


def test_now_moves_the_answers() -> None:
    later = datetime(2025, 9, 17, 7, 0, tzinfo=UTC)  # reddit 25 h, youtube 31 h old
    _, rows = query(records(), FRESHNESS_SQL, now=later)
    assert sorted(r[0] for r in rows) == [
        "ml_features",
        "reddit_diagnostic_posts",
        "sensor_telemetry",
        "users",
        "youtube_repair_videos",
    ]


def test_records_load_from_stores_and_unreadable_ones_are_skipped(tmp_path: Path) -> None:
    store = _store(tmp_path)
    loaded = load_records([store, store])
    assert len(loaded) == len(records())
    assert {r["table_name"] for r in loaded} >= {"users", "sensor_telemetry"}


def test_columns_and_types() -> None:
    _, rows = query(
        records()[:1],
        "SELECT export_id, dataset, status, export_timestamp, logical_time, mode, format, "
        "compression, destination, `rows`, files, duration_ms, `trigger`, error, retry_count "
        "FROM export_logs",
        now=NOW,
    )
    (row,) = rows
    assert row[3] == datetime(2025, 9, 16, 6, 0) and row[4] == datetime(2025, 9, 16, 6, 0)
    assert row[9:12] == (1500, 1, 1234) and row[12] == "cron" and row[14] == 0
    assert row[8] == "gs://diagnosticpro-exports/prod/diagnosticpro_prod/reddit_diagnostic_posts/"


def test_bigquery_functions_and_qualified_names() -> None:
    sql = (
        "SELECT COUNT(*) AS n, MIN(DATE(export_timestamp)) AS first_day "
        "FROM `diagnostic-pro-start-up.ops.export_logs` AS l "
        "WHERE l.export_timestamp >= TIMESTAMP_SUB(CURRENT_TIMESTAMP(), INTERVAL 48 HOUR) "
        "AND DATE(l.export_timestamp) <= CURRENT_DATE()"
    )
    _, rows = query(records(), sql, now=NOW)
    # since 2025-09-14T12:00: reddit 3, youtube 2, sensor_telemetry 1
    assert rows == [(6, date(2025, 9, 15))]


def test_several_statements_return_one_result_each() -> None:
    results = query_all(records(), "SELECT 1 AS a; SELECT COUNT(*) AS n FROM export_logs", now=NOW)
    assert [r[1] for r in results] == [[(1,)], [(11,)]]


def test_clock_functions_become_literals() -> None:
    (sql,) = transpile("SELECT CURRENT_DATE - 7, CURRENT_DATETIME()", NOW)
    assert "CAST('2025-09-16' AS DATE) - 7" in sql
    assert "CAST('2025-09-16 12:00:00' AS TIMESTAMP)" in sql


@pytest.mark.parametrize("sql", ["SELEC nothing", "SELECT missing_column FROM export_logs", ""])
def test_bad_sql_is_a_usage_error(sql: str) -> None:
    with pytest.raises(UsageError):
        query(records(), sql, now=NOW)


def test_render_and_json() -> None:
    result = query(records(), "SELECT table_name, rows FROM export_logs LIMIT 2", now=NOW)
    text = render_table(result)
    assert text.splitlines()[0].split() == ["table_name", "rows"]
    assert text.endswith("(2 rows)")
    assert json.loads(json.dumps(as_objects(result)))[0] == {
        "table_name": "reddit_diagnostic_posts",
        "rows": 1500,
    }
