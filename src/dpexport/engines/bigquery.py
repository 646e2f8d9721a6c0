"""The BigQuery engine: tables read through the Storage Read API or a query.

One decision, :meth:`BigQueryEngine.read_path`, picks how a scan reads:

- ``storage``: plain column reads with the slice as a row restriction go straight to
  the Storage Read API (ARROW, selected fields, several streams read in parallel);
- ``query``: anything BigQuery must compute first (partition keys and other extra
  columns, ``dedupe_by``/``newest_by``, an order, GEOGRAPHY/JSON as text) runs as one
  GoogleSQL query whose result is streamed page by page; on Google's service the
  pages come through the Storage Read API too, on an emulator over REST.

Every client call carries a deadline: API calls retry transient failures until
``api_deadline`` seconds, queries until ``query_deadline``. Errors are translated by
:mod:`dpexport.engines.bigquery_errors` into the spec 7.1 classes.

Expressions arrive in DuckDB's dialect, transpiled by :mod:`dpexport.engines.bigquery_sql`
so that a partition key is the same text on both engines.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import queue
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal, TypeVar

import pyarrow as pa

from dpexport.engines import bigquery_sql as bsql
from dpexport.engines.base import ScanRequest
from dpexport.engines.bigquery_errors import translate
from dpexport.engines.bigquery_meter import JobMeter, SizeEstimate, cells
from dpexport.engines.bigquery_types import (
    arrow_field,
    arrow_schema,
    conform,
    needs_sql_conversion,
    portable_wrappers,
)
from dpexport.errors import ExportError, InvalidArgument, NotFound
from dpexport.security import transit

if TYPE_CHECKING:
    from google.cloud import bigquery

    from dpexport.engines.bigquery_export import BigQueryExportData

__all__ = ["EMULATOR_ENV", "BigQueryEngine", "ReadPath", "SizeEstimate"]

#: Set by the BigQuery emulators' conventions: the REST endpoint, anonymous credentials.
EMULATOR_ENV = "BIGQUERY_EMULATOR_HOST"

T = TypeVar("T")


@dataclass(frozen=True)
class ReadPath:
    """How a scan reads: ``storage`` (Storage Read API) or ``query``, and why."""

    kind: Literal["storage", "query"]
    reason: str


class BigQueryEngine:
    """Read BigQuery tables of ``project`` (dataset = BigQuery dataset).

    ``api_endpoint`` (or ``$BIGQUERY_EMULATOR_HOST``) overrides the REST endpoint; an
    ``http://`` endpoint means an emulator: anonymous credentials unless given, and
    query results read over REST. ``storage_api_endpoint`` (``HOST:PORT``) points the
    Storage Read API at an emulator over plain gRPC. Credentials default to ADC.
    """

    name = "bigquery"
    stable_reads = False  # no snapshot is pinned between a job and the next
    reads_by_folder = False  # a query per folder is a billed job per folder
    exports_per_core = 4  # an export mostly waits for its jobs (flow.parallel)

    def __init__(
        self,
        project: str,
        location: str | None = None,
        api_endpoint: str | None = None,
        storage_api_endpoint: str | None = None,
        credentials: Any = None,
        *,
        api_deadline: float = 60.0,
        query_deadline: float = 3600.0,
        read_deadline: float = 3600.0,
        max_streams: int = 4,
        schema_ttl: float = 60.0,
    ) -> None:
        from google.api_core.client_options import ClientOptions
        from google.cloud import bigquery

        if not project:
            raise InvalidArgument("warehouse.project: the BigQuery engine needs a project")
        endpoint = api_endpoint or os.environ.get(EMULATOR_ENV) or None
        self.emulated = bool(endpoint and endpoint.startswith("http://"))
        if credentials is None and (self.emulated or (not api_endpoint and endpoint)):
            from google.auth.credentials import AnonymousCredentials

            credentials = AnonymousCredentials()
        self.project, self.location = project, location
        self.api_endpoint, self.storage_api_endpoint = endpoint, storage_api_endpoint
        self.api_deadline, self.query_deadline = api_deadline, query_deadline
        self.read_deadline, self.max_streams = read_deadline, max(1, max_streams)
        self._credentials = credentials
        options = ClientOptions(api_endpoint=endpoint) if endpoint else None
        self.client = bigquery.Client(
            project=project, location=location, credentials=credentials, client_options=options
        )
        transit.harden_session(self.client._http)  # spec 6.3 in_transit (REST calls)
        self._read_client: Any = None
        self._read_channel: Any = None
        self._lock = threading.Lock()
        self._schema_ttl = schema_ttl
        self._tables: dict[tuple[str, str], tuple[float, bigquery.Table]] = {}
        self._closed = False
        self.meter = JobMeter()  # bytes billed per table, for the export's cost

    # -- plumbing -------------------------------------------------------------------

    def retry(self, deadline: float | None = None) -> Any:
        """The client retry policy, bounded by ``deadline`` (default ``api_deadline``)."""
        from google.cloud.bigquery.retry import DEFAULT_RETRY

        return DEFAULT_RETRY.with_deadline(deadline or self.api_deadline)

    def call(self, what: str, fn: Callable[[], T], *, table: str | None = None) -> T:
        """Run one client call, its errors translated to dpexport's."""
        try:
            return fn()
        except ExportError:
            raise
        except Exception as exc:
            raise translate(exc, what, table=table) from exc

    def read_client(self) -> Any:
        """The Storage Read API client (built once; plain gRPC for an emulator)."""
        with self._lock:
            if self._read_client is None:
                from google.cloud import bigquery_storage_v1

                if self.storage_api_endpoint:
                    import grpc  # type: ignore[import-untyped]
                    from google.cloud.bigquery_storage_v1.services.big_query_read.transports import (  # noqa: E501
                        BigQueryReadGrpcTransport,
                    )

                    self._read_channel = grpc.insecure_channel(self.storage_api_endpoint)
                    transport = BigQueryReadGrpcTransport(channel=self._read_channel)
                    self._read_client = bigquery_storage_v1.BigQueryReadClient(transport=transport)
                else:
                    self._read_client = bigquery_storage_v1.BigQueryReadClient(
                        credentials=self._credentials
                    )
            return self._read_client

    def native_writer(self) -> BigQueryExportData:
        from dpexport.engines.bigquery_export import BigQueryExportData

        return BigQueryExportData(self)

    def write_export_logs(self, records: list[dict[str, Any]]) -> None:
        """Spec 9.2's queries run in BigQuery itself, against ``export_logs`` there."""
        from dpexport.ops.bq_logs import write_logs

        write_logs(self, records)

    def close(self) -> None:
        """Close the clients (idempotent)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self.client.close()
            if self._read_channel is not None:
                self._read_channel.close()

    def __enter__(self) -> BigQueryEngine:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- catalog --------------------------------------------------------------------

    def table_id(self, dataset: str, table: str) -> str:
        return f"{self.project}.{dataset}.{table}"

    def _table(self, dataset: str, table: str) -> bigquery.Table:
        key = (dataset, table)
        cached = self._tables.get(key)
        now = time.monotonic()
        if cached is not None and now - cached[0] < self._schema_ttl:
            return cached[1]
        name = f"{dataset}.{table}"
        meta = self.call(
            f"cannot read the metadata of {name}",
            lambda: self.client.get_table(
                self.table_id(dataset, table), retry=self.retry(), timeout=self.api_deadline
            ),
            table=name,
        )
        self._tables[key] = (now, meta)
        return meta

    def table_exists(self, dataset: str, table: str) -> bool:
        """Whether ``dataset.table`` is a table or view of the project."""
        try:
            self._table(dataset, table)
        except NotFound:
            return False
        return True

    def schema(self, dataset: str, table: str) -> pa.Schema:
        """The table's columns as Arrow types (see :mod:`.bigquery_types`), in table order."""
        return arrow_schema(self._table(dataset, table).schema)

    def change_marker(self, dataset: str, table: str) -> str:
        """``tables.get``: last-modified time, rows, rows in the streaming buffer (no query)."""
        m = self._table(dataset, table)  # cached for ``schema_ttl`` seconds at most
        return f"{m.modified} {m.num_rows} {getattr(m.streaming_buffer, 'estimated_rows', 0)}"

    def _check_request(self, request: ScanRequest) -> list[bigquery.SchemaField]:
        """The selected fields; every unknown column named up front."""
        table = f"{request.dataset}.{request.table}"
        fields = list(self._table(request.dataset, request.table).schema)
        by_name = {f.name.lower(): f for f in fields}
        groups = {
            "columns": request.columns or (),
            "exclude": request.exclude,
            "dedupe_by": request.dedupe_by,
            "newest_by": request.newest_by,
        }
        for role, group in groups.items():
            for col in group:
                if col.lower() not in by_name:
                    raise InvalidArgument(f"{role}: unknown column {col!r}", table=table)
        names = request.columns if request.columns is not None else [f.name for f in fields]
        drop = {c.lower() for c in request.exclude}
        selected = [by_name[n.lower()] for n in names if n.lower() not in drop]
        output = {f.name.lower() for f in selected}
        for name in request.extra:
            if name.lower() in output:
                raise InvalidArgument(
                    f"extra column {name!r} has the name of a selected column", table=table
                )
            output.add(name.lower())
        for col in request.order_by:
            if col.lower() not in output and col.lower() not in by_name:
                raise InvalidArgument(f"order_by: unknown column {col!r}", table=table)
        return selected

    # -- queries --------------------------------------------------------------------

    def _job_config(self, **kwargs: Any) -> bigquery.QueryJobConfig:
        from google.cloud import bigquery

        return bigquery.QueryJobConfig(use_legacy_sql=False, **kwargs)

    def run_query(
        self, sql: str, what: str, *, table: str | None = None, page_size: int | None = None
    ) -> tuple[Any, Any]:
        """Run one GoogleSQL statement to completion: (job, RowIterator)."""
        from google.cloud.bigquery.retry import DEFAULT_JOB_RETRY

        def go() -> tuple[Any, Any]:
            job = self.client.query(
                sql,
                job_config=self._job_config(),
                location=self.location,
                retry=self.retry(),
                timeout=self.api_deadline,
                job_retry=DEFAULT_JOB_RETRY.with_deadline(self.query_deadline),
            )
            rows = job.result(
                timeout=self.query_deadline,
                retry=self.retry(self.query_deadline),
                page_size=page_size,
            )
            self.meter.record(table, job)
            return job, rows

        return self.call(what, go, table=table)

    def dry_run_bytes(self, sql: str, *, table: str | None = None) -> int | None:
        """Bytes BigQuery would scan for ``sql`` (a dry run; nothing runs, nothing billed)."""
        job = self.call(
            "dry run failed",
            lambda: self.client.query(
                sql,
                job_config=self._job_config(dry_run=True, use_query_cache=False),
                location=self.location,
                retry=self.retry(),
                timeout=self.api_deadline,
                job_retry=None,
            ),
            table=table,
        )
        return None if job.total_bytes_processed is None else int(job.total_bytes_processed)

    def size_hint(self, dataset: str, table: str) -> int | None:
        """:func:`.bigquery_meter.cells` of the table, None if unknown (see there)."""
        with contextlib.suppress(ExportError):
            return cells(self._table(dataset, table))
        return None

    def estimate(self, request: ScanRequest) -> SizeEstimate:
        """The request's scan size (dry run) and the table's stored size and rows."""
        self._check_request(request)
        meta = self._table(request.dataset, request.table)
        sql = bsql.render_select(dataclasses.replace(request, order_by=()), project=self.project)
        scanned = self.dry_run_bytes(sql, table=f"{request.dataset}.{request.table}")
        return SizeEstimate(scanned, meta.num_bytes, meta.num_rows)

    def count(self, request: ScanRequest) -> int:
        """Rows the request would return."""
        return int(self.aggregate(request, {"n": "count(*)"})["n"])

    def aggregate(self, request: ScanRequest, expressions: dict[str, str]) -> dict[str, Any]:
        """Aggregate expressions (DuckDB dialect, transpiled) over the request's rows."""
        if not expressions:
            return {}
        self._check_request(request)
        sql = bsql.render_aggregate(request, expressions, project=self.project)
        row = self._fetch(sql, "aggregate", request)[0]
        return {name: row[name] for name in expressions}

    def distinct(
        self, request: ScanRequest, columns: tuple[str, ...], limit: int
    ) -> list[tuple[Any, ...]]:
        self._check_request(request)
        sql = bsql.render_distinct(request, columns, limit, project=self.project)
        return [tuple(row[c] for c in columns) for row in self._fetch(sql, "distinct", request)]

    def _fetch(self, sql: str, what: str, request: ScanRequest) -> list[Any]:
        """The rows of a small query over the request's table (an aggregate, distinct
        values), read whole."""
        table = f"{request.dataset}.{request.table}"
        _, rows = self.run_query(sql, f"{what} over {table} failed", table=table)
        return self.call(f"reading the {what} failed", lambda: list(rows), table=table)

    # -- scans ----------------------------------------------------------------------

    def read_path(self, request: ScanRequest) -> ReadPath:
        """Storage Read API for plain column reads, a query for anything computed."""
        fields = self._check_request(request)
        needs: list[str] = []
        if request.extra:
            needs.append("computed columns " + ", ".join(request.extra))
        if request.dedupe_by:
            needs.append("de-duplication")
        if request.newest_by:
            needs.append("newest row per key")
        if request.order_by:
            needs.append("an order")
        converted = needs_sql_conversion(fields)
        if converted:
            needs.append("GEOGRAPHY/JSON as text (" + ", ".join(converted) + ")")
        if needs:
            return ReadPath("query", "needs " + "; ".join(needs))
        return ReadPath("storage", "plain columns and a row restriction")

    def scan(self, request: ScanRequest) -> pa.RecordBatchReader:
        """Stream the request's rows as Arrow batches, by :meth:`read_path`'s choice."""
        path = self.read_path(request)
        if path.kind == "storage":
            return self._scan_storage(request)
        return self._scan_query(request)

    def _output_schema(self, request: ScanRequest, extra: dict[str, pa.Field]) -> pa.Schema:
        fields = [arrow_field(f) for f in self._check_request(request)]
        return pa.schema(fields + [extra[n] for n in request.extra])

    def _scan_query(self, request: ScanRequest) -> pa.RecordBatchReader:
        table = f"{request.dataset}.{request.table}"
        fields = self._check_request(request)
        wrap = portable_wrappers(fields)
        if request.columns is None and wrap:
            names = tuple(f.name for f in fields)
            request = dataclasses.replace(request, columns=names, exclude=())
        sql = bsql.render_select(request, project=self.project, wrap=wrap)
        _, rows = self.run_query(
            sql, f"read of {table} failed", table=table, page_size=request.batch_rows
        )
        by_name = {f.name: f for f in rows.schema}
        extra = {n: arrow_field(by_name[n]).with_nullable(True) for n in request.extra}
        schema = self._output_schema(request, extra)
        storage = None if self.emulated else self.read_client()

        def batches() -> Iterator[pa.RecordBatch]:
            try:
                for batch in rows.to_arrow_iterable(bqstorage_client=storage):
                    if batch.num_rows:
                        yield conform(batch, schema)
            except ExportError:
                raise
            except Exception as exc:
                raise translate(exc, f"read of {table} failed", table=table) from exc

        return pa.RecordBatchReader.from_batches(schema, batches())

    def _scan_storage(self, request: ScanRequest) -> pa.RecordBatchReader:
        from google.cloud.bigquery_storage_v1 import types

        table = f"{request.dataset}.{request.table}"
        schema = self._output_schema(request, {})
        restriction = " AND ".join(bsql.slice_predicate(request))
        options = types.ReadSession.TableReadOptions(
            selected_fields=schema.names, row_restriction=restriction
        )
        session_spec = types.ReadSession(
            table=f"projects/{self.project}/datasets/{request.dataset}/tables/{request.table}",
            data_format=types.DataFormat.ARROW,
            read_options=options,
        )
        client = self.read_client()
        session = self.call(
            f"cannot open a read session on {table}",
            lambda: client.create_read_session(
                parent=f"projects/{self.project}",
                read_session=session_spec,
                max_stream_count=self.max_streams,
                retry=self.retry(),
                timeout=self.api_deadline,
            ),
            table=table,
        )
        streams = [s.name for s in session.streams]
        if not streams:
            return pa.RecordBatchReader.from_batches(schema, iter(()))
        wire = pa.ipc.read_schema(pa.py_buffer(session.arrow_schema.serialized_schema))
        return pa.RecordBatchReader.from_batches(
            schema, self._read_streams(client, streams, wire, schema, table)
        )

    def _read_streams(
        self, client: Any, streams: list[str], wire: pa.Schema, schema: pa.Schema, table: str
    ) -> Iterator[pa.RecordBatch]:
        """Read every stream on its own thread; batches meet in a bounded queue, so
        memory stays bounded and a slow consumer slows the readers down."""
        done = object()
        out: queue.Queue[Any] = queue.Queue(maxsize=2 * len(streams))
        stop = threading.Event()

        def put(item: Any) -> bool:
            while not stop.is_set():
                try:
                    out.put(item, timeout=0.2)
                    return True
                except queue.Full:
                    continue
            return False

        def read(name: str) -> None:
            try:
                for response in client.read_rows(
                    name, retry=self.retry(self.read_deadline), timeout=self.read_deadline
                ):
                    buf = pa.py_buffer(response.arrow_record_batch.serialized_record_batch)
                    batch = pa.ipc.read_record_batch(buf, wire)
                    if not put(conform(batch, schema)):
                        return
            except BaseException as exc:
                put(exc)
            finally:
                put(done)

        threads = [
            threading.Thread(target=read, args=(n,), name=f"bq-read-{i}", daemon=True)
            for i, n in enumerate(streams)
        ]
        for t in threads:
            t.start()
        remaining = len(threads)
        try:
            while remaining:
                item = out.get()
                if item is done:
                    remaining -= 1
                elif isinstance(item, BaseException):
                    raise translate(item, f"read of {table} failed", table=table) from item
                else:
                    yield item
        finally:
            stop.set()
            for t in threads:
                t.join(timeout=5)
