"""What a schedule says: one reading for the scheduler and for ``check``.

A table's schedule is one of:

- a cron expression of 5 fields (minute hour day-of-month month day-of-week) or one of
  croniter's aliases (``@daily``), optionally prefixed ``CRON_TZ=Area/City `` (or
  ``TZ=``) naming the IANA zone its clock reads; without one, the table's ``timezone:``
  key, else UTC;
- ``continuous``: every ``every`` on a grid that starts at the Unix epoch;
- ``on_change``: a poll every ``poll`` (default :data:`DEFAULT_POLL`) on such a grid; the
  scheduler exports at a poll only when the table's change marker moved since its last
  committed export.

Daylight saving time is croniter's, over :mod:`zoneinfo`: a wall time the spring-forward
skips fires at the change (02:30 in America/Los_Angeles on 2025-03-09 fires at 03:00
PDT, 10:00 UTC); a wall time the fall-back repeats fires at both (01:30 PDT and 01:30
PST); one after the repeated hour fires once (02:30 PST on 2025-11-02, 10:30 UTC).

The off-peak window (spec 10.1 ``off_peak_exports: "2 AM - 6 AM PST"``) holds a fire time
outside it until the window next opens; fire times held to one opening are one fire time.
It applies to schedules that come from a spec 4.2 ``frequency`` word (:func:`table_schedule`):
those say how often, not when; a cron written out says when, and is kept.

Every function that reads a schedule raises :class:`ScheduleError` (a
:class:`Problem`), which ``check`` reports at the value's YAML path.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

if TYPE_CHECKING:
    from dpexport.config.issues import Issues
    from dpexport.config.loader import Path

CONTINUOUS = "continuous"
ON_CHANGE = "on_change"
#: how often an ``on_change`` table is polled unless ``schedule --poll-every`` says otherwise
DEFAULT_POLL = timedelta(minutes=5)
#: spec 4.2 frequencies as cron slots (midnight in the table's zone; weekly on Sunday)
FREQUENCY_CRON = {
    "hourly": "0 * * * *",
    "daily": "0 0 * * *",
    "weekly": "0 0 * * 0",
    "monthly": "0 0 1 * *",
}
FREQUENCIES = (*FREQUENCY_CRON, ON_CHANGE)
FIVE_FIELDS = "5 cron fields (minute hour day-of-month month day-of-week), e.g. '0 */6 * * *'"
SCHEDULE_FORMS = (
    f"{FIVE_FIELDS}, optionally after CRON_TZ=Area/City (e.g. 'CRON_TZ=America/Los_Angeles "
    "30 2 * * *'); or 'continuous' or 'on_change'"
)
ZONE_FORMS = "an IANA time zone such as America/Los_Angeles, Europe/Paris or UTC"
WINDOW_FORMS = (
    "'START - END ZONE' with times as '2 AM', '2:30 PM' or '14:00' and a zone such as PST, "
    "UTC or America/Los_Angeles, e.g. '2 AM - 6 AM PST'"
)
#: abbreviations a window may name; each is its region's clock, DST included ("PST" in
#: summer is 2 AM on the Pacific wall clock, which is what an off-peak window means)
ABBREVIATIONS = {
    **dict.fromkeys(("PST", "PDT", "PT"), "America/Los_Angeles"),
    **dict.fromkeys(("MST", "MDT", "MT"), "America/Denver"),
    **dict.fromkeys(("CST", "CDT", "CT"), "America/Chicago"),
    **dict.fromkeys(("EST", "EDT", "ET"), "America/New_York"),
    **dict.fromkeys(("UTC", "GMT", "Z"), "UTC"),
}
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
UTC_ZONE = ZoneInfo("UTC")
Kind = Literal["cron", "continuous", "on_change"]

_PREFIX = re.compile(r"^\s*(CRON_TZ|TZ)=(\S*)\s*(.*)$", re.DOTALL)
_TIME = r"(\d{1,2})(?::(\d{2}))?\s*([AaPp]\.?[Mm]\.?)?"
_WINDOW = re.compile(rf"^\s*{_TIME}\s*(?:-|–|—|\bto\b)\s*{_TIME}\s*(\S+)?\s*$")


@dataclass(frozen=True)
class Problem:
    """Why a schedule, zone or window cannot be read: what is wrong, what is expected,
    and the nearest valid value (``None`` when none is clear)."""

    message: str
    expected: str
    suggestion: str | None = None


class ScheduleError(ValueError):
    """A schedule, zone or window that cannot be read; ``problem`` says why."""

    def __init__(self, problem: Problem) -> None:
        super().__init__(problem.message)
        self.problem = problem


# -- zones ------------------------------------------------------------------------------------
@functools.cache
def _zone_names() -> frozenset[str]:
    return frozenset(available_timezones())


def nearest_zone(name: str) -> str | None:
    """The valid zone most like ``name``: its region for an abbreviation (``PST``), the
    same name in its right case, else the closest IANA name."""
    from dpexport.config.issues import closest

    found = ABBREVIATIONS.get(name.strip().upper())
    return found or closest(name.strip(), _zone_names())


def zone(name: str) -> ZoneInfo:
    """The IANA zone ``name`` (exactly as the tz database spells it)."""
    if name in _zone_names() or name == "UTC":
        try:
            return ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            pass
    raise ScheduleError(Problem("unknown time zone", ZONE_FORMS, nearest_zone(name)))


# -- the off-peak window ----------------------------------------------------------------------
@dataclass(frozen=True)
class Window:
    """``[start, end)`` on ``zone``'s wall clock each day; ``end <= start`` crosses midnight."""

    start: time
    end: time
    zone: ZoneInfo
    text: str

    def _span(self, day: date) -> tuple[datetime, datetime]:
        """The window that opens on local ``day``, as UTC instants. A wall time the
        spring-forward skips reads with the offset before it (02:00 PST is 03:00 PDT)."""
        ends = day + timedelta(days=1) if self.end <= self.start else day
        opens = datetime.combine(day, self.start, tzinfo=self.zone)
        closes = datetime.combine(ends, self.end, tzinfo=self.zone)
        return opens.astimezone(UTC), closes.astimezone(UTC)

    def _days(self, at: datetime, before: int, after: int) -> Iterator[date]:
        local = at.astimezone(self.zone).date()
        for offset in range(-before, after + 1):
            yield local + timedelta(days=offset)

    def contains(self, at: datetime) -> bool:
        return any(s <= at < e for s, e in map(self._span, self._days(at, 1, 0)))

    def hold(self, at: datetime) -> datetime:
        """``at`` when it is inside the window, else the window's next opening."""
        if self.contains(at):
            return at
        return min(s for s, _ in map(self._span, self._days(at, 1, 2)) if s > at)

    def last_close(self, at: datetime) -> datetime:
        """The latest closing at or before ``at``."""
        return max(e for _, e in map(self._span, self._days(at, 3, 0)) if e <= at)


