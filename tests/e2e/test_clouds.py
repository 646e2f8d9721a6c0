"""The demo's tables exported through the CLI to each cloud emulator (no --local-root):
the manifests equal a --local-root run's except ids and times, `dpexport verify`
passes on gs://, s3:// and az://, and fails after one object is tampered with.

Tables: reddit_diagnostic_posts (PARQUET, daily yyyy/MM/dd sub-folders),
youtube_repair_videos (JSONL + GZIP) and billing_transactions (CMEK, monthly).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from dpexport.storage.uri import StoreResolver
from tests.conformance.servers import server_env, unique_bucket
from tests.e2e.cli import dpexport

AT = "2025-09-16T12:00:00Z"
ROWS = 200
TABLES = ("reddit_diagnostic_posts", "youtube_repair_videos", "billing_transactions")
DEMO_BUCKET = "gs://diagnosticpro-exports"
CMEK_FOLDER = "prod/diagnosticpro_prod/financial/"
_STAMP = re.compile(r"_\d{8}_\d{6}(_[0-9a-f]{8})?")


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small demo warehouse and its config, plus the reference --local-root run."""
    from dpexport.demo import example_config_text
    from dpexport.demo.warehouse import create_demo_warehouse

    base = tmp_path_factory.mktemp("clouds")
    create_demo_warehouse(base / "warehouse.duckdb", ROWS)
    (base / "dpexport.yaml").write_text(example_config_text(), encoding="utf-8")
    result = dpexport(
        "-c", base / "dpexport.yaml", "--local-root", base / "local", *_run_args(), cwd=base
    )
    assert result.code == 0, result.err
    return base


def _run_args() -> list[str]:
    args = ["run", "--at", AT, "--json"]
    for table in TABLES:
        args += ["--table", table]
    return args


def _create_bucket(scheme: str, name: str) -> Callable[[], None]:
    """Create a bucket on the emulator; return how to drop its client."""
    if scheme == "s3":
        server_env("AWS_ENDPOINT_URL", "the S3 server (moto)")
        import boto3

        client = boto3.session.Session().client("s3")
        client.create_bucket(Bucket=name)
        return client.close
    if scheme == "gs":
        server_env("STORAGE_EMULATOR_HOST", "the GCS server (fake-gcs-server)")
        from google.auth.credentials import AnonymousCredentials
        from google.cloud import storage

        gcs = storage.Client(project="dpexport-test", credentials=AnonymousCredentials())
        gcs.create_bucket(name)
        return gcs.close
    conn = server_env("AZURE_STORAGE_CONNECTION_STRING", "the Azure server (Azurite)")
    from azure.storage.blob import BlobServiceClient

    service = BlobServiceClient.from_connection_string(conn)
    service.create_container(name)
    return service.close


@pytest.fixture(params=["gs", "s3", "az"])
def cloud(request: pytest.FixtureRequest, demo: Path) -> Iterator[tuple[str, Path]]:
    """(bucket URI, config) for a fresh bucket on one emulator, the demo config pointed at it."""
    scheme = str(request.param)
    bucket = f"{scheme}://{unique_bucket('e2e')}"
    close = _create_bucket(scheme, bucket.split("://", 1)[1])
    config = demo / f"dpexport-{scheme}.yaml"
    text = (demo / "dpexport.yaml").read_text(encoding="utf-8")
    config.write_text(text.replace(DEMO_BUCKET, bucket), encoding="utf-8")
    yield bucket, config
    close()


def _normalize(doc: dict[str, Any], bucket: str, *, cmek: bool) -> dict[str, Any]:
    """A manifest without what differs between two runs: ids, wall-clock times, and the
    bucket; for CMEK folders also how the bytes are encrypted (client-side .enc files
    on a local folder, server-side on a cloud store)."""
    doc = json.loads(json.dumps(doc).replace(bucket, "BUCKET").replace(DEMO_BUCKET, "BUCKET"))
    for key in ("export_id", "export_timestamp"):
        doc.pop(key)
    doc["metadata"].pop("export_duration_ms")
    # priced at each store's own prices (a local folder costs nothing to keep)
    assert doc["metadata"].pop("cost_usd")["total"] >= 0
    doc["statistics"].pop("schema_version")
    # the token's hash covers the destination, which is another bucket here
    doc["idempotency_token"] = doc["idempotency_token"].rsplit("_", 1)[0]
    for entry in doc["files"]:
        entry["name"] = _STAMP.sub("_TS", entry["name"])
    if cmek:
        doc.pop("encryption")
        doc["statistics"].pop("compressed_size")
        for entry in doc["files"]:
            entry["name"] = entry["name"].removesuffix(".enc")
            entry.pop("bytes")
            entry.pop("checksum")
    return doc


def _local_manifests(root: Path) -> dict[str, dict[str, Any]]:
    bucket = root / "gs" / "diagnosticpro-exports"
    return {
        _STAMP.sub("_TS", p.relative_to(bucket).as_posix()): json.loads(p.read_text())
        for p in sorted(bucket.rglob("manifest_*.json"))
    }


def _cloud_manifests(bucket: str) -> dict[str, dict[str, Any]]:
    store, _ = StoreResolver().resolve(bucket + "/")
    try:
        return {
            _STAMP.sub("_TS", o.key): json.loads(store.get(o.key))
            for o in store.list("prod/")
            if o.key.rsplit("/", 1)[-1].startswith("manifest_")
        }
    finally:
        getattr(store, "close", lambda: None)()


