"""The ``export_duration`` watchdog (spec 9.1): a daemon timer started when an export
starts. When the threshold passes while the export still runs it fires (a stuck export
pages at the threshold, not when it ends); when the export ends the incident is resolved.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from dpexport.alerts.model import Delivery

log = logging.getLogger(__name__)

#: seconds ``stop`` waits, past the alert budget, for a trigger being sent
_GRACE = 2.0


class Watchdog:
    """Calls ``on_fire`` once ``seconds`` after :meth:`start` unless :meth:`stop` came
    first; :meth:`stop` calls ``on_clear``. Both return what they sent, kept in
    :attr:`deliveries`. ``seconds`` None: a watchdog that does nothing."""

    def __init__(
        self,
        seconds: float | None,
        on_fire: Callable[[], list[Delivery]],
        on_clear: Callable[[], list[Delivery]],
        wait: float = 30.0,
    ) -> None:
        self.seconds = seconds
        self.on_fire = on_fire
        self.on_clear = on_clear
        self.wait = wait
        self.deliveries: list[Delivery] = []
        self.fired = False
        self._lock = threading.Lock()
        self._done = threading.Event()
        self._timer: threading.Timer | None = None

    def start(self) -> None:
        if self.seconds is None:
            return
        self._timer = threading.Timer(self.seconds, self._fire)
        self._timer.daemon = True
        self._timer.name = "export-duration-watchdog"
        self._timer.start()

    def _fire(self) -> None:
        with self._lock:
            if self._done.is_set():
                return
            self.fired = True
        try:
            sent = self.on_fire()
        except Exception as exc:  # never raised into the export
            log.error("export_duration alert not sent: %s", exc)
            sent = []
        with self._lock:
            self.deliveries += sent

    def stop(self) -> list[Delivery]:
        """The export ended: no trigger after this, the incident resolved; every
        delivery of this watchdog (trigger and resolve)."""
        if self._timer is None:
            return []
        with self._lock:
            self._done.set()
            fired = self.fired
        self._timer.cancel()
        if fired:  # a trigger being sent is waited for, boundedly, so the resolve follows it
            self._timer.join(self.wait + _GRACE)
        try:
            cleared = self.on_clear()
        except Exception as exc:
            log.error("export_duration incident not resolved: %s", exc)
            cleared = []
        with self._lock:
            self.deliveries += cleared
            return list(self.deliveries)
