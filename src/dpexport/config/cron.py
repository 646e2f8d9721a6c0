"""Cron expressions that croniter accepts but reads otherwise than cron does.

The scheduler fires on croniter's reading of a schedule, and croniter takes more than
cron's five fields: a sixth field is *seconds* and a seventh a year. So the Quartz form
``0 0 */6 * * ?`` (seconds first) fires every second of minute 0 of every hour, not every
six hours. Also read otherwise than meant: a step as long as its field's range
(``*/90`` minutes fires once an hour, at minute 0), and a date no month has
(``0 0 31 2 *``: croniter accepts it, and the scheduler fails when it asks for the next
slot). :func:`misread` names each; an expression croniter refuses outright is
:mod:`dpexport.config.validate`'s to report.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from croniter import croniter

FIVE_FIELDS = "5 cron fields (minute hour day-of-month month day-of-week), e.g. '0 */6 * * *'"
#: name, first value, number of values (day of week: 0-7, both Sunday)
_FIELDS = (
    ("minute", 0, 60),
    ("hour", 0, 24),
    ("day-of-month", 1, 31),
    ("month", 1, 12),
    ("day-of-week", 0, 7),
)
#: a time-zone prefix (``CRON_TZ=Europe/Paris 0 2 * * *``) is not a field
_TZ_PREFIX = re.compile(r"^\s*(?:CRON_TZ|TZ)=\S+\s+")
#: a Quartz day-of-week number (1 = Sunday), not a step or an nth-weekday count
_QUARTZ_DOW = re.compile(r"(?<![/#\d])([1-7])(?!\d)")


@dataclass(frozen=True)
class CronProblem:
    """Why a schedule would fire at other times than meant, what is expected, and the
    expression most likely meant (``None`` when none is clear)."""

    message: str
    expected: str
    suggestion: str | None = None


def _croniter() -> type[croniter]:
    # croniter (and dateutil under it) loads only for a config that has a schedule
    from croniter import croniter

    return croniter


def _accepted(text: str) -> bool:
    return bool(_croniter().is_valid(text))


def fires(text: str) -> bool:
    """True when croniter finds a next slot for ``text`` (a date some month has)."""
    try:
        _croniter()(text, datetime(2000, 1, 1)).get_next(datetime)
    except ValueError:  # CroniterBadDateError: no such date in the years it searches
        return False
    return True


def misread(text: str) -> CronProblem | None:
    """What croniter would read otherwise than the cron expression ``text`` says, or
    ``None``. ``None`` too for what croniter refuses (reported as not parsing) and for
    its ``@hourly``-style aliases."""
    body = _TZ_PREFIX.sub("", text).strip()
    if not body or body.startswith("@") or not _accepted(body):
        return None
    fields = body.split()
    if len(fields) != 5:
        return CronProblem(
            f"{len(fields)} cron fields where a schedule takes 5: croniter would read the "
            "6th as seconds and a 7th as a year, not as cron or Quartz (seconds first) "
            "mean them, so it would fire at other times",
            FIVE_FIELDS,
            _five_fields(fields),
        )
    return _long_step(fields) or _never_fires(fields)


def _valid_five(fields: list[str]) -> str | None:
    text = " ".join(fields)
    return text if _accepted(text) and fires(text) else None


def _five_fields(fields: list[str]) -> str | None:
    """The 5-field expression meant: a Quartz one (seconds first, days of week 1-7
    from Sunday, an optional year) without its seconds and year, else the first five."""
    first = fields[0]
    if first.isdigit() and int(first) < 60 and len(fields) in (6, 7):
        minute, hour, dom, month, dow = (f.replace("?", "*") for f in fields[1:6])
        dow = _QUARTZ_DOW.sub(lambda m: str(int(m.group(1)) - 1), dow)
        found = _valid_five([minute, hour, dom, month, dow])
        if found:
            return found
    return _valid_five(fields[:5]) if len(fields) > 5 else None


def _long_step(fields: list[str]) -> CronProblem | None:
    """A step not shorter than its field's range fires once per range (``*/90``
    minutes: at minute 0 of each hour)."""
    for index, (name, first, count) in enumerate(_FIELDS):
        for part in fields[index].split(","):
            base, sep, step = part.partition("/")
            if not sep or not step.isdigit() or int(step) < count:
                continue
            return CronProblem(
                f"step /{step} in the {name} field is not shorter than its range "
                f"({count} values), so it fires once per range, at {name} "
                f"{base if base not in ('*', '?') else first}, not every {step}",
                f"{'an' if name == 'hour' else 'a'} {name} step from 1 to {count - 1}"
                + _next_field_hint(index),
                _carried(fields, index, int(step)),
            )
    return None


def _next_field_hint(index: int) -> str:
    if index == 0:
        return "; every N hours is '0 */N * * *'"
    if index == 1:
        return "; every N days is '0 0 */N * *'"
    return ""


def _carried(fields: list[str], index: int, step: int) -> str | None:
    """``*/120`` minutes as ``0 */2`` hours (and ``*/48`` hours as ``*/2`` days),
    when the step is whole in the next field's unit and that field is ``*``."""
    per_next = {0: 60, 1: 24}.get(index)
    if per_next is None or step % per_next or fields[index + 1] != "*":
        return None
    out = list(fields)
    out[index] = "0"
    out[index + 1] = f"*/{step // per_next}" if step // per_next > 1 else "*"
    return _valid_five(out)


def _never_fires(fields: list[str]) -> CronProblem | None:
    text = " ".join(fields)
    if fires(text):
        return None
    last = list(fields)
    last[2] = "L"
    return CronProblem(
        f"day {fields[2]} of month {fields[3]} is not a date, so this never fires",
        "a day of month that the month has ('L' is its last day)",
        _valid_five(last),
    )
