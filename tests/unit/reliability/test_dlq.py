"""The dead-letter queue (spec 7.2): documents, ages, auto-retry, escalation, poison, purge."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from dpexport.config.models import DlqConfiguration
from dpexport.errors import NotFound, TransientError
from dpexport.reliability import dlq
from dpexport.reliability.retry import Attempt, RetryPolicy
from dpexport.storage.local import LocalStore

T0 = datetime(2025, 9, 16, 14, 35, 22, tzinfo=UTC)


def _store(tmp_path: Path) -> LocalStore:
    return LocalStore(tmp_path / "bucket", url="gs://diagnosticpro-exports")


def _record(store: LocalStore, export_id: str, when: datetime, table: str = "d.t") -> str:
    attempt = Attempt(1, "extract", "QUOTA_EXCEEDED", "TransientError", "quota", when, 30.0)
    return dlq.record_failure(
        store,
        export_id,
        dlq.export_request(table=table, at=when, trigger="cron", export_id=export_id),
        dlq.error_details(TransientError("Quota exceeded", code="QUOTA_EXCEEDED"), now=when),
        [attempt],
    )


def test_record_failure_writes_the_three_documents(tmp_path: Path) -> None:
    store = _store(tmp_path)
    uri = _record(store, "exp_1", T0)
    assert uri == "gs://diagnosticpro-exports/dead-letter-queue/failed_exports/exp_1/"
    base = "dead-letter-queue/failed_exports/exp_1/"
    request = json.loads(store.get(base + "export_request.json"))
    assert request == {
        "export_id": "exp_1",
        "table": "d.t",
        "at": "2025-09-16T14:35:22Z",
        "trigger": "cron",
        "principal": None,
        "destination": None,
    }
    error = json.loads(store.get(base + "error_details.json"))
    assert error["code"] == "QUOTA_EXCEEDED" and error["retryable"] is True
    assert error["failed_at"] == "2025-09-16T14:35:22Z" and error["dlq_retries"] == 0
    history = json.loads(store.get(base + "retry_history.json"))
    assert [(h["attempt"], h["code"], h["delay_seconds"]) for h in history] == [
        (1, "QUOTA_EXCEEDED", 30.0)
    ]


def test_non_dpexport_errors_are_internal_and_not_retryable() -> None:
    details = dlq.error_details(ValueError("boom"), now=T0)
    assert details["code"] == "INTERNAL_ERROR" and details["retryable"] is False
    assert details["message"] == "ValueError: boom"
    assert dlq.error_details(NotFound("no table"), now=T0)["code"] == "NOT_FOUND"


@pytest.mark.parametrize(
    ("hours", "due", "escalate"),
    [
        (0, False, False),
        (5.9, False, False),
        (6, True, False),
        (47.9, True, False),
        (48, True, True),
    ],
)
def test_auto_retry_after_6_hours_and_escalation_after_48(
    tmp_path: Path, hours: float, due: bool, escalate: bool
) -> None:
    store = _store(tmp_path)
    _record(store, "exp_1", T0)
    (entry,) = dlq.list_entries(store, T0 + timedelta(hours=hours))
    assert entry.export_id == "exp_1" and entry.state == "open" and entry.table == "d.t"
    assert entry.age == timedelta(hours=hours)
    assert (entry.due_for_auto_retry, entry.escalate) == (due, escalate)
    assert entry.to_json()["age_hours"] == round(hours, 2)


def test_settings_come_from_the_spec_block() -> None:
    block = DlqConfiguration.model_validate(
        {
            "retention": "30 days",
            "processing": {"auto_retry_after": "1 hour", "escalation_after": "2 hours"},
        }
    )
    settings = dlq.DlqSettings.from_config(block)
    assert settings.retention == timedelta(days=30)
    assert settings.auto_retry_after == timedelta(hours=1)
    assert settings.next_retry(T0) == T0 + timedelta(hours=1)
    assert dlq.DlqSettings.from_config(None) == dlq.DlqSettings()


def test_poison_moves_the_entry(tmp_path: Path) -> None:
    store = _store(tmp_path)
    _record(store, "exp_1", T0)
    uri = dlq.poison(store, "exp_1", "attempts exhausted", now=T0 + timedelta(hours=1))
    assert uri == "gs://diagnosticpro-exports/dead-letter-queue/poison_messages/exp_1.json"
    assert not list(store.list("dead-letter-queue/failed_exports/"))
    doc = json.loads(store.get("dead-letter-queue/poison_messages/exp_1.json"))
    assert doc["reason"] == "attempts exhausted"
    assert doc["export_request"]["table"] == "d.t"
    assert doc["retry_history"][0]["code"] == "QUOTA_EXCEEDED"
    reason = store.get("dead-letter-queue/poison_messages/exp_1.failure_reason.txt")
    assert reason == b"attempts exhausted\n"
    (entry,) = dlq.list_entries(store, T0 + timedelta(hours=7))
    assert entry.state == "poisoned" and not entry.due_for_auto_retry


def test_purge_respects_the_90_day_retention_unless_forced(tmp_path: Path) -> None:
    store = _store(tmp_path)
    _record(store, "exp_old", T0 - timedelta(days=90))
    _record(store, "exp_new", T0 - timedelta(days=89))
    _record(store, "exp_poisoned", T0 - timedelta(days=120))
    dlq.poison(store, "exp_poisoned", "gave up", now=T0 - timedelta(days=100))
    assert sorted(dlq.purge(store, T0)) == ["exp_old", "exp_poisoned"]
    assert [e.export_id for e in dlq.list_entries(store, T0)] == ["exp_new"]
    assert dlq.purge(store, T0) == []
    assert dlq.purge(store, T0, force=True) == ["exp_new"]
    assert not list(store.list("dead-letter-queue/"))


@dataclass
class _Result:
    export_id: str | None
    status: str
    error: str | None = None
    reason: str | None = None
    already_done: bool = False


def test_retry_entry_success_removes_it(tmp_path: Path) -> None:
    store = _store(tmp_path)
    _record(store, "exp_1", T0)
    (entry,) = dlq.list_entries(store, T0)
    seen: list[dict[str, Any]] = []

    def rerun(request: dict[str, Any]) -> _Result:
        seen.append(request)
        return _Result("exp_2", "SUCCESS")

    outcome = dlq.retry_entry(store, entry, rerun, now=T0)
    assert outcome.outcome == "resolved" and outcome.new_export_id == "exp_2"
    assert seen[0]["table"] == "d.t" and seen[0]["at"] == "2025-09-16T14:35:22Z"
    assert dlq.list_entries(store, T0) == []


@pytest.mark.parametrize(
    "reason", ["in progress elsewhere", "lease taken over by another runner; nothing committed"]
)
def test_retry_entry_skipped_elsewhere_keeps_it(tmp_path: Path, reason: str) -> None:
    store = _store(tmp_path)
    _record(store, "exp_1", T0)
    (entry,) = dlq.list_entries(store, T0)
    outcome = dlq.retry_entry(
        store, entry, lambda r: _Result("exp_x", "SKIPPED", reason=reason), now=T0
    )
    assert outcome.outcome == "in_progress"
    assert len(dlq.list_entries(store, T0)) == 1


def test_retry_entry_already_exported_removes_it(tmp_path: Path) -> None:
    store = _store(tmp_path)
    _record(store, "exp_1", T0)
    (entry,) = dlq.list_entries(store, T0)
    reason = "already exported as exp_0 (token t_2025-09-16_1758033322_ab12cd34)"
    outcome = dlq.retry_entry(
        store,
        entry,
        lambda r: _Result("exp_0", "SKIPPED", reason=reason, already_done=True),
        now=T0,
    )
    assert outcome.outcome == "resolved"
    assert dlq.list_entries(store, T0) == []


def test_failed_retries_fold_into_the_entry_then_poison(tmp_path: Path) -> None:
    store = _store(tmp_path)
    _record(store, "exp_1", T0)
    policy = RetryPolicy(max_attempts=2)
    n = 0

    def rerun(request: dict[str, Any]) -> _Result:
        nonlocal n
        n += 1
        # the runner records its own DLQ entry for the failed re-run
        _record(store, f"exp_re{n}", T0 + timedelta(hours=6 * n), table=request["table"])
        return _Result(f"exp_re{n}", "FAILURE", error="Quota exceeded")

    first = dlq.retry_entry(
        store, dlq.list_entries(store, T0)[0], rerun, now=T0 + timedelta(hours=6)
    )
    assert first.outcome == "failed"
    (entry,) = dlq.list_entries(store, T0 + timedelta(hours=6))
    assert entry.export_id == "exp_1" and entry.failed_at == T0
    assert entry.last_attempt_at == T0 + timedelta(hours=6) and not entry.due_for_auto_retry
    assert entry.error["dlq_retries"] == 1 and entry.attempts == 3

    later = T0 + timedelta(hours=12)
    (entry,) = dlq.list_entries(store, later)
    assert entry.due_for_auto_retry
    second = dlq.retry_entry(store, entry, rerun, now=later, policy=policy)
    assert second.outcome == "poisoned"
    (entry,) = dlq.list_entries(store, later)
    assert entry.state == "poisoned" and entry.export_id == "exp_1"
    reason = store.get("dead-letter-queue/poison_messages/exp_1.failure_reason.txt").decode()
    assert reason.startswith("gave up after 2 DLQ retries (max_attempts 2)")
