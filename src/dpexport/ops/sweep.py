"""``dpexport lifecycle sweep``: delete what the auto_delete rules make due, never what
a retention rule holds, and tier Azure blobs by age (see :mod:`dpexport.ops.lifecycle`
for the rules and their sources)."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from dpexport.errors import ExportError
from dpexport.ops.lifecycle import (
    AZURE_TIER,
    TIER_ORDER,
    Policy,
    lifecycle_stores,
    opener_for,
)
from dpexport.ops.replicate import Opener
from dpexport.ops.retention import RetentionHeld
from dpexport.publish.commit import Owner
from dpexport.storage import layout
from dpexport.storage.base import ObjectInfo, Store, innermost, retained_until
from dpexport.storage.s3 import ObjectLocked
from dpexport.timestamps import parse_rfc3339


# -- sweep ---------------------------------------------------------------------------------
@dataclass
class SweepItem:
    """One thing sweep found due: an export folder, a staging area, a DLQ entry, a token
    (its keys go together). ``status``: deleted | would delete | kept | tiered | would
    tier; a ``kept`` item's ``reason`` says why (``retention until YYYY-MM-DD (...)``,
    a live owner, a journal)."""

    store: str
    rule: str
    what: str
    keys: list[str]
    age_days: float
    status: str
    reason: str | None = None
    #: the server's refusal of a deletion (Object Lock), when there was one
    refused: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "store": self.store,
            "rule": self.rule,
            "what": self.what,
            "keys": self.keys,
            "age_days": round(self.age_days, 2),
            "status": self.status,
            "reason": self.reason,
            "refused": self.refused,
        }

    def line(self) -> str:
        why = f" ({self.reason})" if self.reason else ""
        return (
            f"{self.status:12} {self.rule:18} {self.store}/{self.what} "
            f"[{len(self.keys)} object(s), {self.age_days:.1f} days]{why}"
        )


@dataclass
class _Group:
    rule: str
    what: str
    objects: list[ObjectInfo] = field(default_factory=list)

    def age(self, now: datetime) -> timedelta:
        times = [o.updated for o in self.objects if o.updated is not None]
        return now - max(times) if times else timedelta(0)


def sweep(
    config: Any,
    *,
    now: datetime,
    dry_run: bool = False,
    local_root: Path | None = None,
    opener: Opener | None = None,
) -> tuple[list[SweepItem], list[str]]:
    """Delete (or with ``dry_run`` only list) what is due on every store of the config;
    returns the items and the errors (one per store that could not be swept)."""
    resolve = opener_for(local_root, opener)
    policy = Policy.from_config(config, resolve)
    items: list[SweepItem] = []
    errors: list[str] = []
    for store in lifecycle_stores(config, resolve):
        try:
            found = sweep_store(store, policy, now=now, dry_run=dry_run)
        except ExportError as exc:
            errors.append(f"{store.url}: {exc}")
            continue
        items += found
        # a deletion the server refused (its Object Lock holds what sweep's clock says is
        # free) is an error as well as a kept item: the two disagree on a date
        errors += [f"{i.store}/{i.what}: {i.refused}" for i in found if i.refused]
    return items, errors


def sweep_store(store: Store, policy: Policy, *, now: datetime, dry_run: bool) -> list[SweepItem]:
    objects = list(store.list(""))
    tokens_root = policy.roots.tokens_root(store)
    live = _live_leases(store, objects, now, tokens_root)
    items: list[SweepItem] = []
    for group, limit in _groups(objects, policy, store):
        age = group.age(now)
        if limit is None or age < limit:
            continue
        keys = sorted((o.key for o in group.objects), key=_delete_order)
        item = SweepItem(store.url, group.rule, group.what, keys, age / timedelta(days=1), "")
        written = {o.key: o.updated for o in group.objects}
        reason = next((r for k in keys if (r := policy.retention(store, k, written[k], now))), None)
        item.reason = reason or _keep_reason(store, group, live, tokens_root)
        if item.reason:
            item.status = "kept"
        elif _server_lock(store, item):
            pass
        elif dry_run:
            item.status = "would delete"
        else:
            _delete(store, item)
        items.append(item)
    deleted = {k for i in items if i.status in ("deleted", "would delete") for k in i.keys}
    items += _tier(store, policy, now, dry_run, deleted)
    return items


def _server_lock(store: Store, item: SweepItem) -> bool:
    """Whether the server's own lock (S3 Object Lock) still holds a key of the item that
    sweep's clock says is free: then nothing of it is deleted, and the item says so."""
    held = [(k, u) for k in item.keys if (u := retained_until(store, k)) is not None]
    if not held:
        return False
    key, until = max(held, key=lambda h: h[1])
    item.status, item.reason = "kept", f"retention until {until:%Y-%m-%d}"
    item.refused = (
        f"{store.uri(key)} is kept until {until:%Y-%m-%d} by the server's object lock "
        f"({len(held)} of {len(item.keys)} object(s) locked); not deleted"
    )
    return True


