"""When alerts fire and resolve (spec 9.1, 5.2 ``trigger_alert``, 7.2; CONTRACT §10).

After each export (:func:`after_export`, called by ``flow.runner``):

- ``export_failure``: every FAILURE fires (when spec 5.2's ``failure_handling`` keeps
  ``trigger_alert``); the table's next SUCCESS resolves it;
- ``export_size``: the bytes one export stored for the table, over ``metrics.export_size``;
- ``cost_per_export``: the export's cost estimate (``cost_usd.total``), over the threshold;
- ``failure_rate``: the FAILURE share of the table's attempts in the rolling window, read
  from the export logs, over the threshold.

``export_duration`` is a watchdog while the export runs (:func:`watch`). The scheduler
evaluates ``failure_rate`` and the DLQ rules after each tick (:func:`scheduled`):
``dlq_escalation`` (an entry older than ``escalation_after``) and ``manual_review_sla``
(an entry older than ``manual_review_sla``).

Each rule keeps one incident per table (:mod:`.incidents`). A rule's ``alert:`` names its
channels; ``export_failure`` and the DLQ rules go to every channel under
``metrics.channels``. Delivery is bounded: every alert of one evaluation shares one time
budget (``timeout``), a delivery function that raises or hangs is recorded as failed,
and nothing here raises: an alert never changes an export's result or exit code.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from dpexport.alerts import incidents
from dpexport.alerts.model import Alert, Delivery, Target, parse_targets
from dpexport.config.spec import ResolvedConfig, TableSpec
from dpexport.ops.logs import parse_time
from dpexport.storage import layout
from dpexport.storage.base import Store

if TYPE_CHECKING:
    from dpexport.alerts.watchdog import Watchdog
    from dpexport.flow.context import ExportResult

log = logging.getLogger(__name__)

#: seconds all alerts of one evaluation may take together (an export waits at most this)
DEFAULT_TIMEOUT = 20.0
#: ``deliver(alert, targets, config, *, timeout) -> list[Delivery]`` (``alerts.deliver``)
Deliver = Callable[..., list[Delivery]]


def _default_deliver(
    alert: Alert, targets: Sequence[Target], config: ResolvedConfig, *, timeout: float
) -> list[Delivery]:
    from dpexport.alerts.deliver import deliver

    result: list[Delivery] = deliver(alert, list(targets), config, timeout=timeout)
    return result


@dataclass
class Alerter:
    """Sends a config's alerts through ``deliver`` within a time budget, and keeps each
    table's incidents in the store ``store_of`` gives for its destination."""

    config: ResolvedConfig
    store_of: Callable[[TableSpec], Store]
    deliver: Deliver | None = None
    timeout: float = DEFAULT_TIMEOUT
    _deadline: float = field(default=0.0, init=False)

    def budget(self) -> Alerter:
        """Starts the one time budget of the alerts that follow."""
        self._deadline = time.monotonic() + self.timeout
        return self

    def targets(self, rule: str) -> list[Target]:
        """A spec 9.1 rule's ``alert:`` channels; every channel for the others. Only the
        channels ``metrics.channels`` configures: an alert with none is not raised."""
        configured = {name.lower() for name in self.config.metrics.channels}
        metric = getattr(self.config.metrics, rule, None)
        if metric is not None and rule in _METRIC_RULES:
            return [t for t in parse_targets(metric.alert) if t.channel in configured]
        return [Target(name) for name in sorted(configured)]

    def send(self, alert: Alert, targets: Sequence[Target]) -> list[Delivery]:
        """``deliver`` in a daemon thread, waited for until the budget ends: one that
        raises or does not return in time is recorded as failed for every target."""
        left = self._deadline - time.monotonic() if self._deadline else self.timeout
        if left <= 0:
            return _failed(alert, targets, "not sent: the alert time budget was spent")
        box: list[list[Delivery]] = []
        errors: list[BaseException] = []
        deliver = self.deliver or _default_deliver

        def run() -> None:
            try:
                box.append(list(deliver(alert, targets, self.config, timeout=left)))
            except BaseException as exc:  # a broken delivery is recorded, never raised
                errors.append(exc)

        worker = threading.Thread(target=run, name=f"alert-{alert.rule}", daemon=True)
        worker.start()
        worker.join(left + 1.0)
        if box:
            return box[0]
        if errors:
            log.error("alert %s not delivered: %r", alert.dedup_key, errors[0])
            return _failed(alert, targets, f"delivery raised {type(errors[0]).__name__}")
        log.error("alert %s: no delivery within %.1fs", alert.dedup_key, left)
        return _failed(alert, targets, f"no delivery within {left:.1f}s")

    def fire(self, alert: Alert, now: datetime, spec: TableSpec) -> list[Delivery]:
        targets = self.targets(alert.rule)
        if not targets:
            return []
        return incidents.fire(self.store_of(spec), alert, targets, self.send, now)

    def clear(self, rule: str, spec: TableSpec, why: str) -> list[Delivery]:
        targets = self.targets(rule)
        if not targets:
            return []
        return incidents.clear(
            self.store_of(spec), rule, spec.qualified_name, targets, self.send, why
        )

    def decide(
        self, rule: str, spec: TableSpec, alert: Alert | None, now: datetime, why: str
    ) -> list[Delivery]:
        """Fire ``alert`` (the condition holds) or resolve the rule's incident (None);
        an error is logged and sends nothing."""
        try:
            if alert is not None:
                return self.fire(alert, now, spec)
            return self.clear(rule, spec, why)
        except Exception as exc:  # an alert never changes an export's outcome
            log.error("alert rule %s of %s not evaluated: %s", rule, spec.qualified_name, exc)
            return []


