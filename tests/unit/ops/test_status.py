"""``status``: last export, rows, hours since, FRESH/STALE, 7-day success rate, open DLQ."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from dpexport.errors import TransientError
from dpexport.ops.status import render, table_statuses
from dpexport.reliability import dlq
from dpexport.storage.local import LocalStore
from tests.unit.ops.log_records import NOW, records


@dataclass(frozen=True)
class Spec:
    table: str
    dataset: str = "diagnosticpro_prod"
    freshness: timedelta | None = None

    @property
    def qualified_name(self) -> str:
        return f"{self.dataset}.{self.table}"


TABLES = [
    Spec("reddit_diagnostic_posts"),
    Spec("youtube_repair_videos", freshness=timedelta(hours=6)),
    Spec("sensor_telemetry"),
    Spec("users"),
    Spec("never_exported"),
]


def _dlq(tmp_path: Path) -> list[dlq.DlqEntry]:
    store = LocalStore(tmp_path)
    for eid, table in [
        ("exp_a", "diagnosticpro_prod.sensor_telemetry"),
        ("exp_b", "diagnosticpro_prod.sensor_telemetry"),
        ("exp_c", "diagnosticpro_prod.youtube_repair_videos"),
        ("exp_d", "other_dataset.users"),
    ]:
        dlq.record_failure(
            store,
            eid,
            dlq.export_request(table=table, at=NOW, trigger="cron", export_id=eid),
            dlq.error_details(TransientError("503"), now=NOW),
            [],
        )
    dlq.poison(store, "exp_b", "gave up", now=NOW)
    return dlq.list_entries(store, NOW)


def test_status_values(tmp_path: Path) -> None:
    got = {s.table: s.to_json() for s in table_statuses(TABLES, records(), _dlq(tmp_path), NOW)}
    assert got["reddit_diagnostic_posts"] == {
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
    # 12 h old is past the table's own 6-hour freshness
    youtube = got["youtube_repair_videos"]
    assert (youtube["hours_since_export"], youtube["freshness"]) == (12.0, "STALE")
    assert youtube["success_rate_7d"] == 50.0 and youtube["dlq_open"] == 1
    sensor = got["sensor_telemetry"]
    assert sensor["last_export"] == "2025-09-13T10:00:00Z" and sensor["rows"] == 20000
    assert sensor["hours_since_export"] == 74.0 and sensor["freshness"] == "STALE"
    assert sensor["success_rate_7d"] == 50.0 and sensor["dlq_open"] == 2  # open + poisoned
    users = got["users"]  # its only export is 15.5 days old: outside the 7-day window
    assert users["hours_since_export"] == 372.0 and users["success_rate_7d"] is None
    assert users["dlq_open"] == 0  # the DLQ item is other_dataset.users
    assert got["never_exported"] == {
        "table": "never_exported",
        "dataset": "diagnosticpro_prod",
        "last_export": None,
        "rows": None,
        "hours_since_export": None,
        "freshness": "STALE",
        "success_rate_7d": None,
        "dlq_open": 0,
        "cost_usd": None,
    }


def test_a_future_record_is_ignored() -> None:
    future = records()[:1]
    future[0]["export_timestamp"] = "2025-09-17T00:00:00Z"
    (s,) = table_statuses([Spec("reddit_diagnostic_posts")], future, [], NOW)
    assert s.last_export is None and s.freshness == "STALE"


def test_render_lists_every_table() -> None:
    text = render(table_statuses(TABLES, records(), [], NOW))
    lines = text.splitlines()
    assert lines[0].split() == [
        "table",
        "last_export",
        "rows",
        "hours",
        "freshness",
        "success_7d",
        "dlq_open",
    ]
    assert lines[1].split() == [
        "reddit_diagnostic_posts",
        "2025-09-16T06:00:00Z",
        "1500",
        "6.00",
        "FRESH",
        "75.00%",
        "0",
    ]
    assert len(lines) == 6
