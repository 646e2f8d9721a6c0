"""``pricing:`` (spec 10.1, CONTRACT §12): lines of the shipped price table overridden.

The block has the table's shape, ``section: {store: {line: amount}}``, for example
``pricing: {storage: {gs: {STANDARD: 0.026}}, warehouse: {bigquery: {per_tib: 5}}}``.
Amounts are USD (``0.026``, ``$0.026`` or ``0.026 USD``) in the table's units
(:mod:`dpexport.ops.prices`); a negative one is refused here, and a key that names no
line of the table by ``resolve`` (with the nearest line), so a typo never silently
leaves the shipped price in place.
"""

from __future__ import annotations

from pydantic import Field

from dpexport.config.models.common import Block, Money, empty_dict

Lines = dict[str, dict[str, Money]]


class Pricing(Block):
    """Overrides of :data:`dpexport.ops.prices.PRICES`, by section, store and line."""

    warehouse: Lines = Field(default_factory=empty_dict)
    storage: Lines = Field(default_factory=empty_dict)
    operations: Lines = Field(default_factory=empty_dict)
    egress: Lines = Field(default_factory=empty_dict)

    def lines(self) -> dict[tuple[str, str, str], Money]:
        """Every amount set, by (section, store, line)."""
        return {
            (section, store, line): amount
            for section in ("warehouse", "storage", "operations", "egress")
            for store, by_line in getattr(self, section).items()
            for line, amount in by_line.items()
        }