_METRIC_RULES = ("export_duration", "export_size", "failure_rate", "cost_per_export")


def _failed(alert: Alert, targets: Sequence[Target], error: str) -> list[Delivery]:
    return [Delivery(t.channel, alert.rule, alert.action, "failed", 0, error) for t in targets]


def for_run(ctx: Any) -> Alerter:
    """The alerter of a run (``flow.context.RunContext``): its stores, and the
    ``deliver`` and ``alert_timeout`` its options inject."""
    options = ctx.options
    return Alerter(
        ctx.config,
        lambda spec: ctx.stores.resolve(spec.destination)[0],
        options.deliver,
        options.alert_timeout or DEFAULT_TIMEOUT,
    )


# -- after each export ---------------------------------------------------------------
def stored_bytes(cost_usd: dict[str, Any] | None) -> int:
    """The bytes an export stored, from its cost breakdown (``ops.cost.estimate``)."""
    classes = ((cost_usd or {}).get("storage") or {}).get("by_class") or {}
    return sum(int(c.get("bytes") or 0) for c in classes.values())


def after_export(ctx: Any, spec: TableSpec, result: ExportResult) -> list[Delivery]:
    """The rules evaluated after one export attempt; what was sent. Never raises."""
    if result.status not in ("SUCCESS", "FAILURE"):
        return []
    try:
        alerter = for_run(ctx).budget()
        return _after(alerter, spec, result, datetime.now(UTC))
    except Exception as exc:
        log.error("alerts after the export of %s not evaluated: %s", spec.qualified_name, exc)
        return []


def _after(
    alerter: Alerter, spec: TableSpec, result: ExportResult, now: datetime
) -> list[Delivery]:
    name, metrics, ok = spec.qualified_name, alerter.config.metrics, result.status == "SUCCESS"
    out: list[Delivery] = []
    if alerter.config.steps.runs("trigger_alert"):
        failed = None
        if not ok:
            failed = Alert(
                "export_failure",
                name,
                "trigger",
                f"export of {name} failed (export {result.export_id}: its error is in the "
                "export log and the DLQ)",
                details={"export_id": result.export_id},
            )
        out += alerter.decide("export_failure", spec, failed, now, "the table exported")
    if ok and metrics.export_size is not None:
        size, limit = stored_bytes(result.cost_usd), metrics.export_size.threshold.bytes
        over = Alert(
            "export_size",
            name,
            "trigger",
            f"export of {name} stored {size} bytes, over {limit}",
            "warning",
            {"export_id": result.export_id, "bytes": size, "threshold_bytes": limit},
        )
        out += alerter.decide("export_size", spec, over if size > limit else None, now, "size")
    if ok and metrics.cost_per_export is not None and result.cost_usd is not None:
        usd, cap = float(result.cost_usd.get("total") or 0), metrics.cost_per_export.threshold
        over = Alert(
            "cost_per_export",
            name,
            "trigger",
            f"export of {name} cost ${usd:.2f}, over ${cap.amount}",
            "warning",
            {"export_id": result.export_id, "cost_usd": usd, "threshold_usd": float(cap.amount)},
        )
        out += alerter.decide(
            "cost_per_export", spec, over if usd > cap.amount else None, now, "cost"
        )
    pending = (str(result.export_id), result.status, now)
    return out + failure_rate(alerter, spec, now, pending)


