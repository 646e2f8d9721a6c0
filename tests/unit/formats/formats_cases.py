"""A table of values that break naive writers, and helpers shared by the format tests."""

from __future__ import annotations

import datetime as dt
import decimal
import math
from typing import Any

import pyarrow as pa

UTC = dt.UTC
D = decimal.Decimal

STRINGS = [
    "plain",
    "a,b",
    'say "hi"',
    "back\\slash",
    "line\nbreak",
    "crlf\r\nend",
    "tab\there",
    "",
    None,
    "emoji 😀 ünïcødé 中文",
    "\\N",
    "\x01\x1f ctl",
    'mix ,"\\\n',
]
N = len(STRINGS)


def _pad(values: list[Any]) -> list[Any]:
    return (values + [None] * N)[:N]


def edge_table() -> pa.Table:
    """Every column has a NULL; strings hold every special character."""
    ts = dt.datetime(2025, 9, 16, 14, 30, 22, 123456)
    return pa.table(
        {
            "s": pa.array(STRINGS, pa.string()),
            "i": pa.array(_pad([-(2**63), 2**63 - 1, 0, -1, 42]), pa.int64()),
            "i32": pa.array(_pad([-(2**31), 2**31 - 1, 7]), pa.int32()),
            "f": pa.array(
                _pad([-0.0, 0.1, 1.0, 1e300, 5e-324, -2.5e-8, 123456789.125, math.nan, math.inf]),
                pa.float64(),
            ),
            "big": pa.array(
                _pad(
                    [
                        D("99999999999999999999999999999.999999999"),
                        D("-99999999999999999999999999999.999999999"),
                        D("0.000000001"),
                        D("0E-9"),
                        D("-1.5"),
                    ]
                ),
                pa.decimal128(38, 9),
            ),
            "money": pa.array(
                _pad([D("9999999999999999.99"), D("-9999999999999999.99"), D("0.01"), D("0.00")]),
                pa.decimal128(18, 2),
            ),
            "ts": pa.array(
                _pad(
                    [ts, ts.replace(microsecond=0), dt.datetime(1970, 1, 1), dt.datetime(1, 1, 1)]
                ),
                pa.timestamp("us"),
            ),
            "tsz": pa.array(
                _pad([ts.replace(tzinfo=UTC), dt.datetime(2000, 2, 29, 23, 59, 59, 999999, UTC)]),
                pa.timestamp("us", "UTC"),
            ),
            "d": pa.array(_pad([dt.date(2025, 9, 16), dt.date(1, 1, 1), dt.date(9999, 12, 31)])),
            "flag": pa.array(_pad([True, False, True]), pa.bool_()),
            "bin": pa.array(_pad([b"\x00\xff\n,", b""]), pa.binary()),
            "tags": pa.array(_pad([["a", 'b"', None], []]), pa.list_(pa.string())),
            "rec": pa.array(
                _pad([{"x": 1, "y": 'q"\\'}, {"x": None, "y": None}]),
                pa.struct([("x", pa.int64()), ("y", pa.string())]),
            ),
        }
    )


def same(a: Any, b: Any) -> bool:
    """Equality where NaN equals NaN and -0.0 differs from 0.0."""
    if isinstance(a, float) and isinstance(b, float):
        if math.isnan(a) and math.isnan(b):
            return True
        return a == b and math.copysign(1, a) == math.copysign(1, b)
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    return bool(type(a) is type(b) and a == b) or (a is None and b is None)


def assert_rows_equal(got: list[dict[str, Any]], want: list[dict[str, Any]]) -> None:
    assert len(got) == len(want)
    for n, (g, w) in enumerate(zip(got, want, strict=True)):
        for key in w:
            assert same(g[key], w[key]), f"row {n} column {key}: got {g[key]!r}, want {w[key]!r}"
