"""The Python API of the storage and alert commands (CONTRACT §2): ``replicate``,
``lifecycle apply|sweep|archive``, ``iam render``, ``alerts test|list``. Each makes the
CLI's checks, as :mod:`dpexport.api`'s functions do; the package exports them too."""

from __future__ import annotations

import os
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from dpexport.workspace import ConfigSource, Workspace

if TYPE_CHECKING:
    from dpexport.alerts.model import Delivery
    from dpexport.ops.archive import ArchiveReport
    from dpexport.ops.lifecycle import ApplyResult
    from dpexport.ops.replicate import Opener, TableReport
    from dpexport.ops.sweep import SweepItem

PathLike = str | os.PathLike[str]


def replicate(
    config: ConfigSource,
    *,
    tables: str | Sequence[str] = (),
    local_root: PathLike | None = None,
    principal: str | None = None,
) -> list[TableReport]:
    """Copy committed exports to the replication targets, every sha256 verified at the
    target, as ``principal`` (CONTRACT §11); one report per (item, table),
    ``report.ok`` false on any mismatch."""
    from dpexport.ops.replicate import replicate as copy
    from dpexport.security.principals import principal_for, replicate_action

    ws = Workspace.of(config, local_root=local_root)
    names = (tables,) if isinstance(tables, str) else tuple(tables)
    wanted = {s.qualified_name for s in ws.select(names)}
    targets = [
        item.target
        for item in ws.config.replication
        if any(ws.config.table(t).qualified_name in wanted for t in item.tables)
    ]
    whole = replicate_action(item.target for item in ws.config.replication)
    who = principal_for(ws.config, replicate_action(targets), principal, whole)
    return copy(ws.config, local_root=ws.local_root, tables=names, opener=_opener(ws, who))


def lifecycle_apply(
    config: ConfigSource, *, local_root: PathLike | None = None, principal: str | None = None
) -> list[ApplyResult]:
    """Write the bucket rules (storage classes, expirations) each store supports; one
    result per store, saying what could not be applied."""
    from dpexport.ops.lifecycle import apply_rules

    ws = Workspace.of(config, local_root=local_root)
    opener = _lifecycle_opener(ws, "apply", principal)
    return apply_rules(ws.config, local_root=ws.local_root, opener=opener)


def _lifecycle_opener(ws: Workspace, verb: str, named: str | None) -> Opener:
    from dpexport.security.principals import lifecycle_action, principal_for

    return _opener(ws, principal_for(ws.config, lifecycle_action(verb), named))


def _opener(ws: Workspace, principal: str | None) -> Opener:
    """The stores as ``principal``: on a cloud, its credentials (CONTRACT §11)."""
    from dpexport.security.identity import identity_of
    from dpexport.storage.uri import StoreResolver

    identity = identity_of(ws.config.service_accounts, principal)
    return StoreResolver(ws.local_root, identity=identity).resolve


def iam_render(config: ConfigSource, *, local_root: PathLike | None = None) -> list[dict[str, Any]]:
    """Spec 6.2's ``uniform_access`` and ``iam_bindings``, one document per bucket: the
    IAM policy for ``gcloud storage buckets set-iam-policy`` and Terraform
    ``google_storage_bucket_iam_binding`` resources (for what ``lifecycle apply`` cannot
    set on the store); then one per KMS key with its ``key_rotation`` and the command
    that sets it."""
    from dpexport.ops.bucket_access import render
    from dpexport.security.rotation import rotation_documents

    resolved = Workspace.of(config, local_root=local_root).config
    return render(resolved.bucket_policies) + rotation_documents(resolved)


def lifecycle_sweep(
    config: ConfigSource,
    *,
    dry_run: bool = False,
    local_root: PathLike | None = None,
    now: datetime | None = None,
    principal: str | None = None,
) -> tuple[list[SweepItem], list[str]]:
    """Delete what the auto_delete rules make due (or with ``dry_run`` list it), never
    anything under a retention rule; the items and one error per store not swept."""
    from dpexport.ops.sweep import sweep

    ws = Workspace.of(config, local_root=local_root)
    opener = _lifecycle_opener(ws, "sweep", principal)
    at = now or datetime.now(UTC)
    return sweep(ws.config, now=at, dry_run=dry_run, local_root=ws.local_root, opener=opener)


def lifecycle_archive(
    config: ConfigSource,
    *,
    tables: str | Sequence[str] = (),
    dry_run: bool = False,
    local_root: PathLike | None = None,
    now: datetime | None = None,
    principal: str | None = None,
) -> list[ArchiveReport]:
    """Move the committed folders older than their table's ``archive_after`` to
    ``buckets.cold_storage`` (copied and verified, then removed from the source), or with
    ``dry_run`` list them; one report per table with ``archive_after``, ``report.ok``
    false on any failure. A table without a cold bucket to go to is a ``ConfigError``."""
    from dpexport.ops.archive import archive

    ws = Workspace.of(config, local_root=local_root)
    names = tuple(s.qualified_name for s in ws.select(tables)) if tables else ()
    opener = _lifecycle_opener(ws, "archive", principal)
    return archive(
        ws.config,
        now=now or datetime.now(UTC),
        dry_run=dry_run,
        tables=names,
        local_root=ws.local_root,
        opener=opener,
    )


def alerts_test(
    config: ConfigSource,
    *,
    channel: str | None = None,
    local_root: PathLike | None = None,
    deliver: Any = None,
) -> list[Delivery]:
    """Send a test alert (rule ``test``) to every channel under ``metrics.channels``, or
    to ``channel``; one ``Delivery`` per channel (``outcome`` sent or failed)."""
    from dpexport.alerts.rules import send_test

    ws = Workspace.of(config, local_root=local_root)
    return send_test(ws.config, channel, deliver)


def alerts_list(
    config: ConfigSource, *, local_root: PathLike | None = None
) -> list[dict[str, Any]]:
    """The open alert incidents (CONTRACT §10), one per rule and table, from
    ``_state/alerts/`` of the config's buckets."""
    from dpexport.alerts.incidents import open_incidents

    ws = Workspace.of(config, local_root=local_root)
    return [doc for store in ws.config_stores() for doc in open_incidents(store)]
