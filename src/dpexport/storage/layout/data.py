"""The export data's keys: reserved prefixes, folders, manifests and markers, destinations
(data file and sidecar names: :mod:`dpexport.storage.layout.names`)."""

from __future__ import annotations

import hashlib
import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING
from urllib.parse import quote

if TYPE_CHECKING:
    from dpexport.config.spec import Granularity, Partitioning

#: Reserved prefixes at the bucket root (CONTRACT §4).
TOKENS_PREFIX = "idempotency-tokens/"
DLQ_PREFIX = "dead-letter-queue/"
LOGS_PREFIX = "export-logs/"
STATE_PREFIX = "_state/"
STAGING_PREFIX = "_staging/"
#: every reserved prefix: nothing under them is export data
RESERVED_PREFIXES = (TOKENS_PREFIX, DLQ_PREFIX, LOGS_PREFIX, STATE_PREFIX, STAGING_PREFIX)

SUCCESS = "SUCCESS"
FAILURE = "FAILURE"

#: The folder segment for a NULL partition value (see :func:`safe_segment`).
NULL_SEGMENT = "_null_"
#: A NULL value in a hive-style folder (``shard=__HIVE_DEFAULT_PARTITION__``): the
#: name hive readers take for NULL (see :func:`hive_segment`).
HIVE_NULL = "__HIVE_DEFAULT_PARTITION__"
#: The folder segment for an empty-string partition value (see :func:`safe_segment`).
EMPTY_SEGMENT = "_empty_"
#: What :func:`safe_segment` leaves unencoded: letters, digits and ``-_.~@+=,``
_SEGMENT_SAFE = "-_.~@+=,"
#: The longest folder name :func:`safe_segment` makes, in bytes: one path component of
#: ext4, XFS, APFS, NTFS (object stores allow longer keys, but a bucket is often synced to
#: or mounted as a file system)
MAX_SEGMENT = 255
#: what stands between a cut name's kept text and its hash; never in an encoded name
_CUT_MARK = "!"
#: the encoded text a cut name keeps: the rest is the mark and 64 hex digits
_KEPT = MAX_SEGMENT - len(_CUT_MARK) - 64

_MANIFEST_RE = re.compile(r"^manifest_\d{8}_\d{6}(?:_[0-9a-f]{8})?\.json$")


# -- keys ----------------------------------------------------------------------------------
def key_name(key: str) -> str:
    """The last segment of a key: ``a/b/SUCCESS`` -> ``SUCCESS``."""
    return key.rpartition("/")[2]


def key_folder(key: str) -> str:
    """The folder of a key, with its ``/``: ``a/b/SUCCESS`` -> ``a/b/``; ``""`` at the root."""
    head, sep, _ = key.rpartition("/")
    return head + sep


def folder_key(dest_key: str, folder_path: str) -> str:
    """The key of a folder below a destination: ``{dest_key}{folder_path}/``."""
    return f"{dest_key}{folder_path}/"


def is_marker(name: str) -> bool:
    """``SUCCESS`` or ``FAILURE`` (a name, see :func:`key_name`)."""
    return name in (SUCCESS, FAILURE)


# -- stamps, manifests -----------------------------------------------------------------------------
def stamp(t: datetime) -> str:
    """``yyyymmdd_HHMMSS`` of a UTC time."""
    return t.strftime("%Y%m%d_%H%M%S")


def export_id(start: datetime, uuid8: str) -> str:
    return f"exp_{stamp(start)}_{uuid8}"


def new_export() -> tuple[datetime, str, str]:
    """A new export's start (now, UTC, whole seconds), its 8 random hex digits (in its
    file names) and its :func:`export_id`."""
    start = datetime.now(UTC).replace(microsecond=0)
    uuid8 = uuid.uuid4().hex[:8]
    return start, uuid8, export_id(start, uuid8)


def manifest_name(start: datetime, uuid8: str | None = None) -> str:
    """``manifest_{yyyymmdd}_{HHMMSS}.json``; with ``uuid8`` when the plain name is taken."""
    return f"manifest_{stamp(start)}" + (f"_{uuid8}" if uuid8 else "") + ".json"


def is_manifest(name: str) -> bool:
    return bool(_MANIFEST_RE.match(name))


# -- folders ---------------------------------------------------------------------------------
#: the computed columns a scan adds so rows can be routed to folders: ``__dp_k0`` the
#: time folder (a :func:`time_folder` text), ``__dp_k1``... the sub-partitions
KEY_COLUMN_PREFIX = "__dp_k"
TIME_KEY = KEY_COLUMN_PREFIX + "0"

