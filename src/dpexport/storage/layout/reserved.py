"""The keys of what dpexport keeps beside the data: staging, state, tokens and leases,
the dead-letter queue and the export logs."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from dpexport.storage.layout.data import (
    DLQ_PREFIX,
    LOGS_PREFIX,
    STAGING_PREFIX,
    STATE_PREFIX,
    TOKENS_PREFIX,
    key_name,
)

# -- staging ---------------------------------------------------------------------------------
#: in an export's staging folder: the process working on it, and the commit journal
STAGING_OWNER = "_owner.json"
STAGING_JOURNAL = "_commit.json"


def staging_prefix(export_id: str) -> str:
    """``_staging/{export_id}/``: the work in progress of one export."""
    return f"{STAGING_PREFIX}{export_id}/"


def staged_export_id(key: str) -> str | None:
    """The export a key under ``_staging/`` belongs to (None for any other key)."""
    if not key.startswith(STAGING_PREFIX):
        return None
    return key[len(STAGING_PREFIX) :].split("/", 1)[0]


def staging_part_name(seq: int, suffix: str) -> str:
    """A staged data file's flat, unique name: ``part-00001.{suffix}``."""
    return f"part-{seq:05d}.{suffix}"


def probe_key(token: str) -> str:
    """The object the pre-export write probe puts and deletes (spec 5.2)."""
    return f"{STAGING_PREFIX}.probe-{token}"


# -- state -----------------------------------------------------------------------------------
REPLICATION_STATE_PREFIX = STATE_PREFIX + "replication/"
ARCHIVE_STATE_PREFIX = STATE_PREFIX + "archive/"
ALERTS_STATE_PREFIX = STATE_PREFIX + "alerts/"


def export_state_prefix(dataset: str, table: str, dest_key: str) -> str:
    """The state of one export (a table into one destination): ``_state/exports/
    {destination}{dataset}.{table}/``. Two exports of one table to two destinations
    keep apart what each has published."""
    return f"{STATE_PREFIX}exports/{dest_key}{dataset}.{table}/"


def watermark_key(dataset: str, table: str, dest_key: str) -> str:
    return export_state_prefix(dataset, table, dest_key) + "watermark.json"


def dedup_key(dataset: str, table: str, dest_key: str) -> str:
    """The keys the cross-run de-duplication window has exported."""
    return export_state_prefix(dataset, table, dest_key) + "dedup.parquet"


def legacy_watermark_key(dataset: str, table: str) -> str:
    """Where a watermark was kept before state was kept per export (old journals)."""
    return f"{STATE_PREFIX}watermarks/{dataset}.{table}.json"


def legacy_dedup_key(dataset: str, table: str) -> str:
    """Where the de-duplication keys were kept before state was kept per export."""
    return f"{STATE_PREFIX}dedup/{dataset}.{table}.parquet"


def schema_key(dataset: str, table: str) -> str:
    """The table's schema history."""
    return f"{STATE_PREFIX}schemas/{dataset}.{table}.json"


def check_stats_key(dataset: str, table: str) -> str:
    """The statistics data checks compare with the previous export's."""
    return f"{STATE_PREFIX}checks/{dataset}.{table}.json"


def replication_state_key(target_folder: str) -> str:
    """What replication copied into a target folder (kept on the target)."""
    return f"{REPLICATION_STATE_PREFIX}{target_folder}state.json"


def archive_journal_key(folder: str) -> str:
    """``_state/archive/{folder}move.json`` (on the source): the removal of a folder that
    ``lifecycle archive`` copied to cold storage, until it is finished."""
    return f"{ARCHIVE_STATE_PREFIX}{folder}move.json"


def alert_incident_key(rule: str, table: str) -> str:
    """``_state/alerts/{rule}/{table}.json``: the open incident of one alert rule and
    table (CONTRACT §10); absent when none is open."""
    return f"{ALERTS_STATE_PREFIX}{rule}/{table}.json"


