"""Storage lifecycle and retention (spec 6.2, 7.2, 7.3, 10.2; CONTRACT §2 ``lifecycle``).

Two halves:

- :func:`apply_rules` writes the bucket rules a store can hold: on S3 a lifecycle
  configuration (storage-class transitions, expirations of prefixes whose rule is pure
  age), on GCS ``SetStorageClass`` and ``Delete`` rules plus versioning. Azure's Blob API
  has no bucket lifecycle (it is a management-plane policy), and a local folder has no
  server at all: both are said so, and :func:`sweep` does their work.
- :func:`sweep` deletes what the ``auto_delete`` rules make due, with checks a bucket
  rule cannot make: temp exports (``_staging/`` leftovers whose owner is gone and that
  hold no commit journal), failed exports (folders holding only a FAILURE marker, and
  DLQ ``failed_exports/`` entries), test exports (the ``test/`` environment prefix), the
  rest of the DLQ after its retention, and idempotency tokens after theirs (never one a
  live lease is working on). On Azure it also moves data files to colder tiers by age.

Retention always wins: nothing under a retention rule is deleted, whatever its age —
financial records (``financial-records/`` and tables whose ``compliance`` names SOX or
PCI, with their replicated copies) 7 years, compliance data (``compliance-data/``,
``compliance-archives/``, other ``compliance`` tables) 10 years; their expirations are
left out of bucket rules too. Ages come from objects' ``updated`` times and an explicit
``now``.
"""

from __future__ import annotations

import json
import re
import socket
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from dpexport import layout
from dpexport.commit import JOURNAL, OWNER, Owner
from dpexport.errors import ExportError
from dpexport.ops.replicate import Opener, target_uri
from dpexport.storage.base import ObjectInfo, Store, innermost

FAILED = f"{layout.DLQ_PREFIX}failed_exports/"
POISON = f"{layout.DLQ_PREFIX}poison_messages/"
QUARANTINE = f"{layout.DLQ_PREFIX}quarantined_rows/"
LEASES = f"{layout.TOKENS_PREFIX}_leases/"
TEST_PREFIX = "test/"

#: spec 10.2 classes per cloud (S3 and Azure have no NEARLINE/COLDLINE/ARCHIVE)
S3_CLASS = {"NEARLINE": "STANDARD_IA", "COLDLINE": "GLACIER_IR", "ARCHIVE": "DEEP_ARCHIVE"}
AZURE_TIER = {"NEARLINE": "Cool", "COLDLINE": "Cold", "ARCHIVE": "Archive"}
_TIER_ORDER = ["Hot", "Cool", "Cold", "Archive"]
_ACTION = re.compile(r"^(?:transition\s+to\s+|setstorageclass:)\s*(\w+)$", re.IGNORECASE)

#: root folders spec 1.2/1.4 name for records under retention, anywhere in a path
RETAINED_FOLDERS = {
    "financial-records": ("financial", 7),
    "compliance-data": ("compliance", 10),
    "compliance-archives": ("compliance", 10),
}


# -- policy --------------------------------------------------------------------------------
@dataclass(frozen=True)
class Retained:
    """A retention rule: nothing under ``prefix`` of the store ``store`` is deleted."""

    store: str
    prefix: str
    kind: str  # financial | compliance
    years: int
    why: str


