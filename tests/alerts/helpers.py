"""A config whose channels point at the local alert servers, and the secrets they use."""

from __future__ import annotations

import pytest

from dpexport.alerts.model import Alert
from dpexport.config.resolve import load_config_text
from dpexport.config.spec import ResolvedConfig

ROUTING_KEY = "R0utingKeyForTests0123456789abcd"
SMTP_USER = "alerts-user"
SMTP_PASSWORD = "pa55-w0rd-f0r-tests"
FAILURE = Alert(
    "export_failure",
    "ds.users",
    "trigger",
    "ds.users export FAILURE: write failed",
    "critical",
    {"export_id": "e-1", "rows": 42},
)


def alert_config(
    *,
    events_url: str = "http://127.0.0.1:9/v2/enqueue",
    smtp_port: int = 9,
    starttls: bool = False,
    max_attempts: int = 3,
) -> ResolvedConfig:
    login = "username_env: SMTP_USER, smtp_password_env: SMTP_PASSWORD, " if starttls else ""
    return load_config_text(
        "buckets: {exports: gs://b}\n"
        f"retry_configuration: {{max_attempts: {max_attempts}, initial_delay_seconds: 0.01,"
        " max_delay_seconds: 0.05, multiplier: 2}\n"
        "metrics:\n"
        "  channels:\n"
        f"    pagerduty: {{routing_key_env: PD_ROUTING_KEY, events_url: '{events_url}'}}\n"
        "    slack: {url_env: SLACK_WEBHOOK_URL}\n"
        f"    email: {{smtp_host: 127.0.0.1, smtp_port: {smtp_port}, starttls: {starttls},"
        f" {login}sender: exports@example.com, to: [oncall@example.com],"
        " recipients: {finance: [finance@example.com, cfo@example.com]}}\n"
        "exports:\n  - source: ds.users\n"
    )


def set_secrets(monkeypatch: pytest.MonkeyPatch, slack_url: str) -> None:
    monkeypatch.setenv("PD_ROUTING_KEY", ROUTING_KEY)
    monkeypatch.setenv("SLACK_WEBHOOK_URL", slack_url)
    monkeypatch.setenv("SMTP_USER", SMTP_USER)
    monkeypatch.setenv("SMTP_PASSWORD", SMTP_PASSWORD)