def _delete(store: Store, item: SweepItem) -> None:
    """Delete the item's keys in order; a key the server's lock holds (taken since it
    was asked) stops it there and keeps the item."""
    item.status = "deleted"
    for key in item.keys:
        try:
            store.delete(key)
        except (ObjectLocked, RetentionHeld) as exc:
            until = getattr(exc, "until", None)
            date = f"{until:%Y-%m-%d}" if until is not None else "unknown"
            item.status, item.reason, item.refused = "kept", f"retention until {date}", str(exc)
            return


def _groups(
    objects: Sequence[ObjectInfo], policy: Policy, store: Store
) -> Iterator[tuple[_Group, timedelta | None]]:
    """Each object that an auto_delete rule covers, grouped with the objects it goes with.
    The DLQ and the tokens are looked for under their roots on this store (none when
    their configured location is another store)."""
    groups: dict[tuple[str, str], _Group] = {}
    limits = {
        "temp_exports": policy.temp,
        "failed_exports": policy.failed,
        "test_exports": policy.test,
        "dlq": policy.dlq,
        "idempotency_tokens": policy.tokens,
    }
    keys = {o.key for o in objects}
    folders = {f for o in objects if _is_marker(o.key) and (f := layout.key_folder(o.key))}
    dlq_root, tokens_root = policy.roots.dlq_root(store), policy.roots.tokens_root(store)
    for obj in objects:
        key = obj.key
        found: tuple[str, str] | None = None
        staged = layout.staged_export_id(key)
        dlq = layout.parse_dlq_key(key, dlq_root) if dlq_root is not None else None
        if staged is not None:
            found = ("temp_exports", layout.staging_prefix(staged))
        elif dlq is not None:
            found = ("failed_exports" if dlq.kind == "failed" else "dlq", dlq.prefix)
        elif tokens_root is not None and _is_token_or_lease(key, tokens_root):
            found = ("idempotency_tokens", key)
        elif key.startswith(layout.TEST_EXPORTS_PREFIX):
            owner = max((f for f in folders if key.startswith(f)), key=len, default=None)
            found = ("test_exports", owner or layout.key_folder(key))
        elif layout.key_name(key) == layout.FAILURE:
            folder = layout.key_folder(key)
            in_dlq = key.startswith((layout.DLQ_PREFIX, dlq_root or layout.DLQ_PREFIX))
            if not in_dlq and _only(keys, folder, key):
                found = ("failed_exports", folder)
        if found is not None:
            groups.setdefault(found, _Group(*found)).objects.append(obj)
    for (rule, _), group in groups.items():
        yield group, limits[rule]


def _is_token_or_lease(key: str, root: str) -> bool:
    return layout.is_token_key(key, root) or layout.is_lease_key(key, root)


def _only(keys: set[str], folder: str, key: str) -> bool:
    return not any(k.startswith(folder) and k != key for k in keys)


def _is_marker(key: str) -> bool:
    name = layout.key_name(key)
    return layout.is_marker(name) or layout.is_manifest(name)