@dataclass(frozen=True)
class Policy:
    """The config's lifecycle settings, resolved. An ``auto_delete`` rule missing from the
    config is ``None`` (nothing of that kind is deleted)."""

    temp: timedelta | None = None
    failed: timedelta | None = None
    test: timedelta | None = None
    dlq: timedelta = timedelta(days=90)
    tokens: timedelta = timedelta(days=7)
    transitions: tuple[tuple[int, str], ...] = ()
    bucket_transitions: dict[str, tuple[tuple[int, str], ...]] = field(default_factory=dict)
    bucket_versioning: dict[str, bool] = field(default_factory=dict)
    retained: tuple[Retained, ...] = ()
    retained_entities: frozenset[str] = frozenset()

    @classmethod
    def from_config(cls, config: Any, resolve: Opener) -> Policy:
        raw = config.raw
        auto = raw.lifecycle_policies.auto_delete
        buckets = {
            name: tuple(sorted(t for r in p.lifecycle_rules if (t := _transition(r.age, r.action))))
            for name, p in raw.bucket_policies.items()
        }
        return cls(
            temp=auto.get("temp_exports"),
            failed=auto.get("failed_exports"),
            test=auto.get("test_exports"),
            dlq=raw.dlq_configuration.retention,
            tokens=raw.idempotency_design.storage.retention,
            transitions=tuple(raw.lifecycle_policies.transitions()),
            bucket_transitions={k: v for k, v in buckets.items() if v},
            bucket_versioning={k: p.versioning for k, p in raw.bucket_policies.items()},
            retained=tuple(_retained(config, resolve)),
            retained_entities=frozenset(
                t.table for t in config.tables if _retention_of(t.compliance) is not None
            ),
        )

    def transitions_for(self, bucket: str) -> tuple[tuple[int, str], ...]:
        """Spec 6.2's rules of this bucket when it has some, else spec 10.2's tiers."""
        return self.bucket_transitions.get(bucket, self.transitions)

    def retention(self, store: Store, key: str) -> str | None:
        """Why ``key`` must be kept (a retention rule), or ``None``."""
        for rule in self.retained:
            if rule.store == store.url and key.startswith(rule.prefix):
                return f"{rule.kind} retention {rule.years} years ({rule.why})"
        segments = key.split("/")[:-1]
        for folder, (kind, years) in RETAINED_FOLDERS.items():
            if folder in segments:
                return f"{kind} retention {years} years ({folder}/)"
        if key.startswith(QUARANTINE):
            entity = key.rsplit("/", 1)[-1].split(".", 1)[0]
            if entity in self.retained_entities:
                return f"quarantined rows of {entity}, a table under retention"
        return None


def _transition(age: int, action: str) -> tuple[int, str] | None:
    match = _ACTION.match(action.strip())
    return (int(age), match.group(1).upper()) if match else None


def _retention_of(compliance: Sequence[str]) -> tuple[str, int] | None:
    if not compliance:
        return None
    names = " ".join(compliance).upper()
    if "SOX" in names or "PCI" in names:
        return "financial", 7
    return "compliance", 10


def _retained(config: Any, resolve: Opener) -> Iterator[Retained]:
    targets: dict[str, list[str]] = {}
    for item in config.raw.replication:
        for name in item.tables:
            try:
                spec = config.table(name)
            except KeyError:
                continue
            targets.setdefault(spec.qualified_name, []).append(
                target_uri(item.target, spec.dataset, spec.table)
            )
    for spec in config.tables:
        rule = _retention_of(spec.compliance)
        if rule is None:
            continue
        why = f"{spec.qualified_name}: {', '.join(spec.compliance)}"
        for uri in [spec.destination, *targets.get(spec.qualified_name, [])]:
            store, key = resolve(uri)
            yield Retained(store.url, key, rule[0], rule[1], why)


def lifecycle_stores(config: Any, resolve: Opener) -> list[Store]:
    """Every store the config writes to or names: buckets, destinations, the DLQ and token
    locations, replication targets; one per bucket, in that order."""
    raw = config.raw
    uris = [*raw.buckets.values(), *(t.destination for t in config.tables)]
    uris += [u for u in (raw.dlq_configuration.storage_location,) if u]
    uris += [u for u in (raw.idempotency_design.storage.location,) if u]
    uris += [item.target for item in raw.replication]
    stores: dict[str, Store] = {}
    for uri in uris:
        store, _ = resolve(uri)
        stores.setdefault(store.url, store)
    return list(stores.values())


def _opener(local_root: Path | None, opener: Opener | None) -> Opener:
    from dpexport.storage.uri import StoreResolver

    return opener or StoreResolver(local_root).resolve


# -- apply ---------------------------------------------------------------------------------
@dataclass
class ApplyResult:
    """What ``lifecycle apply`` did to one store."""

    store: str
    applied: list[str] = field(default_factory=list)
    not_applied: list[str] = field(default_factory=list)
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "store": self.store,
            "applied": self.applied,
            "not_applied": self.not_applied,
            "error": self.error,
        }


