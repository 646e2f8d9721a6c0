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
    not_nullable = frozenset()  # DuckDB's Arrow fields are nullable, NOT NULL or not

    @pytest.fixture(scope="class")
    @classmethod
    def open_engine(cls, tmp_path_factory: pytest.TempPathFactory) -> Callable[[], Engine]:
        path = tmp_path_factory.mktemp("engine-duckdb") / "warehouse.duckdb"
        build_warehouse(path)
        return lambda: DuckDBEngine(path, memory_limit="256MB", threads=1)
