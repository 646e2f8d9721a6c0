"""The DuckDB engine passes the shared Engine suite, on a real DuckDB file."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest

from dpexport.engines.base import Engine
from dpexport.engines.duckdb import DuckDBEngine
from tests.conformance.engine_suite import DATASET, ROWS, SCHEMA, TABLE, EngineSuite

#: the suite's table in DuckDB's types (JSON is DuckDB's JSON type, text in Arrow)
DDL = f"""CREATE TABLE "{DATASET}"."{TABLE}" (
    id BIGINT NOT NULL,
    amount DECIMAL(38, 9),
    happened_at TIMESTAMPTZ,
    day DATE,
    name VARCHAR,
    payload JSON,
    tags VARCHAR[],
    place STRUCT(city VARCHAR, zip BIGINT),
    local_at TIMESTAMP,
    key VARCHAR
)"""


def build_warehouse(path: Path) -> None:
    """A DuckDB file holding the suite's rows, read-only afterwards like a user's."""
    source = pa.Table.from_pylist(ROWS, schema=SCHEMA)
    con = duckdb.connect(str(path))
    try:
        con.execute(f'CREATE SCHEMA "{DATASET}"')
        con.execute(DDL)
        con.register("source_rows", source)
        con.execute(f'INSERT INTO "{DATASET}"."{TABLE}" SELECT * FROM source_rows')
    finally:
        con.close()
    os.chmod(path, 0o444)


class TestDuckDBEngine(EngineSuite):
    name = "duckdb"
    stable_reads = True  # a read-only file: no process can write it while it is open
    reads_by_folder = True
    exports_per_core = 1  # its queries run on this machine's cores
    not_nullable = frozenset()  # DuckDB's Arrow fields are nullable, NOT NULL or not

    @pytest.fixture(scope="class")
    @classmethod
    def open_engine(cls, tmp_path_factory: pytest.TempPathFactory) -> Callable[[], Engine]:
        path = tmp_path_factory.mktemp("engine-duckdb") / "warehouse.duckdb"
        build_warehouse(path)
        return lambda: DuckDBEngine(path, memory_limit="256MB", threads=1)

    @pytest.fixture()
    def changing(self, tmp_path: Path) -> DuckDBTable:
        return DuckDBTable(tmp_path / "changing.duckdb")

    def test_change_marker_sees_an_update_but_not_the_row_order(self, tmp_path: Path) -> None:
        # the fingerprint is the rows' hashes summed: an edit that keeps the count moves
        # it; the same rows stored in another order do not
        table = DuckDBTable(tmp_path / "w.duckdb")
        before = table.marker()
        table.execute("UPDATE ds.settings SET name = 'uno' WHERE id = 1")
        assert table.marker() != before
        table.execute("UPDATE ds.settings SET name = 'one' WHERE id = 1")
        assert table.marker() == before
        table.execute(
            "CREATE OR REPLACE TABLE ds.settings AS "
            "SELECT * FROM (VALUES (1, 'one')) v(id, name) ORDER BY id DESC"
        )
        table.add_row(0, "zero")
        reordered = table.marker()
        table.execute(
            "CREATE OR REPLACE TABLE ds.settings AS "
            "SELECT * FROM (VALUES (0, 'zero'), (1, 'one')) v(id, name)"
        )
        assert table.marker() == reordered
        # a column renamed, the values kept: the columns are part of the marker
        table.execute("ALTER TABLE ds.settings RENAME COLUMN name TO label")
        assert table.marker() != reordered


class DuckDBTable:
    """``ds.settings`` in a DuckDB file of its own, written between engine openings (a
    DuckDB file has one writer or many readers)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.execute("CREATE SCHEMA ds")
        self.execute("CREATE TABLE ds.settings AS SELECT 1 AS id, 'one' AS name")

    def execute(self, sql: str, params: list[object] | None = None) -> None:
        con = duckdb.connect(str(self.path))
        try:
            con.execute(sql, params)
        finally:
            con.close()

    def marker(self) -> str:
        with DuckDBEngine(self.path, memory_limit="256MB", threads=1) as engine:
            return engine.change_marker("ds", "settings")

    def add_row(self, key: int, name: str) -> None:
        self.execute("INSERT INTO ds.settings VALUES (?, ?)", [key, name])
