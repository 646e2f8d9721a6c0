"""The named data checks of CONTRACT §9 (``validation:`` lists).

- :mod:`.registry`: the checks by name; parsing and validating ``validation:`` items.
- :mod:`.runner`: :class:`CheckRun`, one export's checks from SQL to manifest entries.
- :mod:`.rows`: checks judging each row by an SQL predicate (they can quarantine).
- :mod:`.dataset`: checks judging the export as a whole.
- :mod:`.reference`: built-in sensor ranges and ISO 4217 codes.
"""

from __future__ import annotations

from dpexport.checks.base import Check, CheckContext, CheckResult
from dpexport.checks.reference import ISO_4217, SENSOR_RANGES
from dpexport.checks.registry import CHECKS, parse_check_items, validate_check_items
from dpexport.checks.runner import REASON_COLUMN, CheckRun

__all__ = [
    "CHECKS",
    "ISO_4217",
    "REASON_COLUMN",
    "SENSOR_RANGES",
    "Check",
    "CheckContext",
    "CheckResult",
    "CheckRun",
    "parse_check_items",
    "validate_check_items",
]
