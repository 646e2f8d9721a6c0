"""Where files land (spec 3, CONTRACT §4): folders, filenames, reserved prefixes.

This is the one module that knows path shapes. Everything else asks it.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from datetime import datetime
from urllib.parse import quote

from dpexport.config.spec import Partitioning
from dpexport.engines.base import column_sql

#: Reserved prefixes at the bucket root (CONTRACT §4).
TOKENS_PREFIX = "idempotency-tokens/"
DLQ_PREFIX = "dead-letter-queue/"
LOGS_PREFIX = "export-logs/"
STATE_PREFIX = "_state/"
STAGING_PREFIX = "_staging/"

SUCCESS = "SUCCESS"
FAILURE = "FAILURE"
SIDECAR_SUFFIX = ".metadata.json"
ENCRYPTED_SUFFIX = "enc"

_EXT = {"PARQUET": "parquet", "JSONL": "jsonl", "CSV": "csv"}
_CODEC_SUFFIX = {"SNAPPY": "snappy", "ZSTD": "zst", "GZIP": "gz", "BROTLI": "br", "NONE": ""}

#: The folder segment for a NULL partition value (see :func:`safe_segment`).
NULL_SEGMENT = "_null_"
#: The folder segment for an empty-string partition value (see :func:`safe_segment`).
EMPTY_SEGMENT = "_empty_"
#: What :func:`safe_segment` leaves unencoded: letters, digits and ``-_.~@+=,``
_SEGMENT_SAFE = "-_.~@+=,"

_MANIFEST_RE = re.compile(r"^manifest_\d{8}_\d{6}(?:_[0-9a-f]{8})?\.json$")


def file_suffix(fmt: str, codec: str, *, encrypted: bool = False) -> str:
    """``parquet.snappy``, ``jsonl.gz``, ``csv``, ``csv.gz.enc``..."""
    parts = [_EXT[fmt]]
    if _CODEC_SUFFIX[codec]:
        parts.append(_CODEC_SUFFIX[codec])
    if encrypted:
        parts.append(ENCRYPTED_SUFFIX)
    return ".".join(parts)


def stamp(t: datetime) -> str:
    """``yyyymmdd_HHMMSS`` of a UTC time."""
    return t.strftime("%Y%m%d_%H%M%S")


def export_id(start: datetime, uuid8: str) -> str:
    return f"exp_{stamp(start)}_{uuid8}"


def data_filename(entity: str, start: datetime, uuid8: str, seq: int | None, suffix: str) -> str:
    """``{entity}_{yyyymmdd}_{HHMMSS}_{uuid8}[_{NNN}].{suffix}``; ``seq`` is 1-based and
    given only when the export writes more than one file into the folder."""
    number = f"_{seq:03d}" if seq is not None else ""
    return f"{entity}_{stamp(start)}_{uuid8}{number}.{suffix}"


def sidecar_name(filename: str) -> str:
    return filename + SIDECAR_SUFFIX


def manifest_name(start: datetime, uuid8: str | None = None) -> str:
    """``manifest_{yyyymmdd}_{HHMMSS}.json``; with ``uuid8`` when the plain name is taken."""
    return f"manifest_{stamp(start)}" + (f"_{uuid8}" if uuid8 else "") + ".json"


def is_manifest(name: str) -> bool:
    return bool(_MANIFEST_RE.match(name))


def is_data_file(name: str) -> bool:
    """A data file name (not a sidecar, manifest or marker)."""
    if name.endswith(SIDECAR_SUFFIX) or name in (SUCCESS, FAILURE) or is_manifest(name):
        return False
    return any(f".{ext}" in name for ext in _EXT.values())


def safe_segment(value: object) -> str:
    """A sub-partition value as one folder name; distinct values get distinct names.

    - NULL -> ``_null_`` (:data:`NULL_SEGMENT`);
    - the empty string -> ``_empty_`` (:data:`EMPTY_SEGMENT`);
    - any other value, as text: its UTF-8 bytes percent-encoded (``%XX``, upper-case
      hex) except ASCII letters, digits and ``-_.~@+=,``, which stay as they are, so
      ``engine``, ``us-east-1`` and ``42`` are their own folder names. Two more bytes
      are encoded to keep names apart from the markers and from path syntax: a
      leading ``_`` (``_null_`` -> ``%5Fnull_``), and the dots of ``.`` and ``..``
      (``%2E``, ``%2E%2E``).

    Safe: a name has no ``/``, ``\\``, control or non-ASCII character and is never
    ``.`` or ``..``, so a value cannot leave its folder. (Long values make long
    names; file systems limit a name to 255 bytes, object stores do not.)

    Injective, because:

    1. Percent-decoding any encoded name gives back the value's text: every byte is
       either kept (a character that is not ``%``) or written as ``%XX``, and ``%``
       itself is always encoded. So two texts with the same name are the same text.
    2. An encoded name never starts with ``_`` (a leading ``_`` is encoded) and is
       never empty, while both markers start with ``_`` and differ from each other.
       So NULL, the empty string and non-empty texts never share a name.

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
    return "%5F" + encoded[1:] if encoded.startswith("_") else encoded


