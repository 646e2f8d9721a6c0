"""No secret in the file: secret-named keys must name an env var or a KMS key.

CONTRACT §3: "Secrets are never in the file: it names environment variables
(``*_env: VAR``) or key URIs." The check walks the whole document, known keys or not,
so a password pasted under a misspelt key is still caught; values are never echoed.
"""

from __future__ import annotations

import re

from dpexport.config.issues import Issues, is_secret_key
from dpexport.config.loader import Path

#: Key names and URIs of keys held by a KMS: naming one reveals nothing.
KMS_KEY_NAME = re.compile(
    r"^(projects/[^/]+/locations/[^/]+/keyRings/[^/]+/cryptoKeys/[^/]+(/cryptoKeyVersions/\d+)?"
    r"|arn:aws:kms:.*"
    r"|alias/[\w/-]+"
    r"|https://[\w.-]+\.vault\.azure\.net/keys/.+"
    r"|(gcp-kms|aws-kms|azure-kv|local-kms|file)://.+)$"
)
ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def is_kms_key_name(value: object) -> bool:
    """True for a KMS key resource name or key URI (``projects/.../cryptoKeys/...``)."""
    return isinstance(value, str) and bool(KMS_KEY_NAME.match(value.strip()))


def check_secrets(data: object, issues: Issues, path: Path = ()) -> None:
    """Report inline secrets and malformed ``*_env`` names anywhere under ``data``."""
    if isinstance(data, dict):
        for key, value in data.items():
            child = (*path, key)
            if isinstance(value, dict | list):
                check_secrets(value, issues, child)
            elif isinstance(key, str) and key.endswith("_env"):
                _check_env_name(child, value, issues)
            elif is_secret_key(key) and value not in (None, ""):
                _check_secret_value(child, key, value, issues)
    elif isinstance(data, list):
        for index, item in enumerate(data):
            check_secrets(item, issues, (*path, index))


def looks_like_secret(value: str) -> bool:
    """A valid variable name that reads like key material: 20 or more characters mixing
    letters and digits with no ``_`` (a PagerDuty routing key is 32 hex digits), unlike
    names such as ``PD_ROUTING_KEY``."""
    return (
        len(value) >= 20
        and "_" not in value
        and any(c.isdigit() for c in value)
        and any(c.isalpha() for c in value)
    )


def _check_env_name(path: Path, value: object, issues: Issues) -> None:
    """A ``*_env`` value must name a variable. Its value is never shown: what was pasted
    where a name belongs (a webhook URL, a routing key) is often the secret itself."""
    if value is None:
        return
    if not (isinstance(value, str) and ENV_NAME.match(value)):
        problem = "not an environment variable name"
    elif looks_like_secret(value):
        problem = "looks like a secret, not an environment variable name"
    else:
        return
    issues.add(
        path,
        f"{problem} (value not shown: it may be the secret itself)",
        expected="the name of the environment variable holding it, such as MY_SECRET "
        "(letters, digits, _)",
    )


def _check_secret_value(path: Path, key: str, value: object, issues: Issues) -> None:
    if is_kms_key_name(value):
        return
    if "kms" in key.lower():
        issues.add(
            path,
            "not a KMS key name (key material must never be in the config)",
            value=value,
            expected="a KMS key resource name such as "
            "projects/P/locations/L/keyRings/R/cryptoKeys/K or arn:aws:kms:REGION:ACCOUNT:key/ID",
        )
        return
    issues.add(
        path,
        "secret written inline; secrets are never in the config file",
        value=value,
        expected=f"the name of an environment variable holding it: {key}_env: MY_VAR",
    )
