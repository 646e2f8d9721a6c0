"""Which local servers the tests can reach (the env file ``tools/servers.py`` writes).

Locally a missing server skips the cloud tests with the reason; in CI (``CI=true``) it
fails them, so a broken harness can never pass as skipped tests.
"""

from __future__ import annotations

import os
import uuid

import pytest


def server_env(var: str, what: str) -> str:
    value = os.environ.get(var)
    if value:
        return value
    reason = f"{var} is not set: {what} is not running (./dev test starts it)"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(reason)
    pytest.skip(reason)


def unique_bucket(prefix: str = "dpx") -> str:
    """A fresh bucket / container name valid on all three clouds."""
    return f"{prefix}-{uuid.uuid4().hex[:20]}"