def time_segment(value: object) -> str:
    """The top-level folder of a row's time key (``__dp_k0``, the text :func:`time_sql`
    makes, ``2025/09/16``): the text itself, or ``_null_`` for a NULL time. Every write
    path names time folders with this (the streamed and DuckDB paths through
    :func:`folder_for`, BigQuery's ``EXPORT DATA``)."""
    return NULL_SEGMENT if value is None else str(value)


def time_folder(t: datetime, granularity: str) -> str:
    """``yyyy/MM/dd`` (daily), ``yyyy/MM/dd/HH`` (hourly), ``yyyy/MM`` (monthly)."""
    if granularity == "hourly":
        return t.strftime("%Y/%m/%d/%H")
    if granularity == "monthly":
        return t.strftime("%Y/%m")
    return t.strftime("%Y/%m/%d")


def partition_label(time_path: str) -> str:
    """The manifest's ``source.partition`` for a time folder: ``2025-09-16``,
    ``2025-09-16T14``, ``2025-09``."""
    parts = time_path.split("/")
    if parts[0] == NULL_SEGMENT:
        return NULL_SEGMENT
    label = "-".join(parts[:3])
    return label + (f"T{parts[3]}" if len(parts) > 3 else "")


def time_sql(expression: str, granularity: str) -> str:
    """SQL (DuckDB dialect) rendering a row's time value as its time folder text.

    The engine computes folder keys, so partition expressions are pushed down and
    the data arrives grouped by folder."""
    fmt = {"hourly": "%Y/%m/%d/%H", "monthly": "%Y/%m", "daily": "%Y/%m/%d"}[granularity]
    return f"strftime(CAST(({expression}) AS TIMESTAMP), '{fmt}')"


def partition_key_sql(partitioning: Partitioning, columns: Collection[str] = ()) -> dict[str, str]:
    """The computed columns a scan adds so rows can be routed to folders: one per
    level, named ``__dp_k0`` (time) and ``__dp_k1``... (sub-partitions). An expression
    that is exactly one of the table's ``columns`` is quoted (``at``, ``order``)."""
    keys: dict[str, str] = {}
    if partitioning.time_expression:
        expr = column_sql(partitioning.time_expression, columns)
        keys["__dp_k0"] = time_sql(expr, partitioning.granularity)
    for i, sub in enumerate(partitioning.sub_partitions, start=1):
        keys[f"__dp_k{i}"] = f"CAST(({column_sql(sub.expression, columns)}) AS VARCHAR)"
    return keys


def folder_for(
    partitioning: Partitioning, logical_time: datetime, values: dict[str, object]
) -> tuple[str, str]:
    """(top-level time folder, sub-folder path below it) for one row's key values.

    Without a time expression the table is laid out by the logical date (spec 3.1)."""
    if partitioning.time_expression:
        top = time_segment(values.get("__dp_k0"))
    else:
        top = time_folder(logical_time, "daily")
    subs = [
        safe_segment(values.get(f"__dp_k{i}"))
        for i in range(1, len(partitioning.sub_partitions) + 1)
    ]
    return top, "/".join(subs)
