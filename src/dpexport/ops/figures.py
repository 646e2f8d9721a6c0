"""Spec 9.1's figures of each table as Prometheus gauges: the last export's duration,
bytes stored and cost, and the FAILURE share of attempts over ``failure_rate``'s window
(from the export logs, as the alert rule reads them). ``schedule`` serves them with its
other metrics; ``run --metrics-file PATH`` writes them in the text format
node_exporter's textfile collector reads (written beside, then renamed into place)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

from prometheus_client import CollectorRegistry, Gauge, write_to_textfile

from dpexport.config.spec import ResolvedConfig
from dpexport.errors import DpexportError
from dpexport.flow.context import ExportResult

log = logging.getLogger(__name__)

#: the window of the failure share when the config sets no ``failure_rate`` rule
DEFAULT_WINDOW = timedelta(hours=1)


class Figures:
    """The four gauges, per table, in ``registry``."""

    def __init__(self, registry: CollectorRegistry) -> None:
        labels = ["table"]
        self.duration = Gauge(
            "dpexport_export_duration_seconds",
            "Wall time of the table's last export attempt",
            labels,
            registry=registry,
        )
        self.bytes = Gauge(
            "dpexport_export_bytes",
            "Bytes the table's last successful export stored",
            labels,
            registry=registry,
        )
        self.cost = Gauge(
            "dpexport_export_cost_usd",
            "Estimated cost in USD of the table's last successful export (dpexport.ops.cost)",
            labels,
            registry=registry,
        )
        self.failure_rate = Gauge(
            "dpexport_failure_rate",
            "FAILURE share of the table's export attempts over the failure_rate window",
            labels,
            registry=registry,
        )

    def observe(
        self,
        results: Sequence[ExportResult],
        config: ResolvedConfig | None = None,
        *,
        local_root: Path | None = None,
        now: datetime | None = None,
    ) -> None:
        """Set each result's table's figures (labelled by table name, as the scheduler's
        other metrics; SKIPPED results set none); the failure share needs ``config``."""
        from dpexport.alerts.rules import stored_bytes

        for r in results:
            if r.status not in ("SUCCESS", "FAILURE"):
                continue
            if r.duration_seconds is not None:
                self.duration.labels(r.table).set(r.duration_seconds)
            if r.status == "SUCCESS" and r.cost_usd is not None:
                self.bytes.labels(r.table).set(stored_bytes(r.cost_usd))
                self.cost.labels(r.table).set(r.cost_usd["total"])
            if config is not None:
                share = failure_share(config, r.table, local_root, now or datetime.now(UTC))
                if share is not None:
                    self.failure_rate.labels(r.table).set(share)


def failure_share(
    config: ResolvedConfig, table: str, local_root: Path | None, now: datetime
) -> float | None:
    """The table's FAILURE share over the ``failure_rate`` window ending ``now`` (None:
    its export logs cannot be read, or hold no attempt)."""
    from dpexport.alerts.rules import attempts
    from dpexport.planning.plan import destination_of
    from dpexport.storage.uri import StoreResolver

    rule = config.metrics.failure_rate
    window = rule.threshold.window if rule is not None else DEFAULT_WINDOW
    spec = config.table(table)
    try:
        store, _ = destination_of(StoreResolver(local_root), spec.destination)
        seen = attempts(store, spec, now - window, now)
    except DpexportError as exc:
        log.warning("failure rate of %s not known: %s", spec.qualified_name, exc)
        return None
    failed = sum(1 for status, _ in seen.values() if status == "FAILURE")
    return failed / len(seen) if seen else None


def write_textfile(
    path: Path, config: ResolvedConfig, results: Sequence[ExportResult], local_root: Path | None
) -> None:
    """``run --metrics-file``: the run's figures in the textfile collector's format."""
    registry = CollectorRegistry()
    Figures(registry).observe(results, config, local_root=local_root)
    write_to_textfile(str(path), registry)
