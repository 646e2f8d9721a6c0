"""The dead-letter queue (spec 7.2, CONTRACT §4): failed exports kept for review and retry.

Layout, under ``dead-letter-queue/`` at the root of the bucket the export wrote to, or
under ``storage_location`` when the config sets one (``reliability.places``); each
function takes that folder as ``root``::

    failed_exports/{export_id}/export_request.json   what to run again (table, at, trigger)
    failed_exports/{export_id}/error_details.json    the last error, when, how often retried
    failed_exports/{export_id}/retry_history.json    every failed attempt (retry.Attempt)
    poison_messages/{export_id}.json                 an entry whose attempts are exhausted
    poison_messages/{export_id}.failure_reason.txt   why it was given up, for a human
    quarantined_rows/{export_id}/{entity}.jsonl.gz   rows a data check kept out (CONTRACT §9)

An entry is *due for auto-retry* once ``processing.auto_retry_after`` (6 hours) has
passed since its last attempt, and *escalated* once ``processing.escalation_after``
(48 hours) has passed since it first failed. ``purge`` deletes what is older than
``retention`` (90 days) unless forced. Functions here take a Store and an explicit
``now``; re-running an export is injected (``rerun``), so this module never imports
the runner (which calls :func:`record_failure`).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol

from dpexport.config.spec import ResolvedConfig
from dpexport.errors import DpexportError, TransientError
from dpexport.publish.manifest import dumps, rfc3339
from dpexport.reliability.retry import Attempt, RetryPolicy
from dpexport.storage import layout
from dpexport.storage.base import Store
from dpexport.timestamps import parse_rfc3339

if TYPE_CHECKING:
    from dpexport.config.models import DlqConfiguration

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DlqSettings:
    """Spec 7.2 ``retention`` and ``processing``, resolved with the spec's values as defaults."""

    retention: timedelta = timedelta(days=90)
    auto_retry_after: timedelta = timedelta(hours=6)
    escalation_after: timedelta = timedelta(hours=48)
    manual_review_sla: timedelta = timedelta(hours=24)

    @classmethod
    def from_config(cls, config: ResolvedConfig | DlqConfiguration | None) -> DlqSettings:
        """From a ``ResolvedConfig`` (its ``dlq_configuration``), a ``DlqConfiguration``
        model, or ``None``."""
        block = config.dlq_configuration if isinstance(config, ResolvedConfig) else config
        if block is None:
            return cls()
        proc = block.processing
        base = cls()
        return cls(
            retention=block.retention or base.retention,
            auto_retry_after=proc.auto_retry_after or base.auto_retry_after,
            escalation_after=proc.escalation_after or base.escalation_after,
            manual_review_sla=proc.manual_review_sla or base.manual_review_sla,
        )

    def next_retry(self, failed_at: datetime) -> datetime:
        """When an entry failing at ``failed_at`` becomes due (the FAILURE marker's
        ``next_retry``)."""
        return failed_at + self.auto_retry_after


@dataclass(frozen=True)
class DlqEntry:
    """One DLQ item as ``dlq list`` shows it. ``state`` is ``open`` (under
    ``failed_exports/``) or ``poisoned``."""

    export_id: str
    state: str
    table: str | None
    request: dict[str, Any]
    error: dict[str, Any]
    history: list[dict[str, Any]]
    failed_at: datetime
    last_attempt_at: datetime
    age: timedelta
    due_for_auto_retry: bool
    escalate: bool
    uri: str

    @property
    def attempts(self) -> int:
        return len(self.history)

    def to_json(self) -> dict[str, Any]:
        return {
            "export_id": self.export_id,
            "state": self.state,
            "table": self.table,
            "at": self.request.get("at"),
            "trigger": self.request.get("trigger"),
            "failed_at": rfc3339(self.failed_at),
            "last_attempt_at": rfc3339(self.last_attempt_at),
            "age_hours": round(self.age.total_seconds() / 3600, 2),
            "attempts": self.attempts,
            "dlq_retries": int(self.error.get("dlq_retries", 0)),
            "code": self.error.get("code"),
            "error": self.error.get("message"),
            "due_for_auto_retry": self.due_for_auto_retry,
            "escalate": self.escalate,
            "uri": self.uri,
        }


class RerunResult(Protocol):
    """What a re-run reports (``runner.ExportResult`` fits)."""

    export_id: str | None
    status: str
    error: str | None
    reason: str | None
    already_done: bool  # SKIPPED because the export had already been committed


