"""The DuckDB engine: an embedded warehouse file, read as streamed Arrow batches.

A dataset is a DuckDB schema. Every read is one SQL statement rendered by
:func:`~dpexport.engines.duckdb_sql.render_select` from a
:class:`~dpexport.engines.base.ScanRequest`; slice bounds are bound as parameters, never
written into the SQL text. Scans stream from DuckDB batch by batch, each on its own
cursor, so memory stays bounded whatever the table size and several tables can be read
at once.

This module holds the connection and what it runs; the SQL text is
:mod:`~dpexport.engines.duckdb_sql`'s, the Arrow types :mod:`~dpexport.engines.duckdb_types`'s,
error translation :mod:`~dpexport.engines.duckdb_errors`'s, and ``COPY``
:mod:`~dpexport.engines.duckdb_copy`'s.
"""

from __future__ import annotations

import contextlib
import hashlib
import threading
import weakref
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

import duckdb
import pyarrow as pa

from dpexport.engines.base import ScanRequest, quote_identifier
from dpexport.engines.duckdb_errors import (
    CopyOutOfMemory,
    Culprit,
    translate_plain,
    translate_read,
)
from dpexport.engines.duckdb_memory import MemoryLimit, leaves
from dpexport.engines.duckdb_sql import (
    aggregate_sql,
    check_columns,
    distinct_sql,
    expression_probes,
    qualified_name,
    render_select,
)
from dpexport.engines.duckdb_types import normalize_schema
from dpexport.errors import ExportError, InvalidArgument, NotFound

if TYPE_CHECKING:
    from dpexport.engines.duckdb_copy import DuckDBCopy

# qualified_name, quote_identifier and render_select are imported from here by callers
__all__ = ["DuckDBEngine", "qualified_name", "quote_identifier", "render_select"]

#: the most rows of an Arrow batch DuckDB makes for ``scan``: smaller batches cost less
#: to make and to hold. Scanning the benchmark's 5 M rows (21 columns) to Arrow took
#: 1.41 s of CPU and peaked at 312 MB in batches of 122,880 rows, 1.09 s and 226 MB in
#: batches of 32,768 (issue 24)
ARROW_BATCH_ROWS = 32_768


