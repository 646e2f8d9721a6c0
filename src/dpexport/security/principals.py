"""CONTRACT §11: which principal a command acts as, and whether its roles allow it.

``run``, ``reconcile``, ``replicate``, ``compact``, ``lifecycle`` and ``dlq retry`` act as
one principal of ``service_accounts``: ``--as P``, else ``$DPEXPORT_PRINCIPAL``, else the
only configured principal whose roles allow the action. When several may do the selected
work (spec 6.1's bigquery-exporter and compliance-exporter may both export a table that is
not CMEK), the action is the command over the whole config: the only one of them whose
roles allow it for every table (or replication item) is chosen, so the principal does not
change with ``--table``; still several: refused, asking for ``--as``. An action the
principal's roles do not allow is refused before any work (:class:`PermissionRefused`,
exit 2), naming the principal, the action and the missing role. A config without
``service_accounts`` enforces nothing: the command acts as the named principal, or
``dpexport``.

What each action needs (spec 6.1's roles):

- exporting a table (``run``, ``reconcile``, ``dlq retry``): ``roles/bigquery.dataViewer``
  to read it, ``roles/storage.objectCreator`` to write the export, and
  ``roles/cloudkms.cryptoKeyEncrypter`` when the table is CMEK. Running the BigQuery job
  (``roles/bigquery.jobUser``) is not asked for: CONTRACT §11 does not list it, and
  spec 6.1's compliance-exporter, which exports CMEK tables, lacks it.
- ``replicate``: ``roles/storage.objectViewer`` to read the exports, plus each target's
  writer role (``custom/aws-s3-writer`` for ``s3://``, ``custom/azure-blob-writer`` for
  ``az://``, ``roles/storage.objectCreator`` for a GCS or local target).
- ``compact``: it writes a snapshot of the table's own exports and removes the snapshot
  it replaces: ``roles/storage.objectCreator`` and ``roles/storage.legacyBucketWriter``
  (and the key role when the table is CMEK).
- ``lifecycle apply``, ``sweep`` and ``archive`` change or delete what is in the buckets:
  ``roles/storage.legacyBucketWriter`` (the spec's bucket-level writer role, which may
  create and delete objects).

``roles/storage.admin`` and ``roles/storage.objectAdmin`` hold the storage roles under
them, as on GCP.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from dpexport.errors import UsageError

if TYPE_CHECKING:
    from dpexport.config.models.security import ServiceAccount
    from dpexport.config.spec import ResolvedConfig, TableSpec

#: the environment variable naming the principal when ``--as`` does not
ENV = "DPEXPORT_PRINCIPAL"

READ_TABLE = "roles/bigquery.dataViewer"
WRITE_EXPORTS = "roles/storage.objectCreator"
CMEK_KEY = "roles/cloudkms.cryptoKeyEncrypter"
READ_EXPORTS = "roles/storage.objectViewer"
BUCKET_WRITER = "roles/storage.legacyBucketWriter"
#: a replication target's writer role, by the target URI's scheme
TARGET_WRITERS: Mapping[str, str] = {
    "s3": "custom/aws-s3-writer",
    "az": "custom/azure-blob-writer",
    "azure": "custom/azure-blob-writer",
    "abfs": "custom/azure-blob-writer",
    "abfss": "custom/azure-blob-writer",
    "gs": WRITE_EXPORTS,
}
#: roles that hold others, as GCP's predefined roles do
_HOLDS: Mapping[str, frozenset[str]] = {
    "roles/storage.admin": frozenset(
        {"roles/storage.objectAdmin", WRITE_EXPORTS, READ_EXPORTS, BUCKET_WRITER}
    ),
    "roles/storage.objectAdmin": frozenset({WRITE_EXPORTS, READ_EXPORTS}),
}


class PermissionRefused(UsageError):
    """The principal's roles do not allow the action (or no principal can be chosen):
    refused before any work, exit 2."""


@dataclass(frozen=True)
class Need:
    """One role an action needs, and why (``read diagnosticpro_prod.users``)."""

    role: str
    why: str


@dataclass(frozen=True)
class Action:
    """A command as principals see it: its name and the roles it needs."""

    name: str
    needs: tuple[Need, ...]

    def missing(self, roles: Iterable[str]) -> list[Need]:
        held = _expanded(roles)
        return [n for n in self.needs if n.role not in held]


def _expanded(roles: Iterable[str]) -> set[str]:
    held = set(roles)
    for role in list(held):
        held |= _HOLDS.get(role, frozenset())
    return held


def _export_needs(specs: Sequence[TableSpec], *, read_table: bool) -> list[Need]:
    needs: list[Need] = []
    for spec in specs:
        name = spec.qualified_name
        if read_table:
            needs.append(Need(READ_TABLE, f"read table {name}"))
        needs.append(Need(WRITE_EXPORTS, f"write the exports of {name}"))
        if spec.encryption.mode == "CMEK":
            needs.append(Need(CMEK_KEY, f"encrypt {name} with its CMEK key"))
    return needs


def export_action(command: str, specs: Sequence[TableSpec]) -> Action:
    """``run``, ``reconcile``, ``dlq retry``: read each table, write its exports."""
    return Action(command, tuple(_export_needs(specs, read_table=True)))


def compact_action(spec: TableSpec) -> Action:
    """``compact``: write a snapshot of the table's own exports, remove the one before."""
    replace = Need(BUCKET_WRITER, f"replace the snapshot of {spec.qualified_name}")
    return Action("compact", (*_export_needs([spec], read_table=False), replace))


