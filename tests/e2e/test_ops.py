"""``logs query``, ``status`` and ``dlq list|retry|purge`` as a user runs them.

The current time is fixed with the hidden ``--now`` option (``$DPEXPORT_NOW`` works too)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pytest

from dpexport.errors import NotFound, TransientError
from dpexport.publish.manifest import dumps
from dpexport.reliability import dlq
from dpexport.storage.local import LocalStore
from tests.e2e.cli import dpexport
from tests.unit.ops.log_records import (
    EXPECTED_STALE,
    EXPECTED_SUCCESS_RATE,
    FRESHNESS_SQL,
    NOW,
    SUCCESS_RATE_SQL,
    records,
)

TABLES = (
    "reddit_diagnostic_posts",
    "youtube_repair_videos",
    "sensor_telemetry",
    "users",
    "ml_features",
    "parts",
)
NOW_TEXT = "2025-09-16T12:00:00Z"


@pytest.fixture
def site(tmp_path: Path) -> tuple[Path, Path, LocalStore]:
    """A config over six tables, a warehouse holding only ``parts``, and the bucket
    folder holding the crafted export logs."""
    items = "".join(
        f"""\
  - source: diagnosticpro_prod.{t}
    destination: gs://diagnosticpro-exports/prod/diagnosticpro_prod/{t}/
    format: JSONL
    compression: GZIP
    mode: FULL_REFRESH
