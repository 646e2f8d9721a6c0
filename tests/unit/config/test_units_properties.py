"""Properties of the config's units (``config/units.py``): a value written in any unit
reads back as that amount, the units scale as the module says (binary sizes: 1GB = 1024MB;
1 week = 7 days = 168 hours), and anything else is refused with a ``ValueError`` naming
the value and the accepted forms: never another exception, a silent rounding, or a
negative or non-finite amount."""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import assume, example, given
from hypothesis import strategies as st

from dpexport.config import units

# -- the definitions, as the module's docstring and forms state them ----------------------
#: size unit -> power of 1024 (binary; KiB and KB mean the same; a bare number is bytes)
SIZE_POWERS = {
    "": 0, "B": 0, "K": 1, "KB": 1, "KiB": 1, "M": 2, "MB": 2, "MiB": 2,
    "G": 3, "GB": 3, "GiB": 3, "T": 4, "TB": 4, "TiB": 4,
}  # fmt: skip
#: duration unit -> seconds
DURATION_SECONDS = {
    **dict.fromkeys(["s", "sec", "secs", "second", "seconds"], 1),
    **dict.fromkeys(["m", "min", "mins", "minute", "minutes"], 60),
    **dict.fromkeys(["h", "hr", "hrs", "hour", "hours"], 3600),
    **dict.fromkeys(["d", "day", "days"], 86400),
    **dict.fromkeys(["w", "week", "weeks"], 604800),
}
#: what a size may look like, and nothing else (ASCII digits only)
SIZE_GRAMMAR = re.compile(
    r"[0-9]+(\.[0-9]+)?\s*(" + "|".join(u for u in SIZE_POWERS if u) + ")?", re.IGNORECASE
)
#: the seconds a timedelta holds are fewer than this (999999999 days and a fraction)
LIMIT = (timedelta.max.days + 1) * 86400

# -- strategies -----------------------------------------------------------------------------
COUNTS = st.integers(min_value=0, max_value=10**40)
SPACE = st.sampled_from(["", " ", "  ", "\t"])
#: text near the grammar: digits of several scripts, signs, exponents, unit letters
NEAR_UNITS = st.text(
    alphabet=st.sampled_from(list("0123456789.,-+eE _\t%$bBkKmMgGtTiIsShHdDwWxX٣５")),
    max_size=12,
)


def cased(text: str) -> st.SearchStrategy[str]:
    """``text`` with each letter upper or lower case (units are case-insensitive)."""
    return st.tuples(*(st.sampled_from([c.lower(), c.upper()]) for c in text)).map("".join)


def decimals(places: int = 3, most: int = 10**6) -> st.SearchStrategy[str]:
    """Decimal numerals as a config writes them: ``12``, ``0.5``, ``1.250``."""
    whole = st.integers(min_value=0, max_value=most).map(str)
    frac = st.text(alphabet="0123456789", min_size=1, max_size=places)
    return st.one_of(whole, st.tuples(whole, frac).map(".".join))


def refused(parse: Callable[[object], object], value: object, forms: str) -> str:
    """The message ``parse`` refuses ``value`` with: a ValueError naming both."""
    with pytest.raises(ValueError) as info:
        parse(value)
    message = str(info.value)
    assert repr(value) in message and forms in message, message
    return message


# -- sizes ----------------------------------------------------------------------------------
@given(COUNTS, st.sampled_from(sorted(SIZE_POWERS)).flatmap(cased), SPACE, SPACE)
@example(1234567890123456789012345678901, "MB", "", "")  # past Decimal's 28 digits
def test_a_size_reads_back_exactly_in_any_unit(n: int, unit: str, gap: str, pad: str) -> None:
    power = SIZE_POWERS[next(u for u in SIZE_POWERS if u.lower() == unit.lower())]
    assert units.parse_size(f"{pad}{n}{gap}{unit}{pad}") == n * 1024**power


@given(COUNTS)
def test_size_units_are_binary_steps_of_1024(n: int) -> None:
    tb = units.parse_size(f"{n}TB")
    assert tb == units.parse_size(f"{n * 1024}GB") == units.parse_size(f"{n * 1024**2}MB")
    assert tb == units.parse_size(f"{n * 1024**3}KB") == units.parse_size(f"{n * 1024**4}B")
    assert tb == units.parse_size(f"{n}TiB") == units.parse_size(n * 1024**4)


