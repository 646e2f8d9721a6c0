"""``dpexport lifecycle apply`` and ``sweep`` on the emulators.

apply: moto stores the S3 lifecycle configuration and versioning, so both are read back;
fake-gcs-server accepts the bucket PATCH with the rules but does not store lifecycle rules
(EMULATORS.md), so on GCS the test only proves the request is accepted and reported;
Azure's Blob API has no lifecycle, and the command says so.

sweep: objects cannot be back-dated on a server, so the hidden ``--now`` puts the clock
40 days ahead: what is due goes, what is under retention stays, whatever its age; on
Azure data files move to the Cool tier.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.conformance.servers import server_env, unique_bucket
from tests.e2e.cli import dpexport

CONFIG = """
project: diagnostic-pro-start-up
environment: prod
buckets: {{exports: {bucket}}}
exports:
  - source: diagnosticpro_prod.billing_transactions
    destination: {bucket}/prod/diagnosticpro_prod/financial/
    format: PARQUET
    mode: APPEND
    compliance: [PCI_DSS_compliant, SOX_compliant]
  - source: diagnosticpro_prod.feature_store
    destination: {bucket}/prod/diagnosticpro_ml/features/
    format: PARQUET
    mode: APPEND
bucket_policies:
  {name}:
    versioning: enabled
    lifecycle_rules:
      - {{age: 30, action: "SetStorageClass:NEARLINE"}}
      - {{age: 90, action: "SetStorageClass:COLDLINE"}}
      - {{age: 365, action: "SetStorageClass:ARCHIVE"}}
lifecycle_policies:
  30_days: {{action: "Transition to NEARLINE"}}
  90_days: {{action: "Transition to COLDLINE"}}
  365_days: {{action: "Transition to ARCHIVE"}}
  auto_delete: {{temp_exports: "7 days", failed_exports: "30 days", test_exports: "1 day"}}
