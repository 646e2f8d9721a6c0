"""The channel settings of CONTRACT §10 in the config: secrets by variable name only, and
an ``alert:`` naming a channel the config does not set up is a ``check`` note."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from dpexport.alerts.deliver import configured
from dpexport.alerts.model import parse_targets
from dpexport.config.coverage import uncovered
from dpexport.config.resolve import load_config_text
from dpexport.errors import ConfigError
from tests.e2e.cli import dpexport

ROUTING_KEY = "e93facc04764012d7bfb002500d5d1a6"
WEBHOOK = "https://hooks.slack.com/services/T000/B000/XXXXXXXXXXXXXXXXXXXXXXXX"


def test_a_secret_pasted_where_a_variable_name_belongs_is_refused_and_not_shown() -> None:
    text = (
        "buckets: {exports: gs://b}\n"
        "metrics:\n  channels:\n"
        f"    pagerduty: {{routing_key_env: {ROUTING_KEY}}}\n"
        f"    slack: {{url_env: '{WEBHOOK}'}}\n"
        "    email: {smtp_host: mail, username_env: SMTP_USER, smtp_password_env: SMTP_PASSWORD}\n"
        "exports:\n  - source: ds.users\n"
    )
    with pytest.raises(ConfigError) as info:
        load_config_text(text, "t.yaml")
    issues = {i.path: i for i in info.value.issues}
    assert set(issues) == {
        "metrics.channels.pagerduty.routing_key_env",
        "metrics.channels.slack.url_env",
    }
    assert issues["metrics.channels.pagerduty.routing_key_env"].message.startswith(
        "looks like a secret, not an environment variable name"
    )
    assert issues["metrics.channels.slack.url_env"].message.startswith(
        "not an environment variable name"
    )
    rendered = "\n".join(i.render("t.yaml") for i in info.value.issues) + str(info.value)
    assert ROUTING_KEY not in rendered
    assert "hooks.slack.com" not in rendered


def test_check_notes_each_alert_naming_a_channel_the_config_lacks(demo_dir: Path) -> None:
    config = demo_dir / "dpexport.yaml"
    text = config.read_text(encoding="utf-8").replace(
        "\nmetrics:\n",
        "\nmetrics:\n  channels:\n    slack: {url_env: SLACK_WEBHOOK_URL}\n"
        "    email: {smtp_host: mail, sender: a@example.com, to: [b@example.com]}\n",
        1,
    )
    assert "channels:" in text
    config.write_text(text, encoding="utf-8")
    result = dpexport("-c", config, "check")
    assert result.code == 0, result.err
    for note in (
        "metrics.export_duration.alert 'PagerDuty': pagerduty: not configured under "
        "metrics.channels; those alerts are skipped",
        "metrics.failure_rate.alert 'Slack + PagerDuty': pagerduty: not configured",
        "metrics.cost_per_export.alert 'Email to finance': email: no recipients list 'finance'",
    ):
        assert note in result.err
    assert "metrics.export_size.alert" not in result.err  # Email: configured


def test_configured_keeps_the_targets_a_channel_delivers() -> None:
    cfg = load_config_text(
        "buckets: {exports: gs://b}\n"
        "metrics:\n  channels:\n    slack: {url_env: SLACK_WEBHOOK_URL}\n"
        "    email: {smtp_host: mail, to: [a@example.com],"
        " recipients: {finance: [f@example.com]}}\n"
        "exports:\n  - source: ds.users\n"
    )
    targets = parse_targets("Slack + PagerDuty + Email to finance + Email to legal + Teams")
    assert [(t.channel, t.recipients) for t in configured(targets, cfg)] == [
        ("slack", None),
        ("email", "finance"),
    ]


CONTRACT_CHANNELS = """\
metrics:
  channels:
    pagerduty: {routing_key_env: PD_ROUTING_KEY,
                events_url: https://events.pagerduty.com/v2/enqueue}
    slack:     {url_env: SLACK_WEBHOOK_URL}
    email:     {smtp_host: smtp.example.com, smtp_port: 587, starttls: true,
                username_env: SMTP_USER, smtp_password_env: SMTP_PASSWORD,
                sender: exports@example.com,
                to: [data-oncall@example.com], recipients: {finance: [finance@example.com]}}
"""


def test_contract_channel_settings_load_and_each_key_has_a_proven_effect() -> None:
    cfg = load_config_text("buckets: {exports: gs://b}\n" + CONTRACT_CHANNELS)
    email = cfg.metrics.channels["email"]
    assert (email.starttls, email.username_env, email.recipients) == (
        True,
        "SMTP_USER",
        {"finance": ["finance@example.com"]},
    )
    assert cfg.metrics.channels["pagerduty"].events_url == "https://events.pagerduty.com/v2/enqueue"
    assert uncovered(yaml.safe_load(CONTRACT_CHANNELS)) == []
