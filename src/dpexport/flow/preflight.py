"""Spec 5.2's pre-export gate on the source: the newest row is fresh enough.

``exports[].freshness: 1 hour`` says the table's newest cursor value (its ``change_column``,
else its partitioning time field) may be at most that old at the export's logical time;
an older source fails the export before anything is staged: a FAILURE, a DLQ entry and
the reason, naming the newest value found. A DATE cursor's day counts as fresh until the
day is over.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from dpexport.config.spec import TableSpec
from dpexport.engines.base import Engine, ScanRequest, column_sql
from dpexport.errors import PreconditionFailed
from dpexport.planning.plan import cursor_of

__all__ = ["check_freshness", "newest_time"]


def newest_time(value: Any) -> datetime | None:
    """A cursor value as the latest moment its rows can stand for (UTC); ``None`` for a
    value that is not a time."""
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, date):
        return datetime.combine(value + timedelta(days=1), time(), tzinfo=UTC)
    return None


def check_freshness(
    engine: Engine, spec: TableSpec, columns: list[str], logical_time: datetime
) -> None:
    """Raise :class:`PreconditionFailed` when ``spec.freshness`` is set and the source's
    newest cursor value is older than that at ``logical_time`` (or there is none)."""
    limit, cursor = spec.freshness, cursor_of(spec)
    if limit is None or cursor is None:
        return
    expression = column_sql(cursor, columns)
    newest = engine.aggregate(
        ScanRequest(spec.dataset, spec.table), {"newest": f"max({expression})"}
    ).get("newest")
    when = newest_time(newest)
    if newest is None:
        why = f"the source has no row with a {cursor}"
    elif when is None:
        why = f"{cursor} is not a TIMESTAMP or DATE (its newest value is {newest!r})"
    elif logical_time - when > limit:
        age = _age(logical_time - when)
        why = f"its newest {cursor} is {newest}, {age} before {logical_time:%Y-%m-%dT%H:%M:%SZ}"
    else:
        return
    raise PreconditionFailed(
        f"the source is stale: {why}; freshness allows {_age(limit)}", table=spec.qualified_name
    )


def _age(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    if seconds % 86400 == 0 and seconds:
        return f"{seconds // 86400} day(s)"
    if seconds % 3600 == 0 and seconds:
        return f"{seconds // 3600} hour(s)"
    return f"{seconds // 60} minute(s)" if seconds % 60 == 0 else f"{seconds} second(s)"
