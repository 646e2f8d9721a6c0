"""The process's ``malloc``: jemalloc where the system has it, by one re-exec at start.

Why: DuckDB hands glibc's free memory back to the kernel (``malloc_trim(0)``) whenever
its buffer pool evicts a block, which a streaming scan under dpexport's small memory
limit does for nearly every block it reads. The Arrow batches DuckDB converts rows into
are glibc memory: freed once their row group is written, they are handed back, and the
next batches fault every page in again. Spec 2.1's Parquet block on 5 M rows took
~350,000 page faults, 65 % of them there; with jemalloc as the process's ``malloc``
(glibc's heap then holds nothing to trim, and jemalloc keeps freed pages for reuse)
~140,000, and the export ran 15-20 % faster for ~50 MB more peak memory (measured in
``benchmarks/README.md``).

``LD_PRELOAD`` is read when a process starts, so the entry point re-executes itself
(same PID, same arguments) with it set, before anything else is imported, and the child
then drops it from its environment again, so nothing dpexport starts inherits it.
``DPEXPORT_MALLOC`` chooses: ``auto`` (the default: jemalloc when found), ``system``
(glibc's), or the path of a ``malloc`` library to preload. An ``LD_PRELOAD`` the user set
is left as it is.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, MutableMapping

__all__ = ["ENV", "JEMALLOC", "UsageError", "find_jemalloc", "preload", "reexec"]

#: the environment variable that chooses
ENV = "DPEXPORT_MALLOC"
#: where Linux distributions install jemalloc (Debian/Ubuntu: ``apt-get install
#: libjemalloc2``; Fedora/RHEL: ``dnf install jemalloc``; Alpine: ``apk add jemalloc``)
JEMALLOC = (
    "/usr/lib/x86_64-linux-gnu/libjemalloc.so.2",
    "/usr/lib/aarch64-linux-gnu/libjemalloc.so.2",
    "/usr/lib64/libjemalloc.so.2",
    "/usr/lib/libjemalloc.so.2",
    "/usr/local/lib/libjemalloc.so.2",
)
#: set in the re-executed process: the ``LD_PRELOAD`` to restore (empty: none)
_MARK = "_DPEXPORT_MALLOC_PRELOADED"


def find_jemalloc() -> str | None:
    """The first of :data:`JEMALLOC` that is installed."""
    return next((path for path in JEMALLOC if os.path.isfile(path)), None)


class UsageError(ValueError):
    """``DPEXPORT_MALLOC`` names no library."""


def preload(environ: Mapping[str, str], platform: str = sys.platform) -> str | None:
    """The library to preload into a new process, or ``None`` to run as started."""
    if _MARK in environ or environ.get("LD_PRELOAD"):
        return None  # re-executed already, or the user preloads something
    choice = environ.get(ENV, "auto").strip() or "auto"
    if choice == "system":
        return None
    if choice == "auto":
        if not platform.startswith("linux"):
            return None
        return find_jemalloc()
    if not os.path.isfile(choice):
        raise UsageError(
            f"{ENV}={choice!r}: no such file (expected auto, system or the path of a "
            "malloc library such as libjemalloc.so.2)"
        )
    return choice


def reexec(environ: MutableMapping[str, str] | None = None) -> None:
    """Re-execute this process with the chosen ``malloc`` preloaded (does not return),
    or, in the re-executed process, restore the environment its children get."""
    env = os.environ if environ is None else environ
    if _MARK in env:
        restore = env.pop(_MARK)
        if restore:
            env["LD_PRELOAD"] = restore
        else:
            env.pop("LD_PRELOAD", None)
        return
    try:
        library = preload(env)
    except UsageError as exc:
        sys.stderr.write(f"Error: {exc}\n")
        raise SystemExit(2) from None
    if library is None:
        return
    child = {**env, "LD_PRELOAD": library, _MARK: env.get("LD_PRELOAD", "")}
    try:
        os.execve(sys.executable, sys.orig_argv, child)
    except OSError:
        return  # run on as started: slower, not wrong