# -- failure rate --------------------------------------------------------------------
def attempts(
    store: Store, spec: TableSpec, start: datetime, end: datetime
) -> dict[str, tuple[str, datetime]]:
    """The table's export attempts (SUCCESS or FAILURE) logged in ``[start, end]``:
    export id -> (status, time). Only the log folders of the days the window covers
    are listed."""
    found: dict[str, tuple[str, datetime]] = {}
    day = start.astimezone(UTC).date()
    while day <= end.astimezone(UTC).date():
        for obj in store.list(f"{layout.LOGS_PREFIX}{day:%Y/%m/%d}/"):
            started = _started(obj.key)
            if started is not None and not start - _SLACK <= started <= end:
                continue  # the record's export started outside the window: not read
            record = _record(store, obj.key)
            when = parse_time(record.get("export_timestamp"))
            status = record.get("status")
            if when is None or not start <= when <= end or status not in ("SUCCESS", "FAILURE"):
                continue
            if _belongs(record, spec):
                found[str(record.get("export_id") or obj.key)] = (str(status), when)
        day += timedelta(days=1)
    return found


#: an export id's start (``layout.export_id``: ``exp_{yyyymmdd_HHMMSS}_{uuid8}``)
_EXPORT_ID = re.compile(r"exp_(\d{8}_\d{6})_[0-9a-f]+\.json$")
_SLACK = timedelta(seconds=1)  # the id's time is whole seconds


def _started(key: str) -> datetime | None:
    match = _EXPORT_ID.search(key)
    if match is None:
        return None
    try:
        return datetime.strptime(match.group(1), "%Y%m%d_%H%M%S").replace(tzinfo=UTC)
    except ValueError:
        return None


def _record(store: Store, key: str) -> dict[str, Any]:
    if not layout.is_export_log_key(key):
        return {}
    try:
        doc = json.loads(store.get(key))
    except ValueError:
        return {}
    return doc if isinstance(doc, dict) else {}


def _belongs(record: dict[str, Any], spec: TableSpec) -> bool:
    table = record.get("table_name")
    if table == spec.qualified_name:
        return True
    return table == spec.table and record.get("dataset") in (None, spec.dataset)


def failure_rate(
    alerter: Alerter,
    spec: TableSpec,
    now: datetime,
    pending: tuple[str, str, datetime] | None = None,
) -> list[Delivery]:
    """The table's FAILURE share in ``metrics.failure_rate``'s window ending ``now``
    (``pending``: an attempt whose record is not written yet); fires above the
    threshold, resolves at or below it (and when the window holds no attempt)."""
    rule = alerter.config.metrics.failure_rate
    if rule is None:
        return []
    window = rule.threshold.window
    try:
        seen = attempts(alerter.store_of(spec), spec, now - window, now)
    except Exception as exc:
        log.error("failure_rate of %s: cannot read the export logs: %s", spec.qualified_name, exc)
        return []
    if pending is not None:
        seen[pending[0]] = (pending[1], pending[2])
    failed = sum(1 for status, _ in seen.values() if status == "FAILURE")
    share = failed / len(seen) if seen else 0.0
    over = None
    if share > rule.threshold.fraction:
        over = Alert(
            "failure_rate",
            spec.qualified_name,
            "trigger",
            f"{spec.qualified_name}: {failed} of {len(seen)} exports failed in the last "
            f"{window} ({share:.0%}, over {rule.threshold.fraction:.0%})",
            details={
                "failed": failed,
                "attempts": len(seen),
                "window_seconds": int(window.total_seconds()),
            },
        )
    return alerter.decide("failure_rate", spec, over, now, f"{share:.0%} of {len(seen)}")


# -- the scheduler -------------------------------------------------------------------
def scheduled(
    config: ResolvedConfig,
    tables: Iterable[str],
    options: Any,
    now: datetime,
) -> list[Delivery]:
    """After a scheduler tick: ``failure_rate`` of each table, then the DLQ rules.
    ``options`` is the scheduler's ``RunOptions``. Never raises."""
    from dpexport.storage.uri import StoreResolver

    try:
        resolver = StoreResolver(options.local_root)
        alerter = Alerter(
            config,
            lambda spec: resolver.resolve(spec.destination)[0],
            options.deliver,
            options.alert_timeout or DEFAULT_TIMEOUT,
        ).budget()
        specs = [config.table(t) for t in tables]
        out: list[Delivery] = []
        for spec in specs:
            out += failure_rate(alerter, spec, now)
        return out + _dlq_rules(alerter, specs, options.local_root, now)
    except Exception as exc:
        log.error("the scheduler's alert rules not evaluated: %s", exc)
        return []


