"""What BigQuery jobs bill, per table: the warehouse part of an export's cost.

Every query job the engine runs for a table (counting, folder listing, scan,
``EXPORT DATA``) is counted against it when it finishes: its bytes billed, else its
bytes processed (bqemulator reports only that, as 0). An export takes its table's
figures once, at its publication (``dpexport.ops.cost.warehouse_billed``), and a failed
attempt's export-log record takes what it used, so no job is counted twice.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any


class JobMeter:
    """Bytes billed and jobs run per ``dataset.table``, since last taken."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._billed: dict[str | None, tuple[int, int]] = {}

    def record(self, table: str | None, job: Any) -> None:
        billed = job.total_bytes_billed
        if billed is None:
            billed = job.total_bytes_processed
        with self._lock:
            size, jobs = self._billed.get(table, (0, 0))
            self._billed[table] = (size + int(billed or 0), jobs + 1)

    def take(self, table: str) -> tuple[int, int]:
        """(bytes, jobs) of ``table`` since the last take; counting starts again."""
        with self._lock:
            return self._billed.pop(table, (0, 0))


@dataclass(frozen=True)
class SizeEstimate:
    """What ``plan`` shows: bytes a query would scan (dry run) and the table's size."""

    bytes_processed: int | None
    table_bytes: int | None
    table_rows: int | None


def cells(meta: Any) -> int | None:
    """A table's rows (its streaming buffer's too) times its columns, from its metadata
    (``bigquery.Table``), or None for a view: ``run --parallel`` starts the largest
    first. Rows, not ``numBytes``: that leaves out the streaming buffer (bqemulator
    says 0 for every table)."""
    if meta.num_rows is None:
        return None
    buffer = meta.streaming_buffer
    buffered = (buffer.estimated_rows or 0) if buffer is not None else 0
    return (int(meta.num_rows) + int(buffered)) * len(meta.schema)
