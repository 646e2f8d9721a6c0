"""Failure handling: what is retried and how (``retry``), where failed exports wait
for review and re-runs (``dlq``). Spec 7.1 and 7.2."""

from __future__ import annotations

from dpexport.reliability.dlq import (
    DlqEntry,
    DlqSettings,
    error_details,
    export_request,
    list_entries,
    poison,
    purge,
    record_failure,
    retry_entry,
)
from dpexport.reliability.retry import (
    Attempt,
    Retrier,
    RetryingStore,
    RetryPolicy,
    history_json,
    retry_call,
)

__all__ = [
    "Attempt",
    "DlqEntry",
    "DlqSettings",
    "Retrier",
    "RetryPolicy",
    "RetryingStore",
    "error_details",
    "export_request",
    "history_json",
    "list_entries",
    "poison",
    "purge",
    "record_failure",
    "retry_call",
    "retry_entry",
]
