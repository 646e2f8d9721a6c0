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

import re
from dataclasses import dataclass, field

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
    names = [n for n in _PLACEHOLDER.findall(entry.path_pattern) if n not in _TIME_NAMES]
    return tuple(SubPartition(n, e) for n, e in zip(names, exprs, strict=False))


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
    return out


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