class DuckDBEngine:
    """Read tables of a DuckDB database file (dataset = schema).

    ``memory_limit`` and ``threads`` bound what one engine may use, so several exports
    can run side by side on one machine; ``temp_directory`` is where sorts and window
    functions (``order_by``, ``dedupe_by``, ``newest_by``) spill when they outgrow the
    memory limit. ``read_only`` (default) opens the file so no export can change it.

    Read-only, the catalog cannot change while the engine is open (DuckDB lets no
    process write a file that another has open), so table existence and schemas are
    looked up once per table: a run asks for them several times (config check, plan,
    each request's column check), each an ``information_schema`` query.

    While plain scans stream (no sort, no de-duplication), DuckDB's limit is lowered
    to what they need (:mod:`dpexport.engines.duckdb_memory`: their columns times the
    threads, at least ``STREAM_MEMORY_LIMIT``): such a scan reads each block once, so
    DuckDB's page cache only fills with the table (a 5M-row JSONL export peaked at 794
    MB under 384MB and at 536 MB under 64MB, in the same time). ``COPY``, sorts,
    windows and aggregates keep the whole ``memory_limit``: while one of them runs
    (another export of a parallel run), the limit is the whole one for every cursor,
    for under a streaming limit such a statement fails (DuckDB: "Out of Memory
    Error"). The limit belongs to the open database, which DuckDB shares among a
    process's connections to one file: a second engine on the same file in the same
    process also runs under it while the scan streams.
    """

    name = "duckdb"
    reads_by_folder = True
    exports_per_core = 1  # the queries run on this machine's cores

    def __init__(
        self,
        path: str | Path,
        *,
        memory_limit: str = "384MB",
        threads: int = 2,
        read_only: bool = True,
        temp_directory: str | None = None,
        preserve_insertion_order: bool = False,
    ) -> None:
        self.path = str(path)
        config: dict[str, Any] = {
            # A hard cap on DuckDB's buffer pool: beyond it, sorts and windows spill
            # to temp_directory instead of growing the process.
            "memory_limit": memory_limit,
            # Exports run several tables in parallel; each engine gets a fixed share
            # of cores instead of DuckDB's default of all of them.
            "threads": threads,
            # Without ORDER BY DuckDB may then stream rows in any order instead of
            # buffering to keep table order; callers that need an order ask for one
            # (ScanRequest.order_by), which is the only order we promise.
            "preserve_insertion_order": preserve_insertion_order,
            # 32-bit offsets: VARCHAR is Arrow `string`, BLOB `binary`, in schema()
            # and scan() alike, whatever the batch.
            "arrow_large_buffer_size": False,
        }
        if temp_directory is not None:
            config["temp_directory"] = temp_directory
        if read_only and self.path != ":memory:" and not Path(self.path).exists():
            raise NotFound(f"DuckDB database {self.path} does not exist", uri=self.path)
        try:
            self._con = duckdb.connect(
                self.path, read_only=read_only and self.path != ":memory:", config=config
            )
        except duckdb.Error as exc:
            raise translate_plain(exc, f"cannot open DuckDB database {self.path}") from exc
        # Time folders cast TIMESTAMPTZ to TIMESTAMP: that must be UTC whatever the
        # machine's zone (folder_scan's ranges rely on it). Without the ICU extension
        # DuckDB has no zones and such casts are UTC already.
        with contextlib.suppress(duckdb.Error):
            self._con.execute("SET TimeZone = 'UTC'")
        self._lock = threading.Lock()
        self._closed = False
        self._limit = MemoryLimit(self._con, memory_limit, threads)
        #: read-only file: no process can write it while it is open, so its catalog
        #: (cached below) and its rows (``Engine.stable_reads``) stay as they are
        self.stable_reads = read_only and self.path != ":memory:"
        self._existing: set[tuple[str, str]] = set()
        self._schemas: dict[tuple[str, str], pa.Schema] = {}
        self._copy_schemas: dict[tuple[str, str], pa.Schema] = {}
        #: statement texts checked to hold one statement (see ``_single_statement``)
        self._single_statements: set[str] = set()

    # -- connection handling ------------------------------------------------------

    def _cursor(self) -> duckdb.DuckDBPyConnection:
        # One cursor per operation: a streaming reader holds its connection until
        # drained, and cursors make the engine safe to share between threads.
        with self._lock:
            if self._closed:
                raise InvalidArgument("the DuckDB engine is closed", uri=self.path)
            return self._con.cursor()

    @property
    def memory_limit(self) -> str:
        """The configured ``memory_limit``, as given."""
        return self._limit.configured

    def _started(self, plain: bool, need: int = 0) -> None:
        """A plain scan (``plain``) needing ``need`` bytes, or another statement,
        starts; see :mod:`dpexport.engines.duckdb_memory`."""
        with self._lock:
            self._limit.started(plain, need)

    def _ended(self, plain: bool, need: int = 0) -> None:
        with self._lock:
            self._limit.ended(plain, need)

    @contextlib.contextmanager
    def _statement(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A cursor for one statement that needs the whole memory limit."""
        cur = self._cursor()
        self._started(plain=False)
        try:
            yield cur
        finally:
            cur.close()
            self._ended(plain=False)

    def native_writer(self) -> DuckDBCopy:
        from dpexport.engines.duckdb_copy import DuckDBCopy

        return DuckDBCopy(self)

    def write_export_logs(self, records: list[dict[str, Any]]) -> None:
        """The bucket's export-log records are the log; DuckDB keeps no copy."""

    def close(self) -> None:
        """Close the database connection (idempotent)."""
        with self._lock:
            if not self._closed:
                self._closed = self._limit.closed = True
                self._con.close()

    def __enter__(self) -> DuckDBEngine:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- catalog ------------------------------------------------------------------

    def table_exists(self, dataset: str, table: str) -> bool:
        """Whether ``dataset.table`` is a table or view of the database."""
        if (dataset, table) in self._existing:
            return True
        cur = self._cursor()
        try:
            rows = _relation(
                cur,
                "SELECT 1 FROM information_schema.tables "
                "WHERE lower(table_schema) = lower(?) AND lower(table_name) = lower(?)",
                params=[dataset, table],
            ).fetchall()
        finally:
            cur.close()
        if rows and self.stable_reads:
            self._existing.add((dataset, table))
        return bool(rows)

    def size_hint(self, dataset: str, table: str) -> int | None:
        """DuckDB's estimate of the table's rows times its columns (None for a view or
        a missing table): which of a parallel run's exports to start first."""
        cur = self._cursor()
        try:
            rows = _relation(
                cur,
                "SELECT estimated_size * column_count FROM duckdb_tables() "
                "WHERE lower(schema_name) = lower(?) AND lower(table_name) = lower(?)",
                params=[dataset, table],
            ).fetchall()
        except duckdb.Error:
            return None
        finally:
            cur.close()
        return int(rows[0][0]) if rows and rows[0][0] is not None else None

    def schema(self, dataset: str, table: str) -> pa.Schema:
        """The table's columns as Arrow types, in table order, as :meth:`scan` yields them."""
        cached = self._schemas.get((dataset, table))
        if cached is not None:
            return cached
        self._require_table(dataset, table)
        sql = f"SELECT * FROM {qualified_name(dataset, table)} LIMIT 0"
        cur = self._cursor()
        try:
            reader = _relation(cur, sql).to_arrow_reader(1)
            schema = reader.schema
            reader.close()
        except duckdb.Error as exc:
            raise translate_plain(exc, f"cannot read schema of {dataset}.{table}") from exc
        finally:
            cur.close()
        normalized = normalize_schema(schema)
        if self.stable_reads:
            self._schemas[(dataset, table)] = normalized
        return normalized

    def _require_table(self, dataset: str, table: str) -> None:
        if not self.table_exists(dataset, table):
            raise NotFound(
                f"table {dataset}.{table} does not exist in {self.path}",
                table=f"{dataset}.{table}",
            )

    def change_marker(self, dataset: str, table: str) -> str:
        """A fingerprint of the table (DuckDB keeps no last-modified time): its row count,
        the sum of every row's hash (order does not count, repeated rows do), and a hash
        of its column names and types. One scan: about 40 ms for a million rows of six
        columns on 2 threads."""
        columns = hashlib.sha256(str(self.schema(dataset, table)).encode()).hexdigest()[:16]
        sql = f"SELECT count(*), sum(hash(*COLUMNS(*))) FROM {qualified_name(dataset, table)}"
        with self._statement() as cur:
            try:
                rows, total = _relation(cur, sql).fetchall()[0]
            except duckdb.Error as exc:
                raise translate_plain(exc, f"cannot fingerprint {dataset}.{table}") from exc
        return f"rows={rows} hash={total or 0} columns={columns}"

    def _check_request(self, request: ScanRequest) -> None:
        """Name every unknown column up front, with the nearest existing one."""
        check_columns(request, self.schema(request.dataset, request.table).names)

    # -- reads --------------------------------------------------------------------

    def count(self, request: ScanRequest) -> int:
        """Rows the request would return."""
        value = self.aggregate(request, {"n": "count(*)"})["n"]
        return int(value)

    def aggregate(self, request: ScanRequest, expressions: dict[str, str]) -> dict[str, Any]:
        """Evaluate aggregate expressions over the request's output rows.

        The expressions see the request's output columns (selected, minus excluded,
        plus extras) and may use sub-queries (``count(*) FILTER (WHERE x NOT IN
        (SELECT ...))``).
        """
        if not expressions:
            return {}
        self._check_request(request)
        sql, params = aggregate_sql(request, expressions)
        with self._statement() as cur:
            try:
                self._single_statement(cur, sql, request)
                # execute, not a relation: a relation binds the statement once more first
                rows = cur.execute(sql, params).fetchall()
            except duckdb.Error as exc:
                raise self._translate(exc, request, aggregates=expressions) from exc
        return dict(zip(expressions, rows[0], strict=True))  # aggregates: exactly one row

    def distinct(
        self, request: ScanRequest, columns: tuple[str, ...], limit: int
    ) -> list[tuple[Any, ...]]:
        self._check_request(request)
        sql, params = distinct_sql(request, columns, limit)
        with self._statement() as cur:
            try:
                return [tuple(row) for row in cur.execute(sql, params).fetchall()]
            except duckdb.Error as exc:
                raise self._translate(exc, request) from exc

    def scan(self, request: ScanRequest) -> pa.RecordBatchReader:
        """Stream the request's rows as Arrow batches of about ``batch_rows`` rows (at
        most :data:`ARROW_BATCH_ROWS`).

        The reader pulls from DuckDB as it is read, on its own cursor, which is
        closed when the reader is exhausted, closed or dropped.
        """
        self._check_request(request)
        sql, params = render_select(request)
        plain = not (request.order_by or request.dedupe_by or request.newest_by)
        cur = self._cursor()
        try:
            self._single_statement(cur, sql, request)
            relation = _relation(cur, sql, params)
            need = self._limit.need(sum(map(leaves, relation.types))) if plain else 0
        except duckdb.Error as exc:
            cur.close()
            raise self._translate(exc, request) from exc
        except BaseException:
            cur.close()
            raise
        self._started(plain, need)
        try:
            source = relation.to_arrow_reader(min(request.batch_rows, ARROW_BATCH_ROWS))
        except duckdb.Error as exc:
            self._scan_closed(cur, plain, need)
            raise self._translate(exc, request) from exc
        except BaseException:
            self._scan_closed(cur, plain, need)
            raise
        schema = normalize_schema(source.schema)
        cast = not schema.equals(source.schema)
        ended = False

        def end() -> None:  # once, whether the reader is drained, closed or dropped
            nonlocal ended
            if not ended:
                ended = True
                self._scan_closed(cur, plain, need)

        def batches() -> Iterator[pa.RecordBatch]:
            try:
                for batch in source:
                    yield batch.cast(schema) if cast else batch
            except duckdb.Error as exc:
                raise self._translate(exc, request) from exc
            finally:
                source.close()
                end()

        stream = batches()
        weakref.finalize(stream, end)  # a reader dropped before its first batch
        return pa.RecordBatchReader.from_batches(schema, stream)

    def _scan_closed(self, cur: duckdb.DuckDBPyConnection, plain: bool, need: int) -> None:
        cur.close()
        self._ended(plain, need)

    def copy(self, request: ScanRequest, target: Path, options: str) -> None:
        """``COPY (<the request's SELECT>) TO 'target' (options)``: DuckDB writes the
        files itself, on all its threads (see :mod:`dpexport.engines.duckdb_copy`).

        ``options`` is COPY's option list, built by dpexport (never from the config
        text); ``target`` a local path without quotes."""
        self._check_request(request)
        sql, params = render_select(request)
        if "'" in str(target):
            raise InvalidArgument(f"COPY target {target} holds a quote")
        with self._statement() as cur:
            try:
                self._single_statement(cur, sql, request)
                cur.execute(f"COPY ({sql}) TO '{target}' ({options})", params)
            except duckdb.OutOfMemoryException as exc:
                table = f"{request.dataset}.{request.table}"
                raise CopyOutOfMemory(f"COPY of {table}: {exc}", table=table) from exc
            except duckdb.Error as exc:
                raise self._translate(exc, request) from exc

    def copy_schema(self, request: ScanRequest, target: Path, options: str) -> pa.Schema:
        """The schema of the Parquet file ``copy`` writes for ``request`` with ``options``,
        read from a ``copy`` to ``target`` (deleted after) of the request's rows: give it a
        request that selects none. Read-only, the catalog cannot change, so each request
        shape (its SQL, whatever its parameters) and options are asked once per engine: a
        scheduler's next fire time saves the extra ``COPY``."""
        import pyarrow.parquet as pq

        key = (render_select(request)[0], options)
        cached = self._copy_schemas.get(key)
        if cached is not None:
            return cached
        self.copy(request, target, options)
        try:
            schema = pq.read_schema(target)
        finally:
            target.unlink(missing_ok=True)
        if self.stable_reads:
            self._copy_schemas[key] = schema
        return schema

    # -- errors -------------------------------------------------------------------

    def _single_statement(
        self, cur: duckdb.DuckDBPyConnection, sql: str, request: ScanRequest
    ) -> None:
        # Expressions come from the config; one smuggling a second statement is refused.
        # A text once checked is not parsed again: a scheduler's fire times repeat it.
        if sql in self._single_statements:
            return
        if len(cur.extract_statements(sql)) != 1:
            raise InvalidArgument(
                "an SQL expression of the request holds more than one statement",
                table=f"{request.dataset}.{request.table}",
            )
        if len(self._single_statements) >= 256:  # a bound on a long-lived engine
            self._single_statements.clear()
        self._single_statements.add(sql)

    def _translate(
        self,
        exc: duckdb.Error,
        request: ScanRequest,
        aggregates: dict[str, str] | None = None,
    ) -> ExportError:
        """Map a failed read to our errors, naming the expression at fault."""
        return translate_read(
            exc,
            request,
            path=self.path,
            table_exists=lambda: self.table_exists(request.dataset, request.table),
            culprit=lambda: self._find_bad_expression(request, aggregates or {}),
        )

    def _find_bad_expression(
        self, request: ScanRequest, aggregates: dict[str, str]
    ) -> Culprit | None:
        for role, expr, sql in expression_probes(request, aggregates):
            cur = self._cursor()
            try:
                # LIMIT 1, not 0: a cast error only shows when a row is converted
                if len(cur.extract_statements(sql + " LIMIT 1")) != 1:
                    return role, expr, "more than one statement"
                _relation(cur, sql + " LIMIT 1").fetchall()
            except duckdb.Error as exc:
                return role, expr, str(exc)
            finally:
                cur.close()
        return None


def _relation(cur: Any, sql: str, params: list[Any] | None = None) -> Any:
    """A DuckDB relation for one statement (the stubs do not type ``Connection.sql``)."""
    return cur.sql(sql, params=params)
