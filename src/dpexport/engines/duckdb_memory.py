"""DuckDB's memory limit while plain scans stream (see ``DuckDBEngine``).

A plain scan (no sort, no de-duplication) reads each block once, so DuckDB's page cache
would only fill with the table: while plain scans alone run, the limit is lowered to
what they need, their columns times DuckDB's threads (:data:`STREAM_BYTES_PER_COLUMN`),
at least :data:`STREAM_MEMORY_LIMIT`. Any other statement (``COPY``, sorts, windows,
aggregates) needs the whole ``memory_limit``; while one runs, that is the limit for
every cursor of the database.
"""

from __future__ import annotations

from typing import Any

from dpexport.config.units import parse_size

__all__ = ["STREAM_BYTES_PER_COLUMN", "STREAM_MEMORY_LIMIT", "MemoryLimit", "leaves"]

#: the least limit while plain scans stream: spec 2.1's Parquet block at 5M rows (21
#: columns) peaked at 600 MB under 64MB, at 565 MB under 32MB, in the same time
STREAM_MEMORY_LIMIT = "32MB"
#: and per column a streaming scan reads, per DuckDB thread: a thread pins a 256 KiB
#: block of each column it reads and the next one. Measured on 2 threads, 300,000 rows
#: half strings: 50 columns needed 32-48 MB, 100 columns 64-96 MB, 200 columns 128-192
#: MB; under a fixed 64MB any table of more than ~60 columns failed "Out of Memory"
STREAM_BYTES_PER_COLUMN = 512 * 1024


def leaves(kind: Any) -> int:
    """The columns DuckDB stores for a value of type ``kind`` (a ``DuckDBPyType``: a
    struct's or map's fields, a list's element, each counted down to plain types; a
    list's offsets too)."""
    if kind.id in ("struct", "union", "map", "list", "array"):
        extra = 1 if kind.id in ("list", "map") else 0
        # an array's children also hold its size, an int
        return extra + sum(leaves(c) for _, c in kind.children if hasattr(c, "id"))
    return 1


class MemoryLimit:
    """The limit of one open database, set through ``con`` (``SET memory_limit``); the
    caller holds its lock around :meth:`started` and :meth:`ended`."""

    def __init__(self, con: Any, memory_limit: str, threads: int) -> None:
        self._con = con
        self.configured = memory_limit
        self._threads = threads
        self._floor = parse_size(STREAM_MEMORY_LIMIT)
        try:
            self._whole = parse_size(memory_limit)
        except ValueError:  # a DuckDB spelling we do not parse: keep it as it is
            self._whole = 0
        self._streaming = 0  # plain scans running
        self._need = 0  # the bytes they need
        self._others = 0  # other statements running: they need the whole limit
        self._lowered: int | None = None  # the lowered limit set now, in bytes
        self.closed = False  # the database is closed: nothing more is set

    def need(self, columns: int) -> int:
        """The bytes a plain scan of ``columns`` stored columns (:func:`leaves`) needs."""
        return columns * self._threads * STREAM_BYTES_PER_COLUMN

    def started(self, plain: bool, need: int = 0) -> None:
        """A plain scan needing ``need`` bytes (``plain``), or another statement, starts."""
        if plain:
            self._streaming += 1
            self._need += need
        else:
            self._others += 1
        self._set()

    def ended(self, plain: bool, need: int = 0) -> None:
        if plain:
            self._streaming -= 1
            self._need -= need
        else:
            self._others -= 1
        self._set()

    def _set(self) -> None:
        lower: int | None = None
        if self._streaming > 0 and self._others == 0:
            lower = max(self._floor, self._need)
            lower = lower if lower < self._whole else None
        if lower != self._lowered and not self.closed:
            if lower is not None:
                self._con.execute(f"SET memory_limit = '{-(-lower // 2**20)}MiB'")
            else:
                self._con.execute("SET memory_limit = ?", [self.configured])
            self._lowered = lower
