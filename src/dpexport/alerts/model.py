"""What an alert is, where it goes, and what its delivery reports: the interface between
the rules that raise alerts and the channels that deliver them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

#: the rules of CONTRACT §10 (``test``: ``dpexport alerts test``)
RULES = (
    "export_failure",
    "export_duration",
    "export_size",
    "failure_rate",
    "cost_per_export",
    "dlq_escalation",
    "manual_review_sla",
    "test",
)

Severity = Literal["critical", "error", "warning", "info"]


@dataclass(frozen=True)
class Alert:
    """One incident's event: ``trigger`` while its condition holds (sent once), ``resolve``
    when it clears. ``summary`` is one line and ``details`` hold figures and ids only: no
    row value and no secret ever goes into an alert."""

    rule: str
    table: str  # dataset.table ("" for a test alert)
    action: Literal["trigger", "resolve"]
    summary: str
    severity: Severity = "error"
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def dedup_key(self) -> str:
        """PagerDuty's ``dedup_key``, and the incident's name: ``dpexport/{rule}/{table}``."""
        return f"dpexport/{self.rule}/{self.table}"


@dataclass(frozen=True)
class Target:
    """One part of a rule's ``alert:`` text: ``PagerDuty`` -> (``pagerduty``, None);
    ``Email to finance`` -> (``email``, ``finance``: a recipient list of the channel)."""

    channel: str
    recipients: str | None = None


def parse_targets(alert: str | None) -> list[Target]:
    """``"Slack + PagerDuty"`` -> two targets; ``"Email to finance"`` -> email to the
    ``finance`` list; None or empty -> none. Channel names are lower-cased."""
    out: list[Target] = []
    for part in (alert or "").split("+"):
        words = part.split()
        if not words:
            continue
        to = words[2] if len(words) >= 3 and words[1].lower() == "to" else None
        out.append(Target(words[0].lower(), to.lower() if to else None))
    return out


@dataclass
class Delivery:
    """How sending one alert to one target went (recorded in the export log and counted
    in ``dpexport_alerts_total{rule,channel,outcome}``)."""

    channel: str
    rule: str
    action: str
    outcome: Literal["sent", "failed", "skipped"]
    attempts: int = 0
    error: str | None = None  # never holds a secret

    def to_json(self) -> dict[str, Any]:
        return {
            "channel": self.channel,
            "rule": self.rule,
            "action": self.action,
            "outcome": self.outcome,
            "attempts": self.attempts,
            "error": self.error,
        }


class Channel(Protocol):
    """A way to deliver alerts (``alerts.channels``): one call, one attempt; raises on
    failure (the caller retries within the spec 7.1 budget and a deadline)."""

    name: str

    def send(self, alert: Alert, recipients: str | None, timeout: float) -> None: ...
