"""Run ``lifecycle archive`` and SIGKILL this process at the N-th occurrence of a step.

Usage: python -m tests.e2e.archive_child CONFIG LOCAL_ROOT|- NOW STEP N
"""

from __future__ import annotations

import sys
from datetime import datetime
from pathlib import Path

from dpexport.config import load_config
from dpexport.ops.archive import archive
from tests.e2e.crash_child import killer


def main() -> None:
    config_path, local_root, now, step, nth = sys.argv[1:6]
    on_step, seen = killer(step, nth)

    reports = archive(
        load_config(config_path),
        now=datetime.fromisoformat(now.replace("Z", "+00:00")),
        local_root=None if local_root == "-" else Path(local_root),
        on_step=on_step,
    )
    print(dict(seen), [r.to_json() for r in reports])


if __name__ == "__main__":
    main()
