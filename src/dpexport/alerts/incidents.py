"""Open incidents (CONTRACT §10): one per alert rule and table, in
``_state/alerts/{rule}/{table}.json`` of the table's bucket.

An incident is opened by a conditional create (``put_if_absent``), so of two runners
that see the same condition only one sends the trigger, and a second failure while it
is open sends nothing. It is closed by a compare-and-swap that marks it ``resolving``
(the runner that wins sends the resolve, then deletes it), so a resolve is sent once
too. An event no channel took is tried again at the next evaluation. Store errors
propagate: the rules that call this catch them (an alert never changes an export's
outcome).
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from dpexport.alerts.model import Alert, Delivery, Target
from dpexport.errors import AlreadyExists, NotFound, PreconditionFailed
from dpexport.publish.manifest import dumps, rfc3339
from dpexport.storage import layout
from dpexport.storage.base import Store

log = logging.getLogger(__name__)

#: sends one alert to its targets and reports each delivery (bounded by the caller)
Send = Callable[[Alert, Sequence[Target]], list[Delivery]]


def _document(alert: Alert, now: datetime) -> dict[str, Any]:
    return {
        "dedup_key": alert.dedup_key,
        "rule": alert.rule,
        "table": alert.table,
        "state": "open",
        "opened_at": rfc3339(now),
        "summary": alert.summary,
        "severity": alert.severity,
        "details": alert.details,
        "deliveries": [],
    }


def fire(
    store: Store, alert: Alert, targets: Sequence[Target], send: Send, now: datetime
) -> list[Delivery]:
    """Open the incident of ``alert`` and send its trigger; nothing when it is open
    already (this runner's or another's). When no channel took the trigger (down,
    failing), the incident is not kept: the next evaluation sends it again."""
    key = layout.alert_incident_key(alert.rule, alert.table)
    doc = _document(alert, now)
    try:
        info = store.put_if_absent(key, dumps(doc))
    except AlreadyExists:
        log.debug("incident %s is open already: not sent again", alert.dedup_key)
        return []
    deliveries = send(alert, targets)
    if not _reached(deliveries):  # no channel took it: the next evaluation tries again
        store.delete(key)
        return deliveries
    doc["deliveries"] = [d.to_json() for d in deliveries]
    with contextlib.suppress(PreconditionFailed):  # for `alerts list`; it stands anyway
        store.replace_if_match(key, dumps(doc), info.version)
    return deliveries


def _reached(deliveries: Sequence[Delivery]) -> bool:
    return any(d.outcome == "sent" for d in deliveries)


def clear(
    store: Store,
    rule: str,
    table: str,
    targets: Sequence[Target],
    send: Send,
    why: str,
) -> list[Delivery]:
    """Resolve the open incident of ``rule`` and ``table``: its resolve is sent and the
    incident removed (kept open when no channel took the resolve, so the next
    evaluation resends it); nothing when none is open or another runner resolves it."""
    key = layout.alert_incident_key(rule, table)
    info = store.head(key)
    if info is None:
        return []
    doc = _read(store, key)
    if doc is None or doc.get("state") == "resolving":
        return []
    doc["state"] = "resolving"
    try:
        claimed = store.replace_if_match(key, dumps(doc), info.version)
    except (PreconditionFailed, NotFound):
        return []  # another runner changed or resolved it first
    alert = Alert(
        rule,
        table,
        "resolve",
        f"resolved: {doc.get('summary') or rule} ({why})",
        severity=doc.get("severity") or "error",
        details=dict(doc.get("details") or {}),
    )
    deliveries = send(alert, targets)
    if _reached(deliveries):
        store.delete(key)
    else:  # no channel took the resolve: open again, so the next evaluation resends it
        doc["state"] = "open"
        with contextlib.suppress(PreconditionFailed, NotFound):
            store.replace_if_match(key, dumps(doc), claimed.version)
    return deliveries


def _read(store: Store, key: str) -> dict[str, Any] | None:
    try:
        doc = json.loads(store.get(key))
    except NotFound:
        return None
    except ValueError:
        log.warning("incident %s is not JSON: taking it as open", store.uri(key))
        return {"state": "open"}
    return doc if isinstance(doc, dict) else {"state": "open"}


def open_incidents(store: Store) -> list[dict[str, Any]]:
    """Every incident open in ``store``, by rule and table (``alerts list``)."""
    out = []
    for obj in store.list(layout.ALERTS_STATE_PREFIX):
        if not obj.key.endswith(".json"):
            continue
        doc = _read(store, obj.key)
        if doc is not None:
            out.append({**doc, "uri": store.uri(obj.key)})
    return sorted(out, key=lambda d: (str(d.get("rule")), str(d.get("table"))))
