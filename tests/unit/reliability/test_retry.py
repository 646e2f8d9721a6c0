"""Retry policy (spec 7.1): exact delays, jitter bounds, deadline, what is not retried."""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Literal

import pytest

from dpexport.config.models import RetryConfiguration
from dpexport.errors import (
    ExportError,
    NotFound,
    PermissionDenied,
    TransientError,
)
from dpexport.reliability.retry import Attempt, Retrier, RetryPolicy, retry_call

SPEC = RetryPolicy()  # spec 7.1: 5 attempts, 30 s initial, x2, 3600 s cap, 7200 s deadline


class FakeTime:
    """A monotonic clock that only moves when the code under test sleeps."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def failing(errors: Sequence[Exception], value: str = "ok") -> Callable[[], str]:
    """A callable raising each of ``errors`` in turn, then returning ``value``."""
    pending = list(errors)

    def fn() -> str:
        if pending:
            raise pending.pop(0)
        return value

    return fn


def test_policy_from_the_spec_block() -> None:
    policy = RetryPolicy.from_config(RetryConfiguration(max_attempts=4, initial_delay_seconds=10))
    assert policy.max_attempts == 4
    assert [policy.ceiling(n) for n in (1, 2, 3)] == [10, 20, 40]
    assert policy.deadline_seconds == 7200
    assert "RATE_LIMIT_EXCEEDED" in policy.retry_conditions
    assert "NOT_FOUND" in policy.non_retryable


@pytest.mark.parametrize(
    ("backoff", "expected"),
    [
        ("exponential", [30, 60, 120, 240, 480, 960, 1920, 3600, 3600]),
        ("linear", [30, 60, 90, 120, 150, 180, 210, 240, 270]),
        ("constant", [30] * 9),
    ],
)
def test_ceilings(
    backoff: Literal["exponential", "linear", "constant"], expected: list[float]
) -> None:
    policy = RetryPolicy(backoff=backoff)
    assert [policy.ceiling(n) for n in range(1, 10)] == expected


def test_exact_delays_with_an_injected_random_source() -> None:
    t = FakeTime()
    draws = iter([0.5, 0.25, 1.0, 0.0])
    fn = failing([TransientError("503", code="SERVICE_UNAVAILABLE")] * 4)
    history: list[Attempt] = []
    assert (
        retry_call(
            fn,
            SPEC,
            clock=t.clock,
            sleep=t.sleep,
            rng=lambda: next(draws),
            on_attempt=history.append,
        )
        == "ok"
    )
    # full jitter: ceiling * draw, ceilings 30, 60, 120, 240
    assert t.sleeps == [15.0, 15.0, 120.0, 0.0]
    assert [a.attempt for a in history] == [1, 2, 3, 4]
    assert [a.delay_seconds for a in history] == [15.0, 15.0, 120.0, 0.0]
    assert all(a.code == "SERVICE_UNAVAILABLE" and a.gave_up is None for a in history)


def test_jitter_stays_within_zero_and_the_ceiling() -> None:
    rng = random.Random(7)
    policy = RetryPolicy(max_attempts=12, deadline_seconds=None)
    for retry in range(1, 12):
        ceiling = policy.ceiling(retry)
        draws = [policy.delay(retry, rng.random) for _ in range(200)]
        assert all(0 <= d <= ceiling for d in draws)
        # spread over the window, not bunched at one end
        assert min(draws) < 0.1 * ceiling and max(draws) > 0.9 * ceiling


def test_no_jitter_waits_the_ceiling() -> None:
    t = FakeTime()
    policy = RetryPolicy(jitter=False)
    fn = failing([TransientError("slow", code="TIMEOUT")] * 3)
    retry_call(fn, policy, clock=t.clock, sleep=t.sleep)
    assert t.sleeps == [30, 60, 120]


def test_max_attempts_then_the_last_error_is_raised() -> None:
    t = FakeTime()
    history: list[Attempt] = []
    errors = [TransientError(f"quota {i}", code="QUOTA_EXCEEDED") for i in range(5)]
    with pytest.raises(TransientError, match="quota 4"):
        retry_call(
            failing(errors),
            SPEC,
            clock=t.clock,
            sleep=t.sleep,
            rng=lambda: 1.0,
            on_attempt=history.append,
        )
    assert t.sleeps == [30, 60, 120, 240]
    assert len(history) == 5
    assert history[-1].gave_up == "max_attempts" and history[-1].delay_seconds is None


def test_deadline_stops_before_a_wait_that_would_pass_it() -> None:
    t = FakeTime()
    policy = RetryPolicy(max_attempts=10, deadline_seconds=200, jitter=False)
    history: list[Attempt] = []
    with pytest.raises(TransientError):
        retry_call(
            failing([TransientError("x", code="INTERNAL_ERROR")] * 10),
            policy,
            clock=t.clock,
            sleep=t.sleep,
            on_attempt=history.append,
        )
    # 30 + 60 = 90 s spent; the next wait (120) would end at 210 > 200
    assert t.sleeps == [30, 60]
    assert t.now <= 200
    assert history[-1].gave_up == "deadline"


def test_deadline_counts_time_spent_in_attempts() -> None:
    t = FakeTime()
    policy = RetryPolicy(max_attempts=10, deadline_seconds=100, jitter=False)

    def slow() -> str:
        t.now += 50  # each attempt takes 50 s
        raise TransientError("timeout", code="TIMEOUT")

    with pytest.raises(TransientError):
        retry_call(slow, policy, clock=t.clock, sleep=t.sleep)
    # attempt 1 ends at 50 s, + 30 s wait = 80 <= 100: wait; attempt 2 ends at 130: stop
    assert t.sleeps == [30]
    assert t.now == 130


@pytest.mark.parametrize(
    "error",
    [
        PermissionDenied("no access to bucket", uri="gs://b"),
        NotFound("no such table", table="d.t"),
        ExportError("data checks failed", code="INVALID_ARGUMENT"),
        ValueError("a bug"),
        # transient by type but its code is not one the policy retries
        TransientError("odd", code="UNKNOWN"),
    ],
)
def test_not_retried(error: Exception) -> None:
    t = FakeTime()
    history: list[Attempt] = []
    calls = []

    def fn() -> str:
        calls.append(1)
        raise error

    with pytest.raises(type(error)) as info:
        retry_call(fn, SPEC, clock=t.clock, sleep=t.sleep, on_attempt=history.append)
    assert info.value is error
    assert len(calls) == 1 and t.sleeps == []
    assert len(history) == 1 and history[0].gave_up == "non_retryable"


def test_retry_conditions_come_from_the_policy() -> None:
    t = FakeTime()
    policy = RetryPolicy(retry_conditions=frozenset({"TIMEOUT"}))
    with pytest.raises(TransientError):
        retry_call(
            failing([TransientError("429", code="RATE_LIMIT_EXCEEDED")]),
            policy,
            clock=t.clock,
            sleep=t.sleep,
        )
    assert t.sleeps == []


def test_retrier_collects_history_across_operations() -> None:
    t = FakeTime()
    stamp = datetime(2025, 9, 16, 14, 30, tzinfo=UTC)
    retrier = Retrier(
        RetryPolicy(jitter=False), clock=t.clock, sleep=t.sleep, wall_clock=lambda: stamp
    )
    assert retrier.call(failing([TransientError("a", code="TIMEOUT")]), "scan") == "ok"
    assert retrier.call(failing([]), "put") == "ok"
    assert (
        retrier.call(failing([TransientError("b", code="RATE_LIMIT_EXCEEDED")] * 2), "put") == "ok"
    )
    assert retrier.retry_count == 3
    assert retrier.history_json() == [
        {
            "attempt": 1,
            "operation": "scan",
            "code": "TIMEOUT",
            "error_type": "TransientError",
            "message": "a",
            "at": "2025-09-16T14:30:00.000000Z",
            "delay_seconds": 30.0,
            "gave_up": None,
        },
        {
            "attempt": 1,
            "operation": "put",
            "code": "RATE_LIMIT_EXCEEDED",
            "error_type": "TransientError",
            "message": "b",
            "at": "2025-09-16T14:30:00.000000Z",
            "delay_seconds": 30.0,
            "gave_up": None,
        },
        {
            "attempt": 2,
            "operation": "put",
            "code": "RATE_LIMIT_EXCEEDED",
            "error_type": "TransientError",
            "message": "b",
            "at": "2025-09-16T14:30:00.000000Z",
            "delay_seconds": 60.0,
            "gave_up": None,
        },
    ]


def test_jitter_leaves_the_global_random_stream_alone() -> None:
    """Retries draw their jitter from their own source: a caller's seeded ``random``
    gives the same numbers whether or not dpexport retried meanwhile (and a retry on a
    background thread cannot disturb a caller's draw)."""
    t = FakeTime()
    random.seed(11)
    state = random.getstate()
    fn = failing([TransientError("503", code="SERVICE_UNAVAILABLE")] * 3)
    assert retry_call(fn, SPEC, clock=t.clock, sleep=t.sleep) == "ok"
    assert (
        Retrier(SPEC, clock=t.clock, sleep=t.sleep).call(
            failing([TransientError("503", code="SERVICE_UNAVAILABLE")] * 2)
        )
        == "ok"
    )
    assert len(t.sleeps) == 5 and any(s > 0 for s in t.sleeps)
    assert random.getstate() == state
