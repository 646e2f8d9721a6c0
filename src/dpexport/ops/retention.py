"""Spec 4.1 ``retention``: how long every object a table exported must be kept
(CONTRACT §12). Whatever would delete one of them earlier (``lifecycle sweep``,
``lifecycle archive``'s removal at the source, a FULL_REFRESH retirement) asks here
first, and a refusal is reported, never skipped silently.

A table's retention is the longest of its own ``retention:`` (spec 4.1 ``append_only``)
and what its ``compliance`` list implies (spec 1.4: financial records, SOX or PCI, 7
years; other compliance data 10 years). It is a minimum: when it ends the object is
whatever the other rules make it (``sweep`` deletes it only if an ``auto_delete`` rule
is due), not deleted because of it.

``compact``'s snapshot (``{destination}__snapshot/``) is a copy folded from increments
that keep every row themselves; it has no retention of its own, so the next ``compact``
can replace it."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from dpexport.config.spec import TableSpec
from dpexport.errors import TerminalError
from dpexport.storage import layout

#: spec 1.4's retention of compliance records: kind -> years
COMPLIANCE_YEARS = {"financial": 7, "compliance": 10}


class RetentionHeld(TerminalError):
    """An object of a table with ``retention`` was to be deleted before its retention
    ended (never retried: time, not a retry, ends it)."""

    code = "FAILED_PRECONDITION"


def years(n: int) -> timedelta:
    """``n`` calendar years as days (leap days included on average)."""
    return timedelta(days=round(365.25 * n))


def compliance_kind(compliance: Sequence[str]) -> str | None:
    """``financial`` (SOX, PCI), ``compliance`` (any other entry) or None (no list)."""
    if not compliance:
        return None
    names = " ".join(compliance).upper()
    return "financial" if "SOX" in names or "PCI" in names else "compliance"


def is_compact_snapshot(spec: TableSpec) -> bool:
    """Whether ``spec`` is the FULL_REFRESH copy ``compact`` writes of a table."""
    return spec.mode == "FULL_REFRESH" and layout.is_snapshot_destination(spec.destination)


def table_retention(spec: TableSpec) -> timedelta | None:
    """How long the table's objects are kept at least (None: no retention)."""
    if is_compact_snapshot(spec):
        return None
    kind = compliance_kind(spec.compliance)
    held = [d for d in (spec.retention, years(COMPLIANCE_YEARS[kind]) if kind else None) if d]
    return max(held) if held else None


def describe(spec: TableSpec) -> str:
    """The table's retention in words, for reports (``retention 2190 days of x.y``)."""
    keep = table_retention(spec)
    days = keep.days if keep is not None else 0
    kind = compliance_kind(spec.compliance)
    why = f", {kind}: {', '.join(spec.compliance)}" if kind and spec.retention is None else ""
    return f"retention {days} days of {spec.qualified_name}{why}"


def kept_until(spec: TableSpec, written: datetime) -> datetime | None:
    """When an object the table exported at ``written`` may be deleted (None: no
    retention, any time)."""
    keep = table_retention(spec)
    return written + keep if keep is not None else None


def check_deletable(spec: TableSpec, uri: str, written: datetime, now: datetime) -> None:
    """Raise ``RetentionHeld`` naming ``uri`` and the date when the table's retention still
    holds the object written at ``written``."""
    until = kept_until(spec, written)
    if until is not None and now < until:
        raise RetentionHeld(
            f"{uri} is kept until {until:%Y-%m-%d} ({describe(spec)}); not deleted",
            table=spec.qualified_name,
            uri=uri,
        )
