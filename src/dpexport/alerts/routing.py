"""Which ``alert:`` targets a config can deliver, judged from the config alone (CONTRACT
§10): for ``check`` notes and for skipping a target before anything is sent. Kept apart
from :mod:`.channels` so reading a config does not import smtplib and urllib."""

from __future__ import annotations

from collections.abc import Sequence

from dpexport.alerts.model import Target, parse_targets
from dpexport.config.models.operations import AlertChannel, Metrics

#: the channel kinds, by the first word of an ``alert:`` part (``dpexport.alerts.channels``)
CHANNELS = ("pagerduty", "slack", "email")


def channel_settings(name: str, metrics: Metrics) -> AlertChannel | None:
    """The settings of channel ``name`` under ``metrics.channels`` (any case), or None."""
    by_lower = {k.lower(): v for k, v in metrics.channels.items()}
    return by_lower.get(name.lower())


def not_configured(targets: Sequence[Target], metrics: Metrics) -> list[str]:
    """Why each target could not be delivered, judged from the config alone (an unset
    environment variable shows only when sending): an empty list when all can."""
    reasons: list[str] = []
    for target in targets:
        settings = channel_settings(target.channel, metrics)
        if target.channel not in CHANNELS:
            reasons.append(f"{target.channel}: no such channel (known: {', '.join(CHANNELS)})")
        elif settings is None:
            reasons.append(f"{target.channel}: not configured under metrics.channels")
        elif target.recipients and target.channel == "email":
            named = {k.lower() for k in settings.recipients}
            if target.recipients not in named:
                reasons.append(f"email: no recipients list {target.recipients!r}")
    return reasons


def channel_notes(metrics: Metrics) -> list[str]:
    """``check`` notes: each spec 9.1 ``alert:`` target that no channel delivers."""
    notes: list[str] = []
    for rule in ("export_duration", "export_size", "failure_rate", "cost_per_export"):
        block = getattr(metrics, rule)
        text = getattr(block, "alert", None)
        for reason in not_configured(parse_targets(text), metrics):
            notes.append(f"metrics.{rule}.alert {text!r}: {reason}; those alerts are skipped")
    return notes