def _clock(hour: str, minute: str | None, meridiem: str | None) -> time:
    h, m = int(hour), int(minute or 0)
    if meridiem:
        if not 1 <= h <= 12:
            raise ValueError(f"{h} is not an hour of a 12-hour clock")
        h = h % 12 + (12 if meridiem[0] in "Pp" else 0)
    return time(h, m)  # ValueError past 23:59


def window(text: str) -> Window:
    """Spec 10.1's ``off_peak_exports``: ``"2 AM - 6 AM PST"`` (no zone: UTC)."""
    match = _WINDOW.match(text)
    if match is None:
        raise ScheduleError(Problem("not a time window", WINDOW_FORMS))
    try:
        start = _clock(*match.group(1, 2, 3))
        end = _clock(*match.group(4, 5, 6))
    except ValueError as exc:
        raise ScheduleError(Problem(f"not a time window: {exc}", WINDOW_FORMS)) from None
    if start == end:
        raise ScheduleError(Problem("the window opens and closes at the same time", WINDOW_FORMS))
    name = match.group(7) or "UTC"
    try:
        where = zone(ABBREVIATIONS.get(name.upper(), name))
    except ScheduleError as exc:
        found = _closest(name, tuple(ABBREVIATIONS)) or exc.problem.suggestion
        hint = text.replace(name, found) if found else None
        raise ScheduleError(Problem(f"unknown time zone {name!r}", WINDOW_FORMS, hint)) from None
    return Window(start, end, where, text)


# -- schedules --------------------------------------------------------------------------------
def _croniter() -> Any:
    # croniter (and dateutil under it) loads only for a config that has a schedule
    from croniter import croniter

    return croniter


def split_zone(text: str) -> tuple[str | None, str]:
    """``"CRON_TZ=Europe/Paris 0 2 * * *"`` -> ``("Europe/Paris", "0 2 * * *")``."""
    match = _PREFIX.match(text)
    if match is None:
        return None, text.strip()
    return match.group(2), match.group(3).strip()