def _expirations(policy: Policy, store: Store) -> tuple[list[tuple[str, int]], list[str]]:
    """(prefix, days) whose rule is age alone, and what must stay with ``sweep``."""
    rules = [
        (TEST_PREFIX, policy.test, "test_exports"),
        (FAILED, policy.failed, "failed_exports"),
        (POISON, policy.dlq, "dlq retention"),
    ]
    kept = [
        "temp_exports (_staging/): sweep checks the owner and the commit journal",
        "failed exports (FAILURE-only folders): sweep finds them",
        "idempotency tokens and the rest of the DLQ: sweep keeps tokens of live leases "
        "and quarantined rows under retention",
    ]
    out: list[tuple[str, int]] = []
    for prefix, age, name in rules:
        if age is None:
            continue
        clash = [r for r in policy.retained if r.store == store.url and r.prefix.startswith(prefix)]
        if clash:
            kept.append(f"{name} ({prefix}): holds {clash[0].why}, under retention")
            continue
        out.append((prefix, max(1, age.days)))
    return out, kept


def apply_rules(
    config: Any, *, local_root: Path | None = None, opener: Opener | None = None
) -> list[ApplyResult]:
    """Write the bucket rules each store of the config supports; one result per store."""
    resolve = _opener(local_root, opener)
    policy = Policy.from_config(config, resolve)
    results = []
    for store in lifecycle_stores(config, resolve):
        result = ApplyResult(store.url)
        results.append(result)
        try:
            _apply_one(innermost(store), policy, result)
        except ExportError as exc:
            result.error = str(exc)
    return results


def _apply_one(store: Any, policy: Policy, result: ApplyResult) -> None:
    from dpexport.storage.local import LocalStore

    if isinstance(store, LocalStore):
        result.not_applied.append(
            f"local folder {store.root}: no server holds bucket rules; "
            "'dpexport lifecycle sweep' deletes what is due"
        )
        return
    bucket = store.bucket_name
    transitions = policy.transitions_for(bucket)
    expirations, kept = _expirations(policy, store)
    versioning = policy.bucket_versioning.get(bucket)
    scheme = store.url.split("://", 1)[0]
    if scheme == "s3":
        rules: list[dict[str, Any]] = []
        if transitions:
            rules.append(
                {
                    "ID": "dpexport-tiering",
                    "Filter": {"Prefix": ""},
                    "Status": "Enabled",
                    "Transitions": [
                        {"Days": d, "StorageClass": S3_CLASS.get(c, c)} for d, c in transitions
                    ],
                }
            )
        for prefix, days in expirations:
            rules.append(
                {
                    "ID": "dpexport-expire-" + prefix.strip("/").replace("/", "-"),
                    "Filter": {"Prefix": prefix},
                    "Status": "Enabled",
                    "Expiration": {"Days": days},
                }
            )
        if rules:
            store.put_lifecycle(rules)
        result.applied += [
            f"transition to {S3_CLASS.get(c, c)} ({c}) after {d} days" for d, c in transitions
        ]
        result.applied += [f"expire {p} after {d} days" for p, d in expirations]
        if any(c == "ARCHIVE" for _, c in transitions):
            result.not_applied.append("DEEP_ARCHIVE objects need a restore before they are read")
    elif scheme == "gs":
        store.set_lifecycle(list(transitions), [(d, [p]) for p, d in expirations], versioning)
        result.applied += [f"SetStorageClass:{c} at age {d} days" for d, c in transitions]
        result.applied += [f"Delete {p} at age {d} days" for p, d in expirations]
    else:
        result.not_applied.append(
            "Azure Blob storage has no bucket lifecycle in the Blob API (account "
            "lifecycle management is a management-plane policy); 'dpexport lifecycle sweep' "
            "sets each blob's tier by age ("
            + ", ".join(f"{AZURE_TIER.get(c, c)} at {d} days" for d, c in transitions)
            + ") and deletes what is due"
        )
        result.not_applied.append("versioning: an account setting (management plane)")
        return
    if versioning is not None:
        if scheme == "s3":
            store.set_versioning(versioning)
        result.applied.append(f"versioning {'enabled' if versioning else 'suspended'}")
    result.not_applied += kept