#: a time folder's ``strftime`` format per granularity
_TIME_FORMATS: dict[str, str] = {"hourly": "%Y/%m/%d/%H", "daily": "%Y/%m/%d", "monthly": "%Y/%m"}
#: what ``compact``'s snapshot appends to the destination: a sibling prefix, beside
#: the increments' and not inside it, so a glob over the destination never reads a row
#: twice (CONTRACT §8, §13)
SNAPSHOT_SUFFIX = "__snapshot/"
#: where snapshots were before (``{destination}/snapshot/``): still never counted as
#: increments, so a table compacted before keeps its rows once
SNAPSHOT_FOLDER = "snapshot/"
#: the ``test`` environment's exports (``{bucket}/test/...``), swept by lifecycle
TEST_EXPORTS_PREFIX = "test/"


def key_column(level: int) -> str:
    """The key column of a folder level: 0 the time folder, 1... the sub-partitions."""
    return f"{KEY_COLUMN_PREFIX}{level}"


def safe_segment(value: object) -> str:
    """A sub-partition value as one folder name; distinct values get distinct names.

    - NULL -> ``_null_`` (:data:`NULL_SEGMENT`);
    - the empty string -> ``_empty_`` (:data:`EMPTY_SEGMENT`);
    - any other value, as text: its UTF-8 bytes percent-encoded (``%XX``, upper-case
      hex) except ASCII letters, digits and ``-_.~@+=,``, which stay as they are, so
      ``engine``, ``us-east-1`` and ``42`` are their own folder names. More bytes are
      encoded to keep names apart from the markers, from path syntax and from hidden
      names (which ``ls``, shell globs and dpexport's local store listing skip): a
      leading ``_`` (``_null_`` -> ``%5Fnull_``), a leading ``.`` (``.x`` -> ``%2Ex``,
      ``../x`` -> ``%2E.%2Fx``), and both dots of ``..`` (``%2E%2E``);
    - a name that would be longer than :data:`MAX_SEGMENT` (255) bytes, the limit of
      common file systems (ext4, XFS, APFS, NTFS) for one path component, is cut to
      its first :data:`_KEPT` bytes (never inside a ``%XX`` or a character) and ends
      with ``!`` and the sha256 of the value's UTF-8 text (64 hex digits):
      deterministic, the same on every write path, within the limit. The rows keep
      the value itself.

    Safe: a name has no ``/``, ``\\``, control or non-ASCII character and never starts
    with ``.``, so a value cannot leave its folder nor hide in it.

    Injective, because:

    1. Percent-decoding any encoded name gives back the value's text: every byte is
       either kept (a character that is not ``%``) or written as ``%XX``, and ``%``
       itself is always encoded. So two texts with the same name are the same text.
    2. An encoded name never starts with ``_`` (a leading ``_`` is encoded) and is
       never empty, while both markers start with ``_`` and differ from each other.
       So NULL, the empty string and non-empty texts never share a name.
    3. A cut name holds ``!``, which an encoded name never does (it is encoded), and
       two cut names share a name only if their values' sha256 do.

    The top-level time folder of a NULL time is ``_null_`` too (:func:`time_segment`);
    it cannot collide either, as a time folder (``strftime``) never starts with ``_``.
    """
    if value is None:
        return NULL_SEGMENT
    text = str(value)
    if text == "":
        return EMPTY_SEGMENT
    if text in (".", ".."):
        return "%2E" * len(text)
    encoded = quote(text, safe=_SEGMENT_SAFE)
    if encoded[0] in "_.":
        encoded = ("%5F" if encoded[0] == "_" else "%2E") + encoded[1:]
    if len(encoded) <= MAX_SEGMENT:  # ASCII: as many bytes as characters
        return encoded
    return _cut(encoded) + _CUT_MARK + hashlib.sha256(text.encode("utf-8")).hexdigest()


def _cut(encoded: str) -> str:
    """The first :data:`_KEPT` bytes of an encoded name, or fewer: never half a
    ``%XX``, nor half a character (a ``%XX`` of a UTF-8 continuation byte, 80-BF, is
    not where a character starts), so the kept start decodes to the value's start."""
    end = _KEPT
    if "%" in encoded[end - 2 : end]:  # a "%XX" the cut would split
        end = encoded.rindex("%", 0, end)
    while encoded[end : end + 1] == "%" and encoded[end + 1 : end + 2] in "89AB":
        end -= 3  # a continuation byte's "%XX": its character starts before it
    return encoded[:end]


def time_segment(value: object) -> str:
    """The top-level folder of a row's time key (:data:`TIME_KEY`, ``2025/09/16``), or
    ``_null_`` for a NULL time; every write path (streamed, DuckDB, BigQuery's ``EXPORT
    DATA``) names time folders with this."""
    return NULL_SEGMENT if value is None else str(value)


def time_format(granularity: Granularity, pattern: str | None = None) -> str:
    """The ``strftime`` format of a time folder: ``%Y/%m/%d`` (daily), ``%Y/%m/%d/%H``
    (hourly), ``%Y/%m`` (monthly), or a ``path_pattern``'s (``pattern``, the
    partitioning's ``time_layout``: ``dt=%Y-%m-%d``). Engines render the same text in SQL."""
    return pattern or _TIME_FORMATS[granularity]


