"""Run the real CLI with one export stopped at a commit step: by a signal sent to this
process at the N-th occurrence of the step (once, or twice in a row), or by a store that
refuses one kind of write (a permission error: not retried).

Usage:
  python -m tests.e2e.stop_child signal SIGINT|SIGTERM STEP N TIMES -- CLI ARGS...
  python -m tests.e2e.stop_child fail OP KEY_PART -- CLI ARGS...

``OP`` is a store method (``put_bytes``, ``replace_if_match``, ``delete``, ``move``);
``KEY_PART`` a substring of the keys it refuses. Exit codes are the CLI's own.
"""

from __future__ import annotations

import os
import signal
import sys
from collections import Counter
from typing import Any

import dpexport.flow.runner
from dpexport.cli import main as cli_main
from dpexport.errors import PermissionDenied
from dpexport.storage.base import Store


class RefusingStore:
    """A store that refuses ``op`` on keys containing ``part``, and passes the rest."""

    def __init__(self, inner: Store, op: str, part: str) -> None:
        self.inner, self.op, self.part = inner, op, part
        self.url = inner.url

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self.inner, name)
        if name != self.op:
            return attr

        def refuse(key: str, *args: Any, **kwargs: Any) -> Any:
            if any(self.part in a for a in (key, *args) if isinstance(a, str)):
                raise PermissionDenied(f"injected: {name} {key} refused", uri=key)
            return attr(key, *args, **kwargs)

        return refuse


def _hooks(argv: list[str]) -> dict[str, Any]:
    if argv[0] == "signal":
        signum = getattr(signal, argv[1])
        step, nth, times = argv[2], int(argv[3]), int(argv[4])
        seen: Counter[str] = Counter()

        def on_step(name: str) -> None:
            seen[name] += 1
            if name == step and seen[name] == nth:
                for _ in range(times):
                    os.kill(os.getpid(), signum)

        return {"on_step": on_step}
    op, part = argv[1], argv[2]
    return {"wrap_store": lambda store: RefusingStore(store, op, part)}


def main() -> None:
    split = sys.argv.index("--")
    hooks = _hooks(sys.argv[1:split])
    real = dpexport.flow.runner.run_exports

    def run_exports(config: Any, engine: Any, options: Any) -> Any:
        for name, value in hooks.items():
            setattr(options, name, value)
        return real(config, engine, options)

    dpexport.flow.runner.run_exports = run_exports
    cli_main(sys.argv[split + 1 :])


if __name__ == "__main__":
    main()
