"""Spec 3.2 ``path_pattern``, plain or hive style (CONTRACT §13).

``{entity}/{yyyy}/{MM}/{dd}[/{HH}]/{sub}/...`` is the spec's. A segment may also be hive
style, ``key=value``, so readers that discover partitions from folders (DuckDB's
``hive_partitioning``, pyarrow's ``partitioning="hive"``, polars, Spark, BigQuery hive
external tables) read ``key`` as a column:

- time segments hold the time placeholders in order (``{yyyy}``, ``{MM}``, ``{dd}``,
  ``{HH}``; at least a year and a month), each alone (``{yyyy}``) or in one hive segment
  with other text (``dt={yyyy}-{MM}-{dd}``, ``hour={HH}``); ``{HH}`` makes the table
  hourly, no ``{dd}`` monthly;
- then one segment per sub-partition, ``{name}`` or ``key={name}``.

A key is an identifier (letters, digits, ``_``; not first a digit), used once; the text
around placeholders is letters, digits, ``-`` and ``_``, so each segment stays one folder
and reads back. :func:`parse` gives the time folder's ``strftime`` format (None for the
spec's plain one) and each sub-partition's name and key; :func:`problems` says what
``check`` refuses.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

TIME_TOKENS = ("{yyyy}", "{MM}", "{dd}", "{HH}")
_STRFTIME = {"{yyyy}": "%Y", "{MM}": "%m", "{dd}": "%d", "{HH}": "%H"}
_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")
_LITERAL = re.compile(r"[A-Za-z0-9_-]*")
EXPECTED = (
    "{entity}/{yyyy}/{MM}/{dd}[/{HH}] then one {placeholder} per sub-partition; a segment "
    "may be hive style, key={placeholder} (dt={yyyy}-{MM}-{dd}, hour={HH}, shard={shard_id})"
)


@dataclass(frozen=True)
class Sub:
    """One sub-partition segment: its placeholder's name and its hive key (or None)."""

    name: str
    key: str | None


@dataclass(frozen=True)
class PathPattern:
    """A parsed pattern: the time folder's ``strftime`` format (None: the spec's plain
    ``%Y/%m/%d``...), whether it holds ``{HH}`` / ``{dd}``, and the sub-partitions."""

    time_layout: str | None
    hourly: bool
    daily: bool
    subs: tuple[Sub, ...]


class PatternError(ValueError):
    """Why a pattern cannot be laid out (``check`` names it with its YAML path)."""


def parse(pattern: str) -> PathPattern:
    """The layout ``pattern`` describes; :class:`PatternError` says why it cannot be one."""
    parts = [p for p in pattern.split("/") if p]
    if not parts or parts[0] != "{entity}":
        raise PatternError("must start with {entity}")
    time: list[str] = []
    formats: list[str] = []
    keys: list[str] = []
    rest = parts[1:]
    while rest and _is_time(rest[0]):
        segment = rest.pop(0)
        key, value = _split(segment, keys)
        held = _PLACEHOLDER.findall(value)
        time += ["{" + h + "}" for h in held]
        formats.append((f"{key}=" if key else "") + _strftime(value))
    if time != list(TIME_TOKENS[: len(time)]) or len(time) < 2:
        raise PatternError(
            "its time placeholders must be {yyyy}, {MM}[, {dd}[, {HH}]] in that order"
        )
    subs = []
    for segment in rest:
        key, value = _split(segment, keys)
        found = _PLACEHOLDER.fullmatch(value)
        if found is None or not _KEY.fullmatch(found.group(1)):
            raise PatternError(
                f"sub-folder {segment!r} must be one {{placeholder}} or key={{placeholder}}"
            )
        subs.append(Sub(found.group(1), key))
    layout = "/".join(formats)
    plain = "/".join(_STRFTIME[t] for t in time)
    return PathPattern(
        None if layout == plain else layout, "{HH}" in time, "{dd}" in time, tuple(subs)
    )


def _is_time(segment: str) -> bool:
    return any(t in segment for t in TIME_TOKENS)


def _split(segment: str, keys: list[str]) -> tuple[str | None, str]:
    """(hive key or None, the value part) of a segment; a key is checked and kept in
    ``keys`` (one use each)."""
    if "=" not in segment:
        if _PLACEHOLDER.fullmatch(segment) is None:
            raise PatternError(
                f"segment {segment!r} must be one {{placeholder}}, or hive style key=value"
            )
        return None, segment
    key, _, value = segment.partition("=")
    if not _KEY.fullmatch(key):
        raise PatternError(
            f"hive key {key!r} in {segment!r} must be an identifier (letters, digits, _)"
        )
    if key in keys:
        raise PatternError(f"hive key {key!r} is used twice")
    keys.append(key)
    if not _PLACEHOLDER.search(value) or not _LITERAL.fullmatch(_PLACEHOLDER.sub("", value)):
        raise PatternError(
            f"{segment!r}: the value must hold a placeholder, and besides placeholders "
            "only letters, digits, '-' and '_' (one folder)"
        )
    return key, value


def _strftime(value: str) -> str:
    def one(found: re.Match[str]) -> str:
        token = found.group(0)
        if token not in _STRFTIME:
            raise PatternError(
                f"{value!r} mixes {token} with time placeholders; a sub-partition has "
                "its own segment"
            )
        return _STRFTIME[token]

    return _PLACEHOLDER.sub(one, value)


def problems(pattern: str, expressions: int | None) -> list[str]:
    """Why ``check`` refuses ``pattern`` with ``expressions`` sub-partition expressions
    (None: not counted here)."""
    try:
        parsed = parse(pattern)
    except PatternError as exc:
        return [str(exc)]
    if expressions is not None and len(parsed.subs) > expressions:
        return [
            f"{len(parsed.subs)} sub-folder placeholder(s) but fewer partition expressions "
            "(secondary_partition, tertiary_partition)"
        ]
    return []


def hive_keys(time_layout: str | None, sub_keys: Iterable[str | None]) -> list[str]:
    """The ``key=`` names a layout's folders carry (time first, then sub-partitions)."""
    keys = re.findall(r"(?:^|/)([A-Za-z_][A-Za-z0-9_]*)=", time_layout or "")
    return keys + [k for k in sub_keys if k]


def key_collisions(keys: Iterable[str], columns: Iterable[str]) -> list[tuple[str, str]]:
    """(key, column) for each hive key that names a column the files hold, compared
    without case (DuckDB's names are). A hive reader then sees the column twice:
    DuckDB's ``hive_partitioning`` silently replaces the file's values with the folder's
    (a ``dt`` column of numbers read back as dates), pyarrow and polars refuse the
    dataset; so ``check`` refuses such a key."""
    by_lower = {c.lower(): c for c in columns}
    return [(k, by_lower[k.lower()]) for k in keys if k.lower() in by_lower]
