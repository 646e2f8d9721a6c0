"""INTERVALs inside a STRUCT, a LIST and a MAP exported by ``dpexport run`` in every
format (issue 22): Parquet stores each as the months/days/nanoseconds struct at its
depth (marked, so dpexport reads an interval back), JSONL and CSV as DuckDB's text;
DuckDB reads them all, the manifest says so. An interval inside another type is
refused by name before anything is written."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from dpexport.config.spec import CsvOptions
from dpexport.formats import read_file
from dpexport.formats.intervals import PARQUET_TYPE, NestedIntervalError
from dpexport.formats.parquet import ParquetWriter
from tests.e2e.cli import dpexport

AT = "2025-09-16T00:00:00Z"
ROWS = """
SELECT * FROM (VALUES
 (1, {'a': INTERVAL '1 year 2 days 00:00:01.5', 'b': 7},
  [INTERVAL '1 day', NULL, INTERVAL '-3 months 00:00:00.000001'],
  MAP {'k': INTERVAL '3 hours', 'z': NULL},
  [{'x': [INTERVAL '2 months']}]),
 (2, {'a': NULL, 'b': NULL}, [], MAP {}, []),
 (3, NULL, NULL, NULL, NULL)
) t(id, s, l, m, deep)
"""
FORMATS = [("PARQUET", "ZSTD"), ("JSONL", "GZIP"), ("CSV", "NONE")]
CSV = CsvOptions(escape_character='"')


@pytest.fixture(scope="module")
def export(tmp_path_factory: pytest.TempPathFactory) -> tuple[pa.Table, list[Any], Path]:
    base = tmp_path_factory.mktemp("nested")
    con = duckdb.connect(str(base / "warehouse.duckdb"))
    con.execute("CREATE SCHEMA ds")
    items = []
    for fmt, codec in FORMATS:
        con.execute(f"CREATE TABLE ds.n_{fmt.lower()} AS {ROWS}")
        csv = ", csv: {escape_character: '\"'}" if fmt == "CSV" else ""
        items.append(
            f"  - {{source: ds.n_{fmt.lower()}, destination: gs://b/{fmt.lower()}/, "
            f"format: {fmt}, compression: {codec}, mode: FULL_REFRESH{csv}}}"
        )
    source = con.sql("SELECT * FROM ds.n_csv ORDER BY id").to_arrow_table()
    duck = con.sql("SELECT * FROM ds.n_csv ORDER BY id").fetchall()
    con.close()
    config = base / "dpexport.yaml"
    config.write_text(
        "project: p\nenvironment: test\nwarehouse: {engine: duckdb, path: warehouse.duckdb}\n"
        "buckets: {exports: gs://b}\nexports:\n" + "\n".join(items) + "\n",
        encoding="utf-8",
    )
    result = dpexport("-c", config, "--local-root", base / "out", "run", "--at", AT)
    assert result.code == 0, result.out + result.err
    return source, duck, base / "out" / "gs" / "b"


def _written(root: Path, fmt: str) -> tuple[Path, dict[str, Any]]:
    folder = root / fmt.lower() / "2025" / "09" / "16"
    [manifest] = folder.glob("manifest_*.json")
    doc = json.loads(manifest.read_text(encoding="utf-8"))
    return folder / doc["files"][0]["name"], doc


@pytest.mark.parametrize(("fmt", "codec"), FORMATS)
def test_dpexport_reads_nested_intervals_back(
    export: tuple[pa.Table, list[Any], Path], fmt: str, codec: str
) -> None:
    source, _, root = export
    path, _ = _written(root, fmt)
    if fmt == "JSONL":
        # dpexport reads JSONL with pyarrow's JSON reader, which reads no MAP at all,
        # intervals or not (DuckDB reads this file: test_duckdb_reads_the_text_forms)
        with pytest.raises(pa.ArrowNotImplementedError, match="JSON conversion to map"):
            read_file(path, fmt, codec, schema=source.schema)
        return
    back = read_file(path, fmt, codec, schema=source.schema, csv=CSV).sort_by("id")
    assert back.schema.equals(source.schema)
    assert back.to_pylist() == source.to_pylist()


def test_parquet_holds_the_struct_at_each_depth(
    export: tuple[pa.Table, list[Any], Path],
) -> None:
    """What any Parquet reader sees: the struct in place of each interval."""
    _, _, root = export
    path, doc = _written(root, "PARQUET")
    stored = pq.read_schema(path)
    assert stored.field("s").type.field("a").type == PARQUET_TYPE
    assert stored.field("l").type.value_type == PARQUET_TYPE
    assert stored.field("m").type.item_type == PARQUET_TYPE
    assert stored.field("deep").type.value_type.field("x").type.value_type == PARQUET_TYPE
    row = pq.read_table(path).sort_by("id").to_pylist()[0]
    assert row["s"] == {"a": {"months": 12, "days": 2, "nanoseconds": 1_500_000_000}, "b": 7}
    assert row["l"][2] == {"months": -3, "days": 0, "nanoseconds": 1000}
    assert row["l"][1] is None
    notes = {f["name"]: f.get("parquet") for f in doc["schema"]}
    assert notes == {
        "id": None,
        **dict.fromkeys(["s", "l", "m", "deep"], f"nested intervals as {PARQUET_TYPE}"),
    }


def test_duckdb_reads_the_parquet_structs(export: tuple[pa.Table, list[Any], Path]) -> None:
    """DuckDB rebuilds a nested interval with the manifest's recipe."""
    _, duck, root = export
    path, _ = _written(root, "PARQUET")
    rebuilt = "to_months(v.months) + to_days(v.days) + to_microseconds(v.nanoseconds // 1000)"
    sql = (
        f"SELECT [{rebuilt.replace('v.', 'x.')} FOR x IN l] FROM read_parquet('{path}') ORDER BY id"
    )
    rel = duckdb.sql(sql)
    assert rel is not None
    assert [r[0] for r in rel.fetchall()] == [r[2] for r in duck]


