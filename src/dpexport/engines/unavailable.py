"""The warehouse of a run that could not open it: locked by another writer, or down.

A run given an :class:`Unavailable` warehouse goes on as usual: each export still
finds its token (a table already exported at this logical time is reported done),
takes its lease and finishes what a stopped run left, then fails at its first
question to the warehouse with the error that kept it closed. So every selected table
gets what CONTRACT §2 promises of a failed export (a FAILURE marker, a DLQ entry, a
FAILED token, an export-log record), and ``dlq retry`` runs them once the warehouse
opens again.
"""

from __future__ import annotations

from typing import Any, NoReturn

import pyarrow as pa

from dpexport.engines.base import NativeWriter, ScanRequest
from dpexport.errors import ExportError, TransientError


class Unavailable:
    """An :class:`~dpexport.engines.base.Engine` whose every read raises ``error``."""

    name = "unavailable"
    stable_reads = False
    reads_by_folder = False
    exports_per_core = 1

    def __init__(self, error: ExportError) -> None:
        self.message = str(error)
        self.code = error.code

    def _refuse(self) -> NoReturn:
        # a new error each time: one raised again and again would pile up tracebacks
        raise TransientError(self.message, code=self.code)

    def native_writer(self) -> NativeWriter | None:
        return None

    def size_hint(self, dataset: str, table: str) -> int | None:
        return None

    def write_export_logs(self, records: list[dict[str, Any]]) -> None:
        """Nothing: the bucket's record of the failure stands, and the run has said once
        why the warehouse is closed."""
        return None

    def table_exists(self, dataset: str, table: str) -> bool:
        self._refuse()

    def schema(self, dataset: str, table: str) -> pa.Schema:
        self._refuse()

    def count(self, request: ScanRequest) -> int:
        self._refuse()

    def aggregate(self, request: ScanRequest, expressions: dict[str, str]) -> dict[str, Any]:
        self._refuse()

    def distinct(
        self, request: ScanRequest, columns: tuple[str, ...], limit: int
    ) -> list[tuple[Any, ...]]:
        self._refuse()

    def scan(self, request: ScanRequest) -> pa.RecordBatchReader:
        self._refuse()

    def change_marker(self, dataset: str, table: str) -> str:
        self._refuse()

    def close(self) -> None:
        return None