# -- documents ---------------------------------------------------------------------------
def export_request(
    *,
    table: str,
    at: datetime,
    trigger: str,
    export_id: str,
    principal: str | None = None,
    destination: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """The ``export_request.json`` document: enough to run the export again.
    ``table`` is ``dataset.table``; ``at`` the logical time."""
    doc: dict[str, Any] = {
        "export_id": export_id,
        "table": table,
        "at": rfc3339(at.astimezone(UTC)),
        "trigger": trigger,
        "principal": principal,
        "destination": destination,
    }
    doc.update(extra)
    return doc


def error_details(
    exc: BaseException, *, now: datetime, message: str | None = None
) -> dict[str, Any]:
    """The ``error_details.json`` document for an exception: spec 7.1 ``code``, the
    error's type, its message, whether it was retryable, and when it happened."""
    code = getattr(exc, "code", None) or "INTERNAL_ERROR"
    text = message or (
        str(exc) if isinstance(exc, DpexportError) else f"{type(exc).__name__}: {exc}"
    )
    return {
        "code": code,
        "type": type(exc).__name__,
        "message": text,
        "retryable": isinstance(exc, TransientError),
        "table": getattr(exc, "table", None),
        "uri": getattr(exc, "uri", None),
        "failed_at": rfc3339(now.astimezone(UTC)),
    }


def _history(history: Sequence[Attempt | Mapping[str, Any]]) -> list[dict[str, Any]]:
    return [h.to_json() if isinstance(h, Attempt) else dict(h) for h in history]


def _time(text: object, default: datetime) -> datetime:
    if not isinstance(text, str):
        return default
    try:
        return parse_rfc3339(text)
    except ValueError:
        return default


def _is_time(text: object, at: datetime) -> bool:
    try:
        return isinstance(text, str) and parse_rfc3339(text) == at
    except ValueError:
        return False


def _read_json(store: Store, key: str, default: Any) -> Any:
    info = store.head(key)
    if info is None:
        return default
    try:
        return json.loads(store.get(key))
    except ValueError:
        log.warning("unreadable DLQ document %s", store.uri(key))
        return default


# -- writing -----------------------------------------------------------------------------
def record_failure(
    store: Store,
    export_id: str,
    request: Mapping[str, Any],
    error: Mapping[str, Any],
    history: Sequence[Attempt | Mapping[str, Any]],
    *,
    now: datetime | None = None,
    root: str = layout.DLQ_PREFIX,
) -> str:
    """Write a failed export's three DLQ documents; returns the entry's folder URI.

    ``error`` should come from :func:`error_details`; a missing ``failed_at`` is set
    from ``now``. ``history`` is the retry history (``Retrier.history``)."""
    when = now or datetime.now(UTC)
    folder = layout.dlq_failed_prefix(export_id, root)
    err = dict(error)
    err.setdefault("failed_at", rfc3339(when.astimezone(UTC)))
    err.setdefault("dlq_retries", 0)
    store.put_bytes(folder + layout.DLQ_REQUEST, dumps(dict(request)))
    store.put_bytes(folder + layout.DLQ_HISTORY, dumps(_history(history)))
    # error_details last: list_entries skips a folder without it (a half-written entry)
    store.put_bytes(folder + layout.DLQ_ERROR, dumps(err))
    return store.uri(folder)


def remove(store: Store, export_id: str, *, root: str = layout.DLQ_PREFIX) -> None:
    """Delete an entry (open or poisoned), e.g. after a successful retry."""
    for obj in list(store.list(layout.dlq_failed_prefix(export_id, root))):
        store.delete(obj.key)
    store.delete(layout.dlq_poisoned_key(export_id, root))
    store.delete(layout.dlq_poisoned_reason_key(export_id, root))


def resolve_exported(
    store: Store,
    table: str,
    at: datetime,
    export_id: str,
    *,
    now: datetime,
    root: str = layout.DLQ_PREFIX,
) -> list[str]:
    """Remove (and return) the open entries of ``table`` at logical time ``at`` once its
    export ``export_id`` committed (a plain rerun, as ``dlq retry`` does on success).
    Poisoned entries stay: they record that retrying gave up, for someone to read."""
    owed = [
        e.export_id
        for e in list_entries(store, now, root=root)
        if (e.state, e.table) == ("open", table)
        and e.export_id != export_id
        and _is_time(e.request.get("at"), at)
    ]
    for done in owed:
        remove(store, done, root=root)
        log.info("DLQ entry %s resolved: export %s of %s committed", done, export_id, table)
    return owed


def poison(
    store: Store,
    export_id: str,
    reason: str,
    *,
    now: datetime | None = None,
    root: str = layout.DLQ_PREFIX,
) -> str:
    """Move an open entry to ``poison_messages/`` (attempts exhausted); returns its URI."""
    folder = layout.dlq_failed_prefix(export_id, root)
    doc = {
        "export_id": export_id,
        "poisoned_at": rfc3339((now or datetime.now(UTC)).astimezone(UTC)),
        "reason": reason,
        "export_request": _read_json(store, folder + layout.DLQ_REQUEST, {}),
        "error_details": _read_json(store, folder + layout.DLQ_ERROR, {}),
        "retry_history": _read_json(store, folder + layout.DLQ_HISTORY, []),
    }
    key = layout.dlq_poisoned_key(export_id, root)
    store.put_bytes(key, dumps(doc))
    reason_key = layout.dlq_poisoned_reason_key(export_id, root)
    store.put_bytes(reason_key, (reason.rstrip() + "\n").encode())
    for obj in list(store.list(folder)):
        store.delete(obj.key)
    log.warning("DLQ entry %s poisoned: %s", export_id, reason)
    return store.uri(key)


# -- reading -----------------------------------------------------------------------------
def _entry(
    store: Store,
    export_id: str,
    state: str,
    request: dict[str, Any],
    error: dict[str, Any],
    history: list[dict[str, Any]],
    uri: str,
    now: datetime,
    settings: DlqSettings,
) -> DlqEntry:
    failed_at = _time(error.get("failed_at"), now)
    last = _time(error.get("last_retry_at"), failed_at)
    age = max(now - failed_at, timedelta(0))
    return DlqEntry(
        export_id=export_id,
        state=state,
        table=request.get("table"),
        request=request,
        error=error,
        history=history,
        failed_at=failed_at,
        last_attempt_at=last,
        age=age,
        due_for_auto_retry=state == "open" and now - last >= settings.auto_retry_after,
        escalate=age >= settings.escalation_after,
        uri=uri,
    )


def read_entry(
    store: Store,
    export_id: str,
    now: datetime,
    settings: DlqSettings | None = None,
    *,
    root: str = layout.DLQ_PREFIX,
) -> DlqEntry | None:
    """One entry by export id (open or poisoned), or ``None``."""
    settings = settings or DlqSettings()
    folder = layout.dlq_failed_prefix(export_id, root)
    error = _read_json(store, folder + layout.DLQ_ERROR, None)
    if isinstance(error, dict):
        return _entry(
            store,
            export_id,
            "open",
            _read_json(store, folder + layout.DLQ_REQUEST, {}),
            error,
            _read_json(store, folder + layout.DLQ_HISTORY, []),
            store.uri(folder),
            now,
            settings,
        )
    poisoned = layout.dlq_poisoned_key(export_id, root)
    doc = _read_json(store, poisoned, None)
    if isinstance(doc, dict):
        return _entry(
            store,
            export_id,
            "poisoned",
            doc.get("export_request") or {},
            doc.get("error_details") or {},
            doc.get("retry_history") or [],
            store.uri(poisoned),
            now,
            settings,
        )
    return None


def list_entries(
    store: Store,
    now: datetime,
    settings: DlqSettings | None = None,
    *,
    root: str = layout.DLQ_PREFIX,
) -> list[DlqEntry]:
    """Every entry of a store's DLQ, open ones first, oldest first within each state."""
    ids: list[tuple[str, str]] = []
    for obj in store.list(layout.dlq_failed_folder(root)):
        found = layout.parse_dlq_key(obj.key, root)
        if found is not None and found.name == layout.DLQ_ERROR:
            ids.append(("open", found.export_id))
    for obj in store.list(layout.dlq_poisoned_folder(root)):
        found = layout.parse_dlq_key(obj.key, root)
        if found is not None and found.name == layout.DLQ_POISONED_DOCUMENT:
            ids.append(("poisoned", found.export_id))
    entries = []
    for _, eid in ids:
        entry = read_entry(store, eid, now, settings, root=root)
        if entry is not None:
            entries.append(entry)
    return sorted(entries, key=lambda e: (e.state != "open", e.failed_at, e.export_id))


def purge(
    store: Store,
    now: datetime,
    force: bool = False,
    settings: DlqSettings | None = None,
    *,
    root: str = layout.DLQ_PREFIX,
) -> list[str]:
    """Delete entries (and quarantined rows) older than the retention, or all of them
    when ``force``; returns the export ids removed."""
    settings = settings or DlqSettings()
    purged: list[str] = []
    for entry in list_entries(store, now, settings, root=root):
        if force or entry.age >= settings.retention:
            remove(store, entry.export_id, root=root)
            purged.append(entry.export_id)
    for obj in list(store.list(layout.dlq_quarantined_folder(root))):
        old = obj.updated is not None and now - obj.updated >= settings.retention
        if force or old:
            store.delete(obj.key)
            found = layout.parse_dlq_key(obj.key, root)
            eid = found.export_id if found is not None else obj.key
            if eid not in purged:
                purged.append(eid)
    return purged


# -- retrying ----------------------------------------------------------------------------
@dataclass
class RetryOutcome:
    """What ``dlq retry`` did with one entry: ``resolved`` (removed), ``failed``
    (still open, one more DLQ retry counted), ``poisoned``, ``in_progress`` (another
    runner holds the export) or ``skipped`` (poisoned entries are not re-run)."""

    export_id: str
    outcome: str
    new_export_id: str | None = None
    error: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "export_id": self.export_id,
            "outcome": self.outcome,
            "new_export_id": self.new_export_id,
            "error": self.error,
        }


