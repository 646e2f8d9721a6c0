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

Retention wins until it ends: nothing under a retention rule is deleted before then,
whatever rule makes it due — a table's spec 4.1 ``retention`` (and, for tables whose
``compliance`` names SOX or PCI, and the ``financial-records/`` folder, 7 years; other
``compliance`` tables, ``compliance-data/`` and ``compliance-archives/``, 10 years; see
:mod:`dpexport.ops.retention`), on its destination and its replicated copies; sweep
reports such an item as ``kept`` with the date, and expirations over them are left out
of bucket rules. ``apply`` also writes spec 6.2's ``uniform_access`` and ``iam_bindings``
(:mod:`dpexport.ops.bucket_access`) and sets the server's own hold where the store has one: on
GCS a bucket retention policy, on S3 it checks that Object Lock is enabled (exports put
their objects with a governance-mode retention). Ages come from objects' ``updated``
times and an explicit ``now``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from dpexport.config.spec import ResolvedConfig
from dpexport.errors import ExportError
from dpexport.ops.bucket_access import apply_access
from dpexport.ops.replicate import Opener
from dpexport.ops.retention import COMPLIANCE_YEARS, compliance_kind, table_retention, years
from dpexport.reliability.places import StateRoots
from dpexport.storage import layout
from dpexport.storage.base import Store, innermost

#: spec 10.2 classes per cloud (S3 and Azure have no NEARLINE/COLDLINE/ARCHIVE)
S3_CLASS = {"NEARLINE": "STANDARD_IA", "COLDLINE": "GLACIER_IR", "ARCHIVE": "DEEP_ARCHIVE"}
AZURE_TIER = {"NEARLINE": "Cool", "COLDLINE": "Cold", "ARCHIVE": "Archive"}
TIER_ORDER = ["Hot", "Cool", "Cold", "Archive"]
_ACTION = re.compile(r"^(?:transition\s+to\s+|setstorageclass:)\s*(\w+)$", re.IGNORECASE)

#: root folders spec 1.2/1.4 name for records under retention, anywhere in a path
RETAINED_FOLDERS = {
    "financial-records": "financial",
    "compliance-data": "compliance",
    "compliance-archives": "compliance",
}


# -- policy --------------------------------------------------------------------------------
@dataclass(frozen=True)
class Retained:
    """A retention rule: nothing under ``prefix`` of the store ``store`` is deleted
    before it is ``keep`` old."""

    store: str
    prefix: str
    keep: timedelta
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
    #: table name -> its retention (quarantined rows in the DLQ are kept as long)
    retained_entities: dict[str, timedelta] = field(default_factory=dict)
    #: where the DLQ and the tokens are (their configured locations, or the defaults)
    roots: StateRoots = field(default_factory=StateRoots)

    @classmethod
    def from_config(cls, config: ResolvedConfig, resolve: Opener) -> Policy:
        auto = config.lifecycle_policies.auto_delete
        buckets = {
            name: tuple(sorted(t for r in p.lifecycle_rules if (t := _transition(r.age, r.action))))
            for name, p in config.bucket_policies.items()
        }
        return cls(
            temp=auto.get("temp_exports"),
            failed=auto.get("failed_exports"),
            test=auto.get("test_exports"),
            dlq=config.dlq_configuration.retention,
            tokens=config.idempotency_design.storage.retention,
            transitions=tuple(config.lifecycle_policies.transitions()),
            bucket_transitions={k: v for k, v in buckets.items() if v},
            bucket_versioning={k: p.versioning for k, p in config.bucket_policies.items()},
            retained=tuple(_retained(config, resolve)),
            retained_entities={
                t.table: keep for t in config.tables if (keep := table_retention(t)) is not None
            },
            roots=StateRoots.from_config(config, resolve),
        )

    def transitions_for(self, bucket: str) -> tuple[tuple[int, str], ...]:
        """Spec 6.2's rules of this bucket when it has some, else spec 10.2's tiers."""
        return self.bucket_transitions.get(bucket, self.transitions)

    def retention(
        self, store: Store, key: str, written: datetime | None, now: datetime
    ) -> str | None:
        """Why ``key`` (written at ``written``; unknown: held) must still be kept at
        ``now``: ``retention until YYYY-MM-DD (rule)``, or ``None``."""
        for keep, why in self._rules(store, key):
            until = written + keep if written is not None else None
            if until is None or now < until:
                date = f"{until:%Y-%m-%d}" if until is not None else "unknown (no write time)"
                return f"retention until {date} ({why})"
        return None

    def _rules(self, store: Store, key: str) -> Iterator[tuple[timedelta, str]]:
        for rule in self.retained:
            if rule.store == store.url and key.startswith(rule.prefix):
                yield rule.keep, rule.why
        segments = key.split("/")[:-1]
        for folder, kind in RETAINED_FOLDERS.items():
            if folder in segments:
                n = COMPLIANCE_YEARS[kind]
                yield years(n), f"{kind} retention {n} years, {folder}/"
        root = self.roots.dlq_root(store)
        dlq = layout.parse_dlq_key(key, root) if root is not None else None
        if dlq is not None and dlq.kind == "quarantined":
            keep = self.retained_entities.get(dlq.entity)
            if keep is not None:
                yield keep, f"quarantined rows of {dlq.entity}, retention {keep.days} days"


