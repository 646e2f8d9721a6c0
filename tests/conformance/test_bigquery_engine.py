"""The BigQuery engine passes the shared Engine suite, on bqemulator.

The suite's rows are inserted with ``insert_rows_json`` into a table of BigQuery's
types (NUMERIC, TIMESTAMP, DATETIME, JSON, REPEATED, RECORD) in this session's own
project; plain column reads go through the Storage Read API (gRPC), everything
computed through a query, so both read paths meet the same expectations.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import pytest

from dpexport.engines.base import Engine
from tests.bq_emulator import (
    BQEmulator,
    bq,  # noqa: F401 - the fixture
    ensure_dataset,
)
from tests.conformance.engine_suite import DATASET, ROWS, TABLE, EngineSuite


def _json_value(value: Any) -> Any:
    """A suite value as ``insert_rows_json`` takes it."""
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: _json_value(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_value(v) for v in value]
    return value


def load_events(emu: BQEmulator) -> None:
    """``conformance.events`` with the suite's rows, in BigQuery's types."""
    from google.cloud.bigquery import SchemaField as S
    from google.cloud.bigquery import Table

    schema = [
        S("id", "INT64", mode="REQUIRED"),
        S("amount", "NUMERIC"),
        S("happened_at", "TIMESTAMP"),
        S("day", "DATE"),
        S("name", "STRING"),
        S("payload", "JSON"),
        S("tags", "STRING", mode="REPEATED"),
        S("place", "RECORD", fields=[S("city", "STRING"), S("zip", "INT64")]),
        S("local_at", "DATETIME"),
        S("key", "STRING"),
    ]
    client = emu.client()
    try:
        ensure_dataset(emu, client, DATASET)
        ref = f"{emu.project}.{DATASET}.{TABLE}"
        client.delete_table(ref, not_found_ok=True, timeout=15)
        client.create_table(Table(ref, schema=schema), timeout=15)
        rows = [{k: _json_value(v) for k, v in row.items()} for row in ROWS]
        errors = client.insert_rows_json(ref, rows, timeout=15)
    finally:
        client.close()
    assert errors == []


class TestBigQueryEngine(EngineSuite):
    name = "bigquery"
    stable_reads = False  # no snapshot is pinned between one job and the next
    reads_by_folder = False  # a query per folder would be a billed job per folder
    exports_per_core = 4  # an export mostly waits for jobs (tests/e2e/test_bigquery_parallel.py)
    not_nullable = frozenset({"id", "tags"})  # REQUIRED, and REPEATED (never NULL)
    keeps_export_logs = True  # spec 9.2's queries read export_logs in BigQuery

    @pytest.fixture(scope="class")
    @classmethod
    def open_engine(cls, bq: BQEmulator) -> Callable[[], Engine]:  # noqa: F811
        load_events(bq)

        def engine() -> Engine:
            opened: Engine = bq.engine()
            return opened

        return engine

    def logged_exports(self, engine: Engine) -> dict[str, tuple[str, str]]:
        from dpexport.engines.bigquery import BigQueryEngine
        from dpexport.ops.bq_logs import query_logs

        assert isinstance(engine, BigQueryEngine)
        _, logged = query_logs(engine, "SELECT export_id, table_name, status FROM export_logs")
        return {str(r[0]): (str(r[1]), str(r[2])) for r in logged}

    @pytest.fixture()
    def changing(self, bq: BQEmulator) -> BigQueryTable:  # noqa: F811
        return BigQueryTable(bq)


class BigQueryTable:
    """``conformance.settings`` on the emulator, rows streamed in (``insertAll``). The
    emulator keeps a table's ``lastModifiedTime`` at its creation whatever is written
    (DML included); streamed rows move its row count, which the marker holds too."""

    def __init__(self, emu: BQEmulator) -> None:
        from google.cloud.bigquery import SchemaField, Table

        self.emu = emu
        self.ref = f"{emu.project}.{DATASET}.settings"
        client = emu.client()
        try:
            ensure_dataset(emu, client, DATASET)
            client.delete_table(self.ref, not_found_ok=True, timeout=15)
            schema = [SchemaField("id", "INT64"), SchemaField("name", "STRING")]
            client.create_table(Table(self.ref, schema=schema), timeout=15)
        finally:
            client.close()
        self.add_row(1, "one")

    def marker(self) -> str:
        engine: Engine = self.emu.engine()  # its own metadata cache: a fresh look
        try:
            return engine.change_marker(DATASET, "settings")
        finally:
            engine.close()

    def add_row(self, key: int, name: str) -> None:
        client = self.emu.client()
        try:
            assert client.insert_rows_json(self.ref, [{"id": key, "name": name}], timeout=15) == []
        finally:
            client.close()
