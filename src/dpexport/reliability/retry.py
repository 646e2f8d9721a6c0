"""What is retried, how often, and how long to wait (spec 7.1).

One rule decides retryability: an error is retried when it is a
:class:`~dpexport.errors.TransientError` whose ``code`` is one of the policy's
``retry_conditions`` (and not one of its ``non_retryable``). Everything else — a
:class:`~dpexport.errors.TerminalError`, any other exception — is raised at once.
The rule asks ``isinstance`` and compares codes; it never parses messages.

For store calls this is the only retry layer: the cloud backends turn their SDKs' own
retries off, so a call that keeps failing reaches the server ``max_attempts`` times,
and the waits between are these, not an SDK's. (One exception no setting turns off:
azure-storage-blob makes up to 3 requests for a download whose reply body is cut short.)

Waits grow exponentially with **full jitter** (Brooker, "Exponential Backoff And
Jitter", AWS Architecture Blog, 2015): before retry *n* (1-based) the ceiling is
``min(max_delay, initial_delay * multiplier ** (n - 1))`` and the actual wait is drawn
uniformly from ``[0, ceiling]``. Full jitter spreads the retries of many exporters
that failed together (a quota reset, a 503 burst) over the whole window instead of
letting them return in lock step. ``linear`` and ``constant`` strategies use the
ceilings ``initial * n`` and ``initial``.

The clock, the sleep and the random source are injected, so tests never sleep.
tenacity was considered and not used: its deadline (``stop_after_delay``) reads
``time.monotonic`` itself, so an injected clock cannot drive it cleanly; the loop
below is short and typed.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, Literal, TypeVar

from dpexport.config.spec import ResolvedConfig
from dpexport.errors import AlreadyExists, NotFound, PreconditionFailed, TransientError
from dpexport.storage.base import ObjectInfo, Store

if TYPE_CHECKING:
    from dpexport.config.models import RetryConfiguration

T = TypeVar("T")
log = logging.getLogger(__name__)
#: the jitter's own random source: retries on background threads (alert deliveries, lease
#: renewals, exports in parallel) neither draw from nor disturb the global ``random``
#: stream a caller may have seeded
_JITTER = random.Random()

DEFAULT_RETRY_CONDITIONS = (
    "RATE_LIMIT_EXCEEDED",
    "QUOTA_EXCEEDED",
    "TIMEOUT",
    "INTERNAL_ERROR",
    "SERVICE_UNAVAILABLE",
)
DEFAULT_NON_RETRYABLE = ("PERMISSION_DENIED", "INVALID_ARGUMENT", "NOT_FOUND", "ALREADY_EXISTS")
#: the spec 7.1 example's ``deadline=7200.0``, used when the config sets none
DEFAULT_DEADLINE_SECONDS = 7200.0


@dataclass(frozen=True)
class RetryPolicy:
    """Spec 7.1 ``retry_configuration``, resolved. ``max_attempts`` counts the first
    attempt; ``deadline_seconds`` bounds the whole call (attempts plus waits) and
    ``None`` means no deadline."""

    max_attempts: int = 5
    initial_delay_seconds: float = 30.0
    max_delay_seconds: float = 3600.0
    multiplier: float = 2.0
    deadline_seconds: float | None = DEFAULT_DEADLINE_SECONDS
    backoff: Literal["exponential", "linear", "constant"] = "exponential"
    jitter: bool = True
    retry_conditions: frozenset[str] = frozenset(DEFAULT_RETRY_CONDITIONS)
    non_retryable: frozenset[str] = frozenset(DEFAULT_NON_RETRYABLE)

    def __post_init__(self) -> None:
        # A config is refused by `check` (dpexport.config.value_checks) with its YAML
        # path; this guards a policy built in Python, so neither runs a policy that
        # never tries, waits a negative time or shrinks its waits.
        problems = [
            f"{name} {rule}"
            for name, bad, rule in (
                ("max_attempts", self.max_attempts < 1, "must be >= 1 (the first attempt)"),
                ("initial_delay_seconds", self.initial_delay_seconds < 0, "must be >= 0"),
                (
                    "max_delay_seconds",
                    self.max_delay_seconds < self.initial_delay_seconds,
                    "must be >= initial_delay_seconds",
                ),
                (
                    "multiplier",
                    self.backoff == "exponential" and self.multiplier < 1,
                    "must be >= 1 for exponential backoff",
                ),
                (
                    "deadline_seconds",
                    self.deadline_seconds is not None and self.deadline_seconds <= 0,
                    "must be > 0, or None for no deadline",
                ),
            )
            if bad
        ]
        if problems:
            raise ValueError("invalid retry policy: " + "; ".join(problems))

    @classmethod
    def from_config(cls, config: ResolvedConfig | RetryConfiguration | None) -> RetryPolicy:
        """From a ``ResolvedConfig`` (its ``retry_configuration``), a
        ``RetryConfiguration`` model, or ``None`` (spec defaults)."""
        block = config.retry_configuration if isinstance(config, ResolvedConfig) else config
        if block is None:
            return cls()
        deadline = block.deadline_seconds
        return cls(
            max_attempts=int(block.max_attempts),
            initial_delay_seconds=float(block.initial_delay_seconds),
            max_delay_seconds=float(block.max_delay_seconds),
            multiplier=float(block.multiplier),
            deadline_seconds=float(deadline) if deadline is not None else DEFAULT_DEADLINE_SECONDS,
            backoff=block.backoff_strategy,
            retry_conditions=frozenset(c.upper() for c in block.retry_conditions),
            non_retryable=frozenset(c.upper() for c in block.non_retryable),
        )

    def ceiling(self, retry: int) -> float:
        """The longest wait before retry number ``retry`` (1-based), before jitter."""
        if self.backoff == "constant":
            raw = self.initial_delay_seconds
        elif self.backoff == "linear":
            raw = self.initial_delay_seconds * retry
        else:
            raw = self.initial_delay_seconds * self.multiplier ** (retry - 1)
        return min(self.max_delay_seconds, raw)

    def delay(self, retry: int, rng: Callable[[], float]) -> float:
        """The wait before retry ``retry``: uniform in ``[0, ceiling]`` (full jitter);
        ``rng`` returns a float in ``[0, 1)`` (``random.random``)."""
        top = self.ceiling(retry)
        return top * rng() if self.jitter else top

    def is_retryable(self, exc: BaseException) -> bool:
        """The one retry rule: a TransientError whose code the policy retries."""
        if not isinstance(exc, TransientError):
            return False
        code = exc.code.upper()
        return code in self.retry_conditions and code not in self.non_retryable


@dataclass(frozen=True)
class Attempt:
    """One failed attempt, as ``retry_history.json`` lists it. ``delay_seconds`` is the
    wait before the next attempt, ``None`` when no retry followed (``gave_up`` says
    why: ``non_retryable``, ``max_attempts`` or ``deadline``)."""

    attempt: int
    operation: str
    code: str
    error_type: str
    message: str
    at: datetime
    delay_seconds: float | None
    gave_up: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "attempt": self.attempt,
            "operation": self.operation,
            "code": self.code,
            "error_type": self.error_type,
            "message": self.message,
            "at": self.at.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            "delay_seconds": None if self.delay_seconds is None else round(self.delay_seconds, 3),
            "gave_up": self.gave_up,
        }


def history_json(history: list[Attempt]) -> list[dict[str, Any]]:
    """A history as the JSON list stored in ``retry_history.json``."""
    return [a.to_json() for a in history]


def _code(exc: BaseException) -> str:
    code = getattr(exc, "code", None)
    return str(code) if code else type(exc).__name__


def _utcnow() -> datetime:
    return datetime.now(UTC)


def retry_call(
    fn: Callable[[], T],
    policy: RetryPolicy,
    *,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    on_attempt: Callable[[Attempt], None] | None = None,
    rng: Callable[[], float] | None = None,
    wall_clock: Callable[[], datetime] = _utcnow,
    operation: str = "",
) -> T:
    """Call ``fn`` until it succeeds, retrying what ``policy`` says is retryable.

    Every failed attempt is reported to ``on_attempt`` (pass ``history.append`` to
    collect them). When attempts or the deadline run out, or the error is not
    retryable, the last error is raised unchanged, so callers still see its type.
    A wait that would end past the deadline is not started.
    """
    draw = rng or _JITTER.random
    started = clock()
    attempt = 0
    while True:
        attempt += 1
        try:
            return fn()
        except Exception as exc:
            gave_up: str | None = None
            delay: float | None = None
            if not policy.is_retryable(exc):
                gave_up = "non_retryable"
            elif attempt >= policy.max_attempts:
                gave_up = "max_attempts"
            else:
                delay = policy.delay(attempt, draw)
                deadline = policy.deadline_seconds
                if deadline is not None and clock() - started + delay > deadline:
                    gave_up, delay = "deadline", None
            record = Attempt(
                attempt,
                operation,
                _code(exc),
                type(exc).__name__,
                str(exc),
                wall_clock(),
                delay,
                gave_up,
            )
            if on_attempt is not None:
                on_attempt(record)
            if gave_up or delay is None:
                raise
            log.warning(
                "%s failed (%s, attempt %d of %d); retrying in %.1f s",
                operation or "operation",
                record.code,
                attempt,
                policy.max_attempts,
                delay,
            )
            sleep(delay)


@dataclass
class Retrier:
    """A policy bound to a clock, a sleep and a random source, collecting the history
    of every call made through it (one export's ``retry_history.json``)."""

    policy: RetryPolicy = field(default_factory=RetryPolicy)
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep
    rng: Callable[[], float] = _JITTER.random
    wall_clock: Callable[[], datetime] = _utcnow
    history: list[Attempt] = field(default_factory=list)
    #: a long-lived retrier (a command's stores, a scheduler's) keeps no history
    keep_history: bool = True

    def call(self, fn: Callable[[], T], operation: str = "") -> T:
        """``retry_call`` with this retrier's policy, clock and history."""
        return retry_call(
            fn,
            self.policy,
            clock=self.clock,
            sleep=self.sleep,
            on_attempt=self.history.append if self.keep_history else None,
            rng=self.rng,
            wall_clock=self.wall_clock,
            operation=operation,
        )

    @property
    def retry_count(self) -> int:
        """How many retries were made (failed attempts that were followed by another)."""
        return sum(1 for a in self.history if a.gave_up is None)

    def history_json(self) -> list[dict[str, Any]]:
        return history_json(self.history)


class RetryingStore:
    """A Store whose every primitive is retried by a :class:`Retrier`.

    A transient failure can be ambiguous: the request may have taken effect before
    the connection dropped. On a *retry* (never on a first attempt) the conditional
    primitives therefore check whether the earlier attempt already did the work:
    ``put_if_absent`` / ``replace_if_match`` that find the key holding exactly their
    bytes, and a ``move`` whose source is gone but whose destination exists, count as
    done instead of raising AlreadyExists / PreconditionFailed / NotFound.
    """

    def __init__(self, store: Store, retrier: Retrier) -> None:
        if isinstance(store, RetryingStore):  # one retry layer, never one inside another
            store = store.inner
        self.inner: Store = store
        self.retrier = retrier
        self.url = store.url

    def __getattr__(self, name: str) -> Any:
        """A backend's own calls (lifecycle rules, tiers): the backend's; a copy writing
        with server-side encryption (``with_encryption``) is retried as this one is."""
        attr = getattr(self.__dict__["inner"], name)
        if name == "with_encryption":
            return lambda sse: RetryingStore(attr(sse), self.retrier)
        return attr

    def _call(self, operation: str, key: str, fn: Callable[[], T]) -> T:
        return self.retrier.call(fn, f"{operation} {self.inner.uri(key)}")

    def uri(self, key: str) -> str:
        return self.inner.uri(key)

    def put_file(self, key: str, source: Path) -> ObjectInfo:
        return self._call("put_file", key, lambda: self.inner.put_file(key, source))

    def put_bytes(self, key: str, data: bytes) -> ObjectInfo:
        return self._call("put_bytes", key, lambda: self.inner.put_bytes(key, data))

    def _ours(self, key: str, data: bytes) -> ObjectInfo | None:
        info = self.inner.head(key)
        if info is not None and self.inner.get(key) == data:
            return info
        return None

    def put_if_absent(self, key: str, data: bytes) -> ObjectInfo:
        tries = 0

        def once() -> ObjectInfo:
            nonlocal tries
            tries += 1
            try:
                return self.inner.put_if_absent(key, data)
            except AlreadyExists:
                done = self._ours(key, data) if tries > 1 else None
                if done is None:
                    raise
                return done

        return self._call("put_if_absent", key, once)

    def replace_if_match(self, key: str, data: bytes, version: str | None) -> ObjectInfo:
        tries = 0

        def once() -> ObjectInfo:
            nonlocal tries
            tries += 1
            try:
                return self.inner.replace_if_match(key, data, version)
            except PreconditionFailed:
                done = self._ours(key, data) if tries > 1 else None
                if done is None:
                    raise
                return done

        return self._call("replace_if_match", key, once)

    def get(self, key: str) -> bytes:
        return self._call("get", key, lambda: self.inner.get(key))

    def open_read(self, key: str) -> BinaryIO:
        return self._call("open_read", key, lambda: self.inner.open_read(key))

    def head(self, key: str) -> ObjectInfo | None:
        return self._call("head", key, lambda: self.inner.head(key))

    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        # A listing is materialised inside the retry, so a failure halfway restarts it.
        return iter(self._call("list", prefix, lambda: list(self.inner.list(prefix))))

    def delete(self, key: str) -> None:
        self._call("delete", key, lambda: self.inner.delete(key))

    def copy(self, source_key: str, dest_key: str) -> ObjectInfo:
        return self._call("copy", dest_key, lambda: self.inner.copy(source_key, dest_key))

    def move(self, source_key: str, dest_key: str) -> ObjectInfo:
        tries = 0

        def once() -> ObjectInfo:
            nonlocal tries
            tries += 1
            try:
                return self.inner.move(source_key, dest_key)
            except NotFound:
                done = self.inner.head(dest_key) if tries > 1 else None
                if done is None:
                    raise
                return done

        return self._call("move", dest_key, once)

    def staging_dir(self) -> Path | None:
        return self.inner.staging_dir()
