"""A Store wrapper that fails a share of requests, deterministically by seed (tests only)."""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO, TypeVar

from dpexport.errors import TransientError
from dpexport.storage.base import ObjectInfo, Store

#: the transient failures a cloud store shows: throttling, 503, a reset connection
T = TypeVar("T")

FAULTS = (
    ("RATE_LIMIT_EXCEEDED", "429 Too Many Requests: rate limit exceeded"),
    ("SERVICE_UNAVAILABLE", "503 Service Unavailable"),
    ("SERVICE_UNAVAILABLE", "connection reset by peer"),
)


class FlakyStore:
    """Fails ``rate`` of requests with a TransientError drawn from FAULTS.

    A failure happens before the request (the store is untouched) or, for writes
    with ``after_share`` of the failures, after it (the request took effect but the
    answer was lost), so callers see both kinds of ambiguity a network gives."""

    def __init__(
        self, inner: Store, *, seed: int, rate: float = 0.10, after_share: float = 0.3
    ) -> None:
        self.inner = inner
        self.url = inner.url
        self.rate = rate
        self.after_share = after_share
        self._rng = random.Random(seed)
        self.requests = 0
        self.failures: list[tuple[str, str]] = []

    def _fault(self, op: str) -> tuple[bool, TransientError | None]:
        self.requests += 1
        if self._rng.random() >= self.rate:
            return False, None
        code, text = FAULTS[self._rng.randrange(len(FAULTS))]
        after = self._rng.random() < self.after_share
        self.failures.append((op, code))
        return after, TransientError(f"{op}: {text}", uri=self.url, code=code)

    def _do(self, op: str, fn: Callable[[], T], write: bool = False) -> T:
        after, err = self._fault(op)
        if err is not None and not (after and write):
            raise err
        result = fn()
        if err is not None:
            raise err
        return result

    def uri(self, key: str) -> str:
        return self.inner.uri(key)

    def put_file(self, key: str, source: Path) -> ObjectInfo:
        # A local put_file moves its source, so only fail it before the request.
        return self._do("put_file", lambda: self.inner.put_file(key, source))

    def put_bytes(self, key: str, data: bytes) -> ObjectInfo:
        return self._do("put_bytes", lambda: self.inner.put_bytes(key, data), write=True)

    def put_if_absent(self, key: str, data: bytes) -> ObjectInfo:
        return self._do("put_if_absent", lambda: self.inner.put_if_absent(key, data), write=True)

    def replace_if_match(self, key: str, data: bytes, version: str | None) -> ObjectInfo:
        return self._do(
            "replace_if_match",
            lambda: self.inner.replace_if_match(key, data, version),
            write=True,
        )

    def get(self, key: str) -> bytes:
        return self._do("get", lambda: self.inner.get(key))

    def open_read(self, key: str) -> BinaryIO:
        return self._do("open_read", lambda: self.inner.open_read(key))

    def head(self, key: str) -> ObjectInfo | None:
        return self._do("head", lambda: self.inner.head(key))

    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        return iter(self._do("list", lambda: list(self.inner.list(prefix))))

    def delete(self, key: str) -> None:
        self._do("delete", lambda: self.inner.delete(key), write=True)

    def copy(self, source_key: str, dest_key: str) -> ObjectInfo:
        return self._do("copy", lambda: self.inner.copy(source_key, dest_key), write=True)

    def move(self, source_key: str, dest_key: str) -> ObjectInfo:
        return self._do("move", lambda: self.inner.move(source_key, dest_key), write=True)

    def staging_dir(self) -> Path | None:
        return self.inner.staging_dir()
