"""Alerts fire and resolve from real exports (issue 20, CONTRACT §10): every FAILURE pages
once while its incident is open and the fixed rerun resolves it; export_size and
cost_per_export over their thresholds; failure_rate over its rolling window; the DLQ's
escalation and review SLA; export_duration while the export runs; and a delivery that
raises or hangs never changes the export. Delivery is a recorder injected as
``RunOptions.deliver`` (``alerts.deliver.deliver``'s signature)."""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pytest

import dpexport
from dpexport.alerts import rules
from dpexport.alerts.model import Alert, Delivery, Target
from dpexport.config.spec import ResolvedConfig
from dpexport.engines import open_engine
from dpexport.engines.base import Engine
from dpexport.errors import UsageError
from dpexport.flow.context import ExportResult, RunOptions
from dpexport.flow.runner import run_exports
from tests.e2e.cli import dpexport as cli

AT = datetime(2025, 9, 16, 14, 0, tzinfo=UTC)
BASE = """\
project: p
environment: test
warehouse: {engine: duckdb, path: warehouse.duckdb}
buckets: {exports: gs://b}
metrics:
  channels:
    pagerduty: {routing_key_env: PD_ROUTING_KEY}
    slack: {url_env: SLACK_WEBHOOK_URL}
    email: {smtp_host: 127.0.0.1, to: [oncall@example.com]}
"""
TABLE = """\
exports:
  - source: ds.t
    destination: gs://b/t/
    format: JSONL
    compression: NONE
"""


class Recorder:
    """Records each alert as it is delivered (and what else happened, in order)."""

    def __init__(self) -> None:
        self.events: list[tuple[str, ...]] = []
        self.sent: list[tuple[Alert, tuple[Target, ...]]] = []
        self.arrived = threading.Event()

    def __call__(
        self, alert: Alert, targets: Sequence[Target], config: ResolvedConfig, *, timeout: float
    ) -> list[Delivery]:
        self.sent.append((alert, tuple(targets)))
        self.events.append(("alert", alert.rule, alert.action))
        self.arrived.set()
        return [Delivery(t.channel, alert.rule, alert.action, "sent", 1) for t in targets]

    def of(self, rule: str) -> list[tuple[str, list[str]]]:
        return [(a.action, [t.channel for t in ts]) for a, ts in self.sent if a.rule == rule]


def _sql(base: Path, sql: str) -> None:
    con = duckdb.connect(str(base / "warehouse.duckdb"))
    try:
        con.execute(sql)
    finally:
        con.close()


@pytest.fixture
def base(tmp_path: Path) -> Path:
    _sql(tmp_path, "CREATE SCHEMA ds")
    return tmp_path


def _make_table(base: Path) -> None:
    _sql(base, "CREATE TABLE ds.t AS SELECT i AS id, 'x' || i AS name FROM range(20) r(i)")


def _config(base: Path, extra: str = "") -> ResolvedConfig:
    path = base / "dpexport.yaml"
    text = BASE.replace("metrics:\n", "metrics:\n" + extra) + TABLE
    path.write_text(text, encoding="utf-8")
    return dpexport.load_config(path)


def _run(
    base: Path,
    config: ResolvedConfig,
    deliver: Any,
    at: datetime = AT,
    engine: Engine | None = None,
    **options: Any,
) -> ExportResult:
    engine = engine or open_engine(config.warehouse, base_dir=base)
    try:
        opts = RunOptions(at=at, local_root=base / "out", deliver=deliver, **options)
        [result] = run_exports(config, engine, opts)
    finally:
        engine.close()
    return result


def _record(base: Path, export_id: str | None) -> dict[str, Any]:
    [path] = (base / "out" / "gs" / "b" / "export-logs").rglob(f"{export_id}.json")
    doc: dict[str, Any] = json.loads(path.read_text())
    return doc


def _incident(base: Path, rule: str) -> Path:
    return base / "out" / "gs" / "b" / "_state" / "alerts" / rule / "ds.t.json"


