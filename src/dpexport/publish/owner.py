"""Who works on a staged export: the process that owns ``_staging/{export_id}/``,
recorded in its ``_owner.json`` so another run can tell a dead owner from a live one."""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass


def _proc_start(pid: int) -> str | None:
    """The process's start time in clock ticks (Linux), to tell a reused PID apart."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


@dataclass(frozen=True)
class Owner:
    host: str
    pid: int
    start: str | None
    #: the process's local scratch folder, removed when a dead owner's work is recovered
    scratch: str | None = None

    @staticmethod
    def me() -> Owner:
        pid = os.getpid()
        return Owner(socket.gethostname(), pid, _proc_start(pid))

    def is_dead_here(self) -> bool:
        """True when the owner ran on this host and that process no longer exists."""
        if self.host != socket.gethostname():
            return False
        return _proc_start(self.pid) != self.start or (self.start is None and not _alive(self.pid))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
