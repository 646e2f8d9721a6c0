"""Run ``reconcile`` and SIGKILL this process at the N-th occurrence of a commit step.

Usage: python -m tests.e2e.reconcile_crash_child CONFIG LOCAL_ROOT AT STEP N
"""

from __future__ import annotations

import sys
from datetime import datetime
from pathlib import Path

from dpexport.config import load_config
from dpexport.engines import open_engine
from dpexport.ops.reconcile import reconcile
from tests.e2e.crash_child import killer


def main() -> None:
    config_path, local_root, at, step, nth = sys.argv[1:6]
    on_step, seen = killer(step, nth)

    config = load_config(config_path)
    engine = open_engine(config.warehouse, base_dir=Path(config_path).parent)
    logical = datetime.fromisoformat(at.replace("Z", "+00:00"))
    reports = reconcile(config, engine, at=logical, local_root=Path(local_root), on_step=on_step)
    print(dict(seen), [r.to_json() for r in reports])


if __name__ == "__main__":
    main()