"""
        for t in TABLES
    )
    config = tmp_path / "dpexport.yaml"
    config.write_text(
        "project: p\nenvironment: prod\n"
        "warehouse: {engine: duckdb, path: warehouse.duckdb}\n"
        "buckets: {exports: gs://diagnosticpro-exports}\n"
        "exports:\n" + items,
        encoding="utf-8",
    )
    con = duckdb.connect(str(tmp_path / "warehouse.duckdb"))
    con.execute("CREATE SCHEMA diagnosticpro_prod")
    con.execute(
        "CREATE TABLE diagnosticpro_prod.parts AS "
        "SELECT i AS part_id, 'part ' || i AS name FROM range(25) t(i)"
    )
    con.close()
    root = tmp_path / "out"
    store = LocalStore(root / "gs" / "diagnosticpro-exports", url="gs://diagnosticpro-exports")
    for r in records():
        day = r["export_timestamp"][:10].replace("-", "/")
        store.put_bytes(f"export-logs/{day}/{r['export_id']}.json", dumps(r))
    return config, root, store


def _ops(config: Path, root: Path, *args: str) -> tuple[int, str, str]:
    result = dpexport("-c", config, "--local-root", root, *args)
    return result.code, result.out, result.err


def test_spec_dashboard_queries_through_the_cli(site: tuple[Path, Path, LocalStore]) -> None:
    config, root, _ = site
    code, out, err = _ops(
        config, root, "logs", "query", SUCCESS_RATE_SQL, "--json", "--now", NOW_TEXT
    )
    assert code == 0, err
    rows = json.loads(out)
    got = [
        (
            r["export_date"],
            r["table_name"],
            r["total_exports"],
            r["successful"],
            r["success_rate"],
        )
        for r in rows
    ]
    assert got == EXPECTED_SUCCESS_RATE

    code, out, err = _ops(config, root, "logs", "query", FRESHNESS_SQL, "--json", "--now", NOW_TEXT)
    assert code == 0, err
    stale = sorted(
        (r["table_name"], r["last_export"], r["hours_since_export"], r["freshness_status"])
        for r in json.loads(out)
    )
    assert stale == EXPECTED_STALE

    # as a table on a terminal, options after the command, time from the environment
    result = dpexport(
        "logs", "query", FRESHNESS_SQL, "-c", config, "--local-root", root,
        env={"DPEXPORT_NOW": NOW_TEXT},
    )  # fmt: skip
    assert result.code == 0, result.err
    lines = result.out.splitlines()
    assert lines[0].split() == [
        "table_name",
        "last_export",
        "hours_since_export",
        "freshness_status",
    ]
    assert lines[-1] == "(3 rows)"

    bad = dpexport(
        "-c", config, "--local-root", root, "logs", "query", "SELECT nope FROM export_logs"
    )
    assert bad.code == 2 and "nope" in bad.err


def test_status_json(site: tuple[Path, Path, LocalStore]) -> None:
    config, root, store = site
    dlq.record_failure(
        store,
        "exp_20250915_100000_deadbeef",
        dlq.export_request(
            table="diagnosticpro_prod.sensor_telemetry",
            at=NOW - timedelta(hours=26),
            trigger="cron",
            export_id="exp_20250915_100000_deadbeef",
        ),
        dlq.error_details(TransientError("Quota exceeded", code="QUOTA_EXCEEDED"), now=NOW),
        [],
    )
    code, out, err = _ops(config, root, "status", "--json", "--now", NOW_TEXT)
    assert code == 0, err
    by_table = {s["table"]: s for s in json.loads(out)}
    assert list(by_table) == list(TABLES)
    assert by_table["reddit_diagnostic_posts"] == {
        "table": "reddit_diagnostic_posts",
        "dataset": "diagnosticpro_prod",
        "last_export": "2025-09-16T06:00:00Z",
        "rows": 1500,
        "hours_since_export": 6.0,
        "freshness": "FRESH",
        "success_rate_7d": 75.0,
        "dlq_open": 0,
        "cost_usd": None,  # the crafted records carry none
    }
    assert by_table["sensor_telemetry"] == {
        "table": "sensor_telemetry",
        "dataset": "diagnosticpro_prod",
        "last_export": "2025-09-13T10:00:00Z",
        "rows": 20000,
        "hours_since_export": 74.0,
        "freshness": "STALE",
        "success_rate_7d": 50.0,
        "dlq_open": 1,
        "cost_usd": None,
    }
    assert by_table["youtube_repair_videos"]["freshness"] == "FRESH"
    assert by_table["youtube_repair_videos"]["hours_since_export"] == 12.0
    assert by_table["parts"]["freshness"] == "STALE" and by_table["parts"]["last_export"] is None

    code, out, _ = _ops(config, root, "status", "--now", NOW_TEXT)
    assert code == 0
    assert out.splitlines()[1].split()[:5] == [
        "reddit_diagnostic_posts",
        "2025-09-16T06:00:00Z",
        "1500",
        "6.00",
        "FRESH",
    ]


def _fail(store: LocalStore, export_id: str, table: str, failed_at: datetime) -> None:
    dlq.record_failure(
        store,
        export_id,
        dlq.export_request(
            table=f"diagnosticpro_prod.{table}", at=failed_at, trigger="cron", export_id=export_id
        ),
        dlq.error_details(NotFound("source table does not exist", table=table), now=failed_at),
        [],
    )


def test_dlq_list_retry_purge(site: tuple[Path, Path, LocalStore]) -> None:
    config, root, store = site
    t0 = datetime(2025, 9, 16, 0, 0, tzinfo=UTC)
    _fail(store, "exp_parts", "parts", t0)  # the warehouse now has the table: retry succeeds
    _fail(store, "exp_videos", "youtube_repair_videos", t0 - timedelta(hours=50))  # still missing
    _fail(store, "exp_ancient", "users", t0 - timedelta(days=91))

    code, out, err = _ops(config, root, "dlq", "list", "--json", "--now", "2025-09-16T07:00:00Z")
    assert code == 0, err
    listed = {e["export_id"]: e for e in json.loads(out)}
    assert set(listed) == {"exp_parts", "exp_videos", "exp_ancient"}
    assert listed["exp_parts"]["age_hours"] == 7.0
    assert listed["exp_parts"]["due_for_auto_retry"] is True
    assert listed["exp_parts"]["escalate"] is False
    assert listed["exp_videos"]["escalate"] is True and listed["exp_videos"]["age_hours"] == 57.0
    assert listed["exp_parts"]["code"] == "NOT_FOUND"
    early = json.loads(
        _ops(config, root, "dlq", "list", "--json", "--now", "2025-09-16T05:00:00Z")[1]
    )
    assert {e["export_id"]: e["due_for_auto_retry"] for e in early}["exp_parts"] is False

    # retry one by id: it exports, and the entry is gone
    code, out, err = _ops(config, root, "dlq", "retry", "exp_parts", "--json", "--now", NOW_TEXT)
    assert code == 0, err
    [outcome] = json.loads(out)
    assert outcome["outcome"] == "resolved" and outcome["new_export_id"].startswith("exp_")
    folder = root / "gs/diagnosticpro-exports/prod/diagnosticpro_prod/parts/2025/09/16"
    assert json.loads((folder / "SUCCESS").read_text())["row_count"] == 25
    assert not (
        root / "gs/diagnosticpro-exports/dead-letter-queue/failed_exports/exp_parts"
    ).exists()

    # a retry that fails again keeps the entry and counts the retry; exit 1
    code, out, err = _ops(config, root, "dlq", "retry", "exp_videos", "--json", "--now", NOW_TEXT)
    assert code == 1
    [outcome] = json.loads(out)
    assert outcome["outcome"] == "failed" and "does not exist" in outcome["error"]
    left = json.loads(_ops(config, root, "dlq", "list", "--json", "--now", NOW_TEXT)[1])
    videos = next(e for e in left if e["export_id"] == "exp_videos")
    assert videos["dlq_retries"] == 1 and videos["due_for_auto_retry"] is False

    unknown = dpexport("-c", config, "--local-root", root, "dlq", "retry", "exp_nope")
    assert unknown.code == 2 and "exp_nope" in unknown.err

    # purge keeps what is inside the 90-day retention unless forced
    code, out, err = _ops(config, root, "dlq", "purge", "--json", "--now", NOW_TEXT)
    assert code == 0, err
    assert json.loads(out) == ["exp_ancient"]
    remaining = json.loads(_ops(config, root, "dlq", "list", "--json", "--now", NOW_TEXT)[1])
    assert [e["export_id"] for e in remaining] == ["exp_videos"]
    code, out, _ = _ops(config, root, "dlq", "purge", "--force", "--now", NOW_TEXT)
    assert code == 0 and out.startswith("purged 1 (every entry)")
    code, out, _ = _ops(config, root, "dlq", "list")
    assert out.strip() == "the dead-letter queue is empty"