@pytest.mark.parametrize("fmt", ["JSONL", "CSV"])
def test_duckdb_reads_the_text_forms(export: tuple[pa.Table, list[Any], Path], fmt: str) -> None:
    """DuckDB told the nested types reads DuckDB's interval text back exactly."""
    _, duck, root = export
    path, doc = _written(root, fmt)
    types = (
        "{id: 'INTEGER', s: 'STRUCT(a INTERVAL, b INTEGER)', l: 'INTERVAL[]', "
        "m: 'MAP(VARCHAR, INTERVAL)', deep: 'STRUCT(x INTERVAL[])[]'}"
    )
    if fmt == "JSONL":
        reader = f"read_json('{path}', columns={types})"
    else:  # CSV holds a nested value as JSON text: read it as JSON, then cast
        reader = (
            f"(SELECT id, s::JSON::STRUCT(a INTERVAL, b INTEGER) AS s, l::JSON::INTERVAL[] AS l, "
            "m::JSON::MAP(VARCHAR, INTERVAL) AS m, deep::JSON::STRUCT(x INTERVAL[])[] AS deep "
            f"FROM read_csv('{path}', all_varchar=true, allow_quoted_nulls=false))"
        )
    rel = duckdb.sql(f"SELECT * FROM {reader} ORDER BY id::INTEGER")
    assert rel is not None
    assert [r[1:] for r in rel.fetchall()] == [r[1:] for r in duck]
    notes = {f["name"]: f.get("text") for f in doc["schema"]}
    assert notes == {"id": None, **dict.fromkeys(["s", "l", "m", "deep"], "duckdb_interval")}
    if fmt == "JSONL":
        json_notes = {f["name"]: f.get("json") for f in doc["schema"]}
        assert json_notes["l"] == "nested intervals as strings"


def test_the_writer_refuses_an_interval_it_cannot_rebuild(tmp_path: Path) -> None:
    """An interval inside a type other than a struct, list or map (a dictionary here)
    is refused by name when the Parquet file is opened, before a byte is written. (A
    DuckDB UNION cannot be tried through ``run``: an export of any union fails earlier,
    with pyarrow's "ArrowNotImplementedError: sparse_union".)"""
    path = tmp_path / "x.parquet"
    odd = pa.dictionary(pa.int32(), pa.month_day_nano_interval())
    schema = pa.schema([("id", pa.int32()), ("odd", pa.struct([("v", odd)]))])
    with pytest.raises(NestedIntervalError, match=r"column 'odd' holds an INTERVAL inside"):
        ParquetWriter(path, schema, "ZSTD")
    assert not path.exists()
