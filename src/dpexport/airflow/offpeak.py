"""A schedule held to the off-peak window, as the cron that fires at the same times.

Spec 10.1's ``off_peak_exports: "2 AM - 6 AM PST"`` holds a frequency's fire times
(``daily`` is midnight in the table's zone) until the window opens. ``dpexport schedule``
computes each held time; an Airflow timetable only takes a cron. For the frequencies the
window holds the held times are themselves a cron on the window's clock: ``daily`` from
UTC midnight held to 2-6 AM Pacific fires at ``0 2 * * *`` in America/Los_Angeles,
``hourly`` at ``0 2,3,4,5 * * *``. :func:`held_cron` reads that cron off a year of held
fire times and keeps it only when it fires at exactly those times over the year (both DST
changes included); a schedule no cron states gets ``None``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from itertools import zip_longest

from dpexport.config import schedules
from dpexport.config.schedules import Schedule

#: the year the held times are read over, and a month either side of it, so that fire
#: times held across its edges are compared whole
_YEAR = (datetime(2025, 2, 1, tzinfo=UTC), datetime(2026, 2, 1, tzinfo=UTC))
_SPAN = (datetime(2025, 1, 1, tzinfo=UTC), datetime(2026, 3, 1, tzinfo=UTC))
#: each cron field's full range: a field that takes every value is written ``*``
_FULL = {"minute": 60, "hour": 24, "dom": 31, "month": 12, "dow": 7}
#: a value this few of a year's times take may be a DST change's, not the schedule's
_RARE = 2


def held_cron(schedule: Schedule) -> tuple[str, str] | None:
    """The (cron, zone) firing at ``schedule``'s held times, or None when none does."""
    if schedule.window is None:
        return None
    zone = schedule.window.zone.key
    want = list(_in_year(schedule))
    if not want:
        return None
    local = [t.astimezone(schedule.window.zone) for t in want]
    for clock in (_fields(local, rare=0), _fields(local, rare=_RARE)):
        # cron fires on a day-of-month OR a day-of-week when both are set: each alone too
        for dom, dow in ((clock["dom"], clock["dow"]), (clock["dom"], "*"), ("*", clock["dow"])):
            cron = f"{clock['minute']} {clock['hour']} {dom} {clock['month']} {dow}"
            if _same(schedules.parse(f"CRON_TZ={zone} {cron}"), want):
                return cron, zone
    return None


def _fields(local: list[datetime], rare: int) -> dict[str, str]:
    """Each cron field: the values the times take, less those ``rare`` times or fewer
    take (a wall time the spring-forward skips is read an hour later: 03:00, not 02:00)."""
    values = {
        "minute": Counter(t.minute for t in local),
        "hour": Counter(t.hour for t in local),
        "dom": Counter(t.day for t in local),
        "month": Counter(t.month for t in local),
        "dow": Counter((t.weekday() + 1) % 7 for t in local),  # cron's Sunday is 0
    }
    return {
        name: _field(name, {v for v, n in counts.items() if n > rare})
        for name, counts in values.items()
    }


def _in_year(schedule: Schedule) -> Iterator[datetime]:
    start, end = _YEAR
    return (t for t in schedule.between(*_SPAN) if start <= t < end)


def _same(schedule: Schedule, want: list[datetime]) -> bool:
    """``schedule`` fires at ``want`` over the year; read only up to its first miss."""
    return all(a == b for a, b in zip_longest(_in_year(schedule), want))


def _field(name: str, values: set[int]) -> str:
    if len(values) == _FULL[name]:
        return "*"
    return ",".join(str(v) for v in sorted(values))
