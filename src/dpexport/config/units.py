"""Human units as the spec writes them: sizes, durations, thresholds, money, percentages.

Sizes are binary: ``1KB`` = 1024 bytes, ``1MB`` = 1024 * 1024 bytes, ``1GB`` = 1024**3
bytes (``KiB``/``MiB``/``GiB`` are accepted and mean the same). A plain integer is a
number of bytes. Durations are ``<number> <unit>`` (``24 hours``, ``7 days``,
``30 minutes``, ``2s``); a plain number is seconds.

Every parser raises ``ValueError`` whose message names the value and the accepted
forms, so a config error can teach the user what to write instead. Numbers are ASCII
digits; a size is exact however large; a duration beyond what ``timedelta`` holds
(999999999 days) is refused, not an ``OverflowError``.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal, InvalidOperation
from fractions import Fraction
from typing import TypeGuard

SIZE_FORMS = "a byte count or <number><unit> with unit B, KB, MB, GB or TB (e.g. 128MB)"
DURATION_FORMS = (
    "<number> <unit> with unit seconds, minutes, hours, days or weeks (e.g. 24 hours, 7 days)"
)
SIZE_THRESHOLD_FORMS = "<size> [per table] (e.g. 10GB per table)"
RATE_FORMS = "<percent>% over <duration> (e.g. 5% over 1 hour)"
MONEY_FORMS = "an amount such as $10, $2.50 or 10 USD"
PERCENT_FORMS = "a percentage such as 50% or a range such as 60-70%"

_SIZE_FACTORS = {
    "": 1,
    "B": 1,
    "K": 1024,
    "KB": 1024,
    "KIB": 1024,
    "M": 1024**2,
    "MB": 1024**2,
    "MIB": 1024**2,
    "G": 1024**3,
    "GB": 1024**3,
    "GIB": 1024**3,
    "T": 1024**4,
    "TB": 1024**4,
    "TIB": 1024**4,
}

_DURATION_UNITS = {
    "s": 1,
    "sec": 1,
    "secs": 1,
    "second": 1,
    "seconds": 1,
    "m": 60,
    "min": 60,
    "mins": 60,
    "minute": 60,
    "minutes": 60,
    "h": 3600,
    "hr": 3600,
    "hrs": 3600,
    "hour": 3600,
    "hours": 3600,
    "d": 86400,
    "day": 86400,
    "days": 86400,
    "w": 604800,
    "week": 604800,
    "weeks": 604800,
}

_NUMBER = r"([0-9]+(?:\.[0-9]+)?)"  # not \d: that is any script's digits
_SIZE_RE = re.compile(rf"^{_NUMBER}\s*([A-Za-z]*)$")
_DURATION_RE = re.compile(rf"^{_NUMBER}\s*([A-Za-z]+)$")
_THRESHOLD_RE = re.compile(r"^(.+?)\s+per\s+([A-Za-z_]+)$", re.IGNORECASE)
_RATE_RE = re.compile(rf"^{_NUMBER}\s*%\s*(?:over|per|in)\s+(.+)$", re.IGNORECASE)
_MONEY_RE = re.compile(rf"^(?:\$\s*{_NUMBER}|{_NUMBER}\s*(USD|\$))$", re.IGNORECASE)
_PERCENT_RE = re.compile(rf"^{_NUMBER}\s*%$")
_PERCENT_RANGE_RE = re.compile(rf"^{_NUMBER}\s*%?\s*-\s*{_NUMBER}\s*%$")


@dataclass(frozen=True)
class SizeThreshold:
    """``10GB per table``: ``bytes`` and what the limit applies to (``per``)."""

    bytes: int
    per: str | None = None


@dataclass(frozen=True)
class Rate:
    """``5% over 1 hour``: a fraction (0.05) measured over a sliding ``window``."""

    fraction: float
    window: timedelta


@dataclass(frozen=True)
class Money:
    """``$10``: an amount in ``currency`` (only USD is written in the spec)."""

    amount: Decimal
    currency: str = "USD"


def _reject_bool(value: object, forms: str) -> None:
    # YAML turns `yes`/`on` into booleans, and bool is an int subclass in Python.
    if isinstance(value, bool):
        raise ValueError(f"expected {forms}, got a boolean: {value!r}")


def _finite_number(value: object) -> TypeGuard[int | float]:
    # an int of any size is finite (math.isfinite would overflow converting it to float)
    return isinstance(value, int) or (isinstance(value, float) and math.isfinite(value))


def parse_size(value: object) -> int:
    """Parse a size into bytes: ``128MB`` -> 134217728; a plain int is bytes.

    Units are binary (MB = 1024 * 1024 bytes), case-insensitive.
    """
    _reject_bool(value, SIZE_FORMS)
    if isinstance(value, int):
        if value < 0:
            raise ValueError(f"size must not be negative: {value!r}; expected {SIZE_FORMS}")
        return value
    if isinstance(value, str):
        match = _SIZE_RE.match(value.strip())
        if match:
            factor = _SIZE_FACTORS.get(match.group(2).upper())
            if factor is not None:
                return int(Fraction(match.group(1)) * factor)  # exact: Decimal rounds
    raise ValueError(f"not a size: {value!r}; expected {SIZE_FORMS}")


def parse_duration(value: object) -> timedelta:
    """Parse a duration: ``24 hours``, ``7 days``, ``30 minutes``, ``90s``; a number is seconds."""
    _reject_bool(value, DURATION_FORMS)
    if isinstance(value, timedelta):
        return value
    if _finite_number(value):
        if value < 0:
            raise ValueError(f"duration must not be negative: {value!r}; expected {DURATION_FORMS}")
        return _timedelta(value, value)
    if isinstance(value, str):
        match = _DURATION_RE.match(value.strip())
        if match:
            seconds = _DURATION_UNITS.get(match.group(2).lower())
            if seconds is not None:
                return _timedelta(value, float(match.group(1)) * seconds)
    raise ValueError(f"not a duration: {value!r}; expected {DURATION_FORMS}")


def _timedelta(value: object, seconds: float) -> timedelta:
    try:
        return timedelta(seconds=seconds)
    except OverflowError:
        raise ValueError(
            f"duration too long: {value!r} (at most {timedelta.max.days} days); "
            f"expected {DURATION_FORMS}"
        ) from None


def parse_size_threshold(value: object) -> SizeThreshold:
    """Parse ``10GB per table`` (or just ``10GB``) into a ``SizeThreshold``."""
    if isinstance(value, SizeThreshold):
        return value
    if isinstance(value, str):
        match = _THRESHOLD_RE.match(value.strip())
        if match:
            try:
                return SizeThreshold(parse_size(match.group(1)), match.group(2).lower())
            except ValueError:
                pass
    try:
        return SizeThreshold(parse_size(value))
    except ValueError:
        raise ValueError(
            f"not a size threshold: {value!r}; expected {SIZE_THRESHOLD_FORMS}"
        ) from None


def parse_rate(value: object) -> Rate:
    """Parse ``5% over 1 hour`` into ``Rate(0.05, timedelta(hours=1))``."""
    if isinstance(value, Rate):
        return value
    if isinstance(value, str):
        match = _RATE_RE.match(value.strip())
        if match:
            try:
                return Rate(float(match.group(1)) / 100, parse_duration(match.group(2)))
            except ValueError:
                pass
    raise ValueError(f"not a rate: {value!r}; expected {RATE_FORMS}")


def parse_money(value: object) -> Money:
    """Parse ``$10`` / ``$2.50`` / ``10 USD`` (a bare number is USD)."""
    _reject_bool(value, MONEY_FORMS)
    if isinstance(value, Money):
        return value
    if _finite_number(value):
        if value < 0:
            raise ValueError(f"money must not be negative: {value!r}; expected {MONEY_FORMS}")
        return Money(Decimal(str(value)))
    if isinstance(value, str):
        match = _MONEY_RE.match(value.strip())
        if match:
            number = match.group(1) or match.group(2)
            try:
                return Money(Decimal(number))
            except InvalidOperation:
                pass
    raise ValueError(f"not an amount of money: {value!r}; expected {MONEY_FORMS}")


def parse_percent(value: object) -> float:
    """Parse ``50%`` into 0.5."""
    if isinstance(value, str):
        match = _PERCENT_RE.match(value.strip())
        if match:
            return float(match.group(1)) / 100
    raise ValueError(f"not a percentage: {value!r}; expected {PERCENT_FORMS}")


def parse_percent_range(value: object) -> tuple[float, float]:
    """Parse ``60-70%`` into (0.6, 0.7); a single ``50%`` gives (0.5, 0.5)."""
    if isinstance(value, str):
        match = _PERCENT_RANGE_RE.match(value.strip())
        if match:
            low, high = float(match.group(1)) / 100, float(match.group(2)) / 100
            if low <= high:
                return low, high
        else:
            single = parse_percent(value)
            return single, single
    raise ValueError(f"not a percentage range: {value!r}; expected {PERCENT_FORMS}")