def replicate_action(targets: Iterable[str]) -> Action:
    """``replicate``: read the exports, write each target."""
    needs = [Need(READ_EXPORTS, "read the committed exports")]
    for target in targets:
        scheme = target.split("://", 1)[0].lower() if "://" in target else ""
        needs.append(Need(TARGET_WRITERS.get(scheme, WRITE_EXPORTS), f"write {target}"))
    return Action("replicate", tuple(needs))


def lifecycle_action(verb: str) -> Action:
    """``lifecycle apply|sweep|archive``: change or delete what the buckets hold."""
    return Action(f"lifecycle {verb}", (Need(BUCKET_WRITER, f"lifecycle {verb} the buckets"),))


def _refusal(principal: str, action: Action, missing: list[Need]) -> str:
    lacking = "; ".join(f"{n.role} (to {n.why})" for n in dict.fromkeys(missing))
    return (
        f"principal {principal!r} may not {action.name}: it lacks {lacking}; "
        f"pass --as a principal that holds it or grant the role under service_accounts"
    )


def acting_principal(
    accounts: Mapping[str, ServiceAccount],
    action: Action,
    named: str | None = None,
    whole: Action | None = None,
) -> str | None:
    """The principal ``action`` runs as, checked against its roles (CONTRACT §11).

    ``named`` (``--as``) else ``$DPEXPORT_PRINCIPAL`` else the only principal whose roles
    allow it; when several do, the only one of them whose roles allow ``whole`` (the
    command over the whole config). Without ``service_accounts`` nothing is enforced:
    the named one, or None (the records then say ``dpexport``). Raises
    :class:`PermissionRefused` (exit 2) otherwise."""
    chosen = named or os.environ.get(ENV) or None
    if not accounts:
        return chosen
    configured = ", ".join(sorted(accounts))
    if chosen is not None:
        if chosen not in accounts:
            how = "--as" if named else f"${ENV}"
            raise PermissionRefused(
                f"unknown principal {chosen!r} ({how}); service_accounts has: {configured}"
            )
        missing = action.missing(accounts[chosen].roles)
        if missing:
            raise PermissionRefused(_refusal(chosen, action, missing))
        return chosen
    able = [p for p, acct in accounts.items() if not action.missing(acct.roles)]
    if len(able) > 1 and whole is not None:
        fit = [p for p in able if not whole.missing(accounts[p].roles)]
        able = fit if len(fit) == 1 else able
    if len(able) == 1:
        return able[0]
    if able:
        raise PermissionRefused(
            f"{action.name}: several principals may do it ({', '.join(sorted(able))}); "
            f"name one with --as or ${ENV}"
        )
    lacking = "; ".join(
        f"{p} lacks {', '.join(dict.fromkeys(n.role for n in action.missing(a.roles)))}"
        for p, a in sorted(accounts.items())
    )
    raise PermissionRefused(f"no principal of service_accounts may {action.name}: {lacking}")


def principal_for(
    config: ResolvedConfig,
    action: Action,
    named: str | None = None,
    whole: Action | None = None,
) -> str | None:
    """:func:`acting_principal` over the config's ``service_accounts``."""
    return acting_principal(config.service_accounts, action, named, whole)
