"""Several tables exported at once (``run --parallel N``).

The tables are independent: each has its own destination folder (``check`` refuses
two sharing or nesting one), its own lease ``_leases/{dataset}.{table}.json``, tokens,
watermark, schema registry and DLQ entries, and every document two exports could both
write (a SUCCESS marker, an alert incident, a lapsed lease) is written by conditional
create or compare-and-swap. What the exports of one bucket do share is ``_staging/``,
which each export recovers before it starts; :func:`dpexport.flow.runner` lets one
export at a time recover, so a journal a dead run left is rolled forward once.

``N`` worker threads take the tables largest first (the engine's size hint: DuckDB's
estimated rows times columns, BigQuery's stored bytes; a table without one first, then
the config's order), so the longest export does not start last: the 15 demo tables on
2 cores took as long as one after another while ``sensor_telemetry``, two thirds of
the work, started third. The results come back in the config's order whatever
finishes first. The warehouse is shared (DuckDB: a cursor per
query, see ``engines.duckdb``; BigQuery: one client, whose jobs then overlap), and so
is the memory budget of the streamed writers (:mod:`dpexport.flow.budget`).

``N`` defaults to the cores on DuckDB, whose queries run on them, and to four times
as many on BigQuery (at most 16), where an export mostly waits for its jobs: the 15
demo tables on the BigQuery emulator behind 1 s a query (``tests/latency_proxy.py``)
took 66 s one after another, 38 s two at a time, 23 s four at a time, 19 s eight.

Signals reach the main thread only. While it waits for the workers, a first signal
asks them to stop (:func:`~dpexport.flow.interrupts.relayed`): tables not started are
not, an export before its commit point rolls back, one past it publishes first; a
second signal stops those at their next write (their journal is rolled forward by the
next run); a third stops waiting. Then the signal is delivered as during a sequential
run (the CLI's handler raises ``KeyboardInterrupt``: exit 130).
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Sequence

from dpexport.config.spec import TableSpec
from dpexport.engines.base import Engine
from dpexport.flow import interrupts
from dpexport.flow.context import ExportResult
from dpexport.formats.parallel import cores

#: at most this many tables at once by default, whatever the cores: BigQuery runs a
#: project's interactive queries ~100 at a time, shared with everyone else's
MAX_DEFAULT = 16


def default_parallel(engine: Engine) -> int:
    """Tables exported at once when ``run`` is not told: the engine's exports per core
    (1 for DuckDB, whose queries run on these cores; 4 for BigQuery, whose exports
    mostly wait for jobs) times the cores, at most :data:`MAX_DEFAULT`."""
    return max(1, min(engine.exports_per_core * cores(), MAX_DEFAULT))


def largest_first(sizes: Sequence[int | None]) -> list[int]:
    """Indexes of ``sizes`` in the order to start them: unknown sizes first (they may be
    the largest), then largest first; ties in the given order."""
    return sorted(range(len(sizes)), key=lambda i: (sizes[i] is not None, -(sizes[i] or 0)))


def export_all(
    specs: Sequence[TableSpec],
    workers: int,
    export: Callable[[TableSpec], ExportResult],
    sizes: Sequence[int | None] | None = None,
) -> list[ExportResult]:
    """``export(spec)`` for every spec on ``workers`` threads, started largest first by
    ``sizes`` (see module doc); the results in the specs' order."""
    stop = interrupts.Stop()
    order = largest_first(sizes) if sizes is not None else range(len(specs))
    todo = deque((i, specs[i]) for i in order)
    results: list[ExportResult | None] = [None] * len(specs)
    failures: list[BaseException] = []
    lock = threading.Lock()

    def work() -> None:
        with interrupts.watching(stop):
            while True:
                with lock:
                    if stop.asked.is_set() or failures or not todo:
                        return
                    index, spec = todo.popleft()
                try:
                    results[index] = export(spec)
                except KeyboardInterrupt:
                    stop.asked.set()  # a hook or a held stop: the others stop too
                    return
                except BaseException as exc:  # raised in the caller, as without threads
                    with lock:
                        failures.append(exc)
                    return

    threads = [
        threading.Thread(target=work, name=f"dpexport-export-{i}", daemon=True)
        for i in range(min(workers, len(specs)))
    ]
    with interrupts.relayed(stop):  # signals from here on ask the workers to stop
        for thread in threads:
            thread.start()
        while any(t.is_alive() for t in threads):
            for thread in threads:
                thread.join(0.2)
    if stop.asked.is_set():
        raise KeyboardInterrupt
    if failures:
        raise failures[0]
    return [r for r in results if r is not None]
