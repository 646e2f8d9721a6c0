"""Run one export and SIGKILL this process at the N-th occurrence of a commit step.

Usage: python -m tests.e2e.crash_child CONFIG LOCAL_ROOT TABLE AT STEP N
"""

from __future__ import annotations

import os
import signal
import sys
from collections import Counter
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from dpexport.config import load_config
from dpexport.engines import open_engine
from dpexport.flow.context import RunOptions
from dpexport.flow.runner import run_exports


def killer(step: str, nth: str) -> tuple[Callable[[str], None], Counter[str]]:
    """An ``on_step`` hook that SIGKILLs this process at the ``nth`` occurrence of
    ``step``, and the count of every step seen so far (printed if it never fires)."""
    seen: Counter[str] = Counter()

    def on_step(name: str) -> None:
        seen[name] += 1
        if name == step and seen[name] == int(nth):
            os.kill(os.getpid(), signal.SIGKILL)

    return on_step, seen


def main(wrap_store: Any = None) -> None:
    """``wrap_store``: wraps the destination store (``RunOptions.wrap_store``)."""
    config_path, local_root, table, at, step, nth = sys.argv[1:7]
    on_step, seen = killer(step, nth)

    config = load_config(config_path)
    engine = open_engine(config.warehouse, base_dir=Path(config_path).parent)
    options = RunOptions(
        tables=[table],
        at=datetime.fromisoformat(at.replace("Z", "+00:00")),
        local_root=Path(local_root),
        on_step=on_step,
        wrap_store=wrap_store,
    )
    results = run_exports(config, engine, options)
    print(dict(seen), [r.status for r in results])


if __name__ == "__main__":
    main()
