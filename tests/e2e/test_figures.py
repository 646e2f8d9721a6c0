"""Spec 9.1's figures as Prometheus metrics (issue 20): ``run --metrics-file`` writes them
in the textfile collector's format, and the scheduler's registry holds the same gauges."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.cli import dpexport

AT = "2025-09-17T00:00:00Z"
CONFIG = """\
project: p
environment: prod
warehouse: {engine: duckdb, path: warehouse.duckdb}
buckets: {exports: gs://diagnosticpro-exports}
metrics:
  failure_rate: {threshold: "5% over 1 hour"}
exports:
  - source: diagnosticpro_prod.audit_logs
    format: PARQUET
    partitioning: {field: created_at, granularity: daily}
    mode: APPEND
    schedule: "0 0 * * *"
  - source: diagnosticpro_prod.reddit_diagnostic_posts
    format: PARQUET
    partitioning: {field: created_date, granularity: daily}
    mode: APPEND
    schedule: "0 0 * * *"
    validation:
      - content_length_check: {max: 10}
"""


def _samples(text: str) -> dict[tuple[str, str], float]:
    return {
        (s.name, s.labels["table"]): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def _stored(base: Path, table: str) -> tuple[int, float]:
    """The bytes the table's committed data files hold, and the cost its manifests say."""
    folder = base / "out" / "gs" / "diagnosticpro-exports" / "prod" / "diagnosticpro_prod" / table
    manifests = [json.loads(p.read_text()) for p in folder.rglob("manifest_*.json")]
    size = sum(f["bytes"] for m in manifests for f in m["files"])
    return size, manifests[0]["metadata"]["cost_usd"]["total"]


def test_run_writes_the_figures_for_the_textfile_collector(demo_dir: Path) -> None:
    config = demo_dir / "figures.yaml"
    config.write_text(CONFIG, encoding="utf-8")
    prom = demo_dir / "textfile" / "dpexport.prom"
    prom.parent.mkdir()
    result = dpexport(
        "-c", config, "--local-root", demo_dir / "out", "run", "--at", AT,
        "--metrics-file", prom, "--json",
    )  # fmt: skip
    assert result.code == 1  # the reddit table's check fails
    got = _samples(prom.read_text())
    size, cost = _stored(demo_dir, "audit_logs")
    assert got[("dpexport_export_bytes", "audit_logs")] == size > 0
    assert got[("dpexport_export_cost_usd", "audit_logs")] == cost
    assert got[("dpexport_failure_rate", "audit_logs")] == 0.0
    assert got[("dpexport_failure_rate", "reddit_diagnostic_posts")] == 1.0
    assert ("dpexport_export_bytes", "reddit_diagnostic_posts") not in got  # nothing stored
    assert got[("dpexport_export_duration_seconds", "audit_logs")] > 0
    assert got[("dpexport_export_duration_seconds", "reddit_diagnostic_posts")] > 0
    assert not list(prom.parent.glob("*.tmp*"))  # written beside, then renamed


def test_the_schedulers_registry_holds_the_same_figures(demo_dir: Path) -> None:
    from dpexport.config import load_config
    from dpexport.engines import open_engine
    from dpexport.flow.context import RunOptions
    from dpexport.flow.runner import run_exports
    from dpexport.ops.metrics import SchedulerMetrics
    from dpexport.ops.scheduler import Scheduler, Tick, jobs_for

    path = demo_dir / "figures.yaml"
    path.write_text(CONFIG, encoding="utf-8")
    config = load_config(path)
    metrics = SchedulerMetrics(config, demo_dir / "out")
    ticks: list[Tick] = []
    scheduler = Scheduler(
        config,
        jobs_for(config.tables, timedelta(minutes=1)),
        open_engine=lambda who: open_engine(config.warehouse, base_dir=demo_dir),
        run=run_exports,
        options=RunOptions(local_root=demo_dir / "out"),
        on_tick=ticks.append,
    )
    scheduler.run_due(datetime(2025, 9, 17, 0, 10, tzinfo=UTC), {})
    scheduler.close()
    for tick in ticks:
        metrics.observe(tick)
    value = metrics.registry.get_sample_value
    size, cost = _stored(demo_dir, "audit_logs")
    assert value("dpexport_export_bytes", {"table": "audit_logs"}) == size
    assert value("dpexport_export_cost_usd", {"table": "audit_logs"}) == cost
    assert value("dpexport_failure_rate", {"table": "reddit_diagnostic_posts"}) == 1.0
    assert (value("dpexport_export_duration_seconds", {"table": "audit_logs"}) or 0) > 0
