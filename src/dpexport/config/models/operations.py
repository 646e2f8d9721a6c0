"""Operational blocks: spec 3.3 filenames, 5.2 checks, 7.x reliability, 9.1 metrics,
10.x cost and lifecycle, and the cross-cloud ``replication`` list."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any, Literal

from pydantic import Field, model_validator

from dpexport.config.models.common import (
    Block,
    Duration,
    Money,
    Rate,
    SizeThreshold,
    Word,
    empty_dict,
    empty_list,
)


class Filenames(Block):
    """Spec 3.3 (under ``filenames:``): the names of the data files (``pattern``) and of
    their sidecars (``metadata_sidecar``), as :mod:`dpexport.storage.layout.names` reads
    them; ``check`` refuses a pattern that cannot work (``config.value_checks``).
    ``examples`` is documentation."""

    pattern: str | None = None
    examples: list[str] = Field(default_factory=empty_list)
    metadata_sidecar: str = "{filename}.metadata.json"


class ValidationChecks(Block):
    """Spec 5.2 ``validation_checks``: the steps of each phase, by name; a phase left
    out runs all of its steps (:mod:`dpexport.config.steps`)."""

    pre_export: list[str] | None = None
    during_export: list[str] | None = None
    post_export: list[str] | None = None
    failure_handling: list[str] | None = None


class RetryConfiguration(Block):
    """Spec 7.1 ``retry_configuration``."""

    max_attempts: int = 5
    backoff_strategy: Literal["exponential", "linear", "constant"] = "exponential"
    initial_delay_seconds: float = 30
    max_delay_seconds: float = 3600
    multiplier: float = 2
    deadline_seconds: float | None = None
    retry_conditions: list[str] = Field(
        default_factory=lambda: [
            "RATE_LIMIT_EXCEEDED",
            "QUOTA_EXCEEDED",
            "TIMEOUT",
            "INTERNAL_ERROR",
            "SERVICE_UNAVAILABLE",
        ]
    )
    non_retryable: list[str] = Field(
        default_factory=lambda: [
            "PERMISSION_DENIED",
            "INVALID_ARGUMENT",
            "NOT_FOUND",
            "ALREADY_EXISTS",
        ]
    )


class DlqProcessing(Block):
    manual_review_sla: Duration | None = None
    auto_retry_after: Duration | None = None
    escalation_after: Duration | None = None


class DlqConfiguration(Block):
    """Spec 7.2 ``dlq_configuration``. ``structure`` documents the folders."""

    storage_location: str | None = None
    structure: dict[str, list[str]] = Field(default_factory=empty_dict)
    retention: Duration = timedelta(days=90)
    processing: DlqProcessing = Field(default_factory=DlqProcessing.model_construct)


class TokenStorage(Block):
    location: str | None = None
    retention: Duration = timedelta(days=7)


class Lease(Block):
    """CONTRACT §8: the token holder renews every ``renew_every``; the lease lapses
    ``expires_after`` the last renewal."""

    renew_every: Duration = timedelta(seconds=30)
    expires_after: Duration = timedelta(minutes=2)


class IdempotencyDesign(Block):
    """Spec 7.3 ``idempotency_design`` plus ``lease``."""

    token_format: str = "{table}_{partition}_{timestamp}_{hash}"
    example: str | None = None
    storage: TokenStorage = Field(default_factory=TokenStorage.model_construct)
    usage: list[str] = Field(default_factory=empty_list)
    lease: Lease = Field(default_factory=Lease.model_construct)


class DurationMetric(Block):
    threshold: Duration
    alert: str | None = None


class SizeMetric(Block):
    threshold: SizeThreshold
    alert: str | None = None


class RateMetric(Block):
    threshold: Rate
    alert: str | None = None


class MoneyMetric(Block):
    threshold: Money
    alert: str | None = None


class AlertChannel(Block):
    """Where an alert name (``PagerDuty``, ``Slack``, ``Email``) is delivered
    (``dpexport.alerts.channels``). Secrets (webhook URLs, routing keys, SMTP user and
    password) are named by environment variable. ``events_url``: PagerDuty's Events API
    v2 endpoint; ``recipients``: named lists (``Email to finance``) beside ``to``."""

    url_env: str | None = None
    routing_key_env: str | None = None
    events_url: str | None = None
    to: list[str] = Field(default_factory=empty_list)
    recipients: dict[str, list[str]] = Field(default_factory=empty_dict)
    smtp_host: str | None = None
    smtp_port: int | None = None
    starttls: bool = False
    username_env: str | None = None
    smtp_password_env: str | None = None
    sender: str | None = None


class Metrics(Block):
    """Spec 9.1 ``metrics`` plus ``channels`` (alert name, lower case -> delivery) and
    the scheduler's metrics endpoint ``port``."""

    export_duration: DurationMetric | None = None
    export_size: SizeMetric | None = None
    failure_rate: RateMetric | None = None
    cost_per_export: MoneyMetric | None = None
    channels: dict[str, AlertChannel] = Field(default_factory=empty_dict)
    port: int | None = None

    @staticmethod
    def alert_targets(alert: str | None) -> list[str]:
        """``"Slack + PagerDuty"`` -> ``["slack", "pagerduty"]``; ``"Email to finance"`` ->
        ``["email"]`` (the first word of each part names the channel)."""
        if not alert:
            return []
        return [part.split()[0].lower() for part in alert.split("+") if part.strip()]


