"""Check parameters: their kinds, defaults, and parsing into checked Python values.

A parser takes the raw YAML value and returns the parsed value, or raises
``ValueError`` whose text says what was expected; the registry turns that into a
:class:`~dpexport.errors.ConfigIssue` at the parameter's YAML path.
"""

from __future__ import annotations

import contextlib
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from dpexport.config import units

Parser = Callable[[object], object]


@dataclass(frozen=True)
class Param:
    """One parameter of a check: how to parse it, its default, what it means."""

    parse: Parser
    default: object
    doc: str = ""


def column(raw: object) -> str:
    """A column name."""
    if not isinstance(raw, str) or not raw.strip():
        raise ValueError("a column name")
    return raw


def columns(raw: object) -> tuple[str, ...]:
    """A non-empty list of column names (a single name is accepted too)."""
    if isinstance(raw, str):
        raw = [raw]
    if not isinstance(raw, list | tuple) or not raw:
        raise ValueError("a non-empty list of column names")
    return tuple(column(x) for x in raw)


def strings(raw: object) -> tuple[str, ...]:
    """A non-empty list of strings."""
    if not isinstance(raw, list | tuple) or not raw or not all(isinstance(x, str) for x in raw):
        raise ValueError("a non-empty list of strings")
    return tuple(raw)


def number(raw: object) -> float:
    """A finite number."""
    if isinstance(raw, bool) or not isinstance(raw, int | float) or not math.isfinite(raw):
        raise ValueError("a number")
    return float(raw)


def non_negative_int(raw: object) -> int:
    """An integer >= 0."""
    if isinstance(raw, bool) or not isinstance(raw, int) or raw < 0:
        raise ValueError("an integer >= 0")
    return raw


def positive_number(raw: object) -> float:
    """A number > 0."""
    value = number(raw)
    if value <= 0:
        raise ValueError("a number > 0")
    return value


def fraction(raw: object) -> float:
    """A share: a number in [0, 1] or a percentage string such as ``"5%"``."""
    value = -1.0
    if isinstance(raw, str):
        with contextlib.suppress(ValueError):
            value = units.parse_percent(raw)
    elif isinstance(raw, int | float) and not isinstance(raw, bool):
        value = float(raw)
    if not 0 <= value <= 1:
        raise ValueError("a fraction in [0, 1] or a percentage such as '5%'")
    return value


def duration(raw: object) -> timedelta:
    """A duration: ``"5 minutes"``, ``"30s"``, ``"1 hour"``, or a number of seconds."""
    try:
        return units.parse_duration(raw)
    except ValueError:
        raise ValueError(units.DURATION_FORMS) from None


def ranges(raw: object) -> dict[str, tuple[float | None, float | None]]:
    """``{sensor_type: [min, max]}``; ``null`` for an open end; min <= max."""
    if not isinstance(raw, dict) or not raw:
        raise ValueError("a mapping {sensor_type: [min, max]}")
    out: dict[str, tuple[float | None, float | None]] = {}
    for key, bounds in raw.items():
        if not isinstance(bounds, list | tuple) or len(bounds) != 2:
            raise ValueError(f"[min, max] for {key!r}")
        lo = None if bounds[0] is None else number(bounds[0])
        hi = None if bounds[1] is None else number(bounds[1])
        if lo is not None and hi is not None and lo > hi:
            raise ValueError(f"min <= max for {key!r}")
        out[str(key)] = (lo, hi)
    return out


_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def reference(raw: object) -> tuple[str, str, str]:
    """``dataset.table.column`` naming a reference column."""
    parts = raw.split(".") if isinstance(raw, str) else []
    if len(parts) != 3 or not all(_IDENT.fullmatch(p) for p in parts):
        raise ValueError("dataset.table.column")
    return parts[0], parts[1], parts[2]


def severity(raw: object) -> str:
    """``error`` (the export fails) or ``warn`` (the check is reported as warned)."""
    if raw not in ("error", "warn"):
        raise ValueError("error or warn")
    return str(raw)


def on_fail(raw: object) -> str:
    """``fail`` or ``quarantine`` (the offending rows go to the dead-letter queue)."""
    if raw not in ("fail", "quarantine"):
        raise ValueError("fail or quarantine")
    return str(raw)


#: Parameters every check takes.
COMMON: dict[str, Param] = {
    "severity": Param(severity, "error", "error: the export fails; warn: reported only"),
    "on_fail": Param(on_fail, "fail", "fail, or quarantine the offending rows"),
}


def nearest_value(param: Param, raw: object) -> str | None:
    """The value nearest ``raw`` that ``param`` takes, as text, for "did you mean":
    a number written as text (``"10"`` -> ``10 (unquoted)``), a number meant as a
    percentage (``5`` -> ``5%``), else the default when it is a plain number or word."""
    candidates: list[object] = []
    if isinstance(raw, str):
        for convert in (int, float):
            with contextlib.suppress(ValueError):
                candidates.append(convert(raw.strip()))
    elif isinstance(raw, int | float) and not isinstance(raw, bool):
        candidates.append(f"{raw:g}%")
    for candidate in candidates:
        try:
            parsed = param.parse(candidate)
        except ValueError:
            continue
        if isinstance(raw, str):
            return f"{candidate} (unquoted)"
        if isinstance(parsed, float):  # "42%" is a share only where a number is meant
            return str(candidate)
    default = param.default
    if isinstance(default, str | int | float) and not isinstance(default, bool):
        return str(default)
    return None
