"""Delivering one alert to its targets (CONTRACT §10): retried within the spec 7.1 policy,
never longer than a timeout, never raising.

The targets are sent side by side (one thread each), so a channel that never answers
does not use up another's time; each one's attempts, waits and socket timeouts end by
``timeout`` seconds after the call began. A target whose channel is not configured, or
whose environment variable is unset, is ``skipped`` and logged once per process.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

from dpexport.alerts.channels import ChannelDown, ChannelRefused, NotConfigured, channel_for
from dpexport.alerts.model import Alert, Delivery, Target
from dpexport.alerts.routing import channel_settings, not_configured
from dpexport.config.models.operations import Metrics
from dpexport.config.spec import ResolvedConfig
from dpexport.reliability.retry import Attempt, RetryPolicy, retry_call

log = logging.getLogger(__name__)
_logged_skips: set[str] = set()


def configured(targets: Sequence[Target], config: ResolvedConfig) -> list[Target]:
    """The targets whose channel is configured (``not_configured`` says why not)."""
    return [t for t in targets if not not_configured([t], config.metrics)]


def deliver(
    alert: Alert,
    targets: Sequence[Target],
    config: ResolvedConfig,
    *,
    timeout: float = 10.0,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> list[Delivery]:
    """Send ``alert`` to each target; one Delivery per target, in order. Never raises."""
    if not targets:
        return []
    try:
        policy = RetryPolicy.from_config(config)
    except Exception:  # a policy built in Python and refused: deliver once each
        policy = RetryPolicy(max_attempts=1)
    policy = replace(policy, deadline_seconds=max(timeout, 1e-3))
    ends = clock() + timeout

    def one(target: Target) -> Delivery:
        try:
            return _deliver_one(alert, target, config.metrics, policy, ends, sleep, clock)
        except Exception as exc:  # never raise into the export
            return Delivery(
                target.channel, alert.rule, alert.action, "failed", 0, type(exc).__name__
            )

    if len(targets) == 1:
        return [one(targets[0])]
    with ThreadPoolExecutor(max_workers=len(targets), thread_name_prefix="alert") as pool:
        return list(pool.map(one, targets))


def _deliver_one(
    alert: Alert,
    target: Target,
    metrics: Metrics,
    policy: RetryPolicy,
    ends: float,
    sleep: Callable[[float], None],
    clock: Callable[[], float],
) -> Delivery:
    name = target.channel
    reasons = not_configured([target], metrics)
    settings = channel_settings(name, metrics)
    if reasons or settings is None:
        return _skipped(alert, name, reasons[0] if reasons else f"{name}: not configured")
    channel = channel_for(name, settings)
    history: list[Attempt] = []

    def attempt() -> None:
        left = ends - clock()
        if left <= 0:
            raise ChannelDown(f"{name}: no time left for another attempt", code="TIMEOUT")
        channel.send(alert, target.recipients, left)

    try:
        retry_call(
            attempt,
            policy,
            clock=clock,
            sleep=sleep,
            on_attempt=history.append,
            operation=f"alert {alert.rule} to {name}",
        )
    except NotConfigured as exc:
        return _skipped(alert, name, str(exc))
    except Exception as exc:
        # our errors are written secret-free; anything else is named by its type only
        error = str(exc) if isinstance(exc, ChannelDown | ChannelRefused) else type(exc).__name__
        error = error if error.startswith(f"{name}:") else f"{name}: {error}"
        log.warning(
            "alert %s (%s) to %s failed after %d attempt(s): %s",
            alert.dedup_key,
            alert.action,
            name,
            len(history),
            error,
        )
        return Delivery(name, alert.rule, alert.action, "failed", len(history), error)
    return Delivery(name, alert.rule, alert.action, "sent", len(history) + 1)


def _skipped(alert: Alert, channel: str, reason: str) -> Delivery:
    if reason not in _logged_skips:
        _logged_skips.add(reason)
        log.warning("alerts to %s are skipped: %s", channel, reason)
    return Delivery(channel, alert.rule, alert.action, "skipped", 0, reason)
