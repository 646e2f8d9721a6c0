"""Check parameters: the nearest valid value a "did you mean" offers, and the rules
between parameters (issue 17: ``content_length_check: {min: abc}`` passed ``check``)."""

from __future__ import annotations

import pytest

from dpexport.checks import params as P
from dpexport.checks import validate_check_items


@pytest.mark.parametrize(
    ("param", "raw", "nearest"),
    [
        (P.Param(P.non_negative_int, 1), "abc", "1"),
        (P.Param(P.non_negative_int, 1), "10", "10 (unquoted)"),
        (P.Param(P.fraction, 0.05), 5, "5%"),
        (P.Param(P.fraction, 0.05), "lots", "0.05"),
        (P.Param(P.positive_number, 3.0), "2.5", "2.5 (unquoted)"),
        (P.Param(P.column, "post_id"), 42, "post_id"),
        (P.Param(P.columns, ("a", "b")), 42, None),  # no scalar default to offer
    ],
)
def test_nearest_value(param: P.Param, raw: object, nearest: str | None) -> None:
    assert P.nearest_value(param, raw) == nearest


def test_a_wrong_typed_parameter_offers_its_default() -> None:
    (issue,) = validate_check_items([{"content_length_check": {"min": "abc"}}], "v")
    assert issue.path == "v[0].content_length_check.min"
    assert issue.value == "'abc'" and issue.expected == "an integer >= 0"
    assert issue.suggestion == "1"


@pytest.mark.parametrize(
    ("params", "path", "suggestion"),
    [
        ({"min": 10, "max": 5}, "v[0].content_length_check.min", "5"),
        ({"max": 0}, "v[0].content_length_check.max", "1"),  # below the default min
    ],
)
def test_min_above_max_is_refused(params: dict[str, int], path: str, suggestion: str) -> None:
    (issue,) = validate_check_items([{"content_length_check": params}], "v")
    assert issue.path == path and "every row would fail" in issue.message
    assert issue.suggestion == suggestion


def test_min_and_max_are_not_compared_when_one_did_not_parse() -> None:
    issues = validate_check_items([{"content_length_check": {"min": "abc", "max": 0}}], "v")
    assert [i.path for i in issues] == ["v[0].content_length_check.min"]


def test_equal_min_and_max_pass() -> None:
    assert validate_check_items([{"content_length_check": {"min": 5, "max": 5}}], "v") == []
