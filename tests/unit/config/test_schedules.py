"""Schedules as :mod:`dpexport.config.schedules` reads them: cron fire times in a zone
across DST, the off-peak window, the refusals ``check`` reports, and which tables the
window holds. Exact UTC times throughout."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dpexport.config import load_config_text
from dpexport.config.schedules import (
    Schedule,
    ScheduleError,
    nearest_zone,
    parse,
    split_zone,
    table_schedule,
    window,
)
from dpexport.errors import ConfigError

LA = "America/Los_Angeles"


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def fires(schedule: Schedule, start: str, end: str) -> list[str]:
    return [t.strftime("%Y-%m-%d %H:%M") for t in schedule.between(at(start), at(end))]


# -- cron in a zone, across DST ---------------------------------------------------------------


@pytest.mark.parametrize(
    "schedule",
    [
        parse(f"CRON_TZ={LA} 30 2 * * *"),
        parse("30 2 * * *", timezone=LA),
        parse(f"TZ={LA} 30 2 * * *"),
    ],
)
def test_spring_forward_fires_a_skipped_time_at_the_change(schedule: Schedule) -> None:
    # 2025-03-09: 02:00 PST becomes 03:00 PDT; 02:30 does not exist that day
    assert fires(schedule, "2025-03-07", "2025-03-11") == [
        "2025-03-07 10:30",  # 02:30 PST
        "2025-03-08 10:30",
        "2025-03-09 10:00",  # 03:00 PDT, the change
        "2025-03-10 09:30",  # 02:30 PDT
    ]
    assert schedule.latest(at("2025-03-09 10:00")) == at("2025-03-09 10:00")
    assert schedule.latest(at("2025-03-09 09:59:59")) == at("2025-03-08 10:30")
    assert schedule.next_after(at("2025-03-09 10:00")) == at("2025-03-10 09:30")


def test_fall_back_fires_a_time_after_the_repeated_hour_once() -> None:
    # 2025-11-02: 02:00 PDT becomes 01:00 PST
    schedule = parse(f"CRON_TZ={LA} 30 2 * * *")
    assert fires(schedule, "2025-10-31", "2025-11-04") == [
        "2025-10-31 09:30",  # 02:30 PDT
        "2025-11-01 09:30",
        "2025-11-02 10:30",  # 02:30 PST, once
        "2025-11-03 10:30",
    ]


def test_fall_back_fires_a_time_in_the_repeated_hour_at_both() -> None:
    schedule = parse(f"CRON_TZ={LA} 30 1 * * *")
    assert fires(schedule, "2025-11-02", "2025-11-03") == [
        "2025-11-02 08:30",  # 01:30 PDT
        "2025-11-02 09:30",  # 01:30 PST
    ]


def test_without_a_zone_a_cron_reads_utc_and_aliases_work() -> None:
    assert fires(parse("0 */6 * * *"), "2025-09-16", "2025-09-16 12:00") == [
        "2025-09-16 06:00",
        "2025-09-16 12:00",
    ]
    assert fires(parse("@daily", timezone="Europe/Paris"), "2025-09-16", "2025-09-17") == [
        "2025-09-16 22:00"  # midnight CEST
    ]


# -- the off-peak window ----------------------------------------------------------------------


def test_window_holds_fire_times_until_it_opens_and_keeps_those_inside() -> None:
    hourly = parse("0 * * * *", off_peak="2 AM - 6 AM PST")
    # January, PST (UTC-8): the window is 10:00-14:00 UTC; 14:00 is its end, outside
    assert fires(hourly, "2025-01-15", "2025-01-16 12:00") == [
        "2025-01-15 10:00",  # 01:00 UTC .. 10:00 UTC held to the opening: one fire
        "2025-01-15 11:00",
        "2025-01-15 12:00",
        "2025-01-15 13:00",
        "2025-01-16 10:00",
        "2025-01-16 11:00",
        "2025-01-16 12:00",
    ]
    # July: "PST" is the Pacific clock, so 2 AM is PDT (UTC-7), 09:00 UTC
    assert fires(hourly, "2025-07-15", "2025-07-16") == [
        "2025-07-15 09:00",
        "2025-07-15 10:00",
        "2025-07-15 11:00",
        "2025-07-15 12:00",
    ]
    assert hourly.latest(at("2025-01-15 20:00")) == at("2025-01-15 13:00")
    assert hourly.latest(at("2025-01-15 12:30")) == at("2025-01-15 12:00")
    assert hourly.latest(at("2025-01-15 09:59")) == at("2025-01-14 13:00")
    assert hourly.next_after(at("2025-01-15 13:00")) == at("2025-01-16 10:00")


def test_window_on_dst_days_opens_at_the_change() -> None:
    daily = parse("0 0 * * *", off_peak="2 AM - 6 AM PST")
    assert fires(daily, "2025-03-07", "2025-03-11") == [
        "2025-03-07 10:00",  # midnight UTC (the start) is held past the start
        "2025-03-08 10:00",  # 02:00 PST
        "2025-03-09 10:00",  # 02:00 does not exist: the window opens at 03:00 PDT
        "2025-03-10 09:00",  # 02:00 PDT
    ]
    assert fires(daily, "2025-10-31 12:00", "2025-11-04") == [
        "2025-11-01 09:00",  # 02:00 PDT
        "2025-11-02 10:00",  # 02:00 PST, after the repeated hour
        "2025-11-03 10:00",
    ]


def test_window_across_midnight_and_polls_inside_it() -> None:
    polls = parse("on_change", poll=timedelta(minutes=30), off_peak="10 PM - 1 AM UTC")
    assert fires(polls, "2025-01-15", "2025-01-16 02:00") == [
        "2025-01-15 00:30",
        "2025-01-15 22:00",  # 01:00 .. 21:30 wait for the window
        "2025-01-15 22:30",
        "2025-01-15 23:00",
        "2025-01-15 23:30",
        "2025-01-16 00:00",
        "2025-01-16 00:30",
    ]


@settings(max_examples=60, deadline=None)
@given(
    st.datetimes(min_value=datetime(2025, 1, 1), max_value=datetime(2026, 1, 1)),
    st.sampled_from(["0 * * * *", "*/20 3-9 * * *", "0 0 * * 0", "30 1 * * *"]),
)
def test_latest_and_next_after_agree_and_stay_inside_the_window(
    moment: datetime, cron: str
) -> None:
    schedule = parse(f"CRON_TZ={LA} {cron}", off_peak="2 AM - 6 AM PST")
    now = moment.replace(tzinfo=UTC)
    last = schedule.latest(now)
    upcoming = schedule.next_after(last)
    assert last <= now < upcoming
    assert schedule.next_after(now) == upcoming
    assert schedule.window is not None
    assert schedule.window.contains(last) and schedule.window.contains(upcoming)


@pytest.mark.parametrize(
    ("text", "start", "end", "zone"),
    [
        ("2 AM - 6 AM PST", time(2), time(6), LA),
        ("12 AM to 12:30 PM EST", time(0), time(12, 30), "America/New_York"),
        ("22:00-04:30 Europe/Paris", time(22), time(4, 30), "Europe/Paris"),
        ("2 a.m. – 6 a.m. utc", time(2), time(6), "UTC"),
        ("1 AM - 3 AM", time(1), time(3), "UTC"),
    ],
)
def test_window_forms(text: str, start: time, end: time, zone: str) -> None:
    found = window(text)
    assert (found.start, found.end, found.zone.key) == (start, end, zone)


@pytest.mark.parametrize(
    ("text", "message", "suggestion"),
    [
        ("2 AM - 6 AM PSTT", "unknown time zone 'PSTT'", "2 AM - 6 AM PST"),
        ("2 AM - 6 AM America/Los_Angles", "unknown time zone", f"2 AM - 6 AM {LA}"),
        ("13 PM - 2 AM PST", "not an hour of a 12-hour clock", None),
        ("2 AM - 2 AM PST", "opens and closes at the same time", None),
        ("off peak", "not a time window", None),
    ],
)
def test_window_refusals(text: str, message: str, suggestion: str | None) -> None:
    with pytest.raises(ScheduleError) as caught:
        window(text)
    assert message in caught.value.problem.message
    assert caught.value.problem.suggestion == suggestion


# -- refusals ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "message", "suggestion"),
    [
        ("CRON_TZ=America/Los_Angles 30 2 * * *", "unknown time zone", LA),
        (
            "0 2 * * * America/Los_Angeles",
            "a zone after the cron fields",
            f"CRON_TZ={LA} 0 2 * * *",
        ),
        ("0 2 * * * PST", "a zone after the cron fields", f"CRON_TZ={LA} 0 2 * * *"),
        ("0 0 * * * * *", "7 cron fields", None),
        ("0 0 */6 * * *", "6 cron fields", None),
        ("continous", "not a valid cron expression", "continuous"),
    ],
)
def test_schedule_refusals(text: str, message: str, suggestion: str | None) -> None:
    with pytest.raises(ScheduleError) as caught:
        parse(text)
    assert message in caught.value.problem.message
    assert caught.value.problem.suggestion == suggestion


def test_nearest_zone() -> None:
    assert nearest_zone("america/los_angeles") == LA
    assert nearest_zone("PDT") == LA
    assert nearest_zone("Europe/Pari") == "Europe/Paris"
    assert split_zone(" CRON_TZ=Asia/Tokyo  0 9 * * 1-5") == ("Asia/Tokyo", "0 9 * * 1-5")
    assert split_zone("0 9 * * *") == (None, "0 9 * * *")


def test_check_names_each_bad_zone_and_window_at_its_path() -> None:
    text = """\
