"""The Engine interface: what dpexport needs from a warehouse.

An engine answers a few questions about a table (exists, schema, rows in a slice)
and streams a slice as Arrow record batches. Everything an engine can compute
better than Python (the slice predicate, partition-key expressions, de-duplication,
newest-row-per-key, ordering) is pushed down to it as part of a ``ScanRequest``.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import pyarrow as pa

from dpexport.errors import InvalidArgument

if TYPE_CHECKING:
    from dpexport.config.spec import TableSpec
    from dpexport.formats.base import WrittenFile
    from dpexport.formats.router import Folder
    from dpexport.publish.commit import Staging
    from dpexport.storage.base import Store

    #: the staged files of a warehouse-written slice and its job ids, or why the
    #: warehouse could not write it after all (nothing is then staged)
    Outcome = tuple[list[tuple[Folder, WrittenFile]], list[str]] | str


def quote_identifier(name: str) -> str:
    """Quote one SQL identifier (a column, table or schema name) for DuckDB.

    Any name is accepted except an empty one or one holding a NUL character; an
    embedded ``"`` is doubled, so the result always reads as exactly that one name.
    """
    if not isinstance(name, str) or not name or "\x00" in name:
        raise InvalidArgument(f"invalid identifier {name!r}")
    return '"' + name.replace('"', '""') + '"'


def column_sql(expression: str, columns: Collection[str]) -> str:
    """A config expression as SQL: quoted when it is exactly one of ``columns`` (a column
    named ``at`` or ``order`` is a keyword bare), otherwise as written."""
    return quote_identifier(expression) if expression in columns else expression


@dataclass(frozen=True)
class Slice:
    """Rows with ``lower < cursor <= upper`` (either bound may be absent;
    ``lower_inclusive`` makes it ``lower <= cursor``, as INCREMENTAL's lookback asks).

    Bound values are Python values (datetime, date, int, ...) bound as query
    parameters, never pasted into SQL text.
    """

    cursor: str | None = None  # SQL expression over the source row, usually a column
    lower: Any = None  # exclusive
    upper: Any = None  # inclusive
    lower_inclusive: bool = False


@dataclass(frozen=True)
class ScanRequest:
    """One streamed read of a table.

    - ``columns``: source columns to select, in order (``None``: all, minus ``exclude``).
    - ``exclude``: columns that must never leave the warehouse (not in the SELECT).
    - ``extra``: computed columns appended after the source columns, name -> SQL
      expression over the source row (partition keys such as ``equipment_id % 100``).
    - ``slice``: the row range to read.
    - ``filter``: an additional SQL predicate (trusted: it comes from the config file).
    - ``dedupe_by``: keep the first row per key (ordered by ``slice.cursor``).
    - ``newest_by``: keep the newest row per key, newest by ``newest_order`` (desc).
    - ``order_by``: output ordering, by output column names (usually the partition keys).
    - ``batch_rows``: target rows per record batch.
    """

    dataset: str
    table: str
    columns: tuple[str, ...] | None = None
    exclude: tuple[str, ...] = ()
    extra: dict[str, str] = field(default_factory=dict)
    slice: Slice = field(default_factory=Slice)
    filter: str | None = None
    dedupe_by: tuple[str, ...] = ()
    newest_by: tuple[str, ...] = ()
    newest_order: str | None = None
    order_by: tuple[str, ...] = ()
    batch_rows: int = 122_880


class NativeWriter(Protocol):
    """An engine's way of writing a slice's files itself (DuckDB ``COPY``, BigQuery
    ``EXPORT DATA``) into the export's staging, instead of dpexport streaming them.

    ``serverside`` asks it, for ``plan`` and ``run`` alike, whether it can write a table
    and why not; nothing outside ``engines/`` knows which engine it is."""

    #: how ``plan`` names this path
    label: str

    def reason(
        self,
        spec: TableSpec,
        *,
        transforms: bool,
        encrypts: bool,
        rows: int | None,
        folders: int | None,
        tops: int | None,
    ) -> str | None:
        """Why dpexport streams this export instead (None: the warehouse writes it).
        ``rows``: the slice's rows when known; ``folders`` an estimate of the folders
        they fill; ``tops`` the top-level time folders, None when not listed."""
        ...

    def schema_reason(
        self, spec: TableSpec, request: ScanRequest, expected: pa.Schema, directory: Path
    ) -> str | None:
        """Why the warehouse's files would not have the ``expected`` column types (a
        UUID, an INTERVAL), asked of an empty slice; None when they would."""
        ...

    def folders_sql(self, spec: TableSpec, keys: list[str]) -> str | None:
        """An aggregate estimating the folders a slice fills over its partition key
        columns ``keys``, when :meth:`reason` needs it; None otherwise."""
        ...

    def export(
        self,
        spec: TableSpec,
        request: ScanRequest,
        store: Store,
        staging: Staging,
        logical_time: datetime,
        scratch: Path,
        expected: pa.Schema,
        tops: list[str | None] | None,
    ) -> Outcome:
        """Write the slice into ``staging``."""
        ...


class Engine(Protocol):
    """A warehouse dpexport can read from."""

    name: str
    #: Consecutive reads see the same rows (a read-only DuckDB file, which no process
    #: can write while it is open): what one query learns of a slice holds for the next.
    stable_reads: bool
    #: A time-partitioned slice may be read a query per top-level folder
    #: (``folder_scan``): cheap where a query is (an embedded engine), not where each
    #: one is a billed job.
    reads_by_folder: bool
    #: Tables ``run`` exports at once per core by default (``run --parallel``): 1 where
    #: an export's work runs on this machine's cores, more where most of it is waiting
    #: for jobs that run elsewhere.
    exports_per_core: int

    def native_writer(self) -> NativeWriter | None:
        """How this engine writes files itself, or None when dpexport streams every export."""
        ...

    def write_export_logs(self, records: list[dict[str, Any]]) -> None:
        """Keep export-log records in the warehouse too (BigQuery's ``export_logs``, which
        spec 9.2's queries read); a no-op where the bucket's records are the log."""
        ...

    def table_exists(self, dataset: str, table: str) -> bool: ...

    def size_hint(self, dataset: str, table: str) -> int | None:
        """A cheap measure of the table's size (rows x columns), None when unknown (a
        view): ``run --parallel`` starts the largest tables first."""
        ...

    def schema(self, dataset: str, table: str) -> pa.Schema:
        """The table's columns as Arrow types, in table order."""
        ...

    def count(self, request: ScanRequest) -> int:
        """Rows the request would return."""
        ...

    def aggregate(self, request: ScanRequest, expressions: dict[str, str]) -> dict[str, Any]:
        """Evaluate aggregate SQL expressions (``max(updated_at)``) over the request's rows."""
        ...

    def distinct(
        self, request: ScanRequest, columns: tuple[str, ...], limit: int
    ) -> list[tuple[Any, ...]]:
        """The first ``limit`` distinct value tuples of the request's output ``columns``
        (extras included), ordered by them, NULLs last (``plan``'s folder list)."""
        ...

    def scan(self, request: ScanRequest) -> pa.RecordBatchReader:
        """Stream the request's rows; memory stays bounded whatever the table size."""
        ...

    def change_marker(self, dataset: str, table: str) -> str:
        """A short text that changes whenever the table's rows or columns change (the
        ``on_change`` scheduler compares it with the one of the last committed export):
        BigQuery's last-modified time, a fingerprint of the rows where the warehouse
        keeps none. Equal texts mean unchanged; NotFound for a missing table."""
        ...

    def close(self) -> None: ...