@given(decimals(6), st.sampled_from(["KB", "MB", "GB", "TB"]))
def test_a_fractional_size_is_the_whole_bytes_of_its_exact_value(number: str, unit: str) -> None:
    exact = Fraction(number) * 1024 ** SIZE_POWERS[unit]
    assert units.parse_size(f"{number}{unit}") == math.floor(exact)


@given(decimals(), decimals(), st.sampled_from(["B", "KB", "MB", "GB"]))
def test_sizes_keep_their_order(a: str, b: str, unit: str) -> None:
    if Decimal(a) <= Decimal(b):
        assert units.parse_size(f"{a}{unit}") <= units.parse_size(f"{b}{unit}")


@given(st.integers(min_value=0, max_value=10**30))
def test_a_plain_count_is_bytes(n: int) -> None:
    assert units.parse_size(n) == units.parse_size(str(n)) == n


@given(st.integers(max_value=-1))
def test_a_negative_size_is_refused(n: int) -> None:
    assert "negative" in refused(units.parse_size, n, units.SIZE_FORMS)


@given(NEAR_UNITS)
@example("٣MB")  # an Arabic-Indic three: a digit to Python's \d and Decimal, not to a config
@example("1e3MB")
def test_a_size_is_accepted_exactly_when_it_is_written_as_one(text: str) -> None:
    if SIZE_GRAMMAR.fullmatch(text.strip()):
        assert units.parse_size(text) >= 0
    else:
        refused(units.parse_size, text, units.SIZE_FORMS)


@given(st.one_of(st.none(), st.booleans(), st.floats(), st.lists(st.integers(), max_size=2)))
def test_other_kinds_of_value_are_not_sizes(value: object) -> None:
    refused(units.parse_size, value, units.SIZE_FORMS)


# -- durations ------------------------------------------------------------------------------
@given(st.integers(min_value=0, max_value=10**12), st.sampled_from(sorted(DURATION_SECONDS)))
@example(10**9, "days")  # one day past what a timedelta holds
def test_a_duration_reads_back_or_is_refused_as_too_long(n: int, unit: str) -> None:
    seconds = n * DURATION_SECONDS[unit]
    for text in (f"{n} {unit}", f"{n}{unit}", f"{n} {unit.upper()}"):
        if seconds < LIMIT:
            assert units.parse_duration(text) == timedelta(seconds=seconds)
        else:
            assert "too long" in refused(units.parse_duration, text, units.DURATION_FORMS)


@given(st.integers(min_value=0, max_value=10**6))
def test_duration_units_scale_consistently(n: int) -> None:
    week = units.parse_duration(f"{n} weeks")
    assert week == units.parse_duration(f"{7 * n} days") == units.parse_duration(f"{168 * n} h")
    assert week == units.parse_duration(f"{10080 * n} minutes")
    assert week == units.parse_duration(f"{604800 * n} seconds") == units.parse_duration(604800 * n)


