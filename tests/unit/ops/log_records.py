"""Crafted export-log records and the spec 9.2 dashboard queries, verbatim."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

#: the "current" time of every test over these records
NOW = datetime(2025, 9, 16, 12, 0, 0, tzinfo=UTC)

SUCCESS_RATE_SQL = """\
-- Export success rate
SELECT
  DATE(export_timestamp) as export_date,
  table_name,
  COUNT(*) as total_exports,
  SUM(CASE WHEN status = 'SUCCESS' THEN 1 ELSE 0 END) as successful,
  ROUND(100.0 * SUM(CASE WHEN status = 'SUCCESS' THEN 1 ELSE 0 END) / COUNT(*), 2) as success_rate
FROM export_logs
WHERE export_timestamp >= CURRENT_DATE - 7
GROUP BY 1, 2
ORDER BY 1 DESC, 2;
"""

FRESHNESS_SQL = """\
-- Data freshness monitoring
SELECT
  table_name,
  MAX(export_timestamp) as last_export,
  DATETIME_DIFF(CURRENT_DATETIME(), MAX(export_timestamp), HOUR) as hours_since_export,
  CASE
    WHEN DATETIME_DIFF(CURRENT_DATETIME(), MAX(export_timestamp), HOUR) > 24 THEN 'STALE'
    ELSE 'FRESH'
  END as freshness_status
FROM export_logs
WHERE status = 'SUCCESS'
GROUP BY table_name
HAVING freshness_status = 'STALE';
"""

_SEQ = iter(range(10_000))


def record(
    table: str, status: str, when: str, rows: int = 100, dataset: str = "diagnosticpro_prod"
) -> dict[str, Any]:
    """One export-log record as the runner writes it."""
    n = next(_SEQ)
    stamp = when.replace("-", "").replace(":", "").replace("T", "_").rstrip("Z")
    return {
        "export_id": f"exp_{stamp}_{n:08x}",
        "table_name": table,
        "dataset": dataset,
        "status": status,
        "export_timestamp": when,
        "logical_time": when,
        "mode": "APPEND",
        "format": "PARQUET",
        "compression": "SNAPPY",
        "destination": f"gs://diagnosticpro-exports/prod/{dataset}/{table}/",
        "rows": rows if status == "SUCCESS" else 0,
        "files": 1 if status == "SUCCESS" else 0,
        "manifests": [],
        "duration_ms": 1234,
        "trigger": "cron",
        "error": None if status == "SUCCESS" else "Export job failed: Quota exceeded",
    }


def records() -> list[dict[str, Any]]:
    """Four tables over ten days; sensor_telemetry, users and ml_features are stale."""
    return [
        record("reddit_diagnostic_posts", "SUCCESS", "2025-09-16T06:00:00Z", rows=1500),
        record("reddit_diagnostic_posts", "SUCCESS", "2025-09-15T06:00:00Z", rows=1400),
        record("reddit_diagnostic_posts", "FAILURE", "2025-09-15T12:00:00Z"),
        record("reddit_diagnostic_posts", "SUCCESS", "2025-09-14T06:00:00Z", rows=1300),
        record("youtube_repair_videos", "SUCCESS", "2025-09-16T00:00:00Z", rows=80),
        record("youtube_repair_videos", "FAILURE", "2025-09-16T06:00:00Z"),
        record("sensor_telemetry", "SUCCESS", "2025-09-13T10:00:00Z", rows=20000),
        record("sensor_telemetry", "FAILURE", "2025-09-15T10:00:00Z"),
        # exactly CURRENT_DATE - 7 is in the window; an hour before it is not
        record("ml_features", "SUCCESS", "2025-09-09T00:00:00Z", rows=10),
        record("ml_features", "FAILURE", "2025-09-08T23:00:00Z"),
        record("users", "SUCCESS", "2025-09-01T00:00:00Z", rows=5),
    ]


#: what SUCCESS_RATE_SQL returns over records() at NOW
EXPECTED_SUCCESS_RATE = [
    ("2025-09-16", "reddit_diagnostic_posts", 1, 1, 100.0),
    ("2025-09-16", "youtube_repair_videos", 2, 1, 50.0),
    ("2025-09-15", "reddit_diagnostic_posts", 2, 1, 50.0),
    ("2025-09-15", "sensor_telemetry", 1, 0, 0.0),
    ("2025-09-14", "reddit_diagnostic_posts", 1, 1, 100.0),
    ("2025-09-13", "sensor_telemetry", 1, 1, 100.0),
    ("2025-09-09", "ml_features", 1, 1, 100.0),
]

#: what FRESHNESS_SQL returns (sorted by table): last export, hours since, status
EXPECTED_STALE = [
    ("ml_features", "2025-09-09T00:00:00Z", 180, "STALE"),
    ("sensor_telemetry", "2025-09-13T10:00:00Z", 74, "STALE"),
    ("users", "2025-09-01T00:00:00Z", 372, "STALE"),
]