def _delete_order(key: str) -> tuple[int, str]:
    """Markers first, manifests next, the rest, a commit journal last: no SUCCESS ever
    points at a missing file, and a half-deleted staging never looks committed."""
    name = layout.key_name(key)
    if layout.is_marker(name):
        return 0, key
    if layout.is_manifest(name):
        return 1, key
    return (3 if name == layout.STAGING_JOURNAL else 2), key


def _live_leases(
    store: Store, objects: Iterable[ObjectInfo], now: datetime, root: str | None
) -> list[dict[str, Any]]:
    """Lease documents under the tokens' ``root`` that have not expired at ``now`` and
    whose holder may be alive."""
    live: list[dict[str, Any]] = []
    if root is None:
        return live
    for obj in objects:
        if not layout.is_lease_key(obj.key, root):
            continue
        doc = _json(store, obj.key)
        try:
            expires = parse_rfc3339(doc["expires"])
            holder = Owner(**doc["holder"])
        except (KeyError, TypeError, ValueError):
            continue
        if expires.replace(tzinfo=now.tzinfo) > now and not holder.is_dead_here():
            leased = layout.parse_lease_key(obj.key, root)
            doc["_table"] = leased[1] if leased else None
            live.append(doc)
    return live


def _keep_reason(
    store: Store, group: _Group, live: list[dict[str, Any]], tokens_root: str | None
) -> str | None:
    """Why a due group must stay although its age says otherwise."""
    lease_exports = {d.get("export_id") for d in live}
    if group.rule == "temp_exports":
        names = {layout.key_name(o.key) for o in group.objects}
        if layout.STAGING_JOURNAL in names:
            return "holds a commit journal: the next run rolls it forward"
        if layout.staged_export_id(group.what) in lease_exports:
            return "its export holds a live lease"
        owner = _json(store, group.what + layout.STAGING_OWNER)
        try:
            holder = Owner(**owner)
        except TypeError:
            return None
        if holder.host == socket.gethostname() and not holder.is_dead_here():
            return f"its owner process {holder.pid} is alive"
    if group.rule == "idempotency_tokens" and tokens_root is not None:
        doc = _json(store, group.what)
        if layout.is_lease_key(group.what, tokens_root):
            return "a live lease" if doc.get("export_id") in lease_exports and doc else None
        if doc.get("export_id") in lease_exports:
            return "a live lease is working on it"
        token = layout.parse_token_key(group.what, tokens_root)
        if (
            doc.get("status") == "IN_PROGRESS"
            and token is not None
            and any(token.table == d["_table"] for d in live)
        ):
            return "in progress under a live lease"
    return None


def _json(store: Store, key: str) -> dict[str, Any]:
    try:
        doc = json.loads(store.get(key))
    except (ExportError, ValueError):
        return {}
    return doc if isinstance(doc, dict) else {}


def _tier(
    store: Store, policy: Policy, now: datetime, dry_run: bool, deleted: set[str]
) -> list[SweepItem]:
    """Azure: move data files and sidecars to colder tiers by age (markers and manifests
    stay readable; everything under a reserved prefix is left alone)."""
    from dpexport.storage.azure import AzureStore  # imports no SDK by itself

    backend = innermost(store)
    if not isinstance(backend, AzureStore):
        return []
    steps = [(d, AZURE_TIER[c]) for d, c in policy.transitions_for(backend.bucket_name)]
    steps = [s for s in steps if s[1] in TIER_ORDER]
    items = []
    for info, tier in backend.list_tiers(""):
        kept = layout.RESERVED_PREFIXES + policy.roots.configured_roots(store)
        if info.key in deleted or info.key.startswith(kept):
            continue
        if _is_marker(info.key):
            continue
        age = now - info.updated if info.updated else timedelta(0)
        due = [t for d, t in steps if age >= timedelta(days=d)]
        if not due:
            continue
        want = max(due, key=TIER_ORDER.index)
        if tier in TIER_ORDER and TIER_ORDER.index(tier) >= TIER_ORDER.index(want):
            continue
        if not dry_run:
            backend.set_tier(info.key, want)
        status = "would tier" if dry_run else "tiered"
        rule = f"tier:{want}"
        items.append(SweepItem(store.url, rule, info.key, [info.key], age.days, status, tier))
    return items
