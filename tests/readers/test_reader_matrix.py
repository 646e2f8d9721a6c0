"""Values at the edges exported by ``dpexport run`` read back by the readers consumers
use (issue 22): pyarrow, polars, pandas and DuckDB, each over every format and codec it
can read, with its documented way to keep a type (schema overrides, ``dtype=``, a
nullable backend). Each reader's rows must equal the source's; where a reader cannot
(no interval type, a float column it cannot parse, NULL and "" alike), the test asserts
what it returns instead, and the comment there says so.

Source: 38-digit decimals (scale 9 and 0), INT64 min/max and 2**53 + 1, UINT64 max,
NaN/±Infinity beside a finite float, INTERVALs, astral-plane characters, RTL text,
quotes, backslashes, CR/LF, tab and a control character, "" and a literal "NaN"
string, and a row of NULLs. One export of every format/codec pair (module fixture).
"""

from __future__ import annotations

import json
import math
import warnings
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd  # type: ignore[import-untyped]
import polars as pl
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.json as pa_json
import pyarrow.parquet as pq
import pytest

from tests.e2e.cli import dpexport

AT = "2025-09-16T00:00:00Z"
ROWS = r"""
SELECT * FROM (VALUES
 (1, 99999999999999999999999999999.999999999::DECIMAL(38,9),
  99999999999999999999999999999999999999::DECIMAL(38,0), 9223372036854775807::BIGINT,
  18446744073709551615::UBIGINT, 'nan'::DOUBLE,
  INTERVAL '1 year 2 months 3 days 04:05:06.789123', 'emoji 😀 𝄞 RTL שלום'),
 (2, -99999999999999999999999999999.999999999::DECIMAL(38,9),
  -99999999999999999999999999999999999999::DECIMAL(38,0), (-9223372036854775807 - 1)::BIGINT,
  0::UBIGINT, 'inf'::DOUBLE, INTERVAL '-1 month 2 days -00:00:01.5',
  'a "q", back\slash' || chr(10) || 'line' || chr(13) || chr(9) || chr(1) || ',x'),
 (3, 0.000000001::DECIMAL(38,9), 0::DECIMAL(38,0), 9007199254740993::BIGINT,
  9007199254740993::UBIGINT, '-inf'::DOUBLE, INTERVAL '0 seconds', ''),
 (4, 0.1::DECIMAL(38,9), 1::DECIMAL(38,0), -9007199254740993::BIGINT, 1::UBIGINT,
  0.1::DOUBLE, INTERVAL '36 hours', 'NaN'),
 (5, NULL, NULL, NULL, NULL, NULL, NULL, NULL)
) t(id, d, d0, i, u, f, iv, s)
"""
COLUMNS = ["id", "d", "d0", "i", "u", "f", "iv", "s"]
DUCK_TYPES = (
    "{id:'INTEGER', d:'DECIMAL(38,9)', d0:'DECIMAL(38,0)', i:'BIGINT', u:'UBIGINT', "
    "f:'DOUBLE', iv:'INTERVAL', s:'VARCHAR'}"
)
PARQUET_CODECS = ["SNAPPY", "ZSTD", "GZIP", "BROTLI", "NONE"]
# BROTLI text: no reader here opens it (test_brotli_text_is_read_by_none)
TEXT_CODECS = ["NONE", "GZIP", "ZSTD"]
COMBOS = [("PARQUET", c) for c in PARQUET_CODECS] + [
    (f, c) for f in ("JSONL", "CSV") for c in [*TEXT_CODECS, "BROTLI"]
]


class Export:
    def __init__(self, root: Path, source: list[dict[str, Any]], iv_text: list[str | None]):
        self.root = root
        self.source = source  # rows as Python values (intervals as MonthDayNano)
        self.iv_text = iv_text  # DuckDB's CAST(iv AS VARCHAR) of each source row

    def file(self, fmt: str, codec: str) -> Path:
        folder = self.root / _name(fmt, codec) / "2025" / "09" / "16"
        [manifest] = folder.glob("manifest_*.json")
        [entry] = json.loads(manifest.read_text(encoding="utf-8"))["files"]
        return folder / entry["name"]


