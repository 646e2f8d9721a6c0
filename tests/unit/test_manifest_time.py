"""``parse_rfc3339`` is ``strptime(..., "%Y-%m-%dT%H:%M:%SZ")`` in UTC, result and errors."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dpexport.publish.manifest import parse_rfc3339, rfc3339


def _strptime(text: str) -> datetime | str:
    try:
        return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    except ValueError as exc:
        return f"ValueError: {exc}"


def _ours(text: str) -> datetime | str:
    try:
        return parse_rfc3339(text)
    except ValueError as exc:
        return f"ValueError: {exc}"


# (from year 1000: glibc strftime does not pad %Y, so rfc3339 writes "999-..." below it)
@given(st.datetimes(min_value=datetime(1000, 1, 1), max_value=datetime(9999, 12, 31)))
def test_round_trip(t: datetime) -> None:
    text = rfc3339(t)
    assert parse_rfc3339(text) == t.replace(microsecond=0, tzinfo=UTC)
    assert _ours(text) == _strptime(text)


@pytest.mark.parametrize(
    "text",
    [
        "2025-09-16T14:30:22Z",
        "2025-13-16T14:30:22Z",  # month out of range
        "2025-02-30T00:00:00Z",
        "2025-09-16T24:00:00Z",
        "2025-09-16T23:59:60Z",  # strptime reads 60 seconds, then datetime refuses it
        "0000-01-01T00:00:00Z",
        "2025-9-6T1:2:3Z",  # strptime accepts one-digit fields
        "2025-09-16T14:30:22",
        "2025-09-16T14:30:22.5Z",
        "2025-09-16 14:30:22Z",
        "",
        "٢٠٢٥-09-16T14:30:22Z",  # non-ASCII digits
    ],
)
def test_same_as_strptime(text: str) -> None:
    assert _ours(text) == _strptime(text)


@given(st.from_regex(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z", fullmatch=True))
def test_canonical_shape_same_as_strptime(text: str) -> None:
    assert _ours(text) == _strptime(text)


def test_not_text_is_a_type_error() -> None:
    with pytest.raises(TypeError):
        parse_rfc3339(20250916)  # type: ignore[arg-type]