@given(decimals(6, most=1000), st.sampled_from(sorted(DURATION_SECONDS)))
def test_a_fractional_duration_is_within_a_microsecond(number: str, unit: str) -> None:
    exact = Fraction(number) * DURATION_SECONDS[unit]
    got = units.parse_duration(f"{number} {unit}")
    assert abs(got // timedelta(microseconds=1) - exact * 10**6) <= 1


@given(st.one_of(st.integers(min_value=0), st.floats(min_value=0, allow_infinity=False)))
def test_a_plain_number_is_seconds(value: float) -> None:
    if value < LIMIT:
        assert units.parse_duration(value) == timedelta(seconds=value)
    else:
        assert "too long" in refused(units.parse_duration, value, units.DURATION_FORMS)


@given(
    st.one_of(
        st.integers(max_value=-1),
        st.floats(max_value=-1e-9),
        st.sampled_from([math.nan, math.inf, -math.inf]),
        st.booleans(),
        st.none(),
    )
)
def test_negative_infinite_and_other_values_are_not_durations(value: object) -> None:
    refused(units.parse_duration, value, units.DURATION_FORMS)


@given(NEAR_UNITS)
@example("٣ days")
@example("90")  # a bare number in text is not a duration; the number 90 is (seconds)
def test_text_is_a_duration_only_as_number_and_unit(text: str) -> None:
    match = re.fullmatch(r"([0-9]+(?:\.[0-9]+)?)\s*([A-Za-z]+)", text.strip())
    unit = match.group(2).lower() if match else ""
    if match and unit in DURATION_SECONDS:
        seconds = Fraction(match.group(1)) * DURATION_SECONDS[unit]
        if seconds < LIMIT - 1:  # (within the last second, float rounding decides)
            assert units.parse_duration(text) >= timedelta(0)
        elif seconds >= LIMIT:
            assert "too long" in refused(units.parse_duration, text, units.DURATION_FORMS)
    else:
        refused(units.parse_duration, text, units.DURATION_FORMS)


# -- thresholds, rates, money, percentages --------------------------------------------------
@given(
    st.integers(min_value=0, max_value=10**6),
    st.sampled_from(["MB", "GB", "TB"]).flatmap(cased),
    st.sampled_from(["table", "Export", "DATASET", "run_id"]),
)
def test_a_size_threshold_is_a_size_and_what_it_is_per(n: int, unit: str, per: str) -> None:
    size = units.parse_size(f"{n}{unit}")
    got = units.parse_size_threshold(f"{n}{unit} per {per}")
    assert got == units.SizeThreshold(size, per.lower())
    assert units.parse_size_threshold(f"{n}{unit}") == units.SizeThreshold(size, None)


@given(
    decimals(2), st.integers(min_value=1, max_value=10**4), st.sampled_from(["over", "per", "in"])
)
def test_a_rate_is_a_fraction_over_a_window(percent: str, hours: int, word: str) -> None:
    rate = units.parse_rate(f"{percent}% {word} {hours} hours")
    assert rate == units.Rate(float(percent) / 100, timedelta(hours=hours))


def test_a_rate_over_a_window_too_long_is_refused_not_an_overflow() -> None:
    refused(units.parse_rate, "5% over 1000000000 days", units.RATE_FORMS)


@given(decimals(2))
def test_money_reads_the_same_in_each_form(amount: str) -> None:
    want = units.Money(Decimal(amount))
    for text in (f"${amount}", f"$ {amount}", f"{amount} USD", f"{amount} usd", f"{amount}$"):
        assert units.parse_money(text) == want


@given(
    st.one_of(
        st.integers(min_value=0, max_value=10**100), st.floats(min_value=0, allow_infinity=False)
    )
)
def test_a_plain_amount_is_usd(value: float) -> None:
    assert units.parse_money(value) == units.Money(Decimal(str(value)))


@given(
    st.one_of(
        st.integers(max_value=-1),
        st.floats(max_value=-1e-9),
        st.sampled_from([math.nan, math.inf, -math.inf]),
        st.sampled_from(["-5", "$-5", "-$5", "5 EUR", "$1e5", "$", "", "$٣"]),
    )
)
def test_negative_infinite_and_foreign_amounts_are_not_money(value: object) -> None:
    refused(units.parse_money, value, units.MONEY_FORMS)


@given(decimals(3))
def test_a_percentage_is_a_fraction(number: str) -> None:
    assert units.parse_percent(f"{number}%") == float(number) / 100
    assert units.parse_percent(f"{number} %") == float(number) / 100
    assert units.parse_percent_range(f"{number}%") == (float(number) / 100,) * 2


@given(decimals(2), decimals(2))
def test_a_percentage_range_runs_low_to_high(a: str, b: str) -> None:
    low, high = float(a) / 100, float(b) / 100
    for text in (f"{a}-{b}%", f"{a}% - {b}%"):
        if low <= high:
            assert units.parse_percent_range(text) == (low, high)
        else:
            refused(units.parse_percent_range, text, units.PERCENT_FORMS)


@given(NEAR_UNITS)
def test_text_that_is_not_a_percentage_is_refused_naming_it(text: str) -> None:
    assume(not re.fullmatch(r"[0-9]+(\.[0-9]+)?\s*%", text.strip()))
    refused(units.parse_percent, text, units.PERCENT_FORMS)
