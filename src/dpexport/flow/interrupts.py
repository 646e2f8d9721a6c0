"""Stops that wait for a publication to finish.

Past the commit point an export only moves forward (``commit``). A Ctrl-C or SIGTERM
that arrives while the journal is being applied is held until the last step is done,
then delivered as it would have been (to the handler that was in place: the CLI's,
which raises ``KeyboardInterrupt``, or the scheduler's, which asks it to stop). A
second signal is not held: it stops the process at once, and the journal left in
``_staging/`` is rolled forward by the next run, like after a crash.

Exports running on worker threads (``run --parallel``) never see a signal: the main
thread gets it and asks them through a :class:`Stop`. Each worker thread watches one
(:func:`watching`), and its export looks at it at every step (:func:`checkpoint`): a
first stop raises ``KeyboardInterrupt`` there before the commit point and is held
within :func:`deferred` until the publication is done, as a signal is; a second
(``Stop.now``) is not held: the export stops at its next write.
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


class Stop:
    """A stop the main thread asks of the exports running on worker threads."""

    def __init__(self) -> None:
        #: stop before the commit point; past it, once the publication is done
        self.asked = threading.Event()
        #: stop at the next step or write, past the commit point too (a second signal)
        self.now = threading.Event()


_local = threading.local()


@contextmanager
def watching(stop: Stop) -> Iterator[None]:
    """The exports run on this (worker) thread inside the block look at ``stop``."""
    _local.stop, _local.holding = stop, False
    try:
        yield
    finally:
        _local.stop = None


def checkpoint() -> None:
    """Raise ``KeyboardInterrupt`` where this thread's export was asked to stop: a stop
    before the commit point, or a stop now within :func:`deferred`. Nothing on a thread
    that watches no :class:`Stop` (signals reach the main thread directly)."""
    stop: Stop | None = getattr(_local, "stop", None)
    if stop is None:
        return
    if stop.now.is_set() or (stop.asked.is_set() and not _local.holding):
        raise KeyboardInterrupt


@contextmanager
def relayed(stop: Stop) -> Iterator[None]:
    """While the main thread waits for exports on worker threads: SIGINT and SIGTERM ask
    ``stop`` instead of raising wherever the main thread is (between two of its own
    statements a ``KeyboardInterrupt`` would leave the workers running while the process
    exits). The first asks them to stop, the second to stop now, a third raises
    ``KeyboardInterrupt`` at once. After the block the first signal is delivered to the
    handler that was in place, as :func:`deferred` delivers a held one."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received: list[int] = []

    def relay(signum: int, frame: FrameType | None) -> None:
        received.append(signum)
        if len(received) == 1:
            log.warning(
                "signal %d: stopping; exports before their commit point roll back, those "
                "past it finish publishing (signal again to stop now)",
                signum,
            )
            stop.asked.set()
        elif len(received) == 2:
            log.warning("second signal: stopping now; the next run finishes publications")
            stop.now.set()
        else:
            raise KeyboardInterrupt

    previous = {signum: signal.signal(signum, relay) for signum in SIGNALS}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    if received:
        _deliver(received[0], previous[received[0]])


def checked(hook: Callable[[str], None] | None) -> Callable[[str], None]:
    """``hook`` (a commit step's callback) after a :func:`checkpoint`."""

    def step(name: str) -> None:
        checkpoint()
        if hook is not None:
            hook(name)

    return step


@contextmanager
def deferred() -> Iterator[None]:
    """Hold SIGINT and SIGTERM for the block (main thread), or the :class:`Stop` this
    worker thread watches; a thread that watches none gets no signal anyway."""
    if threading.current_thread() is not threading.main_thread():
        with _held_stop():
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


@contextmanager
def _held_stop() -> Iterator[None]:
    """:func:`deferred` on a worker thread: a stop asked during the block is raised once
    it ends (also when the block failed, as a held signal is delivered)."""
    stop: Stop | None = getattr(_local, "stop", None)
    if stop is None:
        yield
        return
    _local.holding = True
    try:
        yield
    finally:
        _local.holding = False
        if stop.asked.is_set() or stop.now.is_set():
            raise KeyboardInterrupt
