"""``pricing:`` (CONTRACT §12): the config's overrides of the shipped price table
(:mod:`dpexport.ops.prices`), as its keys."""

from __future__ import annotations

from decimal import Decimal

from dpexport.config.issues import Issues
from dpexport.config.models import DpexportConfig


def resolve_pricing(model: DpexportConfig, issues: Issues) -> dict[str, Decimal]:
    """``pricing:`` as price-table keys (``storage.gs.STANDARD``); a key naming no line of
    the shipped table is an issue at its path, with the nearest line."""
    from dpexport.ops.prices import PRICES

    by_upper = {key.upper(): key for key in PRICES}
    out: dict[str, Decimal] = {}
    for (section, store, line), amount in model.pricing.lines().items():
        key = by_upper.get(f"{section}.{store}.{line}".upper())
        if key is not None:
            out[key] = amount.amount
            continue
        lines = [k.split(".", 1)[1] for k in PRICES if k.startswith(section + ".")]
        mine = [k.split(".", 1)[1] for k in lines if k.startswith(store.lower() + ".")]
        path = ("pricing", section, store, line)
        if mine:
            issues.choice(path, line, mine, f"{section} price of {store}")
        else:
            issues.choice(path, f"{store}.{line}", lines, f"{section} price")
    return out
