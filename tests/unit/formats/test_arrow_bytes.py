"""The cheap bound a Parquet writer counts its pending Arrow bytes with must never be
below what it stands for (``RecordBatch.nbytes``): a row group would then outgrow the
configured size before it is measured."""

from __future__ import annotations

import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from dpexport.formats.arrow_bytes import Sizer

TYPES = [
    pa.null(),
    pa.bool_(),
    pa.int8(),
    pa.int64(),
    pa.uint16(),
    pa.float32(),
    pa.float64(),
    pa.date32(),
    pa.timestamp("us", tz="UTC"),
    pa.time64("ns"),
    pa.duration("ms"),
    pa.decimal128(25, 3),
    pa.binary(5),
    pa.string(),
    pa.large_string(),
    pa.binary(),
]


def _values(t: pa.DataType, n: int, draw: st.DrawFn) -> pa.Array:
    if pa.types.is_null(t):
        return pa.nulls(n)
    nulls = draw(st.lists(st.booleans(), min_size=n, max_size=n))
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        words = draw(st.lists(st.text(max_size=12), min_size=n, max_size=n))
        return pa.array([None if z else w for w, z in zip(words, nulls, strict=True)], t)
    if pa.types.is_binary(t) or pa.types.is_fixed_size_binary(t):
        width = t.byte_width if pa.types.is_fixed_size_binary(t) else 3
        return pa.array([None if z else bytes([i % 256]) * width for i, z in enumerate(nulls)], t)
    ints = pa.array([None if z else i % 100 for i, z in enumerate(nulls)], pa.int64())
    if pa.types.is_boolean(t):
        return ints.cast(pa.int8()).cast(t)
    if pa.types.is_decimal(t) or pa.types.is_floating(t) or pa.types.is_integer(t):
        return ints.cast(t)
    return ints.cast(pa.int32() if t.bit_width <= 32 else pa.int64()).view(t)


@st.composite
def sliced_batches(draw: st.DrawFn) -> pa.RecordBatch:
    types = draw(st.lists(st.sampled_from(TYPES), min_size=1, max_size=8))
    n = draw(st.integers(0, 70))
    batch = pa.record_batch(
        [_values(t, n, draw) for t in types], names=[f"c{i}" for i in range(len(types))]
    )
    start = draw(st.integers(0, n))
    return batch.slice(start, draw(st.integers(0, n - start)))


@settings(max_examples=300, deadline=None)
@given(sliced_batches())
def test_bound_is_never_below_the_arrow_bytes(batch: pa.RecordBatch) -> None:
    sizer = Sizer.of(batch.schema)
    assert sizer is not None and sizer.bound(batch) >= batch.nbytes


def test_bound_of_a_whole_fixed_width_batch_is_close() -> None:
    """Not just any large number: for fixed-width columns it is their bytes, the
    validity bits and a few rounding bytes."""
    n = 10_000
    batch = pa.record_batch(
        [pa.array(range(n), pa.int64()), pa.array([i / 3 for i in range(n)], pa.float64())],
        names=["a", "b"],
    )
    sizer = Sizer.of(batch.schema)
    assert sizer is not None
    bound = sizer.bound(batch)
    assert batch.nbytes == 2 * 8 * n
    assert batch.nbytes <= bound <= 2 * 8 * n + 2 * (n // 8 + 1) + 8


def test_no_bound_for_nested_columns() -> None:
    """A list or struct column may share or repeat buffers: its batches are measured."""
    schema = pa.schema([("a", pa.int64()), ("b", pa.list_(pa.int64()))])
    assert Sizer.of(schema) is None
