"""A config over the crafted export logs of :mod:`tests.unit.ops.log_records`, with an
open DLQ item, an open alert and a committed manifest: what the dashboard tests read."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from dpexport.alerts.incidents import fire
from dpexport.alerts.model import Alert, Delivery
from dpexport.errors import TransientError
from dpexport.publish.manifest import dumps
from dpexport.reliability import dlq
from dpexport.storage.local import LocalStore
from dpexport.workspace import Workspace
from tests.unit.ops.log_records import NOW, records

TABLES = ("reddit_diagnostic_posts", "youtube_repair_videos", "sensor_telemetry", "users")
MANIFEST = "prod/diagnosticpro_prod/reddit_diagnostic_posts/2025/09/16/manifest_x.json"


def build(tmp_path: Path) -> Workspace:
    """The workspace; its bucket holds the records, a manifest of the newest reddit
    export, a DLQ entry of sensor_telemetry and an open alert of youtube_repair_videos."""
    items = "".join(
        f"  - source: diagnosticpro_prod.{t}\n"
        f"    destination: gs://diagnosticpro-exports/prod/diagnosticpro_prod/{t}/\n"
        "    mode: FULL_REFRESH\n"
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
    root = tmp_path / "out"
    store = LocalStore(root / "gs" / "diagnosticpro-exports", url="gs://diagnosticpro-exports")
    for r in records():
        if r["table_name"] == "reddit_diagnostic_posts" and r["status"] == "SUCCESS":
            r["manifests"] = [f"gs://diagnosticpro-exports/{MANIFEST}"]
        day = r["export_timestamp"][:10].replace("-", "/")
        store.put_bytes(f"export-logs/{day}/{r['export_id']}.json", dumps(r))
    store.put_bytes(MANIFEST, dumps(_manifest()))
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
    alert = Alert(
        "export_failure",
        "diagnosticpro_prod.youtube_repair_videos",
        "trigger",
        "export of diagnosticpro_prod.youtube_repair_videos failed <b>",
    )
    fire(store, alert, [], lambda a, t: [Delivery("slack", a.rule, a.action, "sent", 1)], NOW)
    return Workspace.load(config, local_root=root)


def _manifest() -> dict[str, object]:
    return {
        "statistics": {"row_count": 1500},
        "files": [
            {"name": "reddit_diagnostic_posts_a.parquet", "rows": 1000, "bytes": 2048},
            {"name": "reddit_diagnostic_posts_b.parquet", "rows": 500, "bytes": 1024},
        ],
        "validation": {
            "row_count_verified": True,
            "checks": [{"name": "post_id_not_null", "status": "passed", "rows_checked": 1500}],
        },
    }