def _assert_s3_encrypted(bucket: str, manifest_key: str, doc: dict[str, Any], sse: str) -> None:
    """moto stores and echoes SSE: every data file of a CMEK folder was encrypted."""
    import boto3

    client = boto3.client("s3")
    folder = manifest_key.rsplit("/", 1)[0]
    name = bucket.removeprefix("s3://")
    for entry in doc["files"]:
        head = client.head_object(Bucket=name, Key=f"{folder}/{entry['name']}")
        assert head["ServerSideEncryption"] == sse
    client.close()


def test_export_to_cloud_matches_local_and_verifies(demo: Path, cloud: tuple[str, Path]) -> None:
    bucket, config = cloud
    result = dpexport("-c", config, *_run_args(), cwd=demo)
    assert result.code == 0, result.err
    runs = json.loads(result.out)
    assert {r["table"]: r["status"] for r in runs} == dict.fromkeys(TABLES, "SUCCESS")
    assert all(m.startswith(bucket + "/prod/") for r in runs for m in r["manifests"])

    local, remote = _local_manifests(demo / "local"), _cloud_manifests(bucket)
    assert sorted(remote) == sorted(local)
    assert len(remote) >= 10
    for key, doc in remote.items():
        cmek = key.startswith(CMEK_FOLDER)
        assert _normalize(doc, bucket, cmek=cmek) == _normalize(local[key], bucket, cmek=cmek), key
        if cmek:
            enc = doc["encryption"]
            scheme = bucket.split("://", 1)[0]
            assert enc["mode"] == "CMEK" and enc["client_side"] is False  # encrypted at rest
            assert enc["server_side"] == scheme
            if scheme == "gs":
                assert enc["kms_key"] == local[key]["encryption"]["kms_key"]
            elif scheme == "s3":
                assert enc["sse"] == "AES256"  # the spec's ARN is a placeholder: SSE-S3
                _assert_s3_encrypted(bucket, key, doc, enc["sse"])
            else:
                assert enc["encryption_scope"] == "diagnosticpro-exports"
            assert not any(f["name"].endswith(".enc") for f in doc["files"])

    verify = dpexport("-c", config, "verify", bucket + "/prod/", cwd=demo)
    assert verify.code == 0, verify.out + verify.err
    assert f"OK {bucket}/prod/: {len(remote)} manifest(s)" in verify.out + verify.err

    # Tamper with one data file: flip a byte in the middle.
    manifest_key, doc = next((k, d) for k, d in sorted(remote.items()) if "youtube_videos" in k)
    folder = manifest_key.rsplit("/", 1)[0]
    store, _ = StoreResolver().resolve(bucket + "/")
    target = f"{folder}/{doc['files'][0]['name']}"
    raw = bytearray(store.get(target))
    raw[len(raw) // 2] ^= 0x01
    store.put_bytes(target, bytes(raw))
    getattr(store, "close", lambda: None)()
    verify = dpexport("-c", config, "verify", bucket + "/prod/", cwd=demo)
    assert verify.code == 1
    assert f"FAIL {target}" in verify.out + verify.err
    assert "sha256 does not match" in verify.out + verify.err


CLIENT_SIDE = """\
project: p
environment: prod
warehouse: {{engine: duckdb, path: {warehouse}}}
buckets: {{exports: s3://{bucket}}}
exports:
  - source: diagnosticpro_prod.parts_catalog
    destination: s3://{bucket}/prod/diagnosticpro_prod/parts_catalog/
    format: PARQUET
    compression: GZIP
    mode: FULL_REFRESH
    encryption: CMEK
    kms_key: "{key}"
    client_side: true
"""


def test_client_side_encryption_on_s3_with_aws_kms(demo: Path, tmp_path: Path) -> None:
    """client_side: true encrypts in dpexport even on a cloud, the data key wrapped by
    AWS KMS (moto's); verify and decrypt find the key through the file's header."""
    server_env("AWS_ENDPOINT_URL", "the S3 server (moto)")
    import boto3
    import pyarrow.parquet as pq

    kms = boto3.client("kms")
    key = kms.create_key(Description="dpexport test")["KeyMetadata"]["Arn"]
    kms.close()
    bucket = unique_bucket("cse")
    close = _create_bucket("s3", bucket)
    config = tmp_path / "cse.yaml"
    config.write_text(
        CLIENT_SIDE.format(warehouse=demo / "warehouse.duckdb", bucket=bucket, key=key)
    )
    try:
        result = dpexport("-c", config, "run", "--at", AT, "--json", cwd=tmp_path)
        assert result.code == 0, result.err
        [run] = json.loads(result.out)
        store, _ = StoreResolver().resolve(f"s3://{bucket}/")
        manifest_key = run["manifests"][0].removeprefix(f"s3://{bucket}/")
        doc = json.loads(store.get(manifest_key))
        assert doc["encryption"]["client_side"] is True
        assert doc["encryption"]["key_provider"] == "aws-kms"
        [entry] = doc["files"]
        assert entry["name"].endswith(".parquet.gz.enc")
        data_key = manifest_key.rsplit("/", 1)[0] + "/" + entry["name"]
        stored = store.get(data_key)
        assert stored[:7] == b"DPXENC1" and key.encode() in stored[:2048]
        getattr(store, "close", lambda: None)()
        checked = dpexport("verify", f"s3://{bucket}/prod/", cwd=tmp_path)
        assert checked.code == 0, checked.out + checked.err
        plain = tmp_path / "plain.parquet"
        out = dpexport("decrypt", f"s3://{bucket}/{data_key}", "-o", plain, cwd=tmp_path)
        assert out.code == 0, out.err
        assert pq.read_table(plain).num_rows == run["rows"] == entry["rows"]
    finally:
        close()