def _sql(query: str) -> list[tuple[Any, ...]]:
    rel = duckdb.sql(query)
    assert rel is not None
    return rel.fetchall()


def _name(fmt: str, codec: str) -> str:
    return f"e_{fmt.lower()}_{codec.lower()}"


@pytest.fixture(scope="module")
def export(tmp_path_factory: pytest.TempPathFactory) -> Export:
    base = tmp_path_factory.mktemp("matrix")
    con = duckdb.connect(str(base / "warehouse.duckdb"))
    con.execute("CREATE SCHEMA ds")
    items = []
    for fmt, codec in COMBOS:
        name = _name(fmt, codec)
        con.execute(f"CREATE TABLE ds.{name} AS {ROWS}")
        csv = ", csv: {escape_character: '\"'}" if fmt == "CSV" else ""  # RFC 4180
        items.append(
            f"  - {{source: ds.{name}, destination: gs://b/{name}/, format: {fmt}, "
            f"compression: {codec}, mode: FULL_REFRESH{csv}}}"
        )
    source = con.sql("SELECT * FROM ds.e_csv_none ORDER BY id").to_arrow_table().to_pylist()
    iv_text = [
        r[0] for r in con.sql("SELECT iv::VARCHAR FROM ds.e_csv_none ORDER BY id").fetchall()
    ]
    con.close()
    config = base / "dpexport.yaml"
    config.write_text(
        "project: p\nenvironment: test\nwarehouse: {engine: duckdb, path: warehouse.duckdb}\n"
        "buckets: {exports: gs://b}\nexports:\n" + "\n".join(items) + "\n",
        encoding="utf-8",
    )
    result = dpexport("-c", config, "--local-root", base / "out", "run", "--at", AT)
    assert result.code == 0, result.out + result.err
    return Export(base / "out" / "gs" / "b", source, iv_text)


# --- the rows each reader should return -----------------------------------------------


def _float(v: float | None) -> str | None:
    """A float compared by its repr: NaN equals NaN, inf and -inf differ."""
    return None if v is None else repr(float(v))


def expected(export: Export, interval: str) -> list[dict[str, Any]]:
    """The source rows as compared: decimals as Decimal, floats by repr, the interval as
    ``struct`` (Parquet's months/days/nanoseconds) or ``text`` (DuckDB's text)."""
    rows = []
    for row, text in zip(export.source, export.iv_text, strict=True):
        iv = row["iv"]
        if interval == "struct" and iv is not None:
            iv = {"months": iv.months, "days": iv.days, "nanoseconds": iv.nanoseconds}
        rows.append({**row, "f": _float(row["f"]), "iv": text if interval == "text" else iv})
    return rows


