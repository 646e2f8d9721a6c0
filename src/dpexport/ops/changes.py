"""``on_change`` tables (spec 3.1 ``schedule: on_change``): whether a table changed since
its last committed export, from the warehouse's change marker and the marker kept with
the exports (``layout.change_marker_key``)."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from dpexport.config.spec import ResolvedConfig
from dpexport.engines.base import Engine
from dpexport.errors import DpexportError, NotFound, PreconditionFailed
from dpexport.storage.base import Store

log = logging.getLogger("dpexport.ops.scheduler")


@dataclass(frozen=True)
class Change:
    """An ``on_change`` table at a poll: its change marker now (None: unreadable), and
    the one its last committed export had, kept at ``key`` in ``store``."""

    store: Store
    key: str
    marker: str | None
    last: str | None

    @property
    def changed(self) -> bool:
        return self.marker is None or self.marker != self.last

    def remember(self, at: datetime, export_id: str | None) -> None:
        """Keep ``marker`` as the committed export's (at poll ``at``). Lost, the next poll
        exports the table once more: a second FULL_REFRESH, never a missed change."""
        if self.marker is None:
            return
        doc = {"marker": self.marker, "export_id": export_id, "logical_time": at.isoformat()}
        body = json.dumps(doc, sort_keys=True).encode()
        try:
            for _ in range(5):  # a second scheduler writing the same marker: read, retry
                info = self.store.head(self.key)
                try:
                    self.store.replace_if_match(self.key, body, info.version if info else None)
                    return
                except PreconditionFailed:
                    continue
        except DpexportError as exc:
            log.error("on_change: cannot keep the change marker at %s: %s", self.key, exc)


def _last_marker(store: Store, key: str) -> str | None:
    try:
        doc = json.loads(store.get(key))
    except NotFound:
        return None
    except (DpexportError, ValueError) as exc:
        log.error("on_change: cannot read the change marker at %s: %s", key, exc)
        return None
    marker = doc.get("marker") if isinstance(doc, dict) else None
    return str(marker) if marker is not None else None


def poll_change(
    config: ResolvedConfig, engine: Engine, table: str, local_root: Path | None
) -> Change:
    """Whether ``table`` changed since its last committed export. A marker or state
    that cannot be read counts as a change: the export then runs (and a failure is
    reported as any export's), a change is never missed."""
    from dpexport.reliability.retry import Retrier, RetryingStore, RetryPolicy
    from dpexport.storage import layout
    from dpexport.storage.uri import StoreResolver

    spec = config.table(table)
    store, dest_key = StoreResolver(local_root).resolve(spec.destination)
    dest_key = dest_key if not dest_key or dest_key.endswith("/") else dest_key + "/"
    store = RetryingStore(store, Retrier(RetryPolicy.from_config(config)))
    key = layout.change_marker_key(spec.dataset, spec.table, dest_key)
    marker: str | None = None
    try:
        marker = engine.change_marker(spec.dataset, spec.table)
    except DpexportError as exc:
        log.error("on_change %s: cannot read its change marker: %s", table, exc)
    return Change(store, key, marker, _last_marker(store, key))
