"""Helpers of the check tests: a fake engine, warehouse files, a mini export's outcome.

Every check test runs against two engines: the tiny fake written here (SQL straight on
DuckDB, the shape ``aggregate`` promises) and the real ``DuckDBEngine``, so the checks'
SQL is proven on what the exporter really runs. (A uniquely named module rather than
``conftest``, so test files can import it without clashing with other folders.)
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from dpexport.checks import CheckRun
from dpexport.config.spec import GdprCompliance, Partitioning, TableSpec
from dpexport.engines.base import ScanRequest

DATASET = "diagnosticpro_prod"
LOGICAL = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
KEY = b"k" * 32


def q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


class FakeEngine:
    """Just enough of the Engine protocol, on a DuckDB file: the request's rows are
    ``SELECT * EXCLUDE (...), extras FROM ds.t WHERE filter`` (no slice bounds or
    de-duplication: the check tests do not use them)."""

    name = "fake"

    def __init__(self, path: Path) -> None:
        self.con = duckdb.connect(str(path), read_only=True)

    def _table(self, sql: str, params: list[Any] | None = None) -> pa.Table:
        cur = self.con.cursor()  # one cursor per statement: DuckDB 2 wants results finished
        try:
            return cur.sql(sql, params=params).to_arrow_table()
        finally:
            cur.close()

    def table_exists(self, dataset: str, table: str) -> bool:
        sql = "SELECT 1 FROM information_schema.tables WHERE table_schema = ? AND table_name = ?"
        return self._table(sql, [dataset, table]).num_rows > 0

    def schema(self, dataset: str, table: str) -> pa.Schema:
        return self._table(f"SELECT * FROM {q(dataset)}.{q(table)} LIMIT 0").schema

    def _select(self, r: ScanRequest) -> str:
        cols = "*" + (f" EXCLUDE ({', '.join(map(q, r.exclude))})" if r.exclude else "")
        extras = "".join(f", ({e}) AS {q(n)}" for n, e in r.extra.items())
        where = f" WHERE {r.filter}" if r.filter else ""
        return f"SELECT {cols}{extras} FROM {q(r.dataset)}.{q(r.table)}{where}"

    def count(self, request: ScanRequest) -> int:
        return int(self.aggregate(request, {"n": "count(*)"})["n"])

    def aggregate(self, request: ScanRequest, expressions: dict[str, str]) -> dict[str, Any]:
        items = ", ".join(f"({e}) AS {q(n)}" for n, e in expressions.items())
        row = self._table(f"SELECT {items} FROM ({self._select(request)}) AS src").to_pylist()
        return {name: row[0][name] for name in expressions}

    def scan(self, request: ScanRequest) -> pa.RecordBatchReader:
        sql = self._select(request)
        if request.order_by:
            sql += " ORDER BY " + ", ".join(map(q, request.order_by))
        table = self._table(sql)
        return pa.RecordBatchReader.from_batches(table.schema, table.to_batches(max_chunksize=3))

    def close(self) -> None:
        self.con.close()


def make_db(path: Path, sql: str) -> Path:
    con = duckdb.connect(str(path))
    con.execute(f"CREATE SCHEMA IF NOT EXISTS {DATASET}")
    con.execute(sql)
    con.close()
    return path


def table_spec(table: str, validation: Iterable[object], gdpr: GdprCompliance | None = None
               ) -> TableSpec:  # fmt: skip
    return TableSpec(
        dataset=DATASET,
        table=table,
        destination=f"gs://b/prod/{DATASET}/{table}/",
        format="PARQUET",
        compression="SNAPPY",
        mode="APPEND",
        partitioning=Partitioning(),
        validation=tuple(validation),
        gdpr=gdpr,
    )


@dataclass
class Outcome:
    """What a mini export did: the run, the rows written, the rows quarantined."""

    run: CheckRun
    written: pa.Table
    quarantined: pa.Table | None
    results: dict[str, Any] = field(default_factory=dict)

    def result(self, name: str) -> Any:
        matches = [r for r in self.run.results() if r.name == name]
        assert len(matches) == 1, matches
        return matches[0]

    def ids(self) -> list[int]:
        return sorted(self.written.column("id").to_pylist())


ExportFn = Callable[..., Outcome]