def test_a_failure_pages_once_while_open_and_the_fixed_rerun_resolves(base: Path) -> None:
    config, rec = _config(base), Recorder()
    failed = _run(base, config, rec)  # ds.t does not exist yet
    assert failed.status == "FAILURE"
    assert rec.of("export_failure") == [("trigger", ["email", "pagerduty", "slack"])]
    assert rec.sent[0][0].dedup_key == "dpexport/export_failure/ds.t"
    assert _incident(base, "export_failure").exists()
    alerts = _record(base, failed.export_id)["alerts"]
    assert [(a["channel"], a["action"], a["outcome"]) for a in alerts] == [
        ("email", "trigger", "sent"),
        ("pagerduty", "trigger", "sent"),
        ("slack", "trigger", "sent"),
    ]
    [listed] = dpexport.alerts_list(config, local_root=base / "out")
    assert (listed["rule"], listed["table"]) == ("export_failure", "ds.t")

    again = _run(base, config, rec, AT + timedelta(hours=1))  # still failing: no second page
    assert again.status == "FAILURE"
    assert len(rec.of("export_failure")) == 1
    assert _record(base, again.export_id)["alerts"] == []

    _make_table(base)
    fixed = _run(base, config, rec, AT + timedelta(hours=2))
    assert fixed.status == "SUCCESS"
    assert [a for a, _ in rec.of("export_failure")] == ["trigger", "resolve"]
    assert not _incident(base, "export_failure").exists()
    assert [a["action"] for a in _record(base, fixed.export_id)["alerts"]] == ["resolve"] * 3
    assert dpexport.alerts_list(config, local_root=base / "out") == []


def test_without_trigger_alert_a_failure_sends_nothing(base: Path) -> None:
    steps = "validation_checks:\n  failure_handling: [create_failure_marker, initiate_retry]\n"
    path = base / "dpexport.yaml"
    path.write_text(BASE + steps + TABLE, encoding="utf-8")
    rec = Recorder()
    assert _run(base, dpexport.load_config(path), rec).status == "FAILURE"
    assert rec.sent == []


def test_export_size_and_cost_over_their_thresholds_fire(base: Path) -> None:
    _make_table(base)
    extra = (
        '  export_size: {threshold: "1B per table", alert: "Email"}\n'
        '  cost_per_export: {threshold: "$0.0000000001", alert: "Email to finance"}\n'
    )
    rec = Recorder()
    result = _run(base, _config(base, extra), rec)
    assert result.status == "SUCCESS"
    size = [a for a, _ in rec.sent if a.rule == "export_size"]
    assert [(a.action, a.details["bytes"] > 1) for a in size] == [("trigger", True)]
    [(cost, targets)] = [(a, ts) for a, ts in rec.sent if a.rule == "cost_per_export"]
    assert cost.action == "trigger" and cost.details["cost_usd"] > 0
    assert targets == (Target("email", "finance"),)
    assert {a["rule"] for a in _record(base, result.export_id)["alerts"]} == {
        "export_size",
        "cost_per_export",
    }

    roomy = '  export_size: {threshold: "1GB per table", alert: "Email"}\n'
    again = _run(base, _config(base, roomy), rec, AT + timedelta(hours=1))
    assert again.status == "SUCCESS"
    assert [a for a, _ in rec.of("export_size")] == ["trigger", "resolve"]


def test_a_size_threshold_that_holds_sends_nothing(base: Path) -> None:
    _make_table(base)
    rec = Recorder()
    extra = '  export_size: {threshold: "1GB per table", alert: "Email"}\n'
    assert _run(base, _config(base, extra), rec).status == "SUCCESS"
    assert rec.sent == []


