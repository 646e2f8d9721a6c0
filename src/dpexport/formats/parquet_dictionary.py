"""Which columns of a row group get a dictionary: ``PLAIN_DICTIONARY`` with the fallback
to PLAIN that parquet-mr makes.

parquet-mr, where the name ``PLAIN_DICTIONARY`` comes from, writes a column chunk's first
page with a dictionary and keeps it only if the dictionary and its indices are smaller
than the same values PLAIN; else the chunk goes on PLAIN. DuckDB decides alike before
it writes. pyarrow alone keeps hashing every value into the dictionary until the
dictionary page outgrows its limit (1MB: 131,072 doubles), then falls back: on columns of
mostly distinct values (ids, timestamps, measurements) it hashes most of a row group for
a dictionary it drops, and the file is larger for it. On the benchmark's 5 M telemetry
rows that was 0.7 s of a 4.8 s export's CPU and 10 MB of a 414 MB file.

So a row group of more rows than a page holds is judged on its first page's worth of
rows (Arrow ends a page at 20,000 rows): a flat column whose dictionary and indices there
are not smaller than its PLAIN values is written PLAIN in that row group. A row group of
at most that many rows is one page per column, which parquet-mr never falls back in, and
keeps the configured dictionary; so do nested columns (judged by Arrow as configured).
"""

from __future__ import annotations

import math
from typing import Any

import pyarrow as pa

#: rows a column's dictionary is judged on: the first page's worth (Arrow's page row limit)
SAMPLE_ROWS = 20_000
#: bytes before each BYTE_ARRAY value in a PLAIN page or a dictionary page (its length)
_LENGTH_PREFIX = 4


def _is_binary(t: pa.DataType) -> bool:
    return bool(
        pa.types.is_string(t)
        or pa.types.is_large_string(t)
        or pa.types.is_binary(t)
        or pa.types.is_large_binary(t)
    )


def _judged(t: pa.DataType) -> bool:
    """A type whose PLAIN and dictionary sizes follow from its values alone (booleans
    never get a dictionary; nested and dictionary-typed columns are left to Arrow)."""
    return bool(
        pa.types.is_integer(t)
        or pa.types.is_floating(t)
        or pa.types.is_decimal(t)
        or (pa.types.is_temporal(t) and not pa.types.is_interval(t))
        or _is_binary(t)
        or pa.types.is_fixed_size_binary(t)
    )


def _width(t: pa.DataType) -> int:
    """Bytes of one value of a fixed-width type as Parquet stores it: INT32 for integers
    and times of up to 32 bits, a decimal in the fewest bytes its precision needs."""
    if pa.types.is_decimal(t):
        return math.ceil((t.precision * math.log2(10) + 1) / 8)
    if pa.types.is_fixed_size_binary(t):
        return int(t.byte_width)
    return 4 if t.bit_width <= 32 else t.bit_width // 8


def _kernel(name: str, values: Any) -> Any:
    """Arrow's compute kernel ``name`` over ``values``. Called through the kernels' own
    module: ``pyarrow.compute`` (which ``drop_null()`` and ``unique()`` import) first
    builds a Python wrapper and docstring for each of its ~300 functions, ~50 ms of an
    encoder thread's CPU in every export with a large row group."""
    try:
        from pyarrow._compute import call_function
    except ImportError:  # a pyarrow that moved it: the public name
        from pyarrow.compute import call_function
    return call_function(name, [values])


def _bytes(values: Any) -> int:
    """PLAIN bytes of ``values`` (no NULLs): a fixed width each, or a length and the bytes."""
    t = values.type
    if _is_binary(t):
        lengths = _kernel("sum", _kernel("binary_length", values)).as_py() or 0
        return int(lengths) + _LENGTH_PREFIX * len(values)
    return len(values) * _width(t)


def dictionary_pays(column: Any) -> bool:
    """Whether a dictionary makes the first :data:`SAMPLE_ROWS` values of ``column``
    smaller than PLAIN (parquet-mr's test: dictionary + indices < PLAIN)."""
    sample = _kernel("drop_null", column.slice(0, SAMPLE_ROWS))
    if len(sample) == 0:
        return True
    distinct = _kernel("unique", sample)
    indices = len(sample) * max(1, math.ceil(math.log2(len(distinct)))) / 8
    return _bytes(distinct) + indices < _bytes(sample)


def row_group_dictionary(
    table: pa.Table, use_dictionary: bool | list[str], paths: list[list[str]]
) -> bool | list[str]:
    """``use_dictionary`` (pyarrow's: all columns, none or these column paths) for a row
    group of ``table``, less the flat columns a dictionary does not pay for (module doc);
    ``paths[i]`` are field ``i``'s Parquet column paths."""
    if use_dictionary is False or table.num_rows <= SAMPLE_ROWS:
        return use_dictionary
    allowed = None if use_dictionary is True else set(use_dictionary)
    kept: list[str] = []
    for index, field in enumerate(table.schema):
        leaves = [p for p in paths[index] if allowed is None or p in allowed]
        if leaves and _judged(field.type) and not dictionary_pays(table.column(index)):
            continue
        kept.extend(leaves)
    if allowed is None and len(kept) == sum(map(len, paths)):
        return True
    return kept


def row_group_properties(
    props: dict[str, Any], table: pa.Table, paths: list[list[str]]
) -> dict[str, Any]:
    """pyarrow writer ``props`` for a row group of ``table``: ``use_dictionary`` as
    :func:`row_group_dictionary` judges it (``props`` itself when that changes nothing)."""
    dictionary = row_group_dictionary(table, props["use_dictionary"], paths)
    if dictionary is props["use_dictionary"]:
        return props
    return {**props, "use_dictionary": dictionary}