def _transition(age: int, action: str) -> tuple[int, str] | None:
    match = _ACTION.match(action.strip())
    return (int(age), match.group(1).upper()) if match else None


def _retained(config: ResolvedConfig, resolve: Opener) -> Iterator[Retained]:
    targets: dict[str, list[str]] = {}
    for item in config.replication:
        for name in item.tables:
            try:
                spec = config.table(name)
            except KeyError:
                continue
            targets.setdefault(spec.qualified_name, []).append(
                layout.replica_destination(item.target, spec.dataset, spec.table)
            )
    for spec in config.tables:
        keep = table_retention(spec)
        if keep is None:
            continue
        kind = compliance_kind(spec.compliance)
        why = f"retention {keep.days} days of {spec.qualified_name}"
        if kind is not None:
            why += f"; {kind} {COMPLIANCE_YEARS[kind]} years: {', '.join(spec.compliance)}"
        for uri in [spec.destination, *targets.get(spec.qualified_name, [])]:
            store, key = resolve(uri)
            yield Retained(store.url, key, keep, why)


def lifecycle_stores(config: ResolvedConfig, resolve: Opener) -> list[Store]:
    """Every store the config writes to or names: buckets, destinations, the DLQ and token
    locations, replication targets; one per bucket, in that order."""
    uris = [*config.buckets.values(), *(t.destination for t in config.tables)]
    uris += [u for u in (config.dlq_configuration.storage_location,) if u]
    uris += [u for u in (config.idempotency_design.storage.location,) if u]
    uris += [item.target for item in config.replication]
    stores: dict[str, Store] = {}
    for uri in uris:
        store, _ = resolve(uri)
        stores.setdefault(store.url, store)
    return list(stores.values())


def opener_for(local_root: Path | None, opener: Opener | None) -> Opener:
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
    rules = [(layout.TEST_EXPORTS_PREFIX, policy.test, "test_exports")]
    root = policy.roots.dlq_root(store)
    if root is not None:  # the DLQ is on this store
        rules.append((layout.dlq_failed_folder(root), policy.failed, "failed_exports"))
        rules.append((layout.dlq_poisoned_folder(root), policy.dlq, "dlq retention"))
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
    config: ResolvedConfig, *, local_root: Path | None = None, opener: Opener | None = None
) -> list[ApplyResult]:
    """Write the bucket rules each store of the config supports; one result per store."""
    resolve = opener_for(local_root, opener)
    policy = Policy.from_config(config, resolve)
    results = []
    for store in lifecycle_stores(config, resolve):
        result = ApplyResult(store.url)
        results.append(result)
        try:
            _apply_one(innermost(store), policy, result)
            _apply_retention(innermost(store), policy, result)
            apply_access(innermost(store), config.bucket_policies, result)
        except ExportError as exc:
            result.error = str(exc)
    from dpexport.security.rotation import apply_key_rotation

    return results + apply_key_rotation(config, ApplyResult)


def _apply_retention(store: Any, policy: Policy, result: ApplyResult) -> None:
    """The server's hold on objects under retention, where the store has one that fits
    dpexport's writes (CONTRACT §12)."""
    from dpexport.storage.local import LocalStore

    rules = [r for r in policy.retained if r.store == store.url]
    if not rules or isinstance(store, LocalStore):
        return
    longest = max(r.keep for r in rules).days
    scheme = store.url.split("://", 1)[0]
    held = ", ".join(sorted({r.prefix or "(bucket root)" for r in rules}))
    if scheme == "s3":
        if store.object_lock_enabled():
            result.applied.append(
                f"Object Lock enabled: exports put {held} under governance retention "
                f"(up to {longest} days)"
            )
        else:
            result.not_applied.append(
                f"Object Lock is not enabled on bucket {store.bucket_name}: objects under "
                f"{held} ({longest} days of retention) are written unlocked, and only "
                "dpexport's own checks keep them; S3 enables Object Lock only on a new "
                "bucket (create one with ObjectLockEnabledForBucket and export there)"
            )
        return
    server = (
        "a GCS bucket retention policy would hold every object of the bucket, the "
        "staging, markers and tokens that each export replaces or deletes too, so it is "
        "not set"
        if scheme == "gs"
        else "Azure immutability policies are a management-plane (container) setting"
    )
    result.not_applied.append(
        f"retention of {held} ({longest} days): {server}; 'dpexport lifecycle sweep', "
        "FULL_REFRESH and archive never delete those objects earlier"
    )


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
