"""A progress bar per table (rows, bytes, files), drawn on stderr only when it is a terminal."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.console import Console
    from rich.progress import Progress as RichProgress
    from rich.progress import TaskID


@lru_cache(maxsize=1)
def stderr_console() -> Console:
    from rich.console import Console

    return Console(stderr=True)


class BarProgress:
    """Adapts the runner's progress calls to a rich progress display."""

    def __init__(self, bar: RichProgress) -> None:
        self._bar = bar
        self._tasks: dict[str, TaskID] = {}

    def start(self, table: str, total_rows: int) -> None:
        self._tasks[table] = self._bar.add_task(
            table, total=max(total_rows, 1), files=0, size="0 B"
        )

    def advance(self, table: str, rows: int, stored_bytes: int, files: int) -> None:
        task = self._tasks.get(table)
        if task is not None:
            self._bar.update(task, advance=rows, files=files, size=_human(stored_bytes))

    def finish(self, table: str) -> None:
        task = self._tasks.get(table)
        if task is not None:
            self._bar.update(task, completed=self._bar.tasks[task].total)


@contextmanager
def make_progress() -> Iterator[BarProgress | None]:
    """A bar on a terminal; ``None`` (no output at all) otherwise."""
    if not sys.stderr.isatty():
        yield None
        return
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    bar = Progress(
        TextColumn("{task.description:<28}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("rows  {task.fields[files]} files  {task.fields[size]}"),
        TimeElapsedColumn(),
        console=stderr_console(),
        transient=False,
    )
    with bar:
        yield BarProgress(bar)


def _human(n: int) -> str:
    size = float(n)
    for unit in ("B", "KB", "MB"):
        if size < 1024:
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GB"