def time_folder(t: datetime, granularity: Granularity, pattern: str | None = None) -> str:
    """``yyyy/MM/dd`` (daily), ``yyyy/MM/dd/HH`` (hourly), ``yyyy/MM`` (monthly); or as
    ``pattern`` lays it out (:func:`time_format`)."""
    return t.strftime(time_format(granularity, pattern))


def time_folder_bounds(
    folder: str, granularity: Granularity, pattern: str | None = None
) -> tuple[datetime, datetime]:
    """The times a time folder holds, ``[start, end)`` (naive, UTC): the inverse of
    :func:`time_folder`. ``ValueError`` for a text that is not such a folder."""
    start = datetime.strptime(folder, time_format(granularity, pattern))
    if granularity == "hourly":
        return start, start + timedelta(hours=1)
    if granularity == "daily":
        return start, start + timedelta(days=1)
    month = start.month % 12 + 1
    return start, start.replace(year=start.year + (start.month == 12), month=month)


def partition_label(time_path: str) -> str:
    """The manifest's ``source.partition`` for a time folder: ``2025-09-16``,
    ``2025-09-16T14``, ``2025-09``; the same of a hive-style one (``dt=2025-09-16``),
    whose numbers come in the same order."""
    if time_path.split("/")[0] == NULL_SEGMENT:
        return NULL_SEGMENT
    parts = re.findall(r"[0-9]+", time_path)
    label = "-".join(parts[:3])
    return label + (f"T{parts[3]}" if len(parts) > 3 else "")


def top_folder(partitioning: Partitioning, folder_path: str) -> str:
    """The top-level time folder of a folder path (the manifest's home): its first
    segments, as many as the time folder has (a NULL time's ``_null_`` is one)."""
    parts = folder_path.split("/")
    if parts[0] == NULL_SEGMENT:
        return parts[0]
    granularity = partitioning.granularity if partitioning.time_expression else "daily"
    pattern = partitioning.time_layout if partitioning.time_expression else None
    depth = time_format(granularity, pattern).count("/") + 1
    return "/".join(parts[:depth])


def folder_for(
    partitioning: Partitioning, logical_time: datetime, values: dict[str, object]
) -> tuple[str, str]:
    """(top-level time folder, sub-folder path below it) for one row's key values.

    Without a time expression the table is laid out by the logical date (spec 3.1)."""
    if partitioning.time_expression:
        top = time_segment(values.get(TIME_KEY))
    else:
        top = time_folder(logical_time, "daily")
    subs = [
        hive_segment(sub.key, values.get(key_column(i)))
        if sub.key
        else safe_segment(values.get(key_column(i)))
        for i, sub in enumerate(partitioning.sub_partitions, start=1)
    ]
    return top, "/".join(subs)


def hive_segment(key: str, value: object) -> str:
    """A hive-style sub-folder, ``{key}={value}`` (``path_pattern`` ``shard={shard_id}``):
    the value as :func:`safe_segment` names it, NULL as :data:`HIVE_NULL`, which hive
    readers (DuckDB, pyarrow, polars, Spark) read as NULL. Still distinct values,
    distinct folders: an encoded value never starts with ``_``."""
    return f"{key}={HIVE_NULL if value is None else safe_segment(value)}"


# -- destinations ----------------------------------------------------------------------------
def default_destination(bucket: str, environment: str, dataset: str, table: str) -> str:
    """A table's destination when its config names none: ``{bucket}/{env}/{dataset}/{entity}/``
    (CONTRACT §3)."""
    return f"{bucket}/{environment}/{dataset}/{table}/"


def snapshot_destination(destination: str) -> str:
    """Where ``compact`` writes a table's snapshot: ``{destination}__snapshot/``, the
    destination's sibling (``gs://b/prod/ds/t/`` -> ``gs://b/prod/ds/t__snapshot/``).
    A bucket root has no sibling: ``compact`` refuses such a destination."""
    return destination.rstrip("/") + SNAPSHOT_SUFFIX


def is_snapshot_destination(destination: str) -> bool:
    """Whether ``destination`` is one :func:`snapshot_destination` made."""
    return destination.rstrip("/").endswith(SNAPSHOT_SUFFIX.rstrip("/"))


def in_snapshot(rel: str) -> bool:
    """Whether a key relative to the destination lies in a snapshot that an earlier
    ``compact`` wrote inside it (``snapshot/``); today's sit beside it."""
    return rel.startswith(SNAPSHOT_FOLDER)


def replica_destination(target: str, dataset: str, table: str) -> str:
    """Where one table's exports land under a replication target (a URI)."""
    return f"{target.rstrip('/')}/{dataset}/{table}/"
