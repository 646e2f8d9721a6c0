"""Text encoding on worker threads, written in order (JSONL and CSV writers).

Turning Arrow columns into text (pyarrow.compute kernels) and deflating it (ISA-L)
both release the GIL, so the slices of a batch are encoded - and, for GZIP, deflated
- on a small shared thread pool while the caller goes back to the scan. Results are
written to the file in submission order; at most ``workers + 1`` slices are in flight
per file, which bounds memory (and is how far ``stored_bytes`` may lag, besides the
codec's own buffer). Files in Arrow's streaming codecs (ZSTD, BROTLI), whose compressor
runs on the writing thread and buffers a window of its own, and hosts with one core,
encode on the calling thread.

A file in another text encoding than UTF-8 has each slice transcoded in the same task
(:mod:`dpexport.formats.encodings`); a value it cannot hold fails the file with an
``InvalidArgument`` naming the column and the row.
"""

from __future__ import annotations

import os
import threading
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from dpexport.errors import InvalidArgument
from dpexport.formats.base import WrittenFile
from dpexport.formats.encodings import TextEncoding, Unwritable
from dpexport.formats.streams import GzipMemberWriter, OutputStack, deflate_chunk

if TYPE_CHECKING:
    from dpexport.security.crypto import Encryptor

_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def cores() -> int:
    """The cores this process may run on (its CPU affinity), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # no affinity on this platform
        return max(1, os.cpu_count() or 1)


def workers() -> int:
    """Encoder threads: the cores this process may use, at most 4."""
    return min(4, cores())


def shared_pool() -> ThreadPoolExecutor:
    """The process's pool of encoder threads (text batches, small Parquet files)."""
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(workers(), thread_name_prefix="dpexport-encode")
        return _pool


def unwritable(path: Path, first_row: int, exc: Unwritable) -> InvalidArgument:
    """The export error for a value that ``path`` cannot hold (``first_row``: the rows
    of the file before the slice it is in)."""
    row = "its header" if exc.row is None else f"row {first_row + exc.row + 1}"
    return InvalidArgument(f"cannot write {path.name}: column {exc.column!r}, {row}: {exc.reason}")


class EncodePipeline:
    """Encodes slices with ``encode`` (UTF-8), transcodes them to ``text`` and writes
    them to ``stack`` in order, ``separator`` between two (and before the first when
    ``separate_first``: the preamble ended with an item)."""

    def __init__(
        self,
        stack: OutputStack,
        encode: Callable[[pa.RecordBatch], Any],
        *,
        text: TextEncoding | None = None,
        separator: bytes = b"",
        separate_first: bool = False,
    ) -> None:
        self._stack = stack
        self._encode = encode
        self._text = text or TextEncoding.of("utf-8")
        self._separator = separator
        self._separate = separate_first
        self._gzip = isinstance(stack.stream, GzipMemberWriter)
        plain = stack.stream is stack.sink or stack.stream is stack.encrypting
        self._threads = workers() if self._gzip or plain else 1
        self._pending: deque[Future[Any]] = deque()

    def _task(self, part: pa.RecordBatch, first_row: int) -> Any:
        try:
            text = self._text.transcode(self._encode(part), part)
        except Unwritable as exc:
            raise unwritable(self._stack.sink.path, first_row, exc) from None
        return deflate_chunk(text) if self._gzip else text

    def _write(self, result: Any) -> None:
        if self._separate and self._separator:
            self._stack.stream.write(self._separator)
        self._separate = True
        if self._gzip:
            self._stack.stream.write_deflated(*result)
        else:
            self._stack.stream.write(result)

    def submit(self, part: pa.RecordBatch, first_row: int = 0) -> None:
        """Encode ``part`` (on a worker when there are several) and write it in turn;
        ``first_row`` is the rows of the file before it (for error messages)."""
        if self._threads == 1:
            self._write(self._task(part, first_row))
            return
        self._pending.append(shared_pool().submit(self._task, part, first_row))
        while len(self._pending) > self._threads:
            self._write(self._pending.popleft().result())

    def drain(self) -> None:
        """Write every slice still in flight (before the file is closed)."""
        while self._pending:
            self._write(self._pending.popleft().result())

    def cancel(self) -> None:
        """Forget slices in flight (on abort); waits for running ones to finish."""
        while self._pending:
            future = self._pending.popleft()
            if not future.cancel():
                future.exception()


SLICE_BYTES = 8 * 1024 * 1024


def slices(batch: pa.RecordBatch, target: int = SLICE_BYTES) -> list[pa.RecordBatch]:
    """Split a batch into zero-copy slices of roughly ``target`` bytes."""
    n = batch.num_rows
    if n == 0:
        return []
    per_row = max(1, batch.nbytes // n)
    step = max(1, target // per_row)
    return [batch.slice(i, step) for i in range(0, n, step)]


class TextFileWriter:
    """One text data file (JSONL, CSV) in the text encoding ``encoding``: slices of each
    batch are encoded by ``encode`` on the pipeline and written in order after the
    byte-order mark and ``preamble`` (a header), ``separator`` between slices, and
    :meth:`postamble` last. ``names`` are the column names the file spells out (a
    header, JSON keys), which the encoding must hold. Implements ``FormatWriter``; the
    format modules subclass it with their encoder."""

    def __init__(
        self,
        path: Path,
        schema: pa.Schema,
        codec: str,
        encode: Callable[[pa.RecordBatch], pa.Buffer],
        *,
        encryptor: Encryptor | None = None,
        preamble: str = "",
        separator: str = "",
        encoding: str = "utf-8",
        names: list[str] | None = None,
        separate_first: bool = False,
    ) -> None:
        self.path = Path(path)
        self.schema = schema
        self.text = TextEncoding.of(encoding)
        try:
            self.text.check_names(names or [])
        except Unwritable as exc:
            raise unwritable(self.path, 0, exc) from None
        self._stack = OutputStack(self.path, codec, encryptor)
        self._pipeline = EncodePipeline(
            self._stack,
            encode,
            text=self.text,
            separator=self.text.encode(separator),
            separate_first=separate_first,
        )
        self._rows = 0
        self._uncompressed = 0
        head = self.text.bom + self.text.encode(preamble)
        if head:
            try:
                self._stack.stream.write(head)
            except BaseException:
                self._stack.abort()
                raise

    def postamble(self) -> str:
        """Text written after the last row (JSON's closing bracket); none by default."""
        return ""

    @property
    def rows(self) -> int:
        return self._rows

    @property
    def stored_bytes(self) -> int:
        return self._stack.stored_bytes

    def write_batch(self, batch: pa.RecordBatch) -> None:
        """Encode and write ``batch`` (its schema must match the file's)."""
        first_row = self._rows
        for part in slices(batch):
            self._pipeline.submit(part, first_row)
            first_row += part.num_rows
        self._rows += batch.num_rows
        self._uncompressed += batch.nbytes

    def close(self) -> WrittenFile:
        try:
            self._pipeline.drain()
            tail = self.text.encode(self.postamble())
            if tail:
                self._stack.stream.write(tail)
        except BaseException:
            self.abort()
            raise
        return self._stack.written(self._rows, self._uncompressed)

    def abort(self) -> None:
        self._pipeline.cancel()
        self._stack.abort()
