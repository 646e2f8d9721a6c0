"""Text encoding on worker threads, written in order (JSONL and CSV writers).

Turning Arrow columns into text (pyarrow.compute kernels) and deflating it (ISA-L)
both release the GIL, so the slices of a batch are encoded - and, for GZIP, deflated
- on a small shared thread pool while the caller goes back to the scan. Results are
written to the file in submission order; at most ``workers + 1`` slices are in flight
per file, which bounds memory (and is how far ``stored_bytes`` may lag, besides the
codec's own buffer). Files in Arrow's streaming codecs (ZSTD, BROTLI), whose compressor
runs on the writing thread and buffers a window of its own, and hosts with one core,
encode on the calling thread.
"""

from __future__ import annotations

import os
import threading
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import pyarrow as pa

from dpexport.formats.streams import GzipMemberWriter, OutputStack, deflate_chunk

_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def workers() -> int:
    """Encoder threads: the cores this process may use, at most 4."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    return max(1, min(4, cores))


def _shared_pool() -> ThreadPoolExecutor:
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(workers(), thread_name_prefix="dpexport-encode")
        return _pool


class EncodePipeline:
    """Encodes slices with ``encode`` and writes them to ``stack`` in order."""

    def __init__(self, stack: OutputStack, encode: Callable[[pa.RecordBatch], Any]) -> None:
        self._stack = stack
        self._encode = encode
        self._gzip = isinstance(stack.stream, GzipMemberWriter)
        plain = stack.stream is stack.sink or stack.stream is stack.encrypting
        self._threads = workers() if self._gzip or plain else 1
        self._pending: deque[Future[Any]] = deque()

    def _task(self, part: pa.RecordBatch) -> Any:
        text = self._encode(part)
        return deflate_chunk(text) if self._gzip else text

    def _write(self, result: Any) -> None:
        if self._gzip:
            self._stack.stream.write_deflated(*result)
        else:
            self._stack.stream.write(result)

    def submit(self, part: pa.RecordBatch) -> None:
        """Encode ``part`` (on a worker when there are several) and write it in turn."""
        if self._threads == 1:
            self._write(self._task(part))
            return
        self._pending.append(_shared_pool().submit(self._task, part))
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
