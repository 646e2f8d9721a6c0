"""Which folders a table's rows land in: exports ``partitioning`` + spec 3.2 + spec 4.1.

Precedence (CONTRACT §3): the ``exports`` item, then the table's ``high_volume`` /
``append_only`` entries, then the default (laid out by the logical date, daily).

- ``{field, granularity}`` -> that column, that granularity.
- ``{primary: timestamp_hour, secondary: equipment_id_shard}`` (spec 8.2) names the
  table's spec 3.2 expressions (CONTRACT §8): the time column of ``primary_partition``
  at hourly granularity, and the 3.2 sub-partitions.
- A ``high_volume`` entry gives sub-partitions: the ``path_pattern`` placeholders after
  the time part, in order, take ``secondary_partition`` then ``tertiary_partition``;
  ``{HH}`` in the pattern means hourly.
- ``append_only.partition_by`` sets the granularity when nothing above does.

``date(col)`` as a time expression resolves to ``col``: the folder is the same, and the
full timestamp keeps the hour and serves as an exact APPEND cursor.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field

from dpexport.config import path_pattern
from dpexport.config.loader import Path
from dpexport.config.models import AppendOnlyEntry, HighVolumeEntry, PartitioningBlock
from dpexport.config.spec import Granularity, Partitioning, SubPartition

#: Spec 8.2's names for the primary time expression, and the granularity each implies.
TIME_ALIASES: dict[str, Granularity] = {
    "timestamp_hour": "hourly",
    "timestamp_day": "daily",
    "timestamp_date": "daily",
    "timestamp_month": "monthly",
}
_DATE_OF = re.compile(
    r"^\s*(?:date|datetime|timestamp)\s*\(\s*([A-Za-z_]\w*)\s*\)\s*$", re.IGNORECASE
)
_PLACEHOLDER = re.compile(r"\{(\w+)\}")
_TIME_NAMES = {"entity", "yyyy", "MM", "dd", "HH"}
_SHARD = re.compile(r"^(\w+)_shard$")


@dataclass
class Resolved:
    """The partitioning and, per part, the YAML path it came from."""

    partitioning: Partitioning
    origins: dict[str, Path] = field(default_factory=dict)
    problems: list[tuple[Path, str]] = field(default_factory=list)


def time_column(expression: str) -> str:
    """``date(created_at)`` -> ``created_at``; anything else unchanged."""
    match = _DATE_OF.match(expression)
    return match.group(1) if match else expression.strip()


def sub_partitions(entry: HighVolumeEntry) -> tuple[SubPartition, ...]:
    """Spec 3.2 placeholders after the time part, paired with secondary/tertiary in order."""
    exprs = [e for e in (entry.secondary_partition, entry.tertiary_partition) if e]
    if entry.path_pattern is None:
        # No pattern: name each sub-folder after its expression's column.
        return tuple(SubPartition(_name_of(e), e) for e in exprs)
    try:
        subs = path_pattern.parse(entry.path_pattern).subs
    except path_pattern.PatternError:  # check names it; the placeholders still name folders
        names = [n for n in _PLACEHOLDER.findall(entry.path_pattern) if n not in _TIME_NAMES]
        return tuple(SubPartition(n, e) for n, e in zip(names, exprs, strict=False))
    return tuple(SubPartition(p.name, e, p.key) for p, e in zip(subs, exprs, strict=False))


def _name_of(expression: str) -> str:
    words = re.findall(r"[A-Za-z_]\w*", expression)
    return words[0] if words else "part"


def resolve_partitioning(
    item: PartitioningBlock | None,
    item_path: Path,
    high_volume: HighVolumeEntry | None,
    hv_path: Path,
    append_only: AppendOnlyEntry | None,
    append_path: Path,
) -> Resolved:
    """Resolve one table's ``Partitioning`` (see the module docstring for the rules)."""
    out = Resolved(Partitioning())
    subs: tuple[SubPartition, ...] = ()
    hv_time: str | None = None
    fallback: Granularity = "daily"
    if append_only is not None and append_only.partition_by:
        fallback = append_only.partition_by
        out.origins["partitioning.granularity"] = (*append_path, "partition_by")
    if high_volume is not None:
        subs = sub_partitions(high_volume)
        hv_time = time_column(high_volume.primary_partition)
        if high_volume.path_pattern and "{HH}" in high_volume.path_pattern:
            fallback = "hourly"
            out.origins["partitioning.granularity"] = (*hv_path, "path_pattern")
        keys = ("secondary_partition", "tertiary_partition")
        for sub, key in zip(subs, keys, strict=False):
            out.origins[f"partitioning.sub.{sub.name}"] = (*hv_path, key)
    time: str | None = hv_time
    if hv_time is not None:
        out.origins["partitioning.time"] = (*hv_path, "primary_partition")
    granularity: Granularity = fallback

    if item is not None and item.field is not None:
        time = time_column(item.field)
        granularity = item.granularity or fallback
        out.origins["partitioning.time"] = (*item_path, "field")
        if item.secondary or item.tertiary:  # {field, secondary}: sub-folders too
            subs = _item_subs(item, item_path, high_volume, subs, out)
    elif item is not None and item.primary is not None:
        alias = TIME_ALIASES.get(item.primary)
        if alias is not None:
            granularity = item.granularity or alias
            if hv_time is None:
                out.problems.append(
                    (
                        (*item_path, "primary"),
                        f"{item.primary!r} names the table's spec 3.2 primary_partition, "
                        "but the table has no high_volume entry",
                    )
                )
        else:
            time = time_column(item.primary)
            granularity = item.granularity or fallback
            out.origins["partitioning.time"] = (*item_path, "primary")
        subs = _item_subs(item, item_path, high_volume, subs, out)
    out.partitioning = Partitioning(
        time_expression=time, granularity=granularity, sub_partitions=subs
    )
    pattern, pattern_path = _pattern_of(item, item_path, high_volume, hv_path)
    if pattern is not None:
        _apply_pattern(
            out, pattern, pattern_path, granularity_given=bool(item and item.granularity)
        )
    return out


