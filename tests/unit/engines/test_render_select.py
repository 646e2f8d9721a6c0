"""render_select: the SQL text and its bound values, without a database."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from dpexport.engines.base import ScanRequest, Slice
from dpexport.engines.duckdb import quote_identifier, render_select
from dpexport.errors import InvalidArgument


def test_values_are_bound_never_formatted() -> None:
    upper = datetime(2025, 9, 16, 14, 30, tzinfo=UTC)
    sql, params = render_select(
        ScanRequest("ds", "t", slice=Slice("created_at", "it's", upper), filter="x > 1")
    )
    assert "it's" not in sql
    assert sql == (
        'SELECT * FROM "ds"."t" WHERE (created_at) > ? AND (created_at) <= ? AND (x > 1)'
    )
    assert params == ["it's", datetime(2025, 9, 16, 14, 30)]  # aware -> naive UTC


def test_projection_extra_dedupe_order() -> None:
    sql, params = render_select(
        ScanRequest(
            "ds",
            "t",
            columns=("a", 'we"ird', "secret"),
            exclude=("secret",),
            extra={"shard": "a % 100"},
            slice=Slice("ts"),
            dedupe_by=("a",),
            order_by=("shard",),
        )
    )
    assert sql == (
        'SELECT "a", "we""ird", (a % 100) AS "shard" FROM "ds"."t" '
        'QUALIFY row_number() OVER (PARTITION BY "a" ORDER BY (ts)) = 1 ORDER BY "shard"'
    )
    assert params == []


def test_star_exclude_and_newest() -> None:
    sql, _ = render_select(
        ScanRequest("ds", "t", exclude=("pw",), newest_by=("k1", "k2"), newest_order="updated_at")
    )
    assert sql == (
        'SELECT * EXCLUDE ("pw") FROM "ds"."t" QUALIFY row_number() OVER '
        '(PARTITION BY "k1", "k2" ORDER BY (updated_at) DESC) = 1'
    )


@pytest.mark.parametrize("name", ["", "a\x00b"])
def test_invalid_identifiers(name: str) -> None:
    with pytest.raises(InvalidArgument):
        quote_identifier(name)


def test_bounds_without_cursor_and_newest_without_order_are_refused() -> None:
    with pytest.raises(InvalidArgument):
        render_select(ScanRequest("ds", "t", slice=Slice(None, 1, 2)))
    with pytest.raises(InvalidArgument):
        render_select(ScanRequest("ds", "t", newest_by=("k",)))
    with pytest.raises(InvalidArgument):
        render_select(ScanRequest("ds", "t", batch_rows=0))
