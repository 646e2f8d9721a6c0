"""A retry policy built in Python refuses what ``check`` refuses in a config (issue 17:
``max_attempts: 0`` was silently raised to 1)."""

from __future__ import annotations

from typing import Any

import pytest

from dpexport.config.models import RetryConfiguration
from dpexport.reliability.retry import RetryPolicy


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"max_attempts": 0}, "max_attempts must be >= 1"),
        ({"max_attempts": -1}, "max_attempts must be >= 1"),
        ({"initial_delay_seconds": -1}, "initial_delay_seconds must be >= 0"),
        ({"initial_delay_seconds": 60, "max_delay_seconds": 10}, "max_delay_seconds"),
        ({"multiplier": 0.5}, "multiplier must be >= 1"),
        ({"deadline_seconds": 0}, "deadline_seconds must be > 0"),
    ],
)
def test_a_policy_that_cannot_work_is_refused(kwargs: dict[str, Any], words: str) -> None:
    with pytest.raises(ValueError, match=words):
        RetryPolicy(**kwargs)


def test_a_policy_names_every_problem_at_once() -> None:
    with pytest.raises(ValueError, match=r"max_attempts.*multiplier"):
        RetryPolicy(max_attempts=0, multiplier=0.1)


def test_sound_policies_pass() -> None:
    RetryPolicy(max_attempts=1, initial_delay_seconds=0, max_delay_seconds=0)
    RetryPolicy(backoff="linear", multiplier=0.5, deadline_seconds=None)


def test_from_config_no_longer_raises_zero_attempts_to_one() -> None:
    block = RetryConfiguration.model_construct(max_attempts=0)
    with pytest.raises(ValueError, match="max_attempts"):
        RetryPolicy.from_config(block)
