"""Each channel delivers a body its real receiver accepts (issue 20, CONTRACT §10)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from dpexport.alerts.deliver import deliver
from dpexport.alerts.model import Alert, Target, parse_targets
from tests.alert_servers import AlertReceiver, SmtpServer
from tests.alerts.helpers import FAILURE, ROUTING_KEY, SMTP_PASSWORD, alert_config, set_secrets


def test_pagerduty_trigger_then_resolve_are_valid_events_v2(
    alert_receiver: AlertReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    set_secrets(monkeypatch, alert_receiver.slack_url)
    config = alert_config(events_url=alert_receiver.events_url)
    targets = parse_targets("PagerDuty")
    sent = deliver(FAILURE, targets, config)
    resolved = deliver(replace(FAILURE, action="resolve"), targets, config)
    assert [(d.outcome, d.attempts, d.action) for d in sent + resolved] == [
        ("sent", 1, "trigger"),
        ("sent", 1, "resolve"),
    ]
    assert [r.problems for r in alert_receiver.received] == [[], []]
    trigger, resolve = alert_receiver.valid("/v2/enqueue")
    assert trigger["routing_key"] == ROUTING_KEY
    assert trigger["event_action"] == "trigger"
    assert trigger["dedup_key"] == "dpexport/export_failure/ds.users"
    assert trigger["payload"]["severity"] == "critical"
    assert trigger["payload"]["source"] == "dpexport"
    assert trigger["payload"]["summary"] == FAILURE.summary
    assert trigger["payload"]["custom_details"]["export_id"] == "e-1"
    assert resolve == {
        "routing_key": ROUTING_KEY,
        "event_action": "resolve",
        "dedup_key": "dpexport/export_failure/ds.users",
    }


def test_the_receiver_refuses_an_invalid_event_and_it_is_not_retried(
    alert_receiver: AlertReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    set_secrets(monkeypatch, alert_receiver.slack_url)
    config = alert_config(events_url=alert_receiver.events_url)
    bad = replace(FAILURE, severity="fatal")  # type: ignore[arg-type]
    [delivery] = deliver(bad, [Target("pagerduty")], config)
    assert (delivery.outcome, delivery.attempts, delivery.error) == (
        "failed",
        1,
        "pagerduty: HTTP 400",
    )
    [received] = alert_receiver.received
    assert received.problems == [
        "payload.severity 'fatal' not in ('critical', 'error', 'warning', 'info')"
    ]


def test_slack_gets_one_text_and_a_resolve_says_resolved(
    alert_receiver: AlertReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    set_secrets(monkeypatch, alert_receiver.slack_url)
    config = alert_config()
    for alert in (FAILURE, replace(FAILURE, action="resolve")):
        assert [d.outcome for d in deliver(alert, [Target("slack")], config)] == ["sent"]
    trigger, resolve = alert_receiver.valid("/slack/")
    assert trigger["text"].startswith("[dpexport] CRITICAL export_failure ds.users: ")
    assert "export_id: e-1" in trigger["text"]
    assert resolve["text"].startswith("[dpexport] RESOLVED export_failure ds.users: ")
    assert len(alert_receiver.received) == 2


def test_email_goes_to_the_to_list_and_email_to_finance_to_its_list(
    smtp_server: SmtpServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = alert_config(smtp_port=smtp_server.port)
    cost = Alert("cost_per_export", "ds.users", "trigger", "cost 120.00 USD > 100", "warning")
    assert [d.outcome for d in deliver(FAILURE, parse_targets("Email"), config)] == ["sent"]
    finance = deliver(cost, parse_targets("Email to finance"), config)
    assert [(d.channel, d.outcome) for d in finance] == [("email", "sent")]
    (to_oncall, first), (to_finance, second) = smtp_server.messages
    assert to_oncall == ["oncall@example.com"]
    assert first["Subject"].startswith("[dpexport] CRITICAL export_failure ds.users")
    assert first["From"] == "exports@example.com"
    assert to_finance == ["finance@example.com", "cfo@example.com"]
    assert second["To"] == "finance@example.com, cfo@example.com"
    assert second["Subject"] == "[dpexport] WARNING cost_per_export ds.users: cost 120.00 USD > 100"


def test_email_with_starttls_logs_in_with_the_environments_credentials(
    smtp_tls_server: SmtpServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    set_secrets(monkeypatch, "http://127.0.0.1:9/unused")
    config = alert_config(smtp_port=smtp_tls_server.port, starttls=True)
    resolve = replace(FAILURE, action="resolve")
    assert [d.outcome for d in deliver(resolve, [Target("email")], config)] == ["sent"]
    assert smtp_tls_server.logins == [("alerts-user", SMTP_PASSWORD)]
    [(_, message)] = smtp_tls_server.messages
    assert message["Subject"].startswith("[dpexport] RESOLVED export_failure ds.users")


def test_a_login_without_starttls_is_skipped_rather_than_sent_in_clear(
    smtp_server: SmtpServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    set_secrets(monkeypatch, "http://127.0.0.1:9/unused")
    config = alert_config(smtp_port=smtp_server.port)
    channels = dict(config.metrics.channels)
    channels["email"] = channels["email"].model_copy(update={"smtp_password_env": "SMTP_PASSWORD"})
    config = replace(config, metrics=config.metrics.model_copy(update={"channels": channels}))
    [delivery] = deliver(FAILURE, [Target("email")], config)
    assert delivery.outcome == "skipped"
    assert "starttls" in (delivery.error or "")
    assert smtp_server.messages == []
