"""Spec 4.1 ``retention``: how long every object a table exported must be kept
(CONTRACT §12). Whatever would delete one of them earlier (``lifecycle sweep``,
``lifecycle archive``'s removal at the source, a FULL_REFRESH retirement) asks here
first, and a refusal is reported, never skipped silently."""

from __future__ import annotations

from datetime import datetime

from dpexport.config.spec import TableSpec
from dpexport.errors import TerminalError


class RetentionHeld(TerminalError):
    """An object of a table with ``retention`` was to be deleted before its retention
    ended (never retried: time, not a retry, ends it)."""

    code = "FAILED_PRECONDITION"


def kept_until(spec: TableSpec, written: datetime) -> datetime | None:
    """When an object the table exported at ``written`` may be deleted (None: no
    retention, any time)."""
    return written + spec.retention if spec.retention else None


def check_deletable(spec: TableSpec, uri: str, written: datetime, now: datetime) -> None:
    """Raise ``RetentionHeld`` naming ``uri`` and the date when the table's retention still
    holds the object written at ``written``."""
    until = kept_until(spec, written)
    if spec.retention is not None and until is not None and now < until:
        raise RetentionHeld(
            f"{uri} is kept until {until:%Y-%m-%d} (retention {spec.retention.days} days "
            f"of {spec.qualified_name}); not deleted",
            table=spec.qualified_name,
            uri=uri,
        )
