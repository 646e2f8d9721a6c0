"""What ``key_rotation`` renders for the spec's own config (spec 6.3, issue 21): its one
real key, the Cloud KMS CMEK key, gets the gcloud command; the placeholder AWS key of
``cross_cloud.aws_s3`` names no key and is left out."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from dpexport.config.resolve import load_config_text
from dpexport.demo import example_config_text
from dpexport.security.rotation import configured_keys, render_rotation, rotation_documents

GCP_KEY = (
    "projects/diagnostic-pro-start-up/locations/us-central1/keyRings/exports/"
    "cryptoKeys/sensitive-data"
)


def test_the_spec_config_renders_rotation_for_its_cloud_kms_key() -> None:
    config = load_config_text(example_config_text())
    assert configured_keys(config) == [GCP_KEY]
    (doc,) = rotation_documents(config)
    assert doc["kms_key"] == GCP_KEY and doc["key_rotation_days"] == 90
    assert doc["applied_by_lifecycle_apply"] is False
    command = doc["command"]
    assert command.startswith(f"gcloud kms keys update {GCP_KEY} --rotation-period=90d ")
    first = datetime.strptime(command.rsplit("=", 1)[1], "%Y-%m-%dT%H:%M:%SZ")
    assert first.replace(tzinfo=UTC) > datetime.now(UTC) + timedelta(days=89)


def test_without_key_rotation_nothing_is_rendered() -> None:
    text = example_config_text().replace('key_rotation: "90 days"', "")
    assert "key_rotation" not in text
    assert rotation_documents(load_config_text(text)) == []


def test_each_kms_renders_its_own_command() -> None:
    period = timedelta(days=90)
    assert render_rotation("alias/exports", period) == (
        "aws kms enable-key-rotation --key-id alias/exports --rotation-period-in-days 90"
    )
    azure = render_rotation("https://v.vault.azure.net/keys/k", period)
    assert azure.startswith("az keyvault key rotation-policy update --id ")
    assert '"timeAfterCreate": "P90D"' in azure
    assert "not rotated by dpexport" in render_rotation("local-key", period)