buckets: {exports: gs://b}
exports:
  - {source: ds.a, schedule: "CRON_TZ=Europe/Pariss 0 2 * * *"}
  - {source: ds.b, schedule: "0 2 * * *", timezone: America/Los_Angles}
  - {source: ds.c, schedule: "CRON_TZ=Europe/Paris 0 2 * * *", timezone: Asia/Tokyo}
full_refresh:
  d: {frequency: daily, timezone: PST}
  e: {frequency: weekyl}
optimization_strategies:
  scheduling: {off_peak_exports: "2 AM - 6 AM PSTT"}
"""
    with pytest.raises(ConfigError) as caught:
        load_config_text(text)
    found = {(i.path, i.suggestion) for i in caught.value.issues}
    assert found == {
        ("exports[0].schedule", "CRON_TZ=Europe/Paris 0 2 * * *"),
        ("exports[1].timezone", LA),
        ("exports[2].timezone", "Europe/Paris"),
        ("full_refresh.d.timezone", LA),
        ("full_refresh.e.frequency", "weekly"),
        ("optimization_strategies.scheduling.off_peak_exports", "2 AM - 6 AM PST"),
    }


# -- which tables the window holds ------------------------------------------------------------


def test_table_schedule_precedence_and_what_the_window_holds() -> None:
    # a frequency word says how often, so the window says when
    assert table_schedule(None, "weekly") == table_schedule(None, "Weekly")
    weekly = table_schedule(None, "weekly")
    assert (weekly.schedule, weekly.export_type, weekly.by_frequency) == (
        "0 0 * * 0",
        "scheduled",
        True,
    )
    on_change = table_schedule(None, "on_change")
    assert (on_change.schedule, on_change.by_frequency) == ("on_change", True)
    # a cron written out says when: kept as written
    assert table_schedule(None, "0 3 * * *").by_frequency is False
    assert table_schedule("0 */6 * * *", "daily").schedule == "0 */6 * * *"
    assert table_schedule("0 */6 * * *", "daily").by_frequency is False
    assert table_schedule("continuous", None).export_type == "continuous"
    assert table_schedule(None, None).export_type == "on-demand"


def test_config_carries_zone_and_window_to_the_table() -> None:
    config = load_config_text(
        """\
buckets: {exports: gs://b}
exports:
  - {source: ds.a, schedule: "0 */6 * * *", timezone: Europe/Paris}
full_refresh:
  a: {frequency: daily, timezone: Asia/Tokyo}
  b: {frequency: on_change}
  c: {frequency: "0 3 * * *"}
optimization_strategies:
  scheduling: {off_peak_exports: "2 AM - 6 AM PST"}
"""
    )
    got = {t.table: (t.schedule, t.timezone, t.off_peak) for t in config.tables}
    assert got == {
        "a": ("0 */6 * * *", "Europe/Paris", None),  # the item's zone wins (CONTRACT §3)
        "b": ("on_change", None, "2 AM - 6 AM PST"),
        "c": ("0 3 * * *", None, None),
    }