# -- tokens and leases -----------------------------------------------------------------------
# Every builder and parser below takes ``root``, the folder the state lives in: the
# reserved prefix at the export bucket's root by default, or the key part of the
# configured ``idempotency_design.storage.location`` / ``dlq_configuration.
# storage_location`` (ending with ``/``, or empty for a bucket root).
_LEASES = "_leases/"
LEASES_PREFIX = TOKENS_PREFIX + _LEASES
_JSON = ".json"


@dataclass(frozen=True)
class TokenName:
    """The parts of a :func:`token_name`."""

    table: str
    day: str  # yyyymmdd of the logical time (UTC)
    epoch: int  # the logical time, in whole seconds since 1970
    config_hash: str


def token_name(table: str, logical_time: datetime, config_hash: str) -> str:
    """``{table}_{partition}_{logical_epoch}_{hash8}`` (spec 7.3 with the logical time)."""
    t = logical_time.astimezone(UTC)
    return f"{table}_{t:%Y%m%d}_{int(t.timestamp())}_{config_hash}"


def parse_token_name(name: str) -> TokenName | None:
    """The parts of a token name (None for any other name); the table may hold ``_``."""
    parts = name.rsplit("_", 3)
    if len(parts) != 4:
        return None
    table, day, epoch, config_hash = parts
    if not (table and re.fullmatch(r"[0-9]+", day) and re.fullmatch(r"-?[0-9]+", epoch)):
        return None
    return TokenName(table, day, int(epoch), config_hash)


def token_key(name: str, root: str = TOKENS_PREFIX) -> str:
    return f"{root}{name}{_JSON}"


def is_token_key(key: str, root: str = TOKENS_PREFIX) -> bool:
    """A token document (not a lease): ``{root}{name}.json``, directly in the root, so
    nothing in a sub-folder (a lease, a DLQ sharing the location) is taken for one."""
    if not (key.startswith(root) and key.endswith(_JSON)):
        return False
    return "/" not in key[len(root) :]


def parse_token_key(key: str, root: str = TOKENS_PREFIX) -> TokenName | None:
    """The parts of a token's key (None for any other key)."""
    if not is_token_key(key, root):
        return None
    return parse_token_name(key[len(root) : -len(_JSON)])


def leases_prefix(root: str = TOKENS_PREFIX) -> str:
    return root + _LEASES


def lease_key(dataset: str, table: str, root: str = TOKENS_PREFIX) -> str:
    """``idempotency-tokens/_leases/{dataset}.{table}.json``: who exports the table now."""
    return f"{leases_prefix(root)}{dataset}.{table}{_JSON}"


def is_lease_key(key: str, root: str = TOKENS_PREFIX) -> bool:
    prefix = leases_prefix(root)
    return key.startswith(prefix) and key.endswith(_JSON) and "/" not in key[len(prefix) :]


def parse_lease_key(key: str, root: str = TOKENS_PREFIX) -> tuple[str, str] | None:
    """(dataset, table) of a lease's key (None for any other key)."""
    if not is_lease_key(key, root):
        return None
    dataset, dot, table = key[len(leases_prefix(root)) : -len(_JSON)].partition(".")
    return (dataset, table) if dot else None


# -- dead-letter queue (spec 7.2) ------------------------------------------------------------
_FAILED = "failed_exports/"
_POISONED = "poison_messages/"
_QUARANTINED = "quarantined_rows/"
DLQ_FAILED_PREFIX = DLQ_PREFIX + _FAILED
DLQ_POISONED_PREFIX = DLQ_PREFIX + _POISONED
DLQ_QUARANTINED_PREFIX = DLQ_PREFIX + _QUARANTINED
#: the documents of a failed export's entry
DLQ_REQUEST = "export_request.json"
DLQ_ERROR = "error_details.json"
DLQ_HISTORY = "retry_history.json"
#: a poisoned entry: ``{export_id}.json`` and, for a human, ``{export_id}.failure_reason.txt``
DLQ_POISONED_DOCUMENT = _JSON
DLQ_POISONED_REASON = ".failure_reason.txt"
QUARANTINE_SUFFIX = ".jsonl.gz"

DlqKind = Literal["failed", "poisoned", "quarantined"]