def _dlq_rules(
    alerter: Alerter, specs: Sequence[TableSpec], local_root: Any, now: datetime
) -> list[Delivery]:
    """``dlq_escalation`` and ``manual_review_sla`` of each table, from its DLQ entries."""
    from dpexport.flow.rerun import dlq_entries
    from dpexport.reliability.dlq import DlqSettings

    settings = DlqSettings.from_config(alerter.config)
    entries = [e for _, e in dlq_entries(alerter.config, local_root, now)]
    out: list[Delivery] = []
    for spec in specs:
        mine = [e for e in entries if e.table in (spec.qualified_name, spec.table)]
        for rule, limit in (
            ("dlq_escalation", settings.escalation_after),
            ("manual_review_sla", settings.manual_review_sla),
        ):
            late = [e for e in mine if e.age >= limit]
            alert = None
            if late:
                alert = Alert(
                    rule,
                    spec.qualified_name,
                    "trigger",
                    f"{len(late)} DLQ entr{'y' if len(late) == 1 else 'ies'} of "
                    f"{spec.qualified_name} older than {limit} ({rule})",
                    "critical" if rule == "dlq_escalation" else "error",
                    {
                        "export_ids": [e.export_id for e in late][:20],
                        "oldest_hours": round(max(e.age for e in late).total_seconds() / 3600, 2),
                    },
                )
            out += alerter.decide(rule, spec, alert, now, "no DLQ entry that old")
    return out


# -- while the export runs -----------------------------------------------------------
def watch(ctx: Any, spec: TableSpec) -> Watchdog:
    """A started ``export_duration`` watchdog for one export (a no-op without the rule)."""
    from dpexport.alerts.watchdog import Watchdog

    rule = ctx.config.metrics.export_duration
    if rule is None:
        return Watchdog(None, list, list)
    try:
        return _watch(ctx, spec, rule.threshold)
    except Exception as exc:  # the export runs without its watchdog, never fails for it
        log.error("export_duration watchdog of %s not started: %s", spec.qualified_name, exc)
        return Watchdog(None, list, list)


def _watch(ctx: Any, spec: TableSpec, limit: timedelta) -> Watchdog:
    from dpexport.alerts.watchdog import Watchdog

    alerter = for_run(ctx)
    name = spec.qualified_name
    alert = Alert(
        "export_duration",
        name,
        "trigger",
        f"export of {name} has been running for more than {limit}",
        details={"threshold_seconds": limit.total_seconds()},
    )
    dog = Watchdog(
        limit.total_seconds(),
        lambda: alerter.budget().decide("export_duration", spec, alert, datetime.now(UTC), ""),
        lambda: alerter.budget().decide(
            "export_duration", spec, None, datetime.now(UTC), "the export ended"
        ),
        alerter.timeout,
    )
    dog.start()
    return dog


# -- commands ------------------------------------------------------------------------
def send_test(
    config: ResolvedConfig,
    channel: str | None,
    deliver: Deliver | None = None,
    timeout: float = DEFAULT_TIMEOUT,
) -> list[Delivery]:
    """``alerts test``: a test alert (rule ``test``) to every configured channel, or to
    ``channel``; no incident is kept. A channel not configured is a ``UsageError``."""
    from dpexport.errors import UsageError

    configured = sorted(name.lower() for name in config.metrics.channels)
    if not configured:
        raise UsageError(
            "no alert channel is configured: add metrics.channels (pagerduty, slack or "
            "email; CONTRACT §10) to the config"
        )
    if channel is not None and channel.lower() not in configured:
        raise UsageError(
            f"alert channel {channel!r} is not configured; metrics.channels has: "
            + ", ".join(configured)
        )
    names = [channel.lower()] if channel else configured
    alert = Alert(
        "test", "", "trigger", "dpexport test alert: this channel works", "info", {"test": True}
    )
    alerter = Alerter(config, _no_store, deliver, timeout)
    return alerter.budget().send(alert, [Target(n) for n in names])


def _no_store(spec: TableSpec) -> Store:
    raise AssertionError(f"a test alert keeps no incident ({spec.qualified_name})")
