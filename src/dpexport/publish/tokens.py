"""Idempotency tokens and leases (spec 7.3, CONTRACT §5, §8).

Two documents under ``idempotency-tokens/`` in the destination's bucket, or under
``idempotency_design.storage.location`` when the config sets one (``reliability.places``;
each function takes that folder as ``root``):

- the **token** ``{table}_{partition}_{logical_epoch}_{hash8}.json`` records one
  export of one table at one logical time with one config: IN_PROGRESS, DONE or
  FAILED. The same config and the same logical time map to the same token, so a
  retry or a second runner finds the first one's outcome; a changed config hashes
  to a new token.
- the **lease** ``_leases/{dataset}.{table}.json`` says which process is exporting
  the table now. It is created with a conditional write, renewed by
  compare-and-swap every ``renew_every`` and lapses ``expires_after`` the last
  renewal; a lease whose holder was a process on this host that no longer exists is
  taken over at once. Only the lease holder may commit.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import threading
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from dpexport.config.spec import TableSpec
from dpexport.errors import AlreadyExists, NotFound, PreconditionFailed
from dpexport.publish.commit import Owner
from dpexport.publish.manifest import dumps, rfc3339
from dpexport.storage import layout
from dpexport.storage.base import Store
from dpexport.timestamps import parse_rfc3339

log = logging.getLogger(__name__)

RENEW_EVERY = timedelta(seconds=30)
EXPIRES_AFTER = timedelta(minutes=2)


def config_hash(spec: TableSpec) -> str:
    """8 hex digits over the table's resolved config: a changed config is a new token.
    ``origins`` (where in the YAML each setting came from) is bookkeeping: moving a
    block or reordering ``exports`` must not export the same logical time again."""
    doc = json.dumps(_settings(spec), sort_keys=True, default=str)
    return hashlib.sha256(doc.encode()).hexdigest()[:8]


def _settings(value: Any) -> Any:
    """``value`` with every dataclass reduced to the fields that differ from their
    defaults, so a setting added to dpexport later, left at its default, leaves every
    token name as it was (a new name would export that logical time again)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        out: dict[str, Any] = {}
        for f in dataclasses.fields(value):
            current = getattr(value, f.name)
            if f.name == "origins" or _is_default(f, current):
                continue
            out[f.name] = _settings(current)
        return out
    if isinstance(value, list | tuple):
        return [_settings(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _settings(v) for k, v in value.items()}
    return value


def _is_default(f: dataclasses.Field[Any], current: Any) -> bool:
    if f.default is not dataclasses.MISSING:
        return bool(current == f.default)
    if f.default_factory is not dataclasses.MISSING:
        return bool(current == f.default_factory())
    return False


def token_name(spec: TableSpec, logical_time: datetime) -> str:
    """``{table}_{partition}_{logical_epoch}_{hash8}`` (spec 7.3 with the logical time)."""
    return layout.token_name(spec.table, logical_time, config_hash(spec))


def lease_key(spec: TableSpec, root: str = layout.TOKENS_PREFIX) -> str:
    return layout.lease_key(spec.dataset, spec.table, root)


@dataclass
class Token:
    name: str
    status: str  # IN_PROGRESS | DONE | FAILED
    export_id: str | None
    logical_time: str
    config_hash: str
    updated: str
    result: dict[str, Any] | None = None
    error: str | None = None
    lease: str | None = None  # the table lease that guards the export while IN_PROGRESS


def read_token(
    store: Store, name: str, root: str = layout.TOKENS_PREFIX
) -> tuple[Token | None, str | None]:
    """The token and its version, or (None, None); (None, version) for a token that is
    not one (truncated, garbled), logged by name.

    A damaged token is treated as absent, so the caller replaces it by compare-and-swap
    against that version: what it recorded is not lost, for the committed manifests
    (and the watermark rebuilt from them) decide what the export publishes, and a
    rerun of an export that committed publishes nothing twice."""
    key = layout.token_key(name, root)
    info = store.head(key)
    if info is None:
        return None, None
    try:
        data = store.get(key)
    except NotFound:
        return None, None
    try:
        doc = json.loads(data)
        if not isinstance(doc, dict) or not isinstance(doc.get("status"), str):
            raise ValueError("it is not a token document")
        token = Token(**doc)
    except (ValueError, TypeError) as exc:
        log.warning(
            "token %s is not valid JSON or not a token (%s): taking it as absent; the "
            "export replaces it, and the committed manifests decide what it publishes",
            store.uri(key),
            exc,
        )
        return None, info.version
    return token, info.version


def create_token(store: Store, token: Token, root: str = layout.TOKENS_PREFIX) -> None:
    """Create the token IN_PROGRESS by a conditional write; a token a failed or crashed
    attempt left is replaced by compare-and-swap (the caller holds the table's lease).
    Raises AlreadyExists if it is DONE: that export already happened."""
    token.updated = rfc3339(datetime.now(UTC))
    body = dumps(asdict(token))
    key = layout.token_key(token.name, root)
    try:
        store.put_if_absent(key, body)
        return
    except AlreadyExists:
        pass
    old, version = read_token(store, token.name, root)
    if old is not None and old.status == "DONE":
        raise AlreadyExists(f"token {token.name} is DONE (export {old.export_id})")
    store.replace_if_match(key, body, version)


def write_token(store: Store, token: Token, root: str = layout.TOKENS_PREFIX) -> None:
    """Record the token's new state (last writer wins: only the lease holder writes)."""
    token.updated = rfc3339(datetime.now(UTC))
    store.put_bytes(layout.token_key(token.name, root), dumps(asdict(token)))


class LeaseLost(Exception):
    """Another runner took the table's lease: this export must not commit."""


class Lease:
    """The right to export one table now; renewed in the background while held."""

    def __init__(
        self,
        store: Store,
        key: str,
        export_id: str,
        *,
        renew_every: timedelta = RENEW_EVERY,
        expires_after: timedelta = EXPIRES_AFTER,
    ) -> None:
        self.store = store
        self.key = key
        self.export_id = export_id
        self.renew_every = renew_every
        self.expires_after = expires_after
        self.owner = Owner.me()
        self._version: str | None = None
        self._lost = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def _doc(self) -> bytes:
        now = datetime.now(UTC)
        return dumps(
            {
                "holder": asdict(self.owner),
                "export_id": self.export_id,
                "renewed": rfc3339(now),
                "expires": rfc3339(now + self.expires_after),
            }
        )

    def acquire(self) -> tuple[bool, str | None]:
        """Take the lease: (True, None), or (False, the holder's export id)."""
        try:
            self._version = self.store.put_if_absent(self.key, self._doc()).version
            self._start()
            return True, None
        except AlreadyExists:
            pass
        info = self.store.head(self.key)
        if info is None:
            return self.acquire()
        try:
            doc = json.loads(self.store.get(self.key))
            holder = Owner(**doc["holder"])
            expired = parse_rfc3339(doc["expires"]) <= datetime.now(UTC)
            other = doc.get("export_id")
        except (NotFound, ValueError, KeyError, TypeError):
            holder, expired, other = None, True, None
        if not (expired or holder is None or holder.is_dead_here()):
            return False, other
        try:  # take over a lapsed lease; of several takers only one CAS succeeds
            self._version = self.store.replace_if_match(self.key, self._doc(), info.version).version
        except PreconditionFailed:
            return False, other
        log.warning(
            "took over the lease of %s from export %s (%s)",
            self.key,
            other,
            "expired" if expired else "holder process gone",
        )
        self._start()
        return True, None

    def hand_to(self, export_id: str) -> bool:
        """Name ``export_id`` as the export working under this held lease (a command that
        took the table's lease before it runs an export hands it over); False if the lease
        was taken over meanwhile."""
        self.export_id = export_id
        try:
            self.renew()
        except LeaseLost:
            return False
        return True

    def _start(self) -> None:
        self._thread = threading.Thread(target=self._renew_loop, name="dpexport-lease", daemon=True)
        self._thread.start()

    def _renew_loop(self) -> None:
        while not self._stop.wait(self.renew_every.total_seconds()):
            try:
                self.renew()
            except LeaseLost:
                return
            except Exception as exc:  # a failed renewal is retried at the next tick
                log.warning("could not renew lease %s: %s", self.key, exc)

    def renew(self) -> None:
        """Extend the lease by compare-and-swap; raise LeaseLost if it was taken."""
        with self._lock:
            if self._lost.is_set():
                raise LeaseLost(self.key)
            try:
                self._version = self.store.replace_if_match(
                    self.key, self._doc(), self._version
                ).version
            except PreconditionFailed:
                self._lost.set()
                raise LeaseLost(self.key) from None

    def check(self) -> None:
        """Before the commit point: still ours, and extended for the commit's duration."""
        self.renew()

    def release(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        with self._lock:
            if self._lost.is_set():
                return
            info = self.store.head(self.key)
            if info is not None and info.version == self._version:
                self.store.delete(self.key)
