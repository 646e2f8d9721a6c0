"""What the runner tells a progress display (the CLI's bar): the slice's row count once
it is counted, the rows as they are written, then the end, on each of the three paths:
DuckDB writing the slice while it is counted, DuckDB writing it after, and streamed."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

import dpexport
from dpexport.engines import open_engine
from dpexport.engines.duckdb import DuckDBEngine
from dpexport.flow.context import RunOptions
from dpexport.flow.runner import run_exports
from tests.e2e.cli import warehouse_sql

CONFIG = """\
project: p
environment: prod
warehouse: {engine: duckdb, path: warehouse.duckdb}
buckets: {exports: gs://b}
exports:
  - source: ds.events
    destination: gs://b/events/
    format: FORMAT
    mode: APPEND
    change_column: ts
"""
ROWS = 1234


class Recorder:
    """The Progress protocol, written down call by call."""

    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []
        self._lock = threading.Lock()
        self.started_on: threading.Thread | None = None

    def start(self, table: str, total_rows: int) -> None:
        with self._lock:
            self.calls.append(("start", table, total_rows))
            self.started_on = threading.current_thread()

    def advance(self, table: str, rows: int, stored_bytes: int, files: int) -> None:
        with self._lock:
            self.calls.append(("advance", table, rows, stored_bytes, files))

    def finish(self, table: str) -> None:
        with self._lock:
            self.calls.append(("finish", table))


OVERLAP = "the warehouse writes the slice while it is counted"


@pytest.mark.parametrize(
    ("fmt", "read_only", "overlap", "streams"),
    [
        ("PARQUET", True, True, False),
        ("PARQUET", False, False, False),  # a writable file: no stable reads, count first
        ("JSONL", True, False, True),
    ],
)
def test_progress_starts_with_the_slice_count_and_ends_with_every_row(
    tmp_path: Path,
    fmt: str,
    read_only: bool,
    overlap: bool,
    streams: bool,
    caplog: pytest.LogCaptureFixture,
) -> None:
    warehouse_sql(
        tmp_path,
        f"""CREATE SCHEMA ds; CREATE TABLE ds.events AS SELECT i AS id,
        TIMESTAMP '2025-09-01' + to_seconds(i) AS ts FROM range({ROWS}) t(i)""",
    )
    (tmp_path / "c.yaml").write_text(CONFIG.replace("FORMAT", fmt))
    config = dpexport.load_config(tmp_path / "c.yaml")
    engine = (
        open_engine(config.warehouse, base_dir=tmp_path)  # read-only, as the CLI opens it
        if read_only
        else DuckDBEngine(tmp_path / "warehouse.duckdb", read_only=False)
    )
    progress = Recorder()
    caplog.set_level("DEBUG", logger="dpexport")
    try:
        [result] = run_exports(
            config,
            engine,
            RunOptions(
                at=datetime(2025, 9, 2, tzinfo=UTC), local_root=tmp_path / "out", progress=progress
            ),
        )
    finally:
        engine.close()
    assert result.status == "SUCCESS" and result.rows == ROWS
    assert (OVERLAP in caplog.text) == overlap
    assert ("events streams:" in caplog.text) == streams
    calls = progress.calls
    assert calls[0] == ("start", "events", ROWS)
    assert calls[-1] == ("finish", "events")
    assert [c[0] for c in calls].count("start") == 1
    # while DuckDB writes the slice, the bar starts as soon as the count is in, from the
    # counting thread, not once the main thread's COPY returns
    assert (progress.started_on is not threading.main_thread()) == overlap
    advances = [c for c in calls if c[0] == "advance"]
    assert sum(c[2] for c in advances) == ROWS
    # the last advance reports what was stored: one file, its bytes
    assert advances[-1][4] == 1 and advances[-1][3] > 0
