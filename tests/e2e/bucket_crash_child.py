"""Run one export against a local folder that behaves as a bucket (no staging folder of
its own: staging is uploaded, and the commit's writes run on threads), and SIGKILL this
process at the N-th occurrence of a commit step.

Usage: python -m tests.e2e.bucket_crash_child CONFIG LOCAL_ROOT TABLE AT STEP N
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from dpexport.storage import batch
from dpexport.storage.base import Store
from tests.e2e import crash_child


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
    crash_child.main(wrap_store=AsBucket)
    print("workers", batch.REMOTE_WORKERS)


if __name__ == "__main__":
    main()
