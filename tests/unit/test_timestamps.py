"""The one RFC 3339 parser (``dpexport.timestamps``) and what its callers make of a text
that is no time: an error, ``None`` or a default, each as before."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dpexport.cli.common import parse_at, parse_now
from dpexport.errors import UsageError
from dpexport.ops import bq_logs
from dpexport.ops.logs import parse_time
from dpexport.publish import state
from dpexport.reliability import dlq
from dpexport.timestamps import parse_rfc3339, rfc3339

#: glibc strftime does not pad %Y below year 1000, so rfc3339 starts there
TIMES = st.datetimes(min_value=datetime(1000, 1, 1), max_value=datetime(9999, 12, 31))
OFFSETS = st.integers(min_value=-23 * 60 - 59, max_value=23 * 60 + 59).map(
    lambda minutes: timezone(timedelta(minutes=minutes))
)
JUNK = ["", "yesterday", "2025-13-16T14:30:22Z", "2025-09-16T24:00:00Z", "2025-02-30T00:00:00Z"]


@given(TIMES)
def test_what_rfc3339_writes_reads_back(t: datetime) -> None:
    assert parse_rfc3339(rfc3339(t)) == t.replace(microsecond=0, tzinfo=UTC)


@given(TIMES, OFFSETS)
def test_an_offset_is_read_and_the_time_given_in_utc(t: datetime, zone: timezone) -> None:
    aware = t.replace(tzinfo=zone)
    try:
        expected = aware.astimezone(UTC)
    except OverflowError:  # the instant is outside datetime's range in UTC
        return
    parsed = parse_rfc3339(aware.isoformat())
    assert parsed == expected
    assert parsed.tzinfo is UTC


def test_no_zone_is_utc_unless_asked_to_stay_naive() -> None:
    text = "2025-09-16T14:30:22.123456"
    assert parse_rfc3339(text) == datetime(2025, 9, 16, 14, 30, 22, 123456, tzinfo=UTC)
    assert parse_rfc3339(text, default_zone=None) == datetime(2025, 9, 16, 14, 30, 22, 123456)
    assert parse_rfc3339(text + "Z", default_zone=None).tzinfo is UTC


@pytest.mark.parametrize("text", JUNK)
def test_no_time_is_a_value_error(text: str) -> None:
    with pytest.raises(ValueError):
        parse_rfc3339(text)


def test_no_text_is_a_type_error() -> None:
    with pytest.raises(TypeError):
        parse_rfc3339(20250916)  # type: ignore[arg-type]


@pytest.mark.parametrize("text", JUNK)
def test_each_caller_keeps_its_answer_to_junk(text: str) -> None:
    assert parse_time(text) is None
    default = datetime(2025, 1, 1, tzinfo=UTC)
    assert dlq._time(text, default) is default
    with pytest.raises(UsageError):
        parse_at(text or "x")
    with pytest.raises(UsageError):
        parse_now(text or "x")
    with pytest.raises(ValueError):
        bq_logs._datetime_text(text or "x")


def test_callers_read_the_same_times() -> None:
    text = "2025-09-16T16:30:22+02:00"
    utc = datetime(2025, 9, 16, 14, 30, 22, tzinfo=UTC)
    assert parse_time(text) == parse_at(text) == dlq._time(text, utc) == utc
    assert bq_logs._datetime_text(text) == "2025-09-16T14:30:22"
    assert bq_logs._datetime_text("2025-09-16T14:30:22") == "2025-09-16T14:30:22"


@given(st.datetimes(min_value=datetime(1000, 1, 1)))
def test_a_cursor_reads_back_as_it_was_written(t: datetime) -> None:
    """Cursors keep microseconds; a naive one (written with ``Z``) comes back naive."""
    assert state.decode_value(state.encode_value(t), "timestamp") == t
