"""Run one export against a local folder that behaves as a bucket (no staging folder of
its own: staging is uploaded, and the commit's writes run on threads), and SIGKILL this
process at the N-th occurrence of a commit step.

Usage: python -m tests.e2e.bucket_crash_child CONFIG LOCAL_ROOT TABLE AT STEP N
"""

from __future__ import annotations

import os
import signal
import sys
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any

from dpexport import commit
from dpexport.config import load_config
from dpexport.engines import open_engine
from dpexport.runner import RunOptions, run_exports
from dpexport.storage.base import Store


class AsBucket:
    """The store as a cloud bucket looks to an export: no local staging folder."""

    def __init__(self, inner: Store) -> None:
        self.inner = inner
        self.url = inner.url

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def staging_dir(self) -> Path | None:
        return None


def main() -> None:
    config_path, local_root, table, at, step, nth = sys.argv[1:7]
    seen: Counter[str] = Counter()

    def on_step(name: str) -> None:
        seen[name] += 1
        if name == step and seen[name] == int(nth):
            os.kill(os.getpid(), signal.SIGKILL)

    config = load_config(config_path)
    engine = open_engine(config.warehouse, base_dir=Path(config_path).parent)
    options = RunOptions(
        tables=[table],
        at=datetime.fromisoformat(at.replace("Z", "+00:00")),
        local_root=Path(local_root),
        on_step=on_step,
        wrap_store=AsBucket,
    )
    results = run_exports(config, engine, options)
    print(dict(seen), [r.status for r in results], commit.REMOTE_WORKERS)


if __name__ == "__main__":
    main()