def _pattern_of(
    item: PartitioningBlock | None,
    item_path: Path,
    high_volume: HighVolumeEntry | None,
    hv_path: Path,
) -> tuple[str | None, Path]:
    """The table's ``path_pattern``: its ``exports`` item's ``partitioning``, else its
    ``high_volume`` entry's."""
    if item is not None and item.path_pattern is not None:
        return item.path_pattern, (*item_path, "path_pattern")
    if high_volume is not None and high_volume.path_pattern is not None:
        return high_volume.path_pattern, (*hv_path, "path_pattern")
    return None, ()


def _apply_pattern(out: Resolved, pattern: str, path: Path, *, granularity_given: bool) -> None:
    """A hive-style pattern's folder names (``dt=%Y-%m-%d``, ``shard=...``); its time
    placeholders set the granularity. A pattern that does not parse is ``check``'s to
    name (:func:`dpexport.config.path_pattern.problems`)."""
    try:
        parsed = path_pattern.parse(pattern)
    except path_pattern.PatternError:
        return
    part = out.partitioning
    granularity: Granularity = "hourly" if parsed.hourly else "daily" if parsed.daily else "monthly"
    if parsed.time_layout is not None and granularity != part.granularity and granularity_given:
        out.problems.append(
            (path, f"lays out {granularity} folders, but the granularity is {part.granularity}")
        )
        return
    if parsed.time_layout is not None and part.time_expression is None:
        out.problems.append(
            (path, "hive-style time folders need a time column (partitioning.field)")
        )
        return
    names = [(p.name, p.key) for p in parsed.subs]
    if len(names) > len(part.sub_partitions):
        out.problems.append(
            (
                path,
                f"{len(names)} sub-folder placeholder(s) but {len(part.sub_partitions)} "
                "sub-partition expression(s) (secondary, tertiary)",
            )
        )
        return
    subs = (
        tuple(
            dataclasses.replace(s, name=n, key=k)
            for s, (n, k) in zip(part.sub_partitions, names, strict=False)
        )
        + part.sub_partitions[len(names) :]
    )
    out.partitioning = dataclasses.replace(
        part,
        granularity=granularity if parsed.time_layout is not None else part.granularity,
        sub_partitions=subs,
        time_layout=parsed.time_layout,
    )
    out.origins["partitioning.path_pattern"] = path


def _item_subs(
    item: PartitioningBlock,
    item_path: Path,
    high_volume: HighVolumeEntry | None,
    hv_subs: tuple[SubPartition, ...],
    out: Resolved,
) -> tuple[SubPartition, ...]:
    """Sub-partitions for ``{primary, secondary, tertiary}``: the 3.2 layout when the
    table has one (the item's names must match it), else built from the names."""
    named = [(k, v) for k, v in (("secondary", item.secondary), ("tertiary", item.tertiary)) if v]
    if high_volume is not None:
        exprs = [e for e in (high_volume.secondary_partition, high_volume.tertiary_partition) if e]
        for (key, name), expr in zip(named, exprs, strict=False):
            shard = _SHARD.match(name)
            column = shard.group(1) if shard else name
            if column not in re.findall(r"[A-Za-z_]\w*", expr):
                out.problems.append(
                    (
                        (*item_path, key),
                        f"{name!r} does not match the table's spec 3.2 {key}_partition {expr!r}",
                    )
                )
        if len(named) > len(exprs):
            out.problems.append(
                (
                    (*item_path, named[len(exprs)][0]),
                    "the table's high_volume entry has no such level",
                )
            )
        return hv_subs
    subs = []
    for key, name in named:
        shard = _SHARD.match(name)
        sub = (
            SubPartition("shard_id", f"{shard.group(1)} % 100")
            if shard
            else SubPartition(name, name)
        )
        out.origins[f"partitioning.sub.{sub.name}"] = (*item_path, key)
        subs.append(sub)
    return tuple(subs)