def test_failure_rate_over_its_window_fires_and_resolves_as_it_slides(base: Path) -> None:
    _make_table(base)
    extra = '  failure_rate: {threshold: "5% over 1 hour", alert: "Slack + PagerDuty"}\n'
    config, rec = _config(base, extra), Recorder()
    for i in range(9):
        assert _run(base, config, rec, AT + timedelta(minutes=i)).status == "SUCCESS"
    assert rec.of("failure_rate") == []  # 0 of 9
    _sql(base, "ALTER TABLE ds.t RENAME TO gone")
    assert _run(base, config, rec, AT + timedelta(minutes=9)).status == "FAILURE"
    [(action, channels)] = rec.of("failure_rate")  # 1 of 10 = 10% > 5%
    assert (action, channels) == ("trigger", ["slack", "pagerduty"])
    [fired] = [a for a, _ in rec.sent if a.rule == "failure_rate"]
    assert (fired.details["failed"], fired.details["attempts"]) == (1, 10)

    options = RunOptions(local_root=base / "out", deliver=rec)
    now = datetime.now(UTC)
    assert rules.scheduled(config, ["t"], options, now) == []  # open: not sent again
    later = now + timedelta(hours=1, minutes=1)  # the window slid past every attempt
    resolved = rules.scheduled(config, ["t"], options, later)
    assert {(d.rule, d.action) for d in resolved} >= {("failure_rate", "resolve")}
    assert [a for a, _ in rec.of("failure_rate")] == ["trigger", "resolve"]


def test_dlq_entries_past_the_review_sla_and_escalation_page(base: Path) -> None:
    path = base / "dpexport.yaml"
    dlq = (
        "dlq_configuration:\n"
        '  processing: {manual_review_sla: "2 hours", escalation_after: "3 hours"}\n'
    )
    path.write_text(BASE + dlq + TABLE, encoding="utf-8")
    config, rec = dpexport.load_config(path), Recorder()
    failed = _run(base, config, rec)
    assert failed.status == "FAILURE"
    options = RunOptions(local_root=base / "out", deliver=rec)
    now = datetime.now(UTC)
    assert rules.scheduled(config, ["t"], options, now + timedelta(hours=1)) == []
    rules.scheduled(config, ["t"], options, now + timedelta(hours=2, minutes=30))
    assert [a for a, _ in rec.of("manual_review_sla")] == ["trigger"]
    assert rec.of("dlq_escalation") == []
    rules.scheduled(config, ["t"], options, now + timedelta(hours=3, minutes=30))
    assert rec.of("dlq_escalation") == [("trigger", ["email", "pagerduty", "slack"])]
    assert len(rec.of("manual_review_sla")) == 1  # still open: not sent again
    _make_table(base)  # the rerun at the same logical time resolves the DLQ entry
    assert _run(base, config, rec).status == "SUCCESS"
    rules.scheduled(config, ["t"], options, now + timedelta(hours=4))
    assert [a for a, _ in rec.of("dlq_escalation")] == ["trigger", "resolve"]
    assert [a for a, _ in rec.of("manual_review_sla")] == ["trigger", "resolve"]


class SlowEngine:
    """A DuckDB engine whose scan waits until an alert has arrived (or 30 s): the export
    is still running when the duration threshold passes."""

    def __init__(self, inner: Engine, rec: Recorder) -> None:
        self.inner, self.rec = inner, rec

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def native_writer(self) -> None:
        return None  # every row goes through scan

    def scan(self, request: Any) -> pa.RecordBatchReader:
        self.rec.arrived.wait(30)
        self.rec.events.append(("scan done",))
        return self.inner.scan(request)


def test_a_slow_export_pages_while_it_runs_and_resolves_when_it_ends(base: Path) -> None:
    _make_table(base)
    extra = '  export_duration: {threshold: "0.2 seconds", alert: "PagerDuty"}\n'
    config, rec = _config(base, extra), Recorder()
    engine = SlowEngine(open_engine(config.warehouse, base_dir=base), rec)

    def step(name: str) -> None:
        rec.events.append(("step", name))

    result = _run(base, config, rec, engine=engine, on_step=step)
    assert result.status == "SUCCESS"
    trigger = rec.events.index(("alert", "export_duration", "trigger"))
    assert trigger < rec.events.index(("scan done",)) < rec.events.index(("step", "staged"))
    assert rec.events[-1] == ("alert", "export_duration", "resolve")
    assert [a["action"] for a in _record(base, result.export_id)["alerts"]] == [
        "trigger",
        "resolve",
    ]
    assert not _incident(base, "export_duration").exists()


