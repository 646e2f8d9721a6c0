"""Spec 6.3 ``encryption.at_rest.key_rotation`` on the KMS keys the config names (issue 21).

``lifecycle apply`` calls :func:`apply_key_rotation`: every customer-managed key the
config names (a CMEK table's ``kms_key``, ``at_rest.sensitive_data.kms_key``,
``cross_cloud.aws_s3.kms_master_key``) gets the rotation where dpexport can set it, and
the setting is rendered, ready to run, where it cannot:

- AWS KMS: ``EnableKeyRotation`` with ``RotationPeriodInDays`` (AWS takes 90 to 2560
  days), read back with ``GetKeyRotationStatus``.
- Cloud KMS and Azure Key Vault: rendered as the ``gcloud`` / ``az`` command that sets
  it (a key's rotation is a management-plane change dpexport's export credentials should
  not hold).
- Local key files (``--local-root``): not rotated; said so.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from dpexport.errors import ExportError
from dpexport.security.keyvault import is_key_vault_key
from dpexport.security.settings import is_placeholder

if TYPE_CHECKING:
    from dpexport.config.spec import ResolvedConfig
    from dpexport.ops.lifecycle import ApplyResult

#: what AWS KMS accepts for RotationPeriodInDays
AWS_ROTATION_DAYS = (90, 2560)

__all__ = [
    "AWS_ROTATION_DAYS",
    "apply_key_rotation",
    "configured_keys",
    "render_rotation",
    "rotation_documents",
]


def configured_keys(config: ResolvedConfig) -> list[str]:
    """The customer-managed keys the config names, each once, in file order."""
    names: list[str | None] = [
        t.encryption.kms_key for t in config.tables if t.encryption.mode == "CMEK"
    ]
    at_rest = config.encryption.at_rest
    if at_rest is not None and at_rest.sensitive_data is not None:
        names.append(at_rest.sensitive_data.kms_key)
    cross = config.encryption.cross_cloud
    if cross is not None and cross.aws_s3 is not None:
        names.append(cross.aws_s3.kms_master_key)
    out: list[str] = []
    for name in names:
        if name and not is_placeholder(name) and name not in out:
            out.append(name)
    return out


def _kind(key: str) -> str:
    if key.startswith("projects/"):
        return "gcp"
    if key.startswith(("arn:aws:kms:", "alias/")):
        return "aws"
    if is_key_vault_key(key):
        return "azure"
    return "local"


def render_rotation(key: str, period: timedelta) -> str:
    """The command that sets ``period`` as ``key``'s rotation on its cloud."""
    days = max(1, period.days)
    kind = _kind(key)
    if kind == "gcp":
        first = (datetime.now(UTC) + period).strftime("%Y-%m-%dT%H:%M:%SZ")
        return (
            f"gcloud kms keys update {key} --rotation-period={days}d --next-rotation-time={first}"
        )
    if kind == "aws":
        return f"aws kms enable-key-rotation --key-id {key} --rotation-period-in-days {days}"
    if kind == "azure":
        return (
            f"az keyvault key rotation-policy update --id {key} --value "
            f'\'{{"lifetimeActions": [{{"trigger": {{"timeAfterCreate": "P{days}D"}}, '
            f'"action": {{"type": "Rotate"}}}}]}}\''
        )
    return f"key file {key!r} under --local-root: not rotated by dpexport"


def rotation_documents(config: ResolvedConfig) -> list[dict[str, Any]]:
    """For ``iam render``: one document per configured key, its rotation and the command
    that sets it (none when ``key_rotation`` is not set)."""
    at_rest = config.encryption.at_rest
    period = at_rest.key_rotation if at_rest is not None else None
    if period is None:
        return []
    return [
        {
            "kms_key": key,
            "key_rotation_days": period.days,
            "applied_by_lifecycle_apply": _kind(key) == "aws",
            "command": render_rotation(key, period),
        }
        for key in configured_keys(config)
    ]


def apply_key_rotation(
    config: ResolvedConfig, new_result: Callable[[str], ApplyResult], *, client: Any = None
) -> list[ApplyResult]:
    """One result per configured key (``new_result("kms:KEY")``, as ``lifecycle apply``
    makes one per store) when ``key_rotation`` is set; none otherwise."""
    at_rest = config.encryption.at_rest
    period = at_rest.key_rotation if at_rest is not None else None
    if period is None:
        return []
    results = []
    for key in configured_keys(config):
        result = new_result(f"kms:{key}")
        results.append(result)
        if _kind(key) != "aws":
            result.not_applied.append(
                f"key rotation every {period.days} days: {render_rotation(key, period)}"
            )
            continue
        try:
            for line, ok in _aws_rotation(key, period, client):
                (result.applied if ok else result.not_applied).append(line)
        except ExportError as exc:
            result.error = str(exc)
    return results


def _aws_rotation(key: str, period: timedelta, client: Any) -> Iterator[tuple[str, bool]]:
    """Enable AWS KMS rotation on ``key`` and read it back: (line, applied) pairs."""
    low, high = AWS_ROTATION_DAYS
    days = period.days
    if not low <= days <= high:
        yield (
            f"key rotation every {days} days: AWS KMS rotates every {low} to {high} days; "
            f"set key_rotation within that range",
            False,
        )
        return
    from dpexport.security.kms import AwsKmsKeyProvider, aws_error
    from dpexport.storage.cloud import require

    bexc = require("botocore.exceptions", "s3")
    kms = client if client is not None else AwsKmsKeyProvider().client
    try:
        # EnableKeyRotation takes a key id or ARN, not an alias: resolve it first
        key_id = kms.describe_key(KeyId=key)["KeyMetadata"]["Arn"]
        kms.enable_key_rotation(KeyId=key_id, RotationPeriodInDays=days)
        status = kms.get_key_rotation_status(KeyId=key_id)
    except (bexc.ClientError, bexc.HTTPClientError, bexc.ConnectionError) as exc:
        raise aws_error(key, exc, "could not set key rotation") from exc
    if not status.get("KeyRotationEnabled"):
        yield (f"key rotation every {days} days: AWS KMS reads back rotation disabled", False)
        return
    read = status.get("RotationPeriodInDays")
    if read is not None and int(read) != days:
        yield (f"key rotation every {days} days: AWS KMS reads back {read} days", False)
        return
    yield (f"key rotation every {days} days (AWS KMS, read back enabled)", True)
