"""BigQuery engine parts that need no server: SQL, literals, types, error mapping."""

from __future__ import annotations

import concurrent.futures
from datetime import UTC, date, datetime, time
from decimal import Decimal

import pyarrow as pa
import pytest
from google.api_core import exceptions as gexc
from google.cloud.bigquery import SchemaField

from dpexport.config.spec import Partitioning
from dpexport.engines import duckdb_layout
from dpexport.engines.base import ScanRequest, Slice
from dpexport.engines.bigquery_errors import translate
from dpexport.engines.bigquery_sql import literal, render_select, to_bigquery
from dpexport.engines.bigquery_types import arrow_schema, conform
from dpexport.errors import (
    AlreadyExists,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    TransientError,
)

# (DuckDB expression, GoogleSQL expected)
TRANSPILE = [
    (
        "strftime(CAST((created_at) AS TIMESTAMP), '%Y/%m/%d')",
        "FORMAT_DATETIME('%Y/%m/%d', CAST((created_at) AS DATETIME))",
    ),
    (
        "strftime(CAST((created_at) AS TIMESTAMP), '%Y/%m/%d/%H')",
        "FORMAT_DATETIME('%Y/%m/%d/%H', CAST((created_at) AS DATETIME))",
    ),
    ("CAST((equipment_id % 100) AS VARCHAR)", "CAST((MOD(equipment_id, 100)) AS STRING)"),
    ("regexp_full_match(\"s\", '[a-z]{2}')", "REGEXP_CONTAINS(`s`, '^(?:[a-z]{2})$')"),
    ("count(*) FILTER (WHERE x > 1)", "COUNTIF(x > 1)"),
    (
        '"x" IN (SELECT "id" FROM "ds"."t" WHERE "id" IS NOT NULL)',
        "`x` IN (SELECT `id` FROM `ds`.`t` WHERE NOT `id` IS NULL)",
    ),
]


@pytest.mark.parametrize(("duck", "google"), TRANSPILE)
def test_transpile(duck: str, google: str) -> None:
    assert to_bigquery(duck) == google


def test_partition_keys_of_layout_transpile_to_format_datetime() -> None:
    from dpexport.config.spec import SubPartition

    part = Partitioning(
        time_expression="created_at",
        granularity="hourly",
        sub_partitions=(SubPartition(name="shard_id", expression="equipment_id % 100"),),
    )
    keys = {k: to_bigquery(v) for k, v in duckdb_layout.partition_key_sql(part).items()}
    assert keys == {
        "__dp_k0": "FORMAT_DATETIME('%Y/%m/%d/%H', CAST((created_at) AS DATETIME))",
        "__dp_k1": "CAST((MOD(equipment_id, 100)) AS STRING)",
    }


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (
            datetime(2025, 9, 16, 12, 0, 1, 5, tzinfo=UTC),
            "TIMESTAMP '2025-09-16 12:00:01.000005+00:00'",
        ),
        (datetime(2025, 9, 16, 12, 0), "DATETIME '2025-09-16 12:00:00'"),
        (date(2025, 9, 16), "DATE '2025-09-16'"),
        (time(1, 2, 3), "TIME '01:02:03'"),
        (Decimal("1.50"), "NUMERIC '1.50'"),
        (7, "7"),
        (True, "TRUE"),
        ("it's\n", "'it\\'s\\n'"),
        (float("nan"), "CAST('NaN' AS FLOAT64)"),
    ],
)
def test_literals(value: object, text: str) -> None:
    assert literal(value) == text


def test_literal_refuses_unknown_types() -> None:
    with pytest.raises(InvalidArgument):
        literal(object())


def test_render_select_append_slice_with_dedupe() -> None:
    request = ScanRequest(
        "ds",
        "posts",
        columns=("post_id", "created_at"),
        extra={"__dp_k0": "strftime(CAST((created_at) AS TIMESTAMP), '%Y/%m/%d')"},
        slice=Slice(
            "created_at", datetime(2025, 9, 1, tzinfo=UTC), datetime(2025, 9, 2, tzinfo=UTC)
        ),
        dedupe_by=("post_id",),
        order_by=("__dp_k0",),
    )
    assert render_select(request, project="p") == (
        "SELECT `post_id`, `created_at`, "
        "(FORMAT_DATETIME('%Y/%m/%d', CAST((created_at) AS DATETIME))) AS `__dp_k0` "
        "FROM `p`.`ds`.`posts` "
        "WHERE (created_at) > TIMESTAMP '2025-09-01 00:00:00+00:00' "
        "AND (created_at) <= TIMESTAMP '2025-09-02 00:00:00+00:00' "
        "QUALIFY row_number() OVER (PARTITION BY `post_id` ORDER BY (created_at)) = 1 "
        "ORDER BY `__dp_k0`"
    )


def test_render_select_newest_by_composite_key_without_slice() -> None:
    request = ScanRequest(
        "ds", "inv", exclude=("secret",), newest_by=("a", "b"), newest_order="updated_at"
    )
    assert render_select(request) == (
        "SELECT * EXCEPT (`secret`) FROM `ds`.`inv` WHERE TRUE "
        "QUALIFY row_number() OVER (PARTITION BY `a`, `b` ORDER BY (updated_at) DESC) = 1"
    )