# -- sweep ---------------------------------------------------------------------------------
@dataclass
class SweepItem:
    """One thing sweep found due: an export folder, a staging area, a DLQ entry, a token
    (its keys go together). ``status``: deleted | would delete | retained | kept |
    tiered | would tier."""

    store: str
    rule: str
    what: str
    keys: list[str]
    age_days: float
    status: str
    reason: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "store": self.store,
            "rule": self.rule,
            "what": self.what,
            "keys": self.keys,
            "age_days": round(self.age_days, 2),
            "status": self.status,
            "reason": self.reason,
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
    resolve = _opener(local_root, opener)
    policy = Policy.from_config(config, resolve)
    items: list[SweepItem] = []
    errors: list[str] = []
    for store in lifecycle_stores(config, resolve):
        try:
            items += sweep_store(store, policy, now=now, dry_run=dry_run)
        except ExportError as exc:
            errors.append(f"{store.url}: {exc}")
    return items, errors


def sweep_store(store: Store, policy: Policy, *, now: datetime, dry_run: bool) -> list[SweepItem]:
    objects = list(store.list(""))
    live = _live_leases(store, objects, now)
    items: list[SweepItem] = []
    for group, limit in _groups(objects, policy):
        age = group.age(now)
        if limit is None or age < limit:
            continue
        keys = sorted((o.key for o in group.objects), key=_delete_order)
        item = SweepItem(store.url, group.rule, group.what, keys, age / timedelta(days=1), "")
        reason = next((r for k in keys if (r := policy.retention(store, k))), None)
        if reason is None:
            reason = _keep_reason(store, group, live)
            item.status = "kept" if reason else ""
        else:
            item.status = "retained"
        item.reason = reason
        if not item.status:
            item.status = "would delete" if dry_run else "deleted"
            if not dry_run:
                for key in keys:
                    store.delete(key)
        items.append(item)
    deleted = {k for i in items if i.status in ("deleted", "would delete") for k in i.keys}
    items += _tier(store, policy, now, dry_run, deleted)
    return items


def _groups(
    objects: Sequence[ObjectInfo], policy: Policy
) -> Iterator[tuple[_Group, timedelta | None]]:
    """Each object that an auto_delete rule covers, grouped with the objects it goes with."""
    groups: dict[tuple[str, str], _Group] = {}
    limits = {
        "temp_exports": policy.temp,
        "failed_exports": policy.failed,
        "test_exports": policy.test,
        "dlq": policy.dlq,
        "idempotency_tokens": policy.tokens,
    }
    keys = {o.key for o in objects}
    folders = {o.key.rpartition("/")[0] + "/" for o in objects if _is_marker(o.key)}
    for obj in objects:
        key = obj.key
        found: tuple[str, str] | None = None
        if key.startswith(layout.STAGING_PREFIX):
            found = ("temp_exports", layout.STAGING_PREFIX + key.split("/")[1] + "/")
        elif key.startswith(FAILED):
            found = ("failed_exports", FAILED + key[len(FAILED) :].split("/")[0] + "/")
        elif key.startswith(POISON):
            name = key[len(POISON) :].split("/")[0]
            found = ("dlq", POISON + name.split(".")[0])
        elif key.startswith(QUARANTINE):
            found = ("dlq", QUARANTINE + key[len(QUARANTINE) :].split("/")[0] + "/")
        elif key.startswith(layout.TOKENS_PREFIX) and key.endswith(".json"):
            found = ("idempotency_tokens", key)
        elif key.startswith(TEST_PREFIX):
            owner = max((f for f in folders if key.startswith(f)), key=len, default=None)
            found = ("test_exports", owner or key.rpartition("/")[0] + "/")
        elif key.endswith("/" + layout.FAILURE) or key == layout.FAILURE:
            folder = key[: -len(layout.FAILURE)]
            if not key.startswith(layout.DLQ_PREFIX) and _only(keys, folder, key):
                found = ("failed_exports", folder)
        if found is not None:
            groups.setdefault(found, _Group(*found)).objects.append(obj)
    for (rule, _), group in groups.items():
        yield group, limits[rule]