def test_a_delivery_that_raises_or_hangs_never_changes_the_export(base: Path) -> None:
    _make_table(base)
    config = _config(base, '  export_size: {threshold: "1B per table", alert: "Slack"}\n')

    def broken(alert: Alert, targets: Sequence[Target], config: Any, *, timeout: float) -> Any:
        raise RuntimeError("the channel module is broken")

    result = _run(base, config, broken)
    assert result.status == "SUCCESS"
    [sent] = _record(base, result.export_id)["alerts"]
    assert (sent["channel"], sent["outcome"]) == ("slack", "failed")
    assert "RuntimeError" in sent["error"]
    assert not _incident(base, "export_size").exists()  # not delivered: tried again next time

    released, returned = threading.Event(), threading.Event()

    def hangs(alert: Alert, targets: Sequence[Target], config: Any, *, timeout: float) -> Any:
        released.wait(60)
        returned.set()
        return []

    try:
        later = _run(base, config, hangs, AT + timedelta(hours=1), alert_timeout=0.3)
        assert later.status == "SUCCESS"
        assert not returned.is_set()  # the export did not wait for the hung delivery
        [hung] = _record(base, later.export_id)["alerts"]
        assert hung["outcome"] == "failed" and "no delivery within" in hung["error"]
    finally:
        released.set()
    rec = Recorder()  # the channel is back: the alert is sent, and its incident kept
    third = _run(base, config, rec, AT + timedelta(hours=2))
    assert third.status == "SUCCESS"
    assert rec.of("export_size") == [("trigger", ["slack"])]
    assert _incident(base, "export_size").exists()


def test_alerts_test_and_list_commands(base: Path) -> None:
    config, rec = _config(base), Recorder()
    sent = dpexport.alerts_test(config, channel="Slack", deliver=rec)
    assert [(d.channel, d.rule, d.outcome) for d in sent] == [("slack", "test", "sent")]
    assert [t.channel for _, ts in rec.sent for t in ts] == ["slack"]
    with pytest.raises(UsageError, match=r"'teams' is not configured.*email, pagerduty, slack"):
        dpexport.alerts_test(config, channel="teams", deliver=rec)
    _run(base, config, Recorder())  # a failure opens an incident
    listed = cli("-c", base / "dpexport.yaml", "--local-root", base / "out", "alerts", "list")
    assert listed.code == 0 and "export_failure" in listed.out and "ds.t" in listed.out
    as_json = cli(
        "-c", base / "dpexport.yaml", "--local-root", base / "out", "alerts", "list", "--json"
    )
    [doc] = json.loads(as_json.out)
    assert doc["dedup_key"] == "dpexport/export_failure/ds.t"
    unknown = cli("-c", base / "dpexport.yaml", "alerts", "test", "--channel", "teams")
    assert unknown.code == 2 and "metrics.channels has" in unknown.err


def test_the_scheduler_counts_each_alert_by_rule_channel_and_outcome(base: Path) -> None:
    from dpexport.ops.metrics import SchedulerMetrics
    from dpexport.ops.scheduler import Scheduler, jobs_for

    path = base / "dpexport.yaml"
    scheduled = TABLE.replace("compression: NONE", 'compression: NONE\n    schedule: "0 * * * *"')
    path.write_text(BASE + scheduled, encoding="utf-8")
    config, rec, metrics = dpexport.load_config(path), Recorder(), SchedulerMetrics()
    scheduler = Scheduler(
        config,
        jobs_for(config.tables, timedelta(minutes=1)),
        open_engine=lambda who: open_engine(config.warehouse, base_dir=base),
        run=run_exports,
        options=RunOptions(local_root=base / "out", deliver=rec),
        on_tick=metrics.observe,
    )
    ticks = scheduler.replay(AT, AT + timedelta(hours=2))  # ds.t is missing: two failures
    assert [r.status for t in ticks for r in t.results] == ["FAILURE", "FAILURE"]
    assert rec.of("export_failure") == [("trigger", ["email", "pagerduty", "slack"])]
    for channel in ("email", "pagerduty", "slack"):
        labels = {"rule": "export_failure", "channel": channel, "outcome": "sent"}
        assert metrics.registry.get_sample_value("dpexport_alerts_total", labels) == 1