def dlq_failed_folder(root: str = DLQ_PREFIX) -> str:
    """``{root}failed_exports/``: the open entries."""
    return root + _FAILED


def dlq_poisoned_folder(root: str = DLQ_PREFIX) -> str:
    """``{root}poison_messages/``: the entries given up."""
    return root + _POISONED


def dlq_quarantined_folder(root: str = DLQ_PREFIX) -> str:
    """``{root}quarantined_rows/``: rows data checks kept out."""
    return root + _QUARANTINED


def dlq_failed_prefix(export_id: str, root: str = DLQ_PREFIX) -> str:
    """``dead-letter-queue/failed_exports/{export_id}/``: one failed export's entry."""
    return f"{dlq_failed_folder(root)}{export_id}/"


def dlq_poisoned_key(export_id: str, root: str = DLQ_PREFIX) -> str:
    return f"{dlq_poisoned_folder(root)}{export_id}{DLQ_POISONED_DOCUMENT}"


def dlq_poisoned_reason_key(export_id: str, root: str = DLQ_PREFIX) -> str:
    return f"{dlq_poisoned_folder(root)}{export_id}{DLQ_POISONED_REASON}"


def quarantine_prefix(export_id: str, root: str = DLQ_PREFIX) -> str:
    return f"{dlq_quarantined_folder(root)}{export_id}/"


def quarantine_key(export_id: str, entity: str, root: str = DLQ_PREFIX) -> str:
    """The rows a data check kept out of one export (CONTRACT §9)."""
    return f"{quarantine_prefix(export_id, root)}{entity}{QUARANTINE_SUFFIX}"


@dataclass(frozen=True)
class DlqKey:
    """A key under the DLQ's root, parsed: the entry's kind and export id, and the rest
    below the entry (a failed entry's document, a poisoned entry's suffix such as
    ``.json``, a quarantined file's name)."""

    kind: DlqKind
    export_id: str
    name: str
    root: str = DLQ_PREFIX

    @property
    def prefix(self) -> str:
        """What every object of the entry starts with."""
        if self.kind == "failed":
            return dlq_failed_prefix(self.export_id, self.root)
        if self.kind == "poisoned":
            return dlq_poisoned_folder(self.root) + self.export_id
        return quarantine_prefix(self.export_id, self.root)

    @property
    def entity(self) -> str:
        """The table a quarantined file holds rows of."""
        return key_name(self.name).split(".", 1)[0]


def parse_dlq_key(key: str, root: str = DLQ_PREFIX) -> DlqKey | None:
    """What a key under the DLQ belongs to (None for any other key)."""
    folders: tuple[tuple[DlqKind, str], ...] = (
        ("failed", dlq_failed_folder(root)),
        ("quarantined", dlq_quarantined_folder(root)),
    )
    for kind, prefix in folders:
        if key.startswith(prefix):
            eid, _, name = key[len(prefix) :].partition("/")
            return DlqKey(kind, eid, name, root)
    poisoned = dlq_poisoned_folder(root)
    if key.startswith(poisoned):
        rest = key[len(poisoned) :]
        eid = rest.split("/", 1)[0].split(".", 1)[0]
        return DlqKey("poisoned", eid, rest[len(eid) :], root)
    return None


# -- export logs -----------------------------------------------------------------------------
def export_log_key(start: datetime, export_id: str) -> str:
    """``export-logs/{yyyy}/{MM}/{dd}/{export_id}.json``: one export attempt's record,
    under the day it started."""
    return f"{LOGS_PREFIX}{start:%Y/%m/%d}/{export_id}{_JSON}"


def is_export_log_key(key: str) -> bool:
    return key.startswith(LOGS_PREFIX) and key.endswith(_JSON)


def change_marker_key(dataset: str, table: str, dest_key: str) -> str:
    """``_state/exports/{destination}{dataset}.{table}/change_marker.json``: the change
    marker (``Engine.change_marker``) an ``on_change`` table had at its last committed
    export, beside that export's watermark."""
    return export_state_prefix(dataset, table, dest_key) + "change_marker.json"
