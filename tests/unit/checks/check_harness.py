"""Helpers of the check tests: a fake engine, warehouse files, and what an export left.

Every check test runs a real export (``flow.runner.run_exports``, into a local bucket)
against two engines: the tiny fake written here (SQL straight on DuckDB, the shape
``aggregate`` promises) and the real ``DuckDBEngine``, so the checks' SQL is proven on
what the exporter really runs. What the tests read is what the export produced: the
:class:`~dpexport.checks.CheckRun` it used, its manifest's ``checks`` entries, the
published files, the quarantine file in the DLQ and the statistics it stored. (A
uniquely named module rather than ``conftest``, so test files can import it without
clashing with other folders.)
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from dpexport.checks import CheckResult, CheckRun
from dpexport.config.spec import GdprCompliance, Partitioning, TableSpec
from dpexport.engines.base import NativeWriter, ScanRequest
from dpexport.flow.context import ExportResult
from dpexport.storage import layout
from dpexport.storage.local import LocalStore
from dpexport.transforms.pipeline import stats_key

DATASET = "diagnosticpro_prod"
LOGICAL = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)


def q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


class FakeEngine:
    """Just enough of the Engine protocol, on a DuckDB file: the request's rows are
    ``SELECT columns, extras FROM ds.t WHERE filter ORDER BY order_by``. It never
    writes files itself, and refuses what it does not implement (slice bounds,
    de-duplication) rather than ignore it: the check tests' exports need neither."""

    name = "fake"
    stable_reads = True
    reads_by_folder = False
    exports_per_core = 1

    def __init__(self, path: Path) -> None:
        self.con = duckdb.connect(str(path), read_only=True)

    def native_writer(self) -> NativeWriter | None:
        return None

    def size_hint(self, dataset: str, table: str) -> int | None:
        return None

    def write_export_logs(self, records: list[dict[str, Any]]) -> None:
        pass

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
        s = r.slice
        if s.lower is not None or s.upper is not None or r.dedupe_by or r.newest_by:
            raise NotImplementedError(f"the fake engine reads no slice bounds or keys: {r}")
        if r.columns is not None:
            cols = ", ".join(map(q, r.columns))
        else:
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

    def distinct(
        self, request: ScanRequest, columns: tuple[str, ...], limit: int
    ) -> list[tuple[Any, ...]]:
        cols = ", ".join(map(q, columns))
        order = ", ".join(f"{q(c)} NULLS LAST" for c in columns)
        sql = f"SELECT DISTINCT {cols} FROM ({self._select(request)}) AS src ORDER BY {order}"
        return [tuple(r.values()) for r in self._table(f"{sql} LIMIT {int(limit)}").to_pylist()]

    def change_marker(self, dataset: str, table: str) -> str:
        raise NotImplementedError  # the check tests schedule nothing

    def scan(self, request: ScanRequest) -> pa.RecordBatchReader:
        sql = self._select(request)
        if request.order_by:
            sql += " ORDER BY " + ", ".join(map(q, request.order_by))
        table = self._table(sql)
        return pa.RecordBatchReader.from_batches(table.schema, table.to_batches(max_chunksize=3))

    def close(self) -> None:
        self.con.close()


def make_db(path: Path, sql: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(path))
    con.execute(f"CREATE SCHEMA IF NOT EXISTS {DATASET}")
    con.execute(sql)
    con.close()
    return path


def table_spec(
    table: str,
    validation: Iterable[object],
    gdpr: GdprCompliance | None = None,
    partitioning: Partitioning | None = None,
) -> TableSpec:
    return TableSpec(
        dataset=DATASET,
        table=table,
        destination=f"gs://b/prod/{DATASET}/{table}/",
        format="PARQUET",
        compression="SNAPPY",
        mode="FULL_REFRESH",  # the whole table: no cursor, no slice bounds
        partitioning=partitioning or Partitioning(),
        validation=tuple(validation),
        gdpr=gdpr,
    )


@dataclass
class Outcome:
    """What one export did: its result, the check run it used, and what it left in the
    bucket (published rows, quarantined rows, stored statistics)."""

    export: ExportResult
    run: CheckRun
    bucket: LocalStore
    spec: TableSpec

    def result(self, name: str) -> CheckResult:
        matches = [r for r in self.run.results() if r.name == name]
        assert len(matches) == 1, matches
        return matches[0]

    def _manifests(self) -> list[tuple[Path, dict[str, Any]]]:
        """The manifests the export published, folder by folder (SUCCESS markers)."""
        folder = self.bucket.root / f"prod/{DATASET}/{self.spec.table}"
        found = []
        for success in sorted(folder.rglob(layout.SUCCESS)):
            for name in json.loads(success.read_text())["manifests"]:
                found.append((success.parent, json.loads((success.parent / name).read_text())))
        return found

    def manifest_checks(self) -> list[dict[str, Any]]:
        """The ``validation.checks`` entries of the published manifests (all the same)."""
        entries = [m["validation"]["checks"] for _, m in self._manifests()]
        assert entries and all(e == entries[0] for e in entries), entries
        return list(entries[0])

    @property
    def written(self) -> pa.Table:
        """The published rows, folder by folder, each folder's files in order."""
        tables = [
            pq.read_table(folder / f["name"])
            for folder, manifest in self._manifests()
            for f in manifest["files"]
        ]
        return pa.concat_tables(tables) if tables else pa.table({})

    def ids(self) -> list[int]:
        return sorted(self.written.column("id").to_pylist())

    @property
    def quarantined(self) -> list[dict[str, Any]] | None:
        """The rows the export wrote to ``quarantined_rows/`` in the DLQ (``[]`` when it
        wrote none); ``None`` when no check of the export quarantines."""
        if self.run.quarantine_request() is None:
            return None
        key = f"{layout.DLQ_PREFIX}quarantined_rows/{self.export.export_id}/"
        path = self.bucket.root / key / f"{self.spec.table}.jsonl.gz"
        if not path.exists():
            return []
        with gzip.open(path, "rt", encoding="utf-8") as fh:
            return [json.loads(line) for line in fh]

    @property
    def stats(self) -> dict[str, Any] | None:
        """The statistics the export stored for the next export's checks."""
        path = self.bucket.root / stats_key(self.spec)
        if not path.exists():
            return None
        stored: dict[str, Any] = json.loads(path.read_text())
        return stored


ExportFn = Callable[..., Outcome]