def test_render_select_wraps_geography_and_json() -> None:
    request = ScanRequest("ds", "t", columns=("g", "j", "i"))
    sql = render_select(request, wrap={"g": "ST_ASTEXT", "j": "TO_JSON_STRING"})
    assert sql == "SELECT ST_ASTEXT(`g`) AS `g`, TO_JSON_STRING(`j`) AS `j`, `i` FROM `ds`.`t`"


S = SchemaField
ALL_TYPES = [
    S("i", "INT64", mode="REQUIRED"),
    S("f", "FLOAT64"),
    S("n", "NUMERIC"),
    S("bn", "BIGNUMERIC"),
    S("b", "BOOL"),
    S("s", "STRING"),
    S("by", "BYTES"),
    S("d", "DATE"),
    S("t", "TIME"),
    S("dt", "DATETIME"),
    S("ts", "TIMESTAMP"),
    S("j", "JSON"),
    S("g", "GEOGRAPHY"),
    S("arr", "INT64", mode="REPEATED"),
    S("rec", "RECORD", fields=[S("a", "STRING"), S("bb", "INT64", mode="REPEATED")]),
]
EXPECTED = pa.schema(
    [
        pa.field("i", pa.int64(), nullable=False),
        pa.field("f", pa.float64()),
        pa.field("n", pa.decimal128(38, 9)),
        pa.field("bn", pa.decimal256(76, 38)),
        pa.field("b", pa.bool_()),
        pa.field("s", pa.string()),
        pa.field("by", pa.binary()),
        pa.field("d", pa.date32()),
        pa.field("t", pa.time64("us")),
        pa.field("dt", pa.timestamp("us")),
        pa.field("ts", pa.timestamp("us", tz="UTC")),
        pa.field("j", pa.string()),
        pa.field("g", pa.string()),
        pa.field("arr", pa.list_(pa.field("item", pa.int64())), nullable=False),
        pa.field(
            "rec",
            pa.struct(
                [
                    pa.field("a", pa.string()),
                    pa.field("bb", pa.list_(pa.field("item", pa.int64()))),
                ]
            ),
        ),
    ]
)


def test_type_mapping_is_exact() -> None:
    assert arrow_schema(ALL_TYPES).equals(EXPECTED)


def test_conform_fills_null_lists_and_reorders() -> None:
    schema = pa.schema(
        [
            pa.field("i", pa.int64(), nullable=False),
            pa.field("arr", pa.list_(pa.field("item", pa.int64())), nullable=False),
        ]
    )
    batch = pa.record_batch(
        {"arr": pa.array([[1], None], pa.list_(pa.int64())), "i": pa.array([1, 2], pa.int32())}
    )
    out = conform(batch, schema)
    assert out.schema.equals(schema)
    assert out.to_pylist() == [{"i": 1, "arr": [1]}, {"i": 2, "arr": []}]


def _api_error(cls: type[gexc.GoogleAPICallError], reason: str) -> gexc.GoogleAPICallError:
    return cls("boom", errors=[{"reason": reason, "message": "boom"}])


@pytest.mark.parametrize(
    ("exc", "kind", "code"),
    [
        (_api_error(gexc.Forbidden, "rateLimitExceeded"), TransientError, "RATE_LIMIT_EXCEEDED"),
        (_api_error(gexc.Forbidden, "quotaExceeded"), TransientError, "QUOTA_EXCEEDED"),
        (_api_error(gexc.InternalServerError, "backendError"), TransientError, "INTERNAL_ERROR"),
        (_api_error(gexc.InternalServerError, "internalError"), TransientError, "INTERNAL_ERROR"),
        (gexc.ServiceUnavailable("down"), TransientError, "SERVICE_UNAVAILABLE"),
        (gexc.TooManyRequests("slow down"), TransientError, "RATE_LIMIT_EXCEEDED"),
        (gexc.DeadlineExceeded("late"), TransientError, "TIMEOUT"),
        (concurrent.futures.TimeoutError(), TransientError, "TIMEOUT"),
        (
            gexc.RetryError("deadline", cause=gexc.ServiceUnavailable("x")),
            TransientError,
            "SERVICE_UNAVAILABLE",
        ),
        (_api_error(gexc.Forbidden, "accessDenied"), PermissionDenied, "PERMISSION_DENIED"),
        (_api_error(gexc.BadRequest, "invalidQuery"), InvalidArgument, "INVALID_ARGUMENT"),
        (_api_error(gexc.BadRequest, "invalid"), InvalidArgument, "INVALID_ARGUMENT"),
        (_api_error(gexc.NotFound, "notFound"), NotFound, "NOT_FOUND"),
        (_api_error(gexc.Conflict, "duplicate"), AlreadyExists, "ALREADY_EXISTS"),
        (ConnectionRefusedError(), TransientError, "SERVICE_UNAVAILABLE"),
    ],
)
def test_error_mapping(exc: BaseException, kind: type[Exception], code: str) -> None:
    err = translate(exc, "read failed", table="ds.t")
    assert type(err) is kind
    assert err.code == code
    assert err.table == "ds.t"
