"""``encryption.at_rest.key_rotation`` (spec 6.3, issue 21) through ``lifecycle apply``:
set on the AWS KMS keys the config names (moto keeps the rotation, so it is read back),
rendered as the command to run for Cloud KMS and Azure Key Vault keys."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conformance.servers import server_env, unique_bucket
from tests.e2e.cli import dpexport

GCP_KEY = "projects/p/locations/us/keyRings/exports/cryptoKeys/sensitive-data"
CONFIG = """
project: diagnostic-pro-start-up
environment: prod
buckets: {{exports: s3://{bucket}}}
exports:
  - source: diagnosticpro_prod.billing_transactions
    destination: s3://{bucket}/prod/financial/
    format: PARQUET
    encryption: CMEK
    kms_key: {aws_key}
  - source: diagnosticpro_prod.users
    destination: s3://{bucket}/prod/users/
    format: PARQUET
    encryption: CMEK
    kms_key: {gcp_key}
encryption:
  at_rest:
    {rotation}
"""


@dataclass
class Kms:
    client: Any
    bucket: str


@pytest.fixture
def kms() -> Iterator[Kms]:
    server_env("AWS_ENDPOINT_URL", "the AWS server (moto)")
    import boto3

    session = boto3.session.Session()
    s3 = session.client("s3")
    bucket = unique_bucket("rot")
    s3.create_bucket(Bucket=bucket)
    client = session.client("kms")
    yield Kms(client, bucket)
    client.close()
    s3.close()


def _config(tmp_path: Path, kms: Kms, key: str, rotation: str) -> Path:
    path = tmp_path / "dpexport.yaml"
    text = CONFIG.format(bucket=kms.bucket, aws_key=key, gcp_key=GCP_KEY, rotation=rotation)
    path.write_text(text, encoding="utf-8")
    return path


def test_key_rotation_is_set_on_aws_kms_and_rendered_for_cloud_kms(
    tmp_path: Path, kms: Kms
) -> None:
    arn = kms.client.create_key(Description="exports")["KeyMetadata"]["Arn"]
    kms.client.create_alias(AliasName=f"alias/{kms.bucket}", TargetKeyId=arn)
    assert kms.client.get_key_rotation_status(KeyId=arn)["KeyRotationEnabled"] is False
    config = _config(tmp_path, kms, f"alias/{kms.bucket}", 'key_rotation: "90 days"')
    result = dpexport("-c", config, "lifecycle", "apply", "--json")
    assert result.code == 0, result.err + result.out
    docs = {d["store"]: d for d in json.loads(result.out)}
    aws = docs[f"kms:alias/{kms.bucket}"]
    assert aws["error"] is None
    assert aws["applied"] == ["key rotation every 90 days (AWS KMS, read back enabled)"]
    assert kms.client.get_key_rotation_status(KeyId=arn)["KeyRotationEnabled"] is True
    (gcp,) = docs[f"kms:{GCP_KEY}"]["not_applied"]
    assert f"gcloud kms keys update {GCP_KEY} --rotation-period=90d" in gcp
    # the text form says the same
    text = dpexport("-c", config, "lifecycle", "apply")
    assert text.code == 0, text.err
    assert "applied: key rotation every 90 days (AWS KMS" in text.out


def test_a_rotation_aws_cannot_take_is_named_and_a_missing_key_is_an_error(
    tmp_path: Path, kms: Kms
) -> None:
    arn = kms.client.create_key(Description="exports")["KeyMetadata"]["Arn"]
    short = dpexport(
        "-c", _config(tmp_path, kms, arn, 'key_rotation: "30 days"'), "lifecycle", "apply", "--json"
    )
    assert short.code == 0, short.err
    doc = {d["store"]: d for d in json.loads(short.out)}[f"kms:{arn}"]
    assert doc["applied"] == []
    assert "AWS KMS rotates every 90 to 2560 days" in doc["not_applied"][0]
    assert kms.client.get_key_rotation_status(KeyId=arn)["KeyRotationEnabled"] is False
    missing = arn.rsplit("/", 1)[0] + "/00000000-0000-0000-0000-000000000000"
    gone = dpexport(
        "-c",
        _config(tmp_path, kms, missing, 'key_rotation: "90 days"'),
        "lifecycle",
        "apply",
        "--json",
    )
    assert gone.code == 1
    doc = {d["store"]: d for d in json.loads(gone.out)}[f"kms:{missing}"]
    assert missing in doc["error"] and "NotFoundException" in doc["error"]


def test_no_key_rotation_no_kms_results(tmp_path: Path, kms: Kms) -> None:
    arn = kms.client.create_key(Description="exports")["KeyMetadata"]["Arn"]
    result = dpexport(
        "-c", _config(tmp_path, kms, arn, 'algorithm: "AES-256"'), "lifecycle", "apply", "--json"
    )
    assert result.code == 0, result.err
    assert [d["store"] for d in json.loads(result.out)] == [f"s3://{kms.bucket}"]
    assert kms.client.get_key_rotation_status(KeyId=arn)["KeyRotationEnabled"] is False


def test_iam_render_names_each_keys_rotation_and_its_command(tmp_path: Path, kms: Kms) -> None:
    config = _config(tmp_path, kms, "alias/exports", 'key_rotation: "90 days"')
    result = dpexport("-c", config, "iam", "render", "--json")
    assert result.code == 0, result.err
    keys = {d["kms_key"]: d for d in json.loads(result.out) if "kms_key" in d}
    assert keys["alias/exports"]["applied_by_lifecycle_apply"] is True
    assert keys[GCP_KEY]["key_rotation_days"] == 90
    assert f"gcloud kms keys update {GCP_KEY} --rotation-period=90d" in keys[GCP_KEY]["command"]
