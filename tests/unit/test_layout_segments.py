"""Partition values as folder names (``layout.safe_segment``): readable for ordinary
values, safe (a value cannot leave its folder) and injective (no two distinct values,
NULL and the empty string included, share a folder)."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from urllib.parse import quote, unquote

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from dpexport.config.spec import Partitioning, SubPartition
from dpexport.storage import layout

#: None, any text (control characters, non-ASCII, the markers and their encodings)
VALUES = (
    st.none()
    | st.text()
    | st.sampled_from(
        ["", ".", "..", "_null_", "_empty_", "%00", "\x00", "%5Fnull_", "_", "__", "%", "/",
         ".x", "../../x", "x" * 255, "x" * 256, "é" * 200, "/" * 100]
    )
    | st.text(min_size=60, max_size=300)  # names near and past the 255-byte limit
)  # fmt: skip


def _whole(value: str) -> str:
    """A value's percent-encoded name before any cut (its first byte aside)."""
    return quote(value, safe="-_.~@+=,")


def _is_safe(segment: str) -> bool:
    return (
        segment != ""
        and not segment.startswith(".")  # hidden: ls, globs and listings skip it
        and len(segment.encode()) <= layout.MAX_SEGMENT
        and "/" not in segment
        and "\\" not in segment
        and segment.isascii()
        and segment.isprintable()
    )


@pytest.mark.parametrize(
    ("value", "segment"),
    [
        ("engine", "engine"),
        ("us-east-1", "us-east-1"),
        ("42", "42"),
        (42, "42"),
        ("x=y", "x=y"),
        ("a_b", "a_b"),
        (None, "_null_"),
        ("", "_empty_"),
        ("_null_", "%5Fnull_"),
        ("_empty_", "%5Fempty_"),
        ("\x00", "%00"),
        ("%00", "%2500"),
        (".", "%2E"),
        ("..", "%2E%2E"),
        ("...", "%2E.."),
        (".x", "%2Ex"),
        ("a.", "a."),
        ("a/b", "a%2Fb"),
        ("../x", "%2E.%2Fx"),
        ("../../x", "%2E.%2F..%2Fx"),
        ("a\\b", "a%5Cb"),
        ("ünï", "%C3%BCn%C3%AF"),
        (" ", "%20"),
    ],
)
def test_segments(value: object, segment: str) -> None:
    assert layout.safe_segment(value) == segment


def test_markers() -> None:
    assert layout.safe_segment(None) == layout.NULL_SEGMENT == "_null_"
    assert layout.safe_segment("") == layout.EMPTY_SEGMENT == "_empty_"


@given(VALUES)
@example(None)
@example("")
def test_every_segment_is_safe_and_decodes_back(value: str | None) -> None:
    segment = layout.safe_segment(value)
    assert _is_safe(segment), segment
    if value is None:
        assert segment == layout.NULL_SEGMENT
    elif value == "":
        assert segment == layout.EMPTY_SEGMENT
    elif "!" in segment:  # a long value's name: its encoded start and its sha256
        start, _, digest = segment.partition("!")
        assert len(_whole(value)) > layout.MAX_SEGMENT
        assert value.encode().startswith(unquote(start, errors="strict").encode())
        assert digest == hashlib.sha256(value.encode()).hexdigest()
    else:
        # the proof's two steps: it decodes back, and no text's name starts with '_'
        assert unquote(segment, errors="strict") == value
        assert not segment.startswith("_")


@given(VALUES, VALUES)
@example(None, "_null_")
@example("", "\x00")
@example("", "_empty_")
@example(".", "%2E")
@example("x" * 300, "x" * 301)
def test_distinct_values_get_distinct_segments(a: str | None, b: str | None) -> None:
    if a != b:
        assert layout.safe_segment(a) != layout.safe_segment(b)


@given(VALUES, VALUES)
def test_folder_for_keeps_sub_values_apart(a: str | None, b: str | None) -> None:
    part = Partitioning(
        time_expression="t",
        granularity="daily",
        sub_partitions=(SubPartition("x", "x"), SubPartition("y", "y")),
    )
    at = datetime(2025, 9, 16, tzinfo=UTC)
    top, sub = layout.folder_for(part, at, {"__dp_k0": "2025/09/16", "__dp_k1": a, "__dp_k2": b})
    assert top == "2025/09/16"
    assert sub == layout.safe_segment(a) + "/" + layout.safe_segment(b)
    assert len(sub.split("/")) == 2


def test_null_time_folder() -> None:
    assert layout.time_segment(None) == "_null_"
    assert layout.time_segment("2025/09/16") == "2025/09/16"
    assert layout.partition_label(layout.time_segment(None)) == "_null_"


@pytest.mark.parametrize("value", ["x" * 256, "é" * 43, "/" * 86, "a" * 189 + "/" * 30])
def test_a_long_value_gets_a_name_within_the_limit(value: str) -> None:
    """A value whose name would pass 255 bytes (ext4 and most file systems refuse a
    longer path component: issue 18, case 11a) is cut, and keeps its own name: the
    start of its encoded text (never half a ``%XX``), ``!``, its sha256."""
    segment = layout.safe_segment(value)
    assert len(segment) <= 255
    start, mark, digest = segment.partition("!")
    assert mark and digest == hashlib.sha256(value.encode()).hexdigest()
    assert _whole(value)[3:].startswith(start[3:])  # a leading '.' or '_' is encoded
    assert not start.endswith("%") and start[-2:-1] != "%"
    assert layout.safe_segment(value + "x") != segment


def test_names_at_the_limit_are_kept_whole() -> None:
    assert layout.safe_segment("x" * 255) == "x" * 255
    assert layout.safe_segment("é" * 42) == "%C3%A9" * 42  # 252 bytes
