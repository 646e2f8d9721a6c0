"""JSONL writes NaN and ±Infinity as the strings "NaN", "Infinity", "-Infinity" (BigQuery's
JSON form of FLOAT64), so a reader tells them from NULL (issue 15)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import duckdb
import pyarrow as pa

from dpexport.config.spec import CsvOptions, JsonlOptions, ParquetOptions
from dpexport.formats import count_rows, open_writer, read_file

FLOATS = [math.nan, math.inf, -math.inf, None, 1.5, -0.0]


def _write(path: Path, table: pa.Table, codec: str = "NONE") -> None:
    writer = open_writer(
        path,
        table.schema,
        "JSONL",
        codec,
        parquet=ParquetOptions(),
        jsonl=JsonlOptions(),
        csv=CsvOptions(),
    )
    for batch in table.to_batches(max_chunksize=2):
        writer.write_batch(batch)
    writer.close()


def _same(got: Sequence[object], want: Sequence[object]) -> bool:
    def key(v: object) -> object:
        if isinstance(v, float):
            return ("nan",) if math.isnan(v) else (v, math.copysign(1, v))
        return v

    return [key(v) for v in got] == [key(v) for v in want]


def test_non_finite_floats_are_strings_and_null_stays_null(tmp_path: Path) -> None:
    path = tmp_path / "f.jsonl"
    _write(path, pa.table({"x": pa.array(FLOATS, pa.float64())}))
    assert path.read_bytes() == (
        b'{"x":"NaN"}\n{"x":"Infinity"}\n{"x":"-Infinity"}\n{"x":null}\n{"x":1.5}\n{"x":-0.0}\n'
    )


def test_read_back_with_and_without_the_schema(tmp_path: Path) -> None:
    table = pa.table(
        {
            "x": pa.array(FLOATS, pa.float64()),
            "f32": pa.array([1.0, None, math.nan, math.inf, -math.inf, 2.0], pa.float32()),
            "s": pa.array(["NaN", "Infinity", "-Infinity", None, "x", "inf"]),
            "xs": pa.array(
                [[1.0, math.nan], None, [math.inf, None], [], [-math.inf], [0.5]],
                pa.list_(pa.float64()),
            ),
            "rec": pa.array(
                [{"v": math.nan, "w": "NaN"}, None, {"v": 1.0, "w": "Infinity"}] * 2,
                pa.struct([("v", pa.float64()), ("w", pa.string())]),
            ),
        }
    )
    path = tmp_path / "f.jsonl.gz"
    _write(path, table, "GZIP")

    back = read_file(path, "JSONL", "GZIP", schema=table.schema)
    assert back.schema.equals(table.schema)
    for name in ("x", "f32"):
        assert _same(back.column(name).to_pylist(), table.column(name).to_pylist()), name
    assert back.column("s").to_pylist() == table.column("s").to_pylist()
    assert (
        str(back.column("xs").to_pylist()) == "[[1.0, nan], None, [inf, None], [], [-inf], [0.5]]"
    )
    assert str(back.column("rec").to_pylist()[:3]) == (
        "[{'v': nan, 'w': 'NaN'}, None, {'v': 1.0, 'w': 'Infinity'}]"
    )

    inferred = read_file(path, "JSONL", "GZIP")
    assert inferred.schema.field("x").type == pa.float64()
    assert _same(inferred.column("x").to_pylist(), FLOATS)
    assert inferred.column("s").to_pylist() == table.column("s").to_pylist()
    assert count_rows(path, "JSONL", "GZIP") == 6


def test_a_string_column_of_only_non_finite_text_stays_text(tmp_path: Path) -> None:
    path = tmp_path / "s.jsonl"
    _write(path, pa.table({"s": pa.array(["NaN", None, "-Infinity"]), "n": [1, 2, 3]}))
    assert read_file(path, "JSONL", "NONE").column("s").to_pylist() == ["NaN", None, "-Infinity"]


def test_duckdb_tells_them_from_null(tmp_path: Path) -> None:
    path = tmp_path / "f.jsonl"
    _write(path, pa.table({"i": pa.array(range(6), pa.int64()), "x": pa.array(FLOATS)}))
    con = duckdb.connect()
    rows = con.execute(
        f"SELECT i, x, x IS NULL, isnan(x), isinf(x) FROM read_json('{path}', "
        "format='newline_delimited', columns={i: 'BIGINT', x: 'DOUBLE'}) ORDER BY i"
    ).fetchall()
    assert [r[2:] for r in rows] == [
        (False, True, False),
        (False, False, True),
        (False, False, True),
        (True, None, None),
        (False, False, False),
        (False, False, False),
    ]
    assert rows[1][1] == math.inf and rows[2][1] == -math.inf