def retry_entry(
    store: Store,
    entry: DlqEntry,
    rerun: Callable[[dict[str, Any]], RerunResult],
    *,
    now: datetime,
    policy: RetryPolicy | None = None,
    root: str = layout.DLQ_PREFIX,
) -> RetryOutcome:
    """Run an entry's export request again through ``rerun``.

    Success (or SKIPPED because the export already committed) removes the entry; any
    other SKIPPED (another runner holds the export) leaves it open. A new
    failure is folded into this entry — the re-run's own DLQ entry, written by the
    runner, is merged in and removed — and counts one DLQ retry; once DLQ retries reach
    ``policy.max_attempts`` the entry is poisoned.
    """
    if entry.state != "open":
        return RetryOutcome(entry.export_id, "skipped", error="poisoned entries are not re-run")
    result = rerun(entry.request)
    done = result.status == "SUCCESS" or (result.status == "SKIPPED" and result.already_done)
    if done:
        remove(store, entry.export_id, root=root)
        return RetryOutcome(entry.export_id, "resolved", result.export_id)
    if result.status == "SKIPPED":
        return RetryOutcome(entry.export_id, "in_progress", result.export_id, result.reason)

    folder = layout.dlq_failed_prefix(entry.export_id, root)
    history = list(entry.history)
    error = dict(entry.error)
    new = read_entry(store, result.export_id, now, root=root) if result.export_id else None
    if new is not None and new.export_id != entry.export_id:
        history += new.history
        error.update({k: v for k, v in new.error.items() if k not in ("failed_at", "dlq_retries")})
        remove(store, new.export_id, root=root)
    elif result.error:
        error["message"] = result.error
    history.append(
        {
            "attempt": len(history) + 1,
            "operation": f"dlq retry as {result.export_id}",
            "code": error.get("code"),
            "error_type": error.get("type"),
            "message": result.error or error.get("message"),
            "at": rfc3339(now),
            "delay_seconds": None,
            "gave_up": None,
        }
    )
    retries = int(error.get("dlq_retries", 0)) + 1
    error["dlq_retries"] = retries
    error["last_retry_at"] = rfc3339(now)
    store.put_bytes(folder + layout.DLQ_HISTORY, (json.dumps(history, indent=2) + "\n").encode())
    store.put_bytes(folder + layout.DLQ_ERROR, dumps(error))
    limit = (policy or RetryPolicy()).max_attempts
    if retries >= limit:
        reason = (
            f"gave up after {retries} DLQ retries (max_attempts {limit}); last error: "
            f"{error.get('code')}: {error.get('message')}"
        )
        poison(store, entry.export_id, reason, now=now, root=root)
        return RetryOutcome(entry.export_id, "poisoned", result.export_id, result.error)
    return RetryOutcome(entry.export_id, "failed", result.export_id, result.error)
