"""bqemulator for the tests: where it runs, a client on it, the demo tables loaded into it.

The test command starts bqemulator and exports ``BIGQUERY_EMULATOR_HOST`` (REST),
``DPEXPORT_TEST_BQ_GRPC`` (Storage Read API) and ``DPEXPORT_TEST_BQ_LOCAL_ROOT`` (the
``--local-root`` whose ``gs/`` the emulator writes ``gs://`` URIs into). Without them the
tests skip locally and fail in CI (``CI=true``): a missing server must not pass silently.

Each test session works in its own project (``dpx-<random>``), so runs sharing one
emulator never see each other's datasets.
"""

from __future__ import annotations

import io
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

REST_ENV = "BIGQUERY_EMULATOR_HOST"
GRPC_ENV = "DPEXPORT_TEST_BQ_GRPC"
ROOT_ENV = "DPEXPORT_TEST_BQ_LOCAL_ROOT"
DEMO_DATASET = "diagnosticpro_prod"


@dataclass(frozen=True)
class BQEmulator:
    """Where the emulator listens and the project this session uses."""

    rest: str
    grpc: str
    local_root: Path
    project: str

    def client(self) -> Any:
        from google.api_core.client_options import ClientOptions
        from google.auth.credentials import AnonymousCredentials
        from google.cloud import bigquery

        return bigquery.Client(
            project=self.project,
            credentials=AnonymousCredentials(),
            client_options=ClientOptions(api_endpoint=self.rest),
        )

    def engine(self, **kwargs: Any) -> Any:
        from dpexport.engines.bigquery import BigQueryEngine

        kwargs.setdefault("api_deadline", 15.0)
        kwargs.setdefault("query_deadline", 60.0)
        kwargs.setdefault("read_deadline", 60.0)
        return BigQueryEngine(
            self.project, "US", api_endpoint=self.rest, storage_api_endpoint=self.grpc, **kwargs
        )


def require_emulator() -> BQEmulator:
    """The running emulator, or skip (locally) / fail (CI) with the reason."""
    rest, grpc, root = (os.environ.get(n) for n in (REST_ENV, GRPC_ENV, ROOT_ENV))
    if not (rest and grpc and root):
        missing = [n for n, v in ((REST_ENV, rest), (GRPC_ENV, grpc), (ROOT_ENV, root)) if not v]
        reason = f"bqemulator is not running ({', '.join(missing)} unset; ./dev test starts it)"
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(reason)
        pytest.skip(reason)
    project = f"dpx-{uuid.uuid4().hex[:8]}"
    return BQEmulator(rest, grpc, Path(root), project)


def _retry() -> Any:
    from google.cloud.bigquery.retry import DEFAULT_RETRY

    return DEFAULT_RETRY.with_deadline(15.0)


def bq_field(name: str, t: pa.DataType, nullable: bool = True) -> Any:
    """The BigQuery column a DuckDB-made Arrow column is loaded into.

    DuckDB's naive TIMESTAMP (UTC wall-clock in the demo) becomes TIMESTAMP; every
    integer INT64, every decimal NUMERIC, lists REPEATED, structs RECORD."""
    from google.cloud.bigquery import SchemaField

    mode = "NULLABLE" if nullable else "REQUIRED"
    if pa.types.is_list(t) or pa.types.is_large_list(t):
        inner = bq_field(name, t.value_type)
        return SchemaField(name, inner.field_type, mode="REPEATED", fields=inner.fields)
    if pa.types.is_struct(t):
        return SchemaField(name, "RECORD", mode=mode, fields=[bq_field(f.name, f.type) for f in t])
    if pa.types.is_integer(t):
        kind = "INT64"
    elif pa.types.is_floating(t):
        kind = "FLOAT64"
    elif pa.types.is_decimal(t):
        kind = "NUMERIC"
    elif pa.types.is_boolean(t):
        kind = "BOOL"
    elif pa.types.is_string(t) or pa.types.is_large_string(t):
        kind = "STRING"
    elif pa.types.is_binary(t):
        kind = "BYTES"
    elif pa.types.is_date(t):
        kind = "DATE"
    elif pa.types.is_time(t):
        kind = "TIME"
    elif pa.types.is_timestamp(t):
        kind = "TIMESTAMP"
    else:
        raise TypeError(f"no BigQuery type for {t}")
    return SchemaField(name, kind, mode=mode)


def load_arrow(emu: BQEmulator, client: Any, dataset: str, table: str, data: pa.Table) -> None:
    """Create ``dataset.table`` with :func:`bq_field` types and load ``data`` as Parquet."""
    from google.cloud import bigquery

    from dpexport.engines.bigquery_types import arrow_schema

    schema = [bq_field(f.name, f.type, f.nullable) for f in data.schema]
    ref = f"{emu.project}.{dataset}.{table}"
    client.delete_table(ref, not_found_ok=True, retry=_retry(), timeout=15)
    client.create_table(bigquery.Table(ref, schema=schema), retry=_retry(), timeout=15)
    target = arrow_schema(schema)
    data = data.cast(pa.schema([f.with_nullable(True) for f in target]))
    buf = io.BytesIO()
    pq.write_table(data, buf)
    buf.seek(0)
    config = bigquery.LoadJobConfig(
        source_format=bigquery.SourceFormat.PARQUET,
        write_disposition=bigquery.WriteDisposition.WRITE_APPEND,
    )
    job = client.load_table_from_file(buf, ref, job_config=config, timeout=30)
    job.result(timeout=60)


def ensure_dataset(emu: BQEmulator, client: Any, dataset: str) -> None:
    from google.cloud import bigquery

    ds = bigquery.Dataset(f"{emu.project}.{dataset}")
    ds.location = "US"
    client.create_dataset(ds, exists_ok=True, retry=_retry(), timeout=15)


def load_demo(emu: BQEmulator, duckdb_path: Path, tables: list[str]) -> dict[str, int]:
    """Copy demo tables from a DuckDB warehouse into the emulator; table -> rows."""
    from dpexport.engines.base import ScanRequest
    from dpexport.engines.duckdb import DuckDBEngine

    client = emu.client()
    counts: dict[str, int] = {}
    try:
        ensure_dataset(emu, client, DEMO_DATASET)
        with DuckDBEngine(duckdb_path) as duck:
            for table in tables:
                data = duck.scan(ScanRequest(DEMO_DATASET, table)).read_all()
                load_arrow(emu, client, DEMO_DATASET, table, data)
                counts[table] = data.num_rows
    finally:
        client.close()
    return counts


@pytest.fixture(scope="session")
def bq() -> Iterator[BQEmulator]:
    """The emulator, with this session's own project."""
    yield require_emulator()