"""
DEAD_OWNER = json.dumps({"host": socket.gethostname(), "pid": 1, "start": "gone"}).encode()
OBJECTS = {
    "_staging/exp_dead/part-00001.parquet": b"x",
    "_staging/exp_dead/_owner.json": DEAD_OWNER,
    "prod/diagnosticpro_ml/features/2025/07/01/FAILURE": b"{}",
    "prod/diagnosticpro_prod/financial/2025/07/FAILURE": b"{}",  # SOX/PCI: retained
    "test/diagnosticpro_prod/users/2025/09/14/users_1.parquet": b"x",
    "test/diagnosticpro_prod/users/2025/09/14/SUCCESS": b"{}",
    "test/financial-records/ledger.parquet": b"x",  # spec 1.4 folder: retained
    "idempotency-tokens/feature_store_20250916_1_abcd.json": b'{"status": "DONE"}',
    "dead-letter-queue/poison_messages/exp_p.json": b"{}",  # 90 days: not yet
    "prod/diagnosticpro_ml/features/2025/01/01/f.parquet": b"data",
    "prod/diagnosticpro_ml/features/2025/01/01/manifest_20250101_000000.json": b"{}",
    "prod/diagnosticpro_ml/features/2025/01/01/SUCCESS": b"{}",
}
DUE = {
    "_staging/exp_dead/part-00001.parquet",
    "_staging/exp_dead/_owner.json",
    "prod/diagnosticpro_ml/features/2025/07/01/FAILURE",
    "test/diagnosticpro_prod/users/2025/09/14/users_1.parquet",
    "test/diagnosticpro_prod/users/2025/09/14/SUCCESS",
    "idempotency-tokens/feature_store_20250916_1_abcd.json",
}


@dataclass
class Bucket:
    scheme: str
    name: str
    config: Path
    client: Any

    def put(self, key: str, data: bytes) -> None:
        if self.scheme == "s3":
            self.client.put_object(Bucket=self.name, Key=key, Body=data)
        elif self.scheme == "gs":
            self.client.bucket(self.name).blob(key).upload_from_string(data)
        else:
            self.client.upload_blob(key, data)

    def keys(self) -> set[str]:
        if self.scheme == "s3":
            resp = self.client.list_objects_v2(Bucket=self.name)
            return {o["Key"] for o in resp.get("Contents", [])}
        if self.scheme == "gs":
            return {b.name for b in self.client.list_blobs(self.name)}
        return {b.name for b in self.client.list_blobs()}


@pytest.fixture(params=["s3", "gs", "az"])
def bucket(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Bucket]:
    scheme = str(request.param)
    name = unique_bucket("lc")
    client: Any
    if scheme == "s3":
        server_env("AWS_ENDPOINT_URL", "the S3 server (moto)")
        import boto3

        client = boto3.session.Session().client("s3")
        client.create_bucket(Bucket=name)
        close = client.close
    elif scheme == "gs":
        server_env("STORAGE_EMULATOR_HOST", "the GCS server (fake-gcs-server)")
        from google.auth.credentials import AnonymousCredentials
        from google.cloud import storage

        client = storage.Client(project="dpexport-test", credentials=AnonymousCredentials())
        client.create_bucket(name)
        close = client.close
    else:
        conn = server_env("AZURE_STORAGE_CONNECTION_STRING", "the Azure server (Azurite)")
        from azure.storage.blob import BlobServiceClient

        service = BlobServiceClient.from_connection_string(conn)
        client = service.create_container(name)
        close = service.close
    config = tmp_path / "dpexport.yaml"
    config.write_text(CONFIG.format(bucket=f"{scheme}://{name}", name=name), encoding="utf-8")
    yield Bucket(scheme, name, config, client)
    close()


def test_apply(bucket: Bucket) -> None:
    result = dpexport("-c", bucket.config, "lifecycle", "apply", "--json")
    assert result.code == 0, result.err + result.out
    (doc,) = json.loads(result.out)
    assert doc["error"] is None
    if bucket.scheme == "s3":
        rules = {
            r["ID"]: r
            for r in bucket.client.get_bucket_lifecycle_configuration(Bucket=bucket.name)["Rules"]
        }
        tiering = rules["dpexport-tiering"]["Transitions"]
        assert [(t["Days"], t["StorageClass"]) for t in tiering] == [
            (30, "STANDARD_IA"),
            (90, "GLACIER_IR"),
            (365, "DEEP_ARCHIVE"),
        ]
        expire = {
            r["Filter"]["Prefix"]: r["Expiration"]["Days"]
            for r in rules.values()
            if "Expiration" in r
        }
        assert expire == {
            "test/": 1,
            "dead-letter-queue/failed_exports/": 30,
            "dead-letter-queue/poison_messages/": 90,
        }
        status = bucket.client.get_bucket_versioning(Bucket=bucket.name)["Status"]
        assert status == "Enabled"
    elif bucket.scheme == "gs":
        # fake-gcs-server accepts the PATCH carrying these rules but does not store lifecycle
        # rules, so reading them back proves nothing here; real GCS keeps them.
        assert doc["applied"][:3] == [
            "SetStorageClass:NEARLINE at age 30 days",
            "SetStorageClass:COLDLINE at age 90 days",
            "SetStorageClass:ARCHIVE at age 365 days",
        ]
        assert "Delete test/ at age 1 days" in doc["applied"]
        assert "versioning enabled" in doc["applied"]
    else:
        assert doc["applied"] == []
        assert "no bucket lifecycle in the Blob API" in doc["not_applied"][0]
    # the pure-age rules go to the bucket; the conditional ones stay with sweep
    if bucket.scheme != "az":
        assert any("_staging/" in line for line in doc["not_applied"])


def test_sweep_with_retention(bucket: Bucket) -> None:
    for key, data in OBJECTS.items():
        bucket.put(key, data)
    now = (datetime.now(UTC) + timedelta(days=40)).strftime("%Y-%m-%dT%H:%M:%SZ")
    dry = dpexport("-c", bucket.config, "lifecycle", "sweep", "--dry-run", "--now", now)
    assert dry.code == 0, dry.err + dry.out
    assert bucket.keys() == set(OBJECTS)
    result = dpexport("-c", bucket.config, "lifecycle", "sweep", "--json", "--now", now)
    assert result.code == 0, result.err + result.out
    items = json.loads(result.out)
    assert bucket.keys() == set(OBJECTS) - DUE
    retained = {
        i["what"]
        for i in items
        if i["status"] == "kept" and i["reason"].startswith("retention until ")
    }
    assert retained == {"prod/diagnosticpro_prod/financial/2025/07/", "test/financial-records/"}
    tiered = {i["what"]: i["rule"] for i in items if i["status"] == "tiered"}
    if bucket.scheme == "az":
        # data files go Cool at 40 days, retained ones too (retention forbids deleting,
        # not tiering); markers and manifests stay Hot for readers
        assert tiered == {
            "prod/diagnosticpro_ml/features/2025/01/01/f.parquet": "tier:Cool",
            "test/financial-records/ledger.parquet": "tier:Cool",
        }
        props = bucket.client.get_blob_client(
            "prod/diagnosticpro_ml/features/2025/01/01/f.parquet"
        ).get_blob_properties()
        assert props.blob_tier == "Cool"
    else:
        assert tiered == {}
