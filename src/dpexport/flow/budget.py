"""The memory the streamed exports of one run may hold at once (``run --parallel``).

What grows with a streamed export is what its writers buffer: a Parquet writer keeps
a row group's Arrow bytes (spec 2.1's ``row_group_size``, 128MB) before it encodes
them, one per open folder; a text writer encodes each batch as it comes. The batches
in flight are one or two per export, small beside that. So the budget is counted in
those buffers, not in batches: before an export streams, it reserves its *weight*
(:func:`stream_weight`, what its writers may buffer at most) from one
:class:`MemoryBudget` shared by the run's exports, and gives it back when its files
are written. An export whose weight does not fit waits for exports that hold some to
finish; one heavier than the whole budget waits until it can take all of it, so it
runs with no other streamed export beside it. A reservation is taken once per export
and never while holding another, so no export waits on one that waits on it.

Before its first batch an export also takes one of the budget's reading slots (the
cores, by default), held until its files are written: a BigQuery reader fetches
batches ahead on threads of its own (three a stream), so the exports a run starts
beyond the cores (four a core on BigQuery, where most exports wait for jobs) would
each hold those while they waited for bytes. What an engine does before the first
batch (a query job, a read session) is not held back. A slot is taken before the
bytes and given back after them, so a slot holder waits only on other slot holders.

The warehouse's memory is not in it: DuckDB's ``memory_limit`` caps one database's
buffer pool whatever the number of cursors reading it, so the exports share it
already (a ``COPY`` the warehouse writes takes nothing from this budget), and a
BigQuery job runs elsewhere.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager

import pyarrow as pa

from dpexport.config.spec import TableSpec
from dpexport.flow import interrupts
from dpexport.formats.parallel import cores
from dpexport.formats.router import MAX_CLOSING_BYTES, MAX_OPEN

#: Bytes the writers of a run's streamed exports may buffer together: two of spec 2.1's
#: 128MB row groups, so two Parquet exports of the spec's block stream side by side
#: and a third waits.
BUDGET_BYTES = 256 * 1024 * 1024


def stream_weight(
    spec: TableSpec, first: pa.RecordBatch | None, rows: int, folders: int | None
) -> int:
    """What the writers of a streamed export may buffer at most, judged from its first
    batch (bytes per row), the slice's ``rows`` and its ``folders`` (None: unknown)."""
    if first is None or first.num_rows == 0:
        return 0
    batch = first.nbytes
    slice_bytes = int(rows * batch / first.num_rows)
    if spec.format == "PARQUET":
        open_writers = min(folders or MAX_OPEN, MAX_OPEN)
        buffered = open_writers * spec.parquet.row_group_size
        if open_writers > 1:  # files of retired writers close on threads meanwhile
            buffered += MAX_CLOSING_BYTES
    else:  # a text writer encodes each batch as it comes
        buffered = batch
    return min(slice_bytes, buffered) + 2 * batch


class MemoryBudget:
    """Bytes shared by the exports of a run; see the module's docstring."""

    def __init__(self, capacity: int = BUDGET_BYTES, slots: int | None = None) -> None:
        self.capacity = capacity
        self._free = capacity
        #: exports reading batches at once, at most (module doc)
        self.slots = max(1, slots if slots is not None else cores())
        self._reading = 0
        self._changed = threading.Condition()
        #: the most bytes held at once and the most exports reading at once (tests and
        #: benchmarks read them)
        self.peak = 0
        self.peak_reading = 0

    def _wait(self, ready: Callable[[], bool]) -> None:
        """Wait, holding ``_changed``, until ``ready()``; a stop asked meanwhile
        (:mod:`interrupts`) ends the wait."""
        while not ready():
            self._changed.wait(0.2)
            interrupts.checkpoint()

    @contextmanager
    def reading(self) -> Iterator[None]:
        """One of the :attr:`slots` for the block, waiting until one is free."""
        with self._changed:
            self._wait(lambda: self._reading < self.slots)
            self._reading += 1
            self.peak_reading = max(self.peak_reading, self._reading)
        try:
            yield
        finally:
            with self._changed:
                self._reading -= 1
                self._changed.notify_all()

    @contextmanager
    def hold(self, weight: int) -> Iterator[None]:
        """Reserve ``weight`` bytes (at most the whole budget) for the block, waiting until
        they are free; a stop asked meanwhile (:mod:`interrupts`) ends the wait."""
        weight = max(0, min(weight, self.capacity))
        with self._changed:
            self._wait(lambda: self._free >= weight)
            self._free -= weight
            self.peak = max(self.peak, self.capacity - self._free)
        try:
            yield
        finally:
            with self._changed:
                self._free += weight
                self._changed.notify_all()

    @contextmanager
    def streaming(
        self, spec: TableSpec, reader: pa.RecordBatchReader, rows: int, folders: int | None
    ) -> Iterator[Iterable[pa.RecordBatch]]:
        """The batches of ``reader`` while a reading slot and the export's
        :func:`stream_weight` are held, the weight judged from its first batch (read
        before the bytes are reserved, in the slot)."""
        with self.reading():
            try:
                first: pa.RecordBatch | None = reader.read_next_batch()
            except StopIteration:
                first = None
            with self.hold(stream_weight(spec, first, rows, folders)):
                yield itertools.chain([first] if first is not None else [], reader)