def _cron_problem(body: str, *, count_fields: bool = True) -> Problem | None:
    """Why ``body`` (a schedule without its zone prefix) is not a 5-field cron
    (``count_fields=False``: what croniter refuses only)."""
    fields = body.split()
    if body.startswith("@") and _croniter().is_valid(body):
        return None
    if len(fields) == 6 and fields[-1] in _zone_names() | ABBREVIATIONS.keys():
        where = ABBREVIATIONS.get(fields[-1], fields[-1])
        return Problem(
            "a zone after the cron fields is not read",
            SCHEDULE_FORMS,
            f"CRON_TZ={where} {' '.join(fields[:5])}",
        )
    if not _croniter().is_valid(body):
        word = _closest(body, (CONTINUOUS, ON_CHANGE))
        return Problem("not a valid cron expression", SCHEDULE_FORMS, word)
    if len(fields) != 5 and count_fields:
        # croniter would read a 6th field as seconds and a 7th as a year
        return Problem(f"{len(fields)} cron fields where a schedule takes 5", FIVE_FIELDS)
    return None


@dataclass(frozen=True)
class Schedule:
    """When a job fires: its cron in ``zone`` or its interval grid, held to ``window``."""

    text: str
    kind: Kind
    cron: str = ""
    zone: ZoneInfo = UTC_ZONE
    every: timedelta = timedelta(minutes=1)
    window: Window | None = None

    def _next(self, at: datetime) -> datetime:
        """The first unheld fire time strictly after ``at``."""
        if self.kind != "cron":
            return self._floor(at) + self.every
        nxt = _croniter()(self.cron, at.astimezone(self.zone)).get_next(datetime)
        return nxt.astimezone(UTC)

    def _before(self, at: datetime) -> datetime:
        """The last unheld fire time strictly before ``at``."""
        if self.kind != "cron":
            return self._floor(at - timedelta(microseconds=1))
        prev = _croniter()(self.cron, at.astimezone(self.zone)).get_prev(datetime)
        return prev.astimezone(UTC)

    def _floor(self, at: datetime) -> datetime:
        return EPOCH + self.every * ((at - EPOCH) // self.every)

    def _latest(self, at: datetime) -> datetime:
        """The last unheld fire time at or before ``at``."""
        if self.kind != "cron":
            return self._floor(at)
        before = self._before(at)
        after = self._next(before)
        return after if after <= at else before

    def next_after(self, at: datetime) -> datetime:
        """The first fire time strictly after ``at``."""
        at = at.astimezone(UTC)
        found = self._next(at)
        if self.window is None:
            return found
        if not self.window.contains(at) and self._latest(at) >= self.window.last_close(at):
            return self.window.hold(at)  # a fire since the window closed waits for it
        return self.window.hold(found)

    def latest(self, at: datetime) -> datetime:
        """The last fire time at or before ``at``."""
        at = at.astimezone(UTC)
        found = self._latest(at)
        if self.window is None:
            return found
        held = self.window.hold(found)
        if held <= at:
            return held
        # ``at`` is outside the window and the fires since it closed wait for it to open:
        # the last fire time is the last held one before that closing
        return self.window.hold(self._before(self.window.last_close(at)))

    def between(self, start: datetime, end: datetime) -> Iterator[datetime]:
        """Every fire time in ``(start, end]``."""
        t = self.next_after(start)
        while t <= end:
            yield t
            t = self.next_after(t)


def parse(
    text: str,
    *,
    timezone: str | None = None,
    every: timedelta = timedelta(minutes=1),
    poll: timedelta = DEFAULT_POLL,
    off_peak: str | None = None,
) -> Schedule:
    """The schedule ``text`` says, its clock in its ``CRON_TZ=`` zone, else ``timezone``,
    else UTC; ``every`` is the ``continuous`` interval, ``poll`` the ``on_change`` one;
    ``off_peak`` a window (:func:`window`) its fire times are held to."""
    held = window(off_peak) if off_peak else None
    word = text.strip().lower()
    if word in (CONTINUOUS, ON_CHANGE):
        step = every if word == CONTINUOUS else poll
        if step <= timedelta(0):
            raise ValueError(f"the {word} interval must be positive, not {step}")
        return Schedule(
            text, "continuous" if word == CONTINUOUS else "on_change", every=step, window=held
        )
    prefix, body = split_zone(text)
    problem = _cron_problem(body)
    if problem is not None:
        raise ScheduleError(problem)
    name = prefix or timezone or "UTC"
    return Schedule(text, "cron", body, zone(name), window=held)


@dataclass(frozen=True)
class TableSchedule:
    """A table's schedule after precedence (CONTRACT §3), and how it was said."""

    schedule: str | None
    #: the manifest's ``export_type``: scheduled | continuous | on-demand
    export_type: str
    #: it comes from a spec 4.2 ``frequency`` word, so the off-peak window holds it
    by_frequency: bool


def table_schedule(own: str | None, frequency: str | None) -> TableSchedule:
    """The table's own ``schedule``, else its ``full_refresh`` frequency (a word as its
    cron, ``on_change`` as itself, a cron as written)."""
    schedule, by_word = own, False
    if not schedule and frequency:
        word = frequency.strip().lower()
        by_word = word in FREQUENCIES
        schedule = FREQUENCY_CRON.get(word, ON_CHANGE if word == ON_CHANGE else frequency)
    if schedule and schedule.strip().lower() == CONTINUOUS:
        return TableSchedule(schedule, "continuous", False)
    return TableSchedule(schedule, "scheduled" if schedule else "on-demand", by_word)


# -- check ------------------------------------------------------------------------------------
def _report(issues: Issues, path: Path, problem: Problem, value: object) -> None:
    issues.add(
        path, problem.message, value=value, expected=problem.expected, suggestion=problem.suggestion
    )


def check_schedule(issues: Issues, path: Path, text: object) -> None:
    """Report at ``path`` a schedule the scheduler could not read. A cron croniter takes
    with other than 5 fields is :func:`dpexport.config.cron.misread`'s to report (it names
    the 5-field expression meant), so it is not reported twice."""
    if not isinstance(text, str) or text.strip().lower() in (CONTINUOUS, ON_CHANGE):
        return
    prefix, body = split_zone(text)
    if prefix is not None:
        try:
            zone(prefix)
        except ScheduleError as exc:
            found = exc.problem.suggestion
            hint = f"CRON_TZ={found} {body}" if found else None
            _report(issues, path, Problem(f"unknown time zone {prefix!r}", ZONE_FORMS, hint), text)
    problem = _cron_problem(body, count_fields=False)
    if problem is not None:
        _report(issues, path, problem, text)


def check_block(issues: Issues, path: Path, block: dict[str, Any], key: str) -> None:
    """An ``exports`` item's ``schedule`` (``key``) or a ``full_refresh`` entry's
    ``frequency``, and the block's ``timezone``: a zone the tz database has, and the
    same as a ``CRON_TZ=`` prefix on the schedule when both are given."""
    text = block.get(key)
    if key == "frequency" and isinstance(text, str) and not _cron_like(text):
        if text.strip().lower() not in FREQUENCIES:
            issues.add(
                (*path, key),
                "unknown frequency",
                value=text,
                expected="one of " + ", ".join(FREQUENCIES) + " or a cron expression",
                suggestion=_closest(text, FREQUENCIES),
            )
    else:
        check_schedule(issues, (*path, key), text)
    name = block.get("timezone")
    if not isinstance(name, str):
        return
    try:
        zone(name)
    except ScheduleError as exc:
        _report(issues, (*path, "timezone"), exc.problem, name)
        return
    prefix = split_zone(text)[0] if isinstance(text, str) else None
    if prefix is not None and prefix != name:
        issues.add(
            (*path, "timezone"),
            f"the {key}'s CRON_TZ={prefix} and the timezone name two zones",
            value=name,
            expected="one zone: the prefix or the timezone key",
            suggestion=prefix,
        )


def check_off_peak(issues: Issues, strategies: object) -> None:
    """Spec 10.1 ``optimization_strategies.scheduling.off_peak_exports``: a window."""
    scheduling = strategies.get("scheduling") if isinstance(strategies, dict) else None
    text = scheduling.get("off_peak_exports") if isinstance(scheduling, dict) else None
    if not isinstance(text, str):
        return
    try:
        window(text)
    except ScheduleError as exc:
        path = ("optimization_strategies", "scheduling", "off_peak_exports")
        _report(issues, path, exc.problem, text)


def _cron_like(text: str) -> bool:
    """A frequency written as a cron (or an alias, or with a zone prefix), not a word."""
    stripped = text.strip()
    return " " in stripped or stripped.startswith("@") or _PREFIX.match(stripped) is not None


def _closest(value: str, choices: tuple[str, ...]) -> str | None:
    from dpexport.config.issues import closest

    return closest(value, choices)
