"""Fault injection: a store failing 10 % of requests (throttling, 503, resets), made
reliable by RetryingStore; permission and not-found errors are never retried."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import NoReturn

import pytest

from dpexport.errors import AlreadyExists, ExportError, NotFound, PermissionDenied, TransientError
from dpexport.reliability.retry import Retrier, RetryingStore, RetryPolicy
from dpexport.storage.local import LocalStore
from tests.unit.reliability.faults import FlakyStore


class FakeTime:
    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def _retrier(t: FakeTime) -> Retrier:
    # enough attempts that a 10 % failure rate cannot exhaust them in this run
    policy = RetryPolicy(max_attempts=8, deadline_seconds=None)
    return Retrier(policy, clock=t.clock, sleep=t.sleep)


def _workload(store: RetryingStore, scratch: Path) -> dict[str, bytes]:
    """The store operations one export makes: staged files, moves, a token, a
    compare-and-swap watermark, manifests, markers, listings, clean-up."""
    expected: dict[str, bytes] = {}
    store.put_if_absent("idempotency-tokens/t_2025-09-16_1758000000_ab12cd34.json", b'{"t": 1}')
    expected["idempotency-tokens/t_2025-09-16_1758000000_ab12cd34.json"] = b'{"t": 1}'
    for i in range(40):
        src = scratch / f"part{i}.bin"
        src.write_bytes(f"rows {i}".encode())
        store.put_file(f"_staging/exp/part{i}.bin", src)
        store.move(f"_staging/exp/part{i}.bin", f"prod/d/t/2025/09/16/t_{i:03d}.parquet")
        expected[f"prod/d/t/2025/09/16/t_{i:03d}.parquet"] = f"rows {i}".encode()
    version = None
    for n in range(10):
        data = json.dumps({"watermark": n}).encode()
        info = store.replace_if_match("_state/watermarks/d.t.json", data, version)
        version = info.version
    expected["_state/watermarks/d.t.json"] = json.dumps({"watermark": 9}).encode()
    for i in range(20):
        key = f"prod/d/t/2025/09/16/manifest_{i:02d}.json"
        store.put_bytes(key, b"{}")
        expected[key] = b"{}"
        assert store.get(key) == b"{}"
        assert store.head(key) is not None
    store.copy("prod/d/t/2025/09/16/manifest_00.json", "prod/d/t/2025/09/16/SUCCESS")
    expected["prod/d/t/2025/09/16/SUCCESS"] = b"{}"
    for i in range(5):
        store.put_bytes(f"_staging/junk{i}", b"x")
        store.delete(f"_staging/junk{i}")
    assert len(list(store.list("prod/"))) == 61
    return expected


@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5])
def test_every_operation_succeeds_through_ten_percent_failures(tmp_path: Path, seed: int) -> None:
    local = LocalStore(tmp_path / "bucket", url="gs://bucket")
    flaky = FlakyStore(local, seed=seed, rate=0.10)
    t = FakeTime()
    retrier = _retrier(t)
    store = RetryingStore(flaky, retrier)
    scratch = tmp_path / "scratch"
    scratch.mkdir()

    expected = _workload(store, scratch)

    for key, data in expected.items():
        assert local.get(key) == data, key
    assert not list(local.list("_staging/"))
    # faults did happen, every one of them was retried, and nothing gave up
    assert len(flaky.failures) >= 8, flaky.failures
    assert retrier.retry_count == len(flaky.failures)
    assert all(a.gave_up is None for a in retrier.history)
    assert len(t.sleeps) == len(flaky.failures)
    codes = Counter(a.code for a in retrier.history)
    assert set(codes) <= {"RATE_LIMIT_EXCEEDED", "SERVICE_UNAVAILABLE"}
    assert 0.05 < len(flaky.failures) / flaky.requests < 0.2


def test_the_same_seed_fails_the_same_requests(tmp_path: Path) -> None:
    runs = []
    for n in range(2):
        local = LocalStore(tmp_path / f"b{n}")
        flaky = FlakyStore(local, seed=42)
        store = RetryingStore(flaky, _retrier(FakeTime()))
        (tmp_path / f"s{n}").mkdir()
        _workload(store, tmp_path / f"s{n}")
        runs.append(flaky.failures)
    assert runs[0] == runs[1] and runs[0]


def test_a_lost_answer_to_a_conditional_create_is_not_a_conflict(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The create took effect, the answer was lost: the retry sees our own bytes."""
    local = LocalStore(tmp_path)
    flaky = FlakyStore(local, seed=0, rate=1.0, after_share=1.0)
    retrier = _retrier(FakeTime())
    store = RetryingStore(flaky, retrier)
    calls = {"n": 0}
    original = flaky._fault

    def once(op: str) -> tuple[bool, TransientError | None]:
        calls["n"] += 1
        return original(op) if calls["n"] == 1 else (False, None)

    monkeypatch.setattr(flaky, "_fault", once)
    store.put_if_absent("tok", b"mine")
    assert local.get("tok") == b"mine"
    assert retrier.retry_count == 1
    # someone else's token is still a conflict
    local.put_bytes("other", b"theirs")
    with pytest.raises(AlreadyExists):
        store.put_if_absent("other", b"mine")


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (
            PermissionDenied("403 Forbidden: no storage.objects.create", uri="gs://b/k"),
            "PERMISSION_DENIED",
        ),
        (NotFound("404: no such bucket", uri="gs://b"), "NOT_FOUND"),
    ],
)
def test_permission_denied_and_not_found_are_not_retried(
    tmp_path: Path, error: ExportError, code: str
) -> None:
    class Refusing(LocalStore):
        calls = 0

        def put_bytes(self, key: str, data: bytes) -> NoReturn:
            Refusing.calls += 1
            raise error

    t = FakeTime()
    retrier = _retrier(t)
    store = RetryingStore(Refusing(tmp_path), retrier)
    with pytest.raises(type(error)) as info:
        store.put_bytes("k", b"x")
    assert info.value is error and code in str(info.value.code)
    assert str(info.value).startswith(str(error).split(" (")[0])
    assert Refusing.calls == 1 and t.sleeps == []
    assert [(a.code, a.gave_up) for a in retrier.history] == [(code, "non_retryable")]
