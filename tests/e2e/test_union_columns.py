"""A DuckDB UNION column, which no export format can write, is refused before anything is
written (exit 2, CONTRACT §2: bad config, nothing written), naming the column, its
table and the source's YAML line, with the two ways out; it failed mid-export with
"ArrowNotImplementedError: sparse_union", naming nothing, leaving FAILURE and a DLQ
entry. Both ways out export the table."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import duckdb
import pytest

from tests.e2e.cli import dpexport

AT = "2025-09-16T00:00:00Z"
HEAD = """\
project: p
environment: test
warehouse: {engine: duckdb, path: warehouse.duckdb}
buckets: {exports: gs://b}
exports:
"""
ITEM = """\
  - source: ds.{table}
    destination: gs://b/{table}/
    format: {fmt}
    compression: GZIP
    mode: FULL_REFRESH
"""


@pytest.fixture()
def base(tmp_path: Path) -> Path:
    con = duckdb.connect(str(tmp_path / "warehouse.duckdb"))
    con.execute("CREATE SCHEMA ds")
    con.execute("CREATE TYPE tagged AS UNION(num INTEGER, label VARCHAR)")
    con.execute(
        "CREATE TABLE ds.readings AS SELECT * FROM (VALUES "
        "(1, union_value(num := 7)::tagged, [union_value(label := 'a')::tagged]), "
        "(2, union_value(label := 'café')::tagged, NULL)) t(id, reading, history)"
    )
    con.execute(
        "CREATE VIEW ds.readings_text AS SELECT * REPLACE (CAST(reading AS VARCHAR) AS "
        "reading, CAST(history AS VARCHAR) AS history) FROM ds.readings"
    )
    con.close()
    return tmp_path


def _config(base: Path, *items: tuple[str, str], extra: str = "") -> Path:
    body = "".join(ITEM.format(table=t, fmt=f) for t, f in items)
    config = base / "dpexport.yaml"
    config.write_text(HEAD + body + extra, encoding="utf-8")
    return config


@pytest.mark.parametrize("command", ["run", "check"])
@pytest.mark.parametrize("fmt", ["PARQUET", "JSONL", "CSV"])
def test_a_union_column_is_refused_by_name_before_anything_is_written(
    base: Path, command: str, fmt: str
) -> None:
    config = _config(base, ("readings", fmt))
    args = ("--at", AT) if command == "run" else ()
    result = dpexport("-c", config, "--local-root", base / "out", command, *args)
    assert result.code == 2, result.out + result.err
    lines = [line for line in result.err.splitlines() if line.startswith("  - ")]
    assert len(lines) == 2, result.err  # the column, and the one holding a list of them
    top, nested = lines
    assert "dpexport.yaml:6: exports[0].source: column 'reading' of ds.readings is a UNION" in top
    assert "sparse_union<num: int32=0, label: string=1>" in top
    assert "CAST(reading AS VARCHAR) AS reading" in top
    assert "gdpr_compliance.excluded_fields" in top
    assert "column 'history' of ds.readings is a UNION (list<" in nested
    assert "ArrowNotImplementedError" not in result.err
    assert not (base / "out").exists()  # no FAILURE marker, no DLQ entry, no state


def test_the_cast_view_exports(base: Path) -> None:
    """The first way out: a view casting the columns to text exports them as text."""
    config = _config(base, ("readings_text", "JSONL"))
    result = dpexport("-c", config, "--local-root", base / "out", "run", "--at", AT)
    assert result.code == 0, result.out + result.err
    [data] = (base / "out" / "gs" / "b" / "readings_text").glob("*/*/*/*.jsonl.gz")
    rows = sorted(
        (json.loads(line) for line in gzip.decompress(data.read_bytes()).splitlines()),
        key=lambda r: r["id"],
    )
    assert rows == [
        {"id": 1, "reading": "7", "history": "[a]"},
        {"id": 2, "reading": "café", "history": None},
    ]


def test_excluded_union_columns_export_the_rest(base: Path) -> None:
    """The second: the columns listed in ``excluded_fields`` are never read."""
    gdpr = "    gdpr_compliance:\n      excluded_fields: [reading, history]\n"
    config = _config(base, ("readings", "CSV"), extra=gdpr)
    result = dpexport("-c", config, "--local-root", base / "out", "run", "--at", AT)
    assert result.code == 0, result.out + result.err
    [data] = (base / "out" / "gs" / "b" / "readings").glob("*/*/*/*.csv.gz")
    assert gzip.decompress(data.read_bytes()).decode().splitlines() == ["id", "1", "2"]