class CompressionStrategy(Block):
    """Spec 10.1 ``optimization_strategies.compression``: the codec of the spec 3.2
    ``high_volume`` tables unless a table's item names its own (``resolve``).
    ``low_latency_tables`` is accepted, not enforced: neither the spec nor CONTRACT says
    which tables are low-latency (``dpexport.config.compression.codec_notes``)."""

    high_volume_tables: Word | None = None
    low_latency_tables: Word | None = None


class OptimizationStrategies(Block):
    """Spec 10.1 (under ``optimization_strategies:``): ``compression`` takes effect; the
    other blocks document cost choices."""

    compression: CompressionStrategy = Field(default_factory=CompressionStrategy.model_construct)
    scheduling: dict[str, str] = Field(default_factory=empty_dict)
    incremental_exports: dict[str, str] = Field(default_factory=empty_dict)
    regional_optimization: dict[str, str] = Field(default_factory=empty_dict)


_TIER_KEY = re.compile(r"^(\d+)_days?$")
_TRANSITION = re.compile(r"^(?:transition\s+to\s+|setstorageclass:)(\w+)$", re.IGNORECASE)


class LifecycleTier(Block):
    action: str
    cost_reduction: str | None = None


class LifecyclePolicies(Block):
    """Spec 10.2 ``lifecycle_policies``: ``N_days: {action: "Transition to CLASS"}`` tiers
    and ``auto_delete: {prefix_kind: duration}``."""

    tiers: dict[str, LifecycleTier] = Field(default_factory=empty_dict)
    auto_delete: dict[str, Duration] = Field(default_factory=empty_dict)

    @model_validator(mode="before")
    @classmethod
    def _split(cls, data: Any) -> Any:
        # The spec writes tiers as sibling keys of `auto_delete`; gather them in `tiers`.
        if isinstance(data, dict) and "tiers" not in data:
            tiers = {k: v for k, v in data.items() if k != "auto_delete"}
            rest = {k: v for k, v in data.items() if k == "auto_delete"}
            return {**rest, "tiers": tiers}
        return data

    def transitions(self) -> list[tuple[int, str]]:
        """``[(age_days, STORAGE_CLASS), ...]`` sorted by age."""
        out = []
        for key, tier in self.tiers.items():
            age, match = _TIER_KEY.match(key), _TRANSITION.match(tier.action.strip())
            if age and match:
                out.append((int(age.group(1)), match.group(1).upper()))
        return sorted(out)


class Replication(Block):
    """One ``replication`` item: copy these tables' committed exports to ``target``."""

    tables: list[str]
    target: str
    name: str | None = None
    verify_checksums: bool = True
    schedule: str | None = None
