"""Routes record batches to per-folder writers and rolls files at the size limit.

Batches arrive with computed key columns (``__dp_k0``...); the engine orders the
scan by them, so one folder's rows arrive together and few writers are open at once.
Runs of equal keys are found with Arrow's run-end encoding, not row by row.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc

from dpexport.formats.base import FormatWriter, WrittenFile

KEY_PREFIX = "__dp_k"
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
    return [name for name in batch.schema.names if name.startswith(KEY_PREFIX)]


def split_by_keys(batch: pa.RecordBatch) -> list[tuple[dict[str, object], pa.RecordBatch]]:
    """Split a batch into runs of equal key values; key columns are dropped."""
    keys = key_columns(batch)
    data = batch.select([n for n in batch.schema.names if not n.startswith(KEY_PREFIX)])
    if not keys or batch.num_rows == 0:
        return [({}, data)] if batch.num_rows else []
    # one text key per row; \x1f cannot appear in the time keys and is escaped by
    # layout.safe_segment later in sub-partition values, but we only need equality here.
    parts = [pc.fill_null(batch.column(k).cast(pa.string()), "\x00") for k in keys]
    joined = parts[0] if len(parts) == 1 else pc.binary_join_element_wise(*parts, "\x1f")
    ree = pc.run_end_encode(joined)
    ends = ree.run_ends.to_pylist()
    out: list[tuple[dict[str, object], pa.RecordBatch]] = []
    start = 0
    for end in ends:
        values = {k: batch.column(k)[start].as_py() for k in keys}
        out.append((values, data.slice(start, end - start)))
        start = end
    return out


class Router:
    """Owns the writers of one export. ``open_writer(folder)`` makes a new file."""

    def __init__(
        self,
        open_writer: Callable[[Folder], FormatWriter],
        max_file_size: int,
    ) -> None:
        self._open_writer = open_writer
        self._max = max_file_size
        self._open: OrderedDict[Folder, FormatWriter] = OrderedDict()
        self.closed: list[tuple[Folder, WrittenFile]] = []

    def write(self, folder: Folder, batch: pa.RecordBatch) -> None:
        writer = self._open.get(folder)
        if writer is None:
            while len(self._open) >= MAX_OPEN:
                old_folder, old = self._open.popitem(last=False)
                self.closed.append((old_folder, old.close()))
            writer = self._open_writer(folder)
            self._open[folder] = writer
        else:
            self._open.move_to_end(folder)
        writer.write_batch(batch)
        if writer.stored_bytes >= self._max:
            del self._open[folder]
            self.closed.append((folder, writer.close()))

    def ensure(self, folder: Folder) -> None:
        """Make sure ``folder`` gets a file even with no rows (an empty snapshot)."""
        if folder not in self._open and not any(f == folder for f, _ in self.closed):
            self._open[folder] = self._open_writer(folder)

    def close(self) -> list[tuple[Folder, WrittenFile]]:
        while self._open:
            folder, writer = self._open.popitem(last=False)
            self.closed.append((folder, writer.close()))
        return self.closed

    def abort(self) -> None:
        while self._open:
            _, writer = self._open.popitem(last=False)
            writer.abort()
