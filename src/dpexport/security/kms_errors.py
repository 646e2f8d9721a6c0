"""Our error for a KMS's refusal to wrap a data key, by HTTP status: shared by the Cloud
KMS, AWS KMS and Azure Key Vault providers."""

from __future__ import annotations

from dpexport.errors import (
    ExportError,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    TransientError,
)


def wrap_error(
    key_name: str, status: int | None, detail: str | None, what: str = "could not wrap a data key"
) -> ExportError:
    message = f"KMS key {key_name!r} {what}: {detail}"
    if status in (401, 403):
        return PermissionDenied(message)
    if status in (429, 500, 502, 503, 504):
        code = "RATE_LIMIT_EXCEEDED" if status == 429 else "SERVICE_UNAVAILABLE"
        return TransientError(message, code=code)
    return NotFound(message) if status == 404 else InvalidArgument(message)
