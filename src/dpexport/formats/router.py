"""Routes record batches to per-folder writers and rolls files at the size limit.

Batches arrive with computed key columns (``__dp_k0``...); the engine orders the
scan by them, so one folder's rows arrive together and few writers are open at once.
Runs of equal keys are found with Arrow's run-end encoding, not row by row.
"""

from __future__ import annotations

import contextlib
from collections import OrderedDict, deque
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass

import pyarrow as pa

from dpexport.formats.base import FormatWriter, WrittenFile
from dpexport.storage import layout

#: writers kept open at once; more folders than this (unsorted input) means more files
MAX_OPEN = 32


@dataclass(frozen=True)
class Folder:
    """A destination folder: the top-level time folder and the sub-folders below it."""

    top: str
    sub: str = ""

    @property
    def path(self) -> str:
        return f"{self.top}/{self.sub}" if self.sub else self.top


def key_columns(batch: pa.RecordBatch) -> list[str]:
    return [name for name in batch.schema.names if name.startswith(layout.KEY_COLUMN_PREFIX)]


def split_by_keys(batch: pa.RecordBatch) -> list[tuple[dict[str, object], pa.RecordBatch]]:
    """Split a batch into runs of equal key values; key columns are dropped."""
    keys = key_columns(batch)
    if not keys:  # one folder: nothing to split or drop
        return [({}, batch)] if batch.num_rows else []
    data = batch.select(
        [n for n in batch.schema.names if not n.startswith(layout.KEY_COLUMN_PREFIX)]
    )
    if batch.num_rows == 0:
        return []
    # imported here: only rows routed to several folders need it (~30 ms)
    import pyarrow.compute as pc

    # a run ends where any key changes; each key column is run-end encoded on its own,
    # which keeps NULL apart from every text ('\x00' included) and needs no separator
    # that a value could contain (layout.safe_segment gives distinct values distinct
    # folders, so rows of distinct values must not share a run)
    ends: set[int] = set()
    for k in keys:
        ends.update(pc.run_end_encode(batch.column(k).cast(pa.string())).run_ends.to_pylist())
    out: list[tuple[dict[str, object], pa.RecordBatch]] = []
    start = 0
    for end in sorted(ends):
        values = {k: batch.column(k)[start].as_py() for k in keys}
        out.append((values, data.slice(start, end - start)))
        start = end
    return out


#: Arrow bytes of files being closed on worker threads at once (see ``Router``)
MAX_CLOSING_BYTES = 64 * 1024 * 1024


def _size_bound(writer: FormatWriter) -> int:
    """``stored_bytes`` or a cheaper upper bound of it (``stored_bytes_bound``)."""
    bound = getattr(writer, "stored_bytes_bound", None)
    return writer.stored_bytes if bound is None else int(bound)


class Router:
    """Owns the writers of one export. ``open_writer(folder)`` makes a new file.

    A writer that can close on a worker thread (``close_async``, small Parquet files) is
    closed there while the routing goes on; ``closed`` lists the files closed so far in
    the order their writers were retired, and :meth:`close` waits for the rest.
    """

    def __init__(
        self,
        open_writer: Callable[[Folder], FormatWriter],
        max_file_size: int,
    ) -> None:
        self._open_writer = open_writer
        self._max = max_file_size
        self._open: OrderedDict[Folder, FormatWriter] = OrderedDict()
        self._closed: list[tuple[Folder, WrittenFile]] = []
        #: writers closing on worker threads, oldest first, with their Arrow bytes
        self._closing: deque[tuple[Folder, Future[WrittenFile], int]] = deque()
        self._closing_bytes = 0
        self._folders: set[Folder] = set()

    @property
    def closed(self) -> list[tuple[Folder, WrittenFile]]:
        """The files closed so far (those still closing on a worker are not listed yet)."""
        while self._closing and self._closing[0][1].done():
            self._collect()
        return self._closed

    def _collect(self) -> None:
        folder, future, weight = self._closing.popleft()
        self._closing_bytes -= weight
        self._closed.append((folder, future.result()))

    def _retire(self, folder: Folder, writer: FormatWriter) -> None:
        start = getattr(writer, "close_async", None)
        if start is None:
            while self._closing:  # keep the order writers were retired in
                self._collect()
            self._closed.append((folder, writer.close()))
            return
        weight = _size_bound(writer)
        future: Future[WrittenFile] = start()
        self._closing.append((folder, future, weight))
        self._closing_bytes += weight
        while self._closing_bytes > MAX_CLOSING_BYTES and len(self._closing) > 1:
            self._collect()

    def write(self, folder: Folder, batch: pa.RecordBatch) -> None:
        writer = self._open.get(folder)
        if writer is None:
            while len(self._open) >= MAX_OPEN:
                old_folder, old = self._open.popitem(last=False)
                self._retire(old_folder, old)
            writer = self._open_writer(folder)
            self._open[folder] = writer
            self._folders.add(folder)
        else:
            self._open.move_to_end(folder)
        writer.write_batch(batch)
        if _size_bound(writer) >= self._max and writer.stored_bytes >= self._max:
            del self._open[folder]
            self._retire(folder, writer)

    def ensure(self, folder: Folder) -> None:
        """Make sure ``folder`` gets a file even with no rows (an empty snapshot)."""
        if folder not in self._folders:
            self._open[folder] = self._open_writer(folder)
            self._folders.add(folder)

    def close(self) -> list[tuple[Folder, WrittenFile]]:
        while self._open:
            folder, writer = self._open.popitem(last=False)
            self._retire(folder, writer)
        while self._closing:
            self._collect()
        return self._closed

    def abort(self) -> None:
        """Abort the open writers and wait for the closing ones (their files are in
        staging, which the caller discards): nothing is written after this returns."""
        while self._open:
            _, writer = self._open.popitem(last=False)
            writer.abort()
        while self._closing:
            _, future, _ = self._closing.popleft()
            with contextlib.suppress(Exception):
                future.result()
        self._closing_bytes = 0