def typed(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows read with decimals as their digits' text turned into what they stand for
    (``Decimal(value)``, ``int(value)``: a reader's string keeps every digit)."""
    out = []
    for row in rows:
        row = dict(row)
        for key in ("d", "d0"):
            row[key] = None if row[key] is None else Decimal(row[key])
        for key in ("i", "u"):
            row[key] = None if row[key] is None else int(row[key])
        row["f"] = None if row["f"] is None else _float(float(row["f"]))
        out.append(row)
    return out


# --- Parquet ---------------------------------------------------------------------------


@pytest.mark.parametrize("codec", PARQUET_CODECS)
@pytest.mark.parametrize("reader", ["pyarrow", "polars", "pandas", "duckdb"])
def test_parquet(export: Export, reader: str, codec: str) -> None:
    """Every reader keeps every value of Parquet at its defaults (pandas with a nullable
    backend, see below). The interval is the months/days/nanoseconds struct: none of these
    readers maps Parquet's own INTERVAL to an exact value (pyarrow cannot write it)."""
    path = export.file("PARQUET", codec)
    if reader == "pyarrow":
        rows = pq.read_table(path).to_pylist()
    elif reader == "polars":
        rows = pl.read_parquet(path).to_dicts()
    elif reader == "pandas":
        # pandas' documented nullable types: with the default numpy backend an INT64 or
        # UINT64 column holding a NULL becomes float64 (test_pandas_numpy_backend...)
        frame = pd.read_parquet(path, dtype_backend="pyarrow")
        rows = [{c: _na(frame[c].iloc[n]) for c in frame} for n in range(len(frame))]
    else:
        got = _sql(f"SELECT * FROM read_parquet('{path}') ORDER BY id")
        rows = [dict(zip(COLUMNS, r, strict=True)) for r in got]
    assert typed(rows) == expected(export, "struct")


def _na(value: Any) -> Any:
    return None if value is pd.NA else value


def test_pandas_numpy_backend_loses_int64_digits_of_a_column_with_a_null(export: Export) -> None:
    """What pandas returns at its default backend: INT64/UINT64 beside a NULL as float64,
    2**53 + 1 rounded. ``dtype_backend="pyarrow"`` (above) is pandas' way to keep them."""
    frame = pd.read_parquet(export.file("PARQUET", "ZSTD"))
    assert str(frame["i"].dtype) == "float64"
    assert frame["i"].iloc[2] == 9007199254740992.0  # the source's 9007199254740993


def test_duckdb_rebuilds_the_parquet_interval(export: Export) -> None:
    """The manifest's note says how: ``to_months + to_days + to_microseconds``."""
    path = export.file("PARQUET", "SNAPPY")
    sql = (
        "SELECT (to_months(iv.months) + to_days(iv.days) + "
        f"to_microseconds(iv.nanoseconds // 1000))::VARCHAR FROM read_parquet('{path}') "
        "ORDER BY id"
    )
    assert [r[0] for r in _sql(sql)] == export.iv_text


# --- JSONL -----------------------------------------------------------------------------

#: the JSON string columns as strings; "i" stays a JSON number (formats/fidelity.py)
JSON_STRINGS = ["d", "d0", "u", "iv", "s"]


@pytest.mark.parametrize("codec", TEXT_CODECS)
def test_jsonl_pyarrow(export: Export, codec: str) -> None:
    """pyarrow.json with an explicit schema keeps every digit of every column but ``f``:
    a float column holding numbers and the strings "NaN"/"Infinity" (BigQuery's JSON
    for them) is refused whatever type it is given, so pyarrow reads such a file only
    without that column (``unexpected_field_behavior="ignore"``)."""
    path = export.file("JSONL", codec)
    fields = [pa.field("id", pa.int32()), pa.field("i", pa.int64())]
    fields += [pa.field(c, pa.string()) for c in JSON_STRINGS]
    for f_type in (pa.float64(), pa.string()):
        options = pa_json.ParseOptions(explicit_schema=pa.schema([*fields, ("f", f_type)]))
        with pytest.raises(pa.ArrowInvalid, match=r"Column\(/f\) changed from"):
            pa_json.read_json(path, parse_options=options)
    options = pa_json.ParseOptions(
        explicit_schema=pa.schema(fields), unexpected_field_behavior="ignore"
    )
    rows = pa_json.read_json(path, parse_options=options).to_pylist()
    want = [{k: v for k, v in r.items() if k != "f"} for r in expected(export, "text")]
    assert typed([{**r, "f": None} for r in rows]) == [{**r, "f": None} for r in want]


@pytest.mark.parametrize("codec", TEXT_CODECS)
def test_jsonl_polars(export: Export, codec: str) -> None:
    """polars keeps INT64 as a number; the string columns as String (its override), the
    float column as String then cast (polars refuses "NaN" as a Float64 at read)."""
    path = export.file("JSONL", codec)
    overrides: dict[str, Any] = dict.fromkeys([*JSON_STRINGS, "f"], pl.String)
    frame = pl.read_ndjson(path, schema_overrides=overrides)
    assert frame.schema["i"] == pl.Int64
    frame = frame.with_columns(pl.col("f").cast(pl.Float64))
    assert typed(frame.to_dicts()) == expected(export, "text")


@pytest.mark.parametrize("codec", TEXT_CODECS)
def test_jsonl_pandas(export: Export, codec: str) -> None:
    """pandas' default engine with ``dtype=str`` keeps the string columns and the float
    column's text (NULL stays apart from "NaN"), but turns the INT64 column (it holds a
    NULL) into float64 first, whatever ``dtype`` says: 2**53 + 1 comes back rounded.
    Its exact way for INT64 (``engine="pyarrow"``) fails on this file's float column,
    as pyarrow does (test_jsonl_pyarrow); see formats/fidelity.py for the choice."""
    path = export.file("JSONL", codec)
    # "f" as str too: read as floats, NULL and NaN would both be NaN
    dtype = {**dict.fromkeys([*JSON_STRINGS, "f"], str), "i": "Int64"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # pandas' own float -> Int64 cast
        frame = pd.read_json(_pandas_source(path, codec), lines=True, dtype=dtype)
    rows = [{c: _pd_value(frame[c].iloc[n]) for c in frame} for n in range(len(frame))]
    want = expected(export, "text")
    got = typed([{**r, "i": None} for r in rows])
    assert got == [{**r, "i": None} for r in want]
    ints = [r["i"] for r in rows]
    assert ints[3] == -9007199254740992  # the source's -9007199254740993, rounded
    assert ints[2] == 9007199254740992
    with pytest.raises(pa.ArrowInvalid, match=r"Column\(/f\) changed from"):
        pd.read_json(_pandas_source(path, codec), lines=True, engine="pyarrow")


def test_pandas_pyarrow_engine_keeps_int64_without_a_mixed_float_column(tmp_path: Path) -> None:
    """The evidence behind INT64 as a JSON number: a file without such a float column,
    as dpexport writes an INT64 column with a NULL, read by every reader's own way."""
    path = tmp_path / "i.jsonl"
    path.write_text('{"i":9223372036854775807}\n{"i":null}\n{"i":-9007199254740993}\n')
    want = [9223372036854775807, None, -9007199254740993]
    frame = pd.read_json(path, lines=True, engine="pyarrow", dtype_backend="numpy_nullable")
    assert [_pd_value(v) for v in frame["i"]] == want
    assert pa_json.read_json(path).column("i").to_pylist() == want
    assert pl.read_ndjson(path)["i"].to_list() == want
    assert [r[0] for r in _sql(f"SELECT i FROM read_json('{path}')")] == want
    # pandas' default engine, even told Int64: float64 first, digits lost
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        lossy = pd.read_json(path, lines=True, dtype={"i": "Int64"})["i"]
    assert _pd_value(lossy.iloc[2]) == -9007199254740992


def _pandas_source(path: Path, codec: str) -> Any:
    """pandas opens GZIP by the file name; ZSTD only with the optional ``zstandard``
    package (not installed here), so it is given pyarrow's decompressing stream."""
    if codec == "ZSTD":
        return pa.input_stream(path, compression="zstd")
    return path


def _pd_value(value: Any) -> Any:
    if value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return None
    return int(value) if hasattr(value, "is_integer") and not isinstance(value, float) else value


@pytest.mark.parametrize("codec", TEXT_CODECS)
def test_jsonl_duckdb(export: Export, codec: str) -> None:
    """DuckDB's typed read (``columns=``) casts each string back to its type exactly."""
    path = export.file("JSONL", codec)
    _assert_duckdb(export, f"read_json('{path}', columns={DUCK_TYPES})")


def _assert_duckdb(export: Export, reader: str) -> None:
    sql = f"SELECT * REPLACE (iv::VARCHAR AS iv) FROM {reader} ORDER BY id"
    rows = [dict(zip(COLUMNS, r, strict=True)) for r in _sql(sql)]
    assert typed(rows) == expected(export, "text")


# --- CSV (RFC 4180: escape_character '"') ----------------------------------------------


@pytest.mark.parametrize("codec", TEXT_CODECS)
def test_csv_pyarrow(export: Export, codec: str) -> None:
    """pyarrow.csv with column types, quoted newlines allowed, and only the empty unquoted
    field as NULL (its default null list holds "NaN", which would eat the float and the
    string "NaN")."""
    path = export.file("CSV", codec)
    types = {"id": pa.int32(), "i": pa.int64(), "u": pa.uint64(), "f": pa.float64()}
    types |= dict.fromkeys(["d", "d0", "iv", "s"], pa.string())
    table = pa_csv.read_csv(
        path,
        parse_options=pa_csv.ParseOptions(newlines_in_values=True),
        convert_options=pa_csv.ConvertOptions(
            column_types=types,
            null_values=[""],
            strings_can_be_null=True,
            quoted_strings_can_be_null=False,
        ),
    )
    assert typed(table.to_pylist()) == expected(export, "text")


@pytest.mark.parametrize("codec", TEXT_CODECS)
def test_csv_polars(export: Export, codec: str) -> None:
    """polars with schema overrides: decimals as String, 64-bit integers as such."""
    path = export.file("CSV", codec)
    overrides: dict[str, Any] = {"i": pl.Int64, "u": pl.UInt64, "f": pl.Float64}
    overrides |= dict.fromkeys(["d", "d0", "iv", "s"], pl.String)
    rows = pl.read_csv(path, schema_overrides=overrides).to_dicts()
    assert typed(rows) == expected(export, "text")


@pytest.mark.parametrize("codec", TEXT_CODECS)
def test_csv_pandas(export: Export, codec: str) -> None:
    """pandas with ``dtype=str`` and only "" as NA keeps every digit and character, but
    cannot tell the quoted empty string from the empty (NULL) field: the source's ""
    reads as NULL. (``null_marker`` set to another text would tell them apart.)"""
    path = export.file("CSV", codec)
    frame = pd.read_csv(
        _pandas_source(path, codec), dtype=str, keep_default_na=False, na_values=[""]
    )
    rows = [
        {c: _pd_value(frame[c].iloc[n]) for c in frame} | {"id": int(frame["id"].iloc[n])}
        for n in range(len(frame))
    ]
    want = expected(export, "text")
    assert want[2]["s"] == ""
    want[2]["s"] = None  # what pandas returns for ""
    assert typed(rows) == want


@pytest.mark.parametrize("codec", TEXT_CODECS)
def test_csv_duckdb(export: Export, codec: str) -> None:
    path = export.file("CSV", codec)
    _assert_duckdb(export, f"read_csv('{path}', types={DUCK_TYPES}, allow_quoted_nulls=false)")


# --- BROTLI text -------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["JSONL", "CSV"])
def test_brotli_text_is_read_by_none(export: Export, fmt: str) -> None:
    """What check's warning says (config/reader_notes.py): none of these readers opens
    a BROTLI JSONL or CSV file; each fails on its bytes (DuckDB names the compression,
    the others fail to parse or decode them). Decompressed first (pyarrow's brotli
    stream), the file reads as the others do."""
    path = export.file(fmt, "BROTLI")
    jsonl = fmt == "JSONL"
    attempts = {
        "pyarrow": lambda: (pa_json.read_json if jsonl else pa_csv.read_csv)(path),
        "polars": lambda: (pl.read_ndjson if jsonl else pl.read_csv)(path),
        "pandas": lambda: pd.read_json(path, lines=True) if jsonl else pd.read_csv(path),
        "duckdb": lambda: _sql(f"SELECT * FROM {'read_json' if jsonl else 'read_csv'}('{path}')"),
    }
    for name, attempt in attempts.items():
        try:
            attempt()
        except Exception:  # each fails its own way
            continue
        pytest.fail(f"{name} read the BROTLI {fmt} file")
    data = pa.input_stream(path, compression="brotli").read()
    if jsonl:
        overrides: dict[str, Any] = dict.fromkeys([*JSON_STRINGS, "f"], pl.String)
        frame = pl.read_ndjson(data, schema_overrides=overrides)
        frame = frame.with_columns(pl.col("f").cast(pl.Float64))
    else:
        overrides = {"u": pl.UInt64, **dict.fromkeys(["d", "d0", "iv"], pl.String)}
        frame = pl.read_csv(data, schema_overrides=overrides)
    assert typed(frame.to_dicts()) == expected(export, "text")
