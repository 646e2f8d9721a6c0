"""The scheduler's Prometheus metrics (spec 9.1), served on ``metrics.port``.

One registry per scheduler, so tests and several schedulers in one process do not
share counters. Every name starts with ``dpexport_``.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

from dpexport.config.spec import ResolvedConfig
from dpexport.ops.figures import Figures
from dpexport.ops.scheduler import Tick

#: export wall times span a few milliseconds (nothing new) to hours (a first full export)
DURATION_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 1800, 3600, 7200)


class SchedulerMetrics:
    """``config`` (and ``local_root``): where the failure-rate figure reads the export
    logs; without it that figure is not kept."""

    def __init__(
        self, config: ResolvedConfig | None = None, local_root: Path | None = None
    ) -> None:
        self.config, self.local_root = config, local_root
        self.registry = CollectorRegistry()
        r = self.registry
        self.exports = Counter(
            "dpexport_exports", "Exports attempted", ["table", "status"], registry=r
        )
        self.rows = Counter("dpexport_rows_exported", "Rows exported", ["table"], registry=r)
        self.files = Counter("dpexport_files_exported", "Data files written", ["table"], registry=r)
        self.tick_seconds = Histogram(
            "dpexport_tick_duration_seconds",
            "Wall time of one fire time's exports",
            ["trigger"],
            buckets=DURATION_BUCKETS,
            registry=r,
        )
        self.last_success = Gauge(
            "dpexport_last_success_timestamp_seconds",
            "Logical time of the table's last successful export",
            ["table"],
            registry=r,
        )
        self.skipped = Counter(
            "dpexport_skipped_fire_times",
            "Fire times not run because the scheduler was behind",
            registry=r,
        )
        self.replicated = Counter(
            "dpexport_replicated_files",
            "Files copied to replication targets",
            ["replication", "table"],
            registry=r,
        )
        self.replication_failures = Counter(
            "dpexport_replication_failures",
            "Tables whose replication had a checksum mismatch or an error",
            ["replication", "table"],
            registry=r,
        )
        self.dlq_retries = Counter(
            "dpexport_dlq_retries",
            "DLQ entries re-run by auto-retry, by outcome",
            ["outcome"],
            registry=r,
        )
        self.late_rows = Counter(
            "dpexport_late_rows",
            "Rows found by reconcile in folders already exported, by outcome",
            ["table", "outcome"],
            registry=r,
        )
        #: spec 9.1's figures: duration, bytes, cost, failure rate (``ops.figures``)
        self.figures = Figures(r)
        self.alerts = Counter(
            "dpexport_alerts",
            "Alerts sent to a channel, by rule and outcome (sent, failed, skipped)",
            ["rule", "channel", "outcome"],
            registry=r,
        )
        self.next_fire = Gauge(
            "dpexport_next_fire_timestamp_seconds", "The next fire time", registry=r
        )

    def observe(self, tick: Tick) -> None:
        self.tick_seconds.labels(tick.trigger).observe(tick.seconds)
        if tick.skipped:
            self.skipped.inc(tick.skipped)
        for r in tick.results:
            self.exports.labels(r.table, r.status).inc()
            if r.status == "SUCCESS":
                self.rows.labels(r.table).inc(r.rows)
                self.files.labels(r.table).inc(r.files)
                self.last_success.labels(r.table).set(tick.at.timestamp())
        self.figures.observe(tick.results, self.config, local_root=self.local_root)
        for d in [d for r in tick.results for d in r.alerts or []] + tick.alerts:
            self.alerts.labels(d.rule, d.channel, d.outcome).inc()
        for report in tick.reconciled:
            for f in report.folders:
                if f.late_rows:
                    self.late_rows.labels(report.table, f.status).inc(f.late_rows)
        for rep in tick.replicated:
            self.replicated.labels(rep.replication, rep.table).inc(rep.copied)
            if not rep.ok:
                self.replication_failures.labels(rep.replication, rep.table).inc()

    def observe_retries(self, outcomes: list[Any]) -> None:
        for o in outcomes:
            self.dlq_retries.labels(o.outcome).inc()

    def set_next_fire(self, at: datetime | None) -> None:
        if at is not None:
            self.next_fire.set(at.timestamp())

    def serve(self, port: int, host: str) -> Any:
        """Serve ``/metrics`` on ``host:port`` in a daemon thread; the server is returned
        (``shutdown()`` stops it)."""
        server, _thread = start_http_server(port, addr=host, registry=self.registry)
        return server
