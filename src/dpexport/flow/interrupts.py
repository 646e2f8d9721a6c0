"""Stops that wait for a publication to finish.

Past the commit point an export only moves forward (``commit``). A Ctrl-C or SIGTERM
that arrives while the journal is being applied is held until the last step is done,
then delivered as it would have been (to the handler that was in place: the CLI's,
which raises ``KeyboardInterrupt``, or the scheduler's, which asks it to stop). A
second signal is not held: it stops the process at once, and the journal left in
``_staging/`` is rolled forward by the next run, like after a crash.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

log = logging.getLogger(__name__)

SIGNALS: tuple[int, ...] = (signal.SIGINT, signal.SIGTERM)

Handler = Callable[[int, FrameType | None], Any] | int | signal.Handlers | None


@contextmanager
def deferred() -> Iterator[None]:
    """Hold SIGINT and SIGTERM for the block (main thread only: elsewhere signals are
    not delivered to this thread anyway)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    held: list[int] = []
    previous: dict[int, Handler] = {}

    def hold(signum: int, frame: FrameType | None) -> None:
        if held:
            log.warning("second signal: stopping now; the next run finishes the publication")
            raise KeyboardInterrupt
        held.append(signum)
        log.warning(
            "signal %d: the export has passed its commit point; stopping once it is "
            "published (signal again to stop now)",
            signum,
        )

    for signum in SIGNALS:
        previous[signum] = signal.signal(signum, hold)
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        for signum in held:  # also when the block failed: the stop was asked for all the same
            _deliver(signum, previous[signum])


def _deliver(signum: int, handler: Handler) -> None:
    """Run the handler that was in place when the signal came."""
    if callable(handler):
        handler(signum, None)
    elif handler == signal.SIG_DFL or handler is None:
        if signum == signal.SIGINT:
            raise KeyboardInterrupt
        signal.raise_signal(signum)
