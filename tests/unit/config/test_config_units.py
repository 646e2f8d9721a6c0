from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal

import pytest

from dpexport.config import units

MB = 1024 * 1024


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("128MB", 128 * MB),
        ("1MB", MB),
        ("256MB", 256 * MB),
        ("10GB", 10 * 1024 * MB),
        ("10 GB", 10 * 1024 * MB),
        ("512kb", 512 * 1024),
        ("1.5GB", 3 * 512 * MB),
        ("2MiB", 2 * MB),
        ("100B", 100),
        ("4096", 4096),
        (4096, 4096),
    ],
)
def test_sizes_are_binary(text: object, expected: int) -> None:
    assert units.parse_size(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("24 hours", timedelta(hours=24)),
        ("7 days", timedelta(days=7)),
        ("2190 days", timedelta(days=2190)),
        ("30 minutes", timedelta(minutes=30)),
        ("4 hours", timedelta(hours=4)),
        ("48 hours", timedelta(hours=48)),
        ("1 day", timedelta(days=1)),
        ("30 seconds", timedelta(seconds=30)),
        ("2 minutes", timedelta(minutes=2)),
        ("90s", timedelta(seconds=90)),
        ("1 week", timedelta(weeks=1)),
        (45, timedelta(seconds=45)),
    ],
)
def test_durations(text: object, expected: timedelta) -> None:
    assert units.parse_duration(text) == expected


def test_thresholds_rates_money_percentages() -> None:
    assert units.parse_size_threshold("10GB per table") == units.SizeThreshold(
        10 * 1024 * MB, "table"
    )
    assert units.parse_size_threshold("1GB") == units.SizeThreshold(1024 * MB, None)
    assert units.parse_rate("5% over 1 hour") == units.Rate(0.05, timedelta(hours=1))
    assert units.parse_money("$10") == units.Money(Decimal("10"))
    assert units.parse_money("$2.50").amount == Decimal("2.50")
    assert units.parse_money("10 USD").amount == Decimal("10")
    assert units.parse_percent("50%") == 0.5
    assert units.parse_percent_range("60-70%") == (0.6, 0.7)
    assert units.parse_percent_range("90%") == (0.9, 0.9)


@pytest.mark.parametrize(
    ("parse", "bad", "forms"),
    [
        (units.parse_size, "12 parsecs", "128MB"),
        (units.parse_size, True, "128MB"),
        (units.parse_size, -1, "128MB"),
        (units.parse_duration, "3 fortnights", "24 hours"),
        (units.parse_duration, "soon", "24 hours"),
        (units.parse_size_threshold, "lots per table", "10GB per table"),
        (units.parse_rate, "5 percent", "5% over 1 hour"),
        (units.parse_rate, "5% over a while", "5% over 1 hour"),
        (units.parse_money, "ten dollars", "$10"),
        (units.parse_percent_range, "70-60%", "60-70%"),
    ],
)
def test_bad_units_name_the_accepted_forms(
    parse: Callable[[object], object], bad: object, forms: str
) -> None:
    with pytest.raises(ValueError, match="expected") as info:
        parse(bad)
    assert forms in str(info.value)
