"""Run ``lifecycle archive`` and SIGKILL this process at the N-th occurrence of a step.

Usage: python -m tests.e2e.archive_child CONFIG LOCAL_ROOT|- NOW STEP N
"""

from __future__ import annotations

import os
import signal
import sys
from collections import Counter
from datetime import datetime
from pathlib import Path

from dpexport.config import load_config
from dpexport.ops.archive import archive


def main() -> None:
    config_path, local_root, now, step, nth = sys.argv[1:6]
    seen: Counter[str] = Counter()

    def on_step(name: str) -> None:
        seen[name] += 1
        if name == step and seen[name] == int(nth):
            os.kill(os.getpid(), signal.SIGKILL)

    reports = archive(
        load_config(config_path),
        now=datetime.fromisoformat(now.replace("Z", "+00:00")),
        local_root=None if local_root == "-" else Path(local_root),
        on_step=on_step,
    )
    print(dict(seen), [r.to_json() for r in reports])


if __name__ == "__main__":
    main()
