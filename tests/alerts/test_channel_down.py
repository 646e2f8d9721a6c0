"""A channel that is down is retried within the policy, bounded by the timeout, recorded
as failed; nothing raises and no secret leaks (issue 20, CONTRACT §10)."""

from __future__ import annotations

import logging
import time
from dataclasses import replace

import pytest

from dpexport.alerts.deliver import deliver
from dpexport.alerts.model import Delivery, Target, parse_targets
from tests.alert_servers import AlertReceiver, SilentServer, SmtpServer, closed_port
from tests.alerts.helpers import (
    FAILURE,
    ROUTING_KEY,
    SMTP_PASSWORD,
    alert_config,
    set_secrets,
)


def _down(how: str, receiver: AlertReceiver, silent: SilentServer) -> tuple[str, str, int, str]:
    """(events URL, Slack URL, SMTP port, expected error tail) for a channel down ``how``."""
    if how == "refused":
        port = closed_port()
        return (
            f"http://127.0.0.1:{port}/v2/enqueue",
            f"http://127.0.0.1:{port}/slack/x",
            port,
            ("connection refused"),
        )
    if how == "500":
        receiver.status = 500
        return receiver.events_url, receiver.slack_url, closed_port(), "HTTP 500"
    port = silent.port
    return (
        f"http://127.0.0.1:{port}/v2/enqueue",
        f"http://127.0.0.1:{port}/slack/x",
        port,
        ("no answer within"),
    )


@pytest.mark.parametrize("how", ["refused", "500", "never_answers"])
def test_a_channel_down_is_retried_and_recorded_failed_in_bounded_time(
    how: str,
    alert_receiver: AlertReceiver,
    silent_server: SilentServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    events_url, slack_url, smtp_port, error = _down(how, alert_receiver, silent_server)
    set_secrets(monkeypatch, slack_url)
    config = alert_config(events_url=events_url, smtp_port=smtp_port, max_attempts=3)
    waits: list[float] = []
    timeout = 1.0
    started = time.monotonic()
    deliveries = deliver(
        FAILURE, parse_targets("PagerDuty + Slack"), config, timeout=timeout, sleep=waits.append
    )
    assert time.monotonic() - started < timeout * 2  # generous: the point is it returned
    assert [(d.channel, d.outcome) for d in deliveries] == [
        ("pagerduty", "failed"),
        ("slack", "failed"),
    ]
    # a hung endpoint uses the whole timeout in its first attempt: no time for a second
    attempts = 1 if how == "never_answers" else 3
    assert [d.attempts for d in deliveries] == [attempts, attempts]
    assert len(waits) == 2 * (attempts - 1)
    assert all(0 <= w <= 0.05 for w in waits)
    for d in deliveries:
        assert (d.error or "").startswith(f"{d.channel}: {error}")
    if how == "500":
        assert len(alert_receiver.received) == 6  # 3 attempts at each channel


def test_an_smtp_server_that_never_answers_fails_within_the_timeout(
    silent_server: SilentServer,
) -> None:
    config = alert_config(smtp_port=silent_server.port)
    started = time.monotonic()
    [d] = deliver(FAILURE, [Target("email")], config, timeout=0.5, sleep=lambda s: None)
    assert time.monotonic() - started < 1.0
    assert (d.outcome, d.attempts) == ("failed", 1)
    assert d.error == "email: no answer within 0.5 s"


def test_unconfigured_channels_and_unset_variables_are_skipped_with_the_reason(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.delenv("PD_ROUTING_KEY", raising=False)
    config = alert_config()
    targets = [Target("pagerduty"), Target("opsgenie"), Target("email", "legal")]
    with caplog.at_level(logging.WARNING, logger="dpexport.alerts"):
        deliveries = deliver(FAILURE, targets, config)
        deliver(FAILURE, targets, config)
    assert [(d.outcome, d.attempts, d.error) for d in deliveries] == [
        (
            "skipped",
            0,
            "pagerduty: environment variable PD_ROUTING_KEY (routing_key_env) is not set",
        ),
        ("skipped", 0, "opsgenie: no such channel (known: pagerduty, slack, email)"),
        ("skipped", 0, "email: no recipients list 'legal'"),
    ]
    skips = [r.getMessage() for r in caplog.records if "skipped" in r.getMessage()]
    assert len(skips) == len(set(skips))  # each reason logged once, not per alert


def test_no_secret_in_any_payload_error_or_log(
    alert_receiver: AlertReceiver,
    smtp_tls_server: SmtpServer,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    set_secrets(monkeypatch, alert_receiver.slack_url)
    good = alert_config(
        events_url=alert_receiver.events_url, smtp_port=smtp_tls_server.port, starttls=True
    )
    port = closed_port()
    refused = alert_config(
        events_url=f"http://127.0.0.1:{port}/v2/enqueue", smtp_port=port, starttls=True
    )
    targets = parse_targets("PagerDuty + Slack + Email + Email to finance")
    deliveries: list[Delivery] = []
    with caplog.at_level(logging.DEBUG, logger="dpexport"):
        for config in (good, refused):
            for alert in (FAILURE, replace(FAILURE, action="resolve")):
                deliveries += deliver(alert, targets, config, timeout=1.0, sleep=lambda s: None)
        monkeypatch.setenv("SLACK_WEBHOOK_URL", f"http://127.0.0.1:{port}/slack/secret-path")
        deliveries += deliver(FAILURE, targets, refused, timeout=1.0, sleep=lambda s: None)
        monkeypatch.setenv("SLACK_WEBHOOK_URL", alert_receiver.slack_url)
        alert_receiver.status = 500
        deliveries += deliver(FAILURE, targets, good, timeout=1.0, sleep=lambda s: None)
    assert {d.outcome for d in deliveries} == {"sent", "failed"}
    texts = [str(d.to_json()) for d in deliveries]
    texts += [r.getMessage() for r in caplog.records]
    # bodies: the Slack text and the PagerDuty payload (the routing key is the one field
    # PagerDuty needs), and every email
    for r in alert_receiver.received:
        body = dict(r.body)
        assert body.pop("routing_key", ROUTING_KEY) == ROUTING_KEY
        texts.append(str(body))
    texts += [m.as_string() for _, m in smtp_tls_server.messages]
    assert len(smtp_tls_server.messages) == 6  # 3 alerts sent by good, 2 emails each
    secrets = (
        ROUTING_KEY,
        alert_receiver.slack_url,
        "secret-webhook-path",
        "secret-path",
        SMTP_PASSWORD,
    )
    leaks = [(s, t) for t in texts for s in secrets if s in t]
    assert leaks == []


def test_a_malformed_webhook_url_fails_without_showing_it(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("SLACK_WEBHOOK_URL", "hooks.example.com/services/T0/B0/s3cretpath")
    with caplog.at_level(logging.DEBUG, logger="dpexport"):
        [d] = deliver(FAILURE, [Target("slack")], alert_config(), sleep=lambda s: None)
    assert (d.outcome, d.attempts, d.error) == ("failed", 1, "slack: not a valid URL")
    assert not [r for r in caplog.records if "s3cretpath" in r.getMessage()]
