"""Alerts of real exports reach the real local receivers (issue 20, CONTRACT §10): a
failing ``dpexport run`` pages PagerDuty and posts to Slack once, a second failure while
the incident is open sends nothing, and the fixed rerun sends the resolve; ``alerts
test`` reaches each channel; no body holds a secret or a row value."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import duckdb
import pytest

from tests.alert_servers import AlertReceiver, SmtpServer
from tests.alerts.helpers import ROUTING_KEY, set_secrets
from tests.e2e.cli import Result
from tests.e2e.cli import dpexport as cli

ROW_VALUE = "row-secret-7c1f"
CONFIG = """\
project: p
environment: test
warehouse: {{engine: duckdb, path: warehouse.duckdb}}
buckets: {{exports: gs://b}}
retry_configuration: {{max_attempts: 2, initial_delay_seconds: 0.01, max_delay_seconds: 0.02}}
metrics:
  channels:
    pagerduty: {{routing_key_env: PD_ROUTING_KEY, events_url: "{events_url}"}}
    slack: {{url_env: SLACK_WEBHOOK_URL}}
    email: {{smtp_host: 127.0.0.1, smtp_port: {smtp_port}, sender: exports@example.com,
             to: [oncall@example.com]}}
exports:
  - source: ds.t
    destination: gs://b/t/
    format: JSONL
    compression: NONE
"""


def _setup(base: Path, receiver: AlertReceiver, smtp: SmtpServer) -> Path:
    con = duckdb.connect(str(base / "warehouse.duckdb"))
    con.execute("CREATE SCHEMA ds")
    con.close()
    config = base / "dpexport.yaml"
    text = CONFIG.format(events_url=receiver.events_url, smtp_port=smtp.port)
    config.write_text(text, encoding="utf-8")
    return config


def _run(config: Path, at: str) -> Result:
    return cli("-c", config, "--local-root", config.parent / "out", "run", "--at", at)


def test_a_failing_export_pages_once_and_its_fixed_rerun_resolves(
    tmp_path: Path,
    alert_receiver: AlertReceiver,
    smtp_server: SmtpServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    set_secrets(monkeypatch, alert_receiver.slack_url)
    config = _setup(tmp_path, alert_receiver, smtp_server)

    failed = _run(config, "2025-09-16T14:00:00Z")  # ds.t does not exist
    assert failed.code == 1, failed.err
    [page] = alert_receiver.valid("/v2/enqueue")
    assert (page["event_action"], page["dedup_key"]) == ("trigger", "dpexport/export_failure/ds.t")
    assert len(alert_receiver.valid("/slack/")) == 1
    assert len(smtp_server.messages) == 1

    again = _run(config, "2025-09-16T15:00:00Z")  # still failing, incident open: no page
    assert again.code == 1
    assert len(alert_receiver.valid("/v2/enqueue")) == 1
    assert len(alert_receiver.valid("/slack/")) == 1

    con = duckdb.connect(str(tmp_path / "warehouse.duckdb"))
    con.execute(f"CREATE TABLE ds.t AS SELECT i AS id, '{ROW_VALUE}' AS v FROM range(5) r(i)")
    con.close()
    fixed = _run(config, "2025-09-16T16:00:00Z")
    assert fixed.code == 0, fixed.err
    pages = alert_receiver.valid("/v2/enqueue")
    assert [p["event_action"] for p in pages] == ["trigger", "resolve"]
    assert pages[1]["dedup_key"] == "dpexport/export_failure/ds.t"
    assert "resolved" in alert_receiver.valid("/slack/")[1]["text"]
    assert [r.problems for r in alert_receiver.received] == [[]] * 4

    listed = cli("-c", config, "--local-root", tmp_path / "out", "alerts", "list", "--json")
    assert json.loads(listed.out) == []
    logs = sorted((tmp_path / "out" / "gs" / "b" / "export-logs").rglob("*.json"))
    sent = [json.loads(p.read_text())["alerts"] for p in logs]
    assert sorted(len(s) for s in sent) == [0, 3, 3]  # trigger, nothing, resolve

    # PagerDuty's body carries its routing key by protocol; nothing else carries a secret
    raw = b"".join(r.raw for r in alert_receiver.received if r.path.startswith("/slack/"))
    raw += b"".join(json.dumps(p.get("payload")).encode() for p in pages)
    raw += b"".join(m.as_bytes() for _, m in smtp_server.messages)
    everything = raw + b"".join(r.raw for r in alert_receiver.received)
    for secret in (ROUTING_KEY, alert_receiver.slack_url.rsplit("/", 1)[1], ROW_VALUE):
        assert secret.encode() not in raw
    assert ROW_VALUE.encode() not in everything


def test_alerts_test_reaches_every_channel(
    tmp_path: Path,
    alert_receiver: AlertReceiver,
    smtp_server: SmtpServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    set_secrets(monkeypatch, alert_receiver.slack_url)
    config = _setup(tmp_path, alert_receiver, smtp_server)
    result = cli("-c", config, "alerts", "test")
    assert result.code == 0, result.out + result.err
    assert "pagerduty: sent" in result.out and "slack: sent" in result.out
    assert len(alert_receiver.valid("/v2/enqueue")) == 1
    assert len(alert_receiver.valid("/slack/")) == 1
    assert len(smtp_server.messages) == 1
    one = cli("-c", config, "alerts", "test", "--channel", "slack")
    assert one.code == 0 and one.out.strip().startswith("slack: sent")
    assert len(alert_receiver.valid("/slack/")) == 2
    assert len(alert_receiver.valid("/v2/enqueue")) == 1
    alert_receiver.status = 500  # a channel that fails: exit 1, and says so
    down = cli("-c", config, "alerts", "test", "--channel", "pagerduty")
    assert down.code == 1 and "pagerduty: failed" in down.out


def test_a_slow_export_pages_pagerduty_while_it_runs(
    tmp_path: Path,
    alert_receiver: AlertReceiver,
    smtp_server: SmtpServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import dpexport
    from dpexport.engines import open_engine
    from dpexport.flow.context import RunOptions
    from dpexport.flow.runner import run_exports

    set_secrets(monkeypatch, alert_receiver.slack_url)
    config_path = _setup(tmp_path, alert_receiver, smtp_server)
    text = config_path.read_text(encoding="utf-8").replace(
        "  channels:\n",
        '  export_duration: {threshold: "0.2 seconds", alert: "PagerDuty"}\n  channels:\n',
    )
    config_path.write_text(text, encoding="utf-8")
    con = duckdb.connect(str(tmp_path / "warehouse.duckdb"))
    con.execute("CREATE TABLE ds.t AS SELECT i AS id FROM range(5) r(i)")
    con.close()
    config = dpexport.load_config(config_path)
    seen_while_running: list[int] = []

    class Slow:
        def __init__(self, inner: Any) -> None:
            self.inner = inner

        def __getattr__(self, name: str) -> Any:
            return getattr(self.inner, name)

        def native_writer(self) -> None:
            return None

        def scan(self, request: Any) -> Any:
            for _ in range(300):  # until the page has arrived (30 s at most)
                if alert_receiver.valid("/v2/enqueue"):
                    break
                time.sleep(0.1)
            seen_while_running.append(len(alert_receiver.valid("/v2/enqueue")))
            return self.inner.scan(request)

    engine = Slow(open_engine(config.warehouse, base_dir=tmp_path))
    try:
        options = RunOptions(local_root=tmp_path / "out")
        [result] = run_exports(config, engine, options)
    finally:
        engine.close()
    assert result.status == "SUCCESS"
    assert seen_while_running == [1]  # the trigger was received before the rows were read
    pages = alert_receiver.valid("/v2/enqueue")
    assert [(p["event_action"], p["dedup_key"]) for p in pages] == [
        ("trigger", "dpexport/export_duration/ds.t"),
        ("resolve", "dpexport/export_duration/ds.t"),
    ]
    assert alert_receiver.valid("/slack/") == []  # its alert names PagerDuty only