def _only(keys: set[str], folder: str, key: str) -> bool:
    return not any(k.startswith(folder) and k != key for k in keys)


def _is_marker(key: str) -> bool:
    name = key.rpartition("/")[2]
    return name in (layout.SUCCESS, layout.FAILURE) or layout.is_manifest(name)


def _delete_order(key: str) -> tuple[int, str]:
    """Markers first, manifests next, the rest, a commit journal last: no SUCCESS ever
    points at a missing file, and a half-deleted staging never looks committed."""
    name = key.rpartition("/")[2]
    if name in (layout.SUCCESS, layout.FAILURE):
        return 0, key
    if layout.is_manifest(name):
        return 1, key
    return (3 if name == JOURNAL else 2), key


def _live_leases(
    store: Store, objects: Iterable[ObjectInfo], now: datetime
) -> list[dict[str, Any]]:
    """Lease documents that have not expired at ``now`` and whose holder may be alive."""
    live = []
    for obj in objects:
        if not (obj.key.startswith(LEASES) and obj.key.endswith(".json")):
            continue
        doc = _json(store, obj.key)
        try:
            expires = datetime.strptime(doc["expires"], "%Y-%m-%dT%H:%M:%SZ")
            holder = Owner(**doc["holder"])
        except (KeyError, TypeError, ValueError):
            continue
        if expires.replace(tzinfo=now.tzinfo) > now and not holder.is_dead_here():
            doc["_table"] = obj.key[len(LEASES) : -len(".json")].split(".", 1)[-1]
            live.append(doc)
    return live


def _keep_reason(store: Store, group: _Group, live: list[dict[str, Any]]) -> str | None:
    """Why a due group must stay although its age says otherwise."""
    lease_exports = {d.get("export_id") for d in live}
    if group.rule == "temp_exports":
        names = {o.key.rpartition("/")[2] for o in group.objects}
        if JOURNAL in names:
            return "holds a commit journal: the next run rolls it forward"
        export_id = group.what[len(layout.STAGING_PREFIX) :].rstrip("/")
        if export_id in lease_exports:
            return "its export holds a live lease"
        owner = _json(store, group.what + OWNER)
        try:
            holder = Owner(**owner)
        except TypeError:
            return None
        if holder.host == socket.gethostname() and not holder.is_dead_here():
            return f"its owner process {holder.pid} is alive"
    if group.rule == "idempotency_tokens":
        doc = _json(store, group.what)
        if group.what.startswith(LEASES):
            return "a live lease" if doc.get("export_id") in lease_exports and doc else None
        if doc.get("export_id") in lease_exports:
            return "a live lease is working on it"
        name = group.what[len(layout.TOKENS_PREFIX) :]
        if doc.get("status") == "IN_PROGRESS" and any(
            name.startswith(d["_table"] + "_") for d in live
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
    steps = [s for s in steps if s[1] in _TIER_ORDER]
    items = []
    reserved = (layout.TOKENS_PREFIX, layout.DLQ_PREFIX, layout.LOGS_PREFIX)
    for info, tier in backend.list_tiers(""):
        if info.key in deleted or info.key.startswith((*reserved, layout.STATE_PREFIX)):
            continue
        if info.key.startswith(layout.STAGING_PREFIX) or _is_marker(info.key):
            continue
        age = now - info.updated if info.updated else timedelta(0)
        due = [t for d, t in steps if age >= timedelta(days=d)]
        if not due:
            continue
        want = max(due, key=_TIER_ORDER.index)
        if tier in _TIER_ORDER and _TIER_ORDER.index(tier) >= _TIER_ORDER.index(want):
            continue
        if not dry_run:
            backend.set_tier(info.key, want)
        status = "would tier" if dry_run else "tiered"
        rule = f"tier:{want}"
        items.append(SweepItem(store.url, rule, info.key, [info.key], age.days, status, tier))
    return items
