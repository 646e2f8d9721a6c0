"""BigQuery and Storage Read API errors as dpexport errors (spec 7.1 classes).

==========================================  =================================
BigQuery reason / exception                 dpexport error (code)
==========================================  =================================
rateLimitExceeded, HTTP 429                 TransientError RATE_LIMIT_EXCEEDED
quotaExceeded, resourcesExceeded            TransientError QUOTA_EXCEEDED
backendError, internalError, HTTP 5xx       TransientError INTERNAL_ERROR
timeout, deadline exceeded, RetryError      TransientError TIMEOUT
connection refused / reset, HTTP 503        TransientError SERVICE_UNAVAILABLE
accessDenied, HTTP 401/403                  PermissionDenied
invalid, invalidQuery, HTTP 400             InvalidArgument
notFound, HTTP 404                          NotFound
duplicate, HTTP 409                         AlreadyExists
==========================================  =================================

The *reason* of the first error BigQuery lists decides before the HTTP status: a 403
may be ``rateLimitExceeded`` (retryable) or ``accessDenied`` (not).
"""

from __future__ import annotations

import concurrent.futures

from dpexport.errors import (
    AlreadyExists,
    ExportError,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    TerminalError,
    TransientError,
)

__all__ = ["translate"]

_BY_REASON: dict[str, tuple[type[ExportError], str]] = {
    "ratelimitexceeded": (TransientError, "RATE_LIMIT_EXCEEDED"),
    "quotaexceeded": (TransientError, "QUOTA_EXCEEDED"),
    "resourcesexceeded": (TransientError, "QUOTA_EXCEEDED"),
    "backenderror": (TransientError, "INTERNAL_ERROR"),
    "internalerror": (TransientError, "INTERNAL_ERROR"),
    "jobbackenderror": (TransientError, "INTERNAL_ERROR"),
    "jobinternalerror": (TransientError, "INTERNAL_ERROR"),
    "timeout": (TransientError, "TIMEOUT"),
    "accessdenied": (PermissionDenied, "PERMISSION_DENIED"),
    "invalid": (InvalidArgument, "INVALID_ARGUMENT"),
    "invalidquery": (InvalidArgument, "INVALID_ARGUMENT"),
    "notfound": (NotFound, "NOT_FOUND"),
    "duplicate": (AlreadyExists, "ALREADY_EXISTS"),
}


def _by_status(status: int) -> tuple[type[ExportError], str] | None:
    if status == 429:
        return TransientError, "RATE_LIMIT_EXCEEDED"
    if status in (502, 503):
        return TransientError, "SERVICE_UNAVAILABLE"
    if status == 504:
        return TransientError, "TIMEOUT"
    if status >= 500:
        return TransientError, "INTERNAL_ERROR"
    if status in (401, 403):
        return PermissionDenied, "PERMISSION_DENIED"
    if status == 404:
        return NotFound, "NOT_FOUND"
    if status == 409:
        return AlreadyExists, "ALREADY_EXISTS"
    if status == 400:
        return InvalidArgument, "INVALID_ARGUMENT"
    return None


def _reason(exc: BaseException) -> str | None:
    errors = getattr(exc, "errors", None) or []
    for item in errors:
        if isinstance(item, dict) and item.get("reason"):
            return str(item["reason"]).lower()
    reason = getattr(exc, "reason", None)
    return str(reason).lower() if reason else None


def _message(exc: BaseException) -> str:
    text = getattr(exc, "message", None) or str(exc)
    return str(text).strip().splitlines()[0] if str(text).strip() else type(exc).__name__


def translate(exc: BaseException, what: str, *, table: str | None = None) -> ExportError:
    """Map an exception raised by a Google client call to our error tree."""
    from google.api_core import exceptions as gexc

    if isinstance(exc, ExportError):
        return exc
    message = f"{what}: {_message(exc)}"
    if isinstance(exc, gexc.RetryError):
        cause = exc.cause
        if cause is not None and not isinstance(cause, gexc.RetryError):
            inner = translate(cause, what, table=table)
            if isinstance(inner, TransientError):
                return TransientError(
                    f"{what}: gave up retrying: {_message(cause)}", table=table, code=inner.code
                )
            return inner
        return TransientError(message, table=table, code="TIMEOUT")
    if isinstance(exc, concurrent.futures.TimeoutError | TimeoutError | gexc.DeadlineExceeded):
        return TransientError(message, table=table, code="TIMEOUT")
    if isinstance(exc, gexc.GoogleAPICallError):
        reason = _reason(exc)
        mapped = _BY_REASON.get(reason or "")
        if mapped is None and exc.code is not None:
            mapped = _by_status(int(exc.code))
        if mapped is None and isinstance(exc, gexc.ServiceUnavailable):
            mapped = TransientError, "SERVICE_UNAVAILABLE"
        if mapped is not None:
            cls, code = mapped
            return cls(message, table=table, code=code)
        return TerminalError(message, table=table, code="INTERNAL_ERROR")
    if isinstance(exc, ConnectionError | OSError):
        return TransientError(message, table=table, code="SERVICE_UNAVAILABLE")
    try:
        import requests

        if isinstance(exc, requests.Timeout):
            return TransientError(message, table=table, code="TIMEOUT")
        if isinstance(exc, requests.ConnectionError):
            return TransientError(message, table=table, code="SERVICE_UNAVAILABLE")
    except ImportError:  # pragma: no cover - requests comes with google-cloud-core
        pass
    return TerminalError(message, table=table, code="INTERNAL_ERROR")
