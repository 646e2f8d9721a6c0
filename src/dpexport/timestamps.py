"""RFC 3339 times as dpexport writes and reads them: the one formatter and the one parser.

Written: UTC, whole seconds, ``Z`` (spec 5.1's ``2025-09-16T14:30:22Z``). Read: that
shape and what else a person or another tool may write (an offset, fractions of a
second, no zone at all), by :func:`parse_rfc3339`. Callers decide what a text that is
no time means to them (an error, ``None``, a default); the parser raises ``ValueError``.
"""

from __future__ import annotations

from datetime import UTC, datetime, tzinfo

__all__ = ["parse_rfc3339", "rfc3339"]


def rfc3339(t: datetime) -> str:
    """UTC time as RFC 3339 with ``Z`` and whole seconds (spec 5.1's shape)."""
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_rfc3339(text: str, *, default_zone: tzinfo | None = UTC) -> datetime:
    """The time an RFC 3339 text names, aware and in UTC.

    Reads ``Z`` or a numeric offset, fractions of a second, and the other ISO 8601
    forms :meth:`datetime.fromisoformat` reads. A text naming no zone is in
    ``default_zone`` (UTC); with ``default_zone=None`` it comes back naive, as written.
    ``ValueError`` for a text that is no such time, ``TypeError`` for a value that is no
    text. (It costs no more than ``fromisoformat``: no ``strptime`` locale tables.)
    """
    parsed = datetime.fromisoformat(text)
    if parsed.tzinfo is None:
        if default_zone is None:
            return parsed
        parsed = parsed.replace(tzinfo=default_zone)
    return parsed.astimezone(UTC)
