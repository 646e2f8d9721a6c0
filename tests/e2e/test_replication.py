"""``dpexport replicate`` from a --local-root export to the S3 (moto) and Azure (Azurite)
emulators: every object's sha256 equals the source's at the target, the copies verify,
a second run copies nothing, and a run killed part-way resumes.

The exports are made once with ``--local-root``; the replication config then names that
folder as the tables' destination (a plain path), so the sources are local and the targets
are the emulators' buckets.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conformance.servers import server_env, unique_bucket
from tests.e2e.cli import dpexport

AT = "2025-09-16T12:00:00Z"
ROWS = 200
DEMO_BUCKET = "gs://diagnosticpro-exports"
BILLING = "prod/diagnosticpro_prod/financial/"  # CMEK: client-side .enc files locally
FEATURES = "prod/diagnosticpro_ml/features/"  # hourly folders


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from dpexport.demo import example_config_text
    from dpexport.demo.warehouse import create_demo_warehouse

    base = tmp_path_factory.mktemp("replication")
    create_demo_warehouse(base / "warehouse.duckdb", ROWS)
    (base / "dpexport.yaml").write_text(example_config_text(), encoding="utf-8")
    run = ["run", "--at", AT, "--table", "billing_transactions", "--table", "feature_store"]
    result = dpexport("-c", base / "dpexport.yaml", "--local-root", base / "local", *run, cwd=base)
    assert result.code == 0, result.err
    return base


@pytest.fixture
def targets(exported: Path) -> Iterator[tuple[Path, Any, str, Any, str]]:
    """(config, boto3 client, S3 bucket, Azure container client, container name)."""
    server_env("AWS_ENDPOINT_URL", "the S3 server (moto)")
    conn = server_env("AZURE_STORAGE_CONNECTION_STRING", "the Azure server (Azurite)")
    import boto3
    from azure.storage.blob import BlobServiceClient

    s3 = boto3.session.Session().client("s3")
    bucket = unique_bucket("rep")
    s3.create_bucket(Bucket=bucket)
    service = BlobServiceClient.from_connection_string(conn)
    container = unique_bucket("rep")
    service.create_container(container)
    text = (exported / "dpexport.yaml").read_text(encoding="utf-8")
    text = text.replace(DEMO_BUCKET, str(exported / "local/gs/diagnosticpro-exports"))
    text = text[: text.index("\nreplication:")] + (
        "\nreplication:\n"
        "  - name: disaster-recovery\n"
        "    tables: [diagnosticpro_prod.billing_transactions]\n"
        f"    target: s3://{bucket}/disaster-recovery/\n"
        "  - name: ml-training\n"
        "    tables: [diagnosticpro_prod.feature_store]\n"
        f"    target: az://{container}/ml-training/\n"
    )
    config = exported / f"replicate-{bucket}.yaml"
    config.write_text(text, encoding="utf-8")
    yield config, s3, bucket, service.get_container_client(container), container
    s3.close()
    service.close()


def _source(exported: Path, prefix: str) -> dict[str, str]:
    """rel path -> sha256 of every committed object under a local destination."""
    root = exported / "local/gs/diagnosticpro-exports" / prefix
    out: dict[str, str] = {}
    for success in root.rglob("SUCCESS"):
        folder = success.parent
        for name in json.loads(success.read_text())["manifests"]:
            for entry in json.loads((folder / name).read_text())["files"]:
                for rel in (entry["name"], entry["name"] + ".metadata.json"):
                    path = folder / rel
                    out[path.relative_to(root).as_posix()] = _sha(path.read_bytes())
            out[(folder / name).relative_to(root).as_posix()] = _sha((folder / name).read_bytes())
        out[success.relative_to(root).as_posix()] = _sha(success.read_bytes())
    return out


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _s3_objects(s3: Any, bucket: str, prefix: str) -> dict[str, str]:
    out = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for obj in page.get("Contents", []):
            body = s3.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read()
            out[obj["Key"][len(prefix) :]] = _sha(body)
    return out


def _az_objects(container: Any, prefix: str) -> dict[str, str]:
    return {
        b.name[len(prefix) :]: _sha(container.download_blob(b.name).readall())
        for b in container.list_blobs(name_starts_with=prefix)
    }


def _replicate(config: Path, *extra: str) -> list[dict[str, Any]]:
    result = dpexport("-c", config, "replicate", "--json", *extra)
    assert result.code == 0, result.err + result.out
    docs: list[dict[str, Any]] = json.loads(result.out)
    return docs


def test_replicate_to_s3_and_azure(exported: Path, targets: Any) -> None:
    config, s3, bucket, container, name = targets
    first = {d["table"].split(".")[1]: d for d in _replicate(config)}
    billing_src, features_src = _source(exported, BILLING), _source(exported, FEATURES)
    assert first["billing_transactions"]["copied"] == len(billing_src)
    assert first["feature_store"]["copied"] == len(features_src)
    assert all(d["mismatches"] == [] and d["errors"] == [] for d in first.values())
    # every byte at the target is the source's (data files, sidecars, manifests, SUCCESS)
    billing_dst = "disaster-recovery/diagnosticpro_prod/billing_transactions/"
    assert _s3_objects(s3, bucket, billing_dst) == billing_src
    assert any(k.endswith(".enc") for k in billing_src)  # copied as stored, still encrypted
    features_dst = "ml-training/diagnosticpro_prod/feature_store/"
    assert _az_objects(container, features_dst) == features_src
    # the copy is an export dpexport verify accepts (checksums, rows, formats)
    verify = dpexport("verify", f"az://{name}/{features_dst}")
    assert verify.code == 0, verify.out + verify.err
    # a CMEK table stays encrypted at rest on the target too (spec 6.3 cross_cloud sse)
    some = next(k for k in billing_src if k.endswith(".enc"))
    head = s3.head_object(Bucket=bucket, Key=billing_dst + some)
    assert head["ServerSideEncryption"] == "AES256"

    second = _replicate(config)
    assert [(d["copied"], d["bytes"]) for d in second] == [(0, 0), (0, 0)]
    assert [d["skipped"] for d in second] == [len(billing_src), len(features_src)]


def test_interrupted_replication_resumes(exported: Path, targets: Any) -> None:
    """Killed after 10 uploads to Azure: no SUCCESS for an unfinished folder; the rerun
    skips what was copied and finishes."""
    config, _, _, container, _ = targets
    from dpexport.config import load_config
    from dpexport.ops.replicate import replicate
    from dpexport.storage.uri import StoreResolver

    resolver = StoreResolver()
    uploads: list[str] = []

    class Killed(Exception):
        pass

    class Dying:
        def __init__(self, inner: Any) -> None:
            self.inner = inner

        def __getattr__(self, attr: str) -> Any:
            return getattr(self.inner, attr)

        def _count(self, key: str) -> None:
            if len(uploads) >= 10:
                raise Killed(key)
            uploads.append(key)

        def put_file(self, key: str, source: Path) -> Any:
            self._count(key)
            return self.inner.put_file(key, source)

        def put_bytes(self, key: str, data: bytes) -> Any:
            if not key.startswith("_state/"):
                self._count(key)
            return self.inner.put_bytes(key, data)

    def opener(uri: str) -> tuple[Any, str]:
        store, key = resolver.resolve(uri)
        return (Dying(store) if uri.startswith("az://") else store), key

    with pytest.raises(Killed):
        replicate(load_config(config), tables=["feature_store"], opener=opener)
    assert len(uploads) == 10
    # folders are copied in key order, 4 objects each: 2 whole folders and 2 files of a third
    names = [b.name for b in container.list_blobs(name_starts_with="ml-training/")]
    assert sum(n.endswith("/SUCCESS") for n in names) == 2
    (resumed,) = _replicate(config, "--table", "feature_store")
    assert resumed["skipped"] == 10
    assert resumed["copied"] == len(_source(exported, FEATURES)) - 10
    features_dst = "ml-training/diagnosticpro_prod/feature_store/"
    assert _az_objects(container, features_dst) == _source(exported, FEATURES)


def test_checksum_mismatch_exits_1(exported: Path, targets: Any, tmp_path: Path) -> None:
    """A source file that no longer matches its manifest is not copied and fails the run."""
    config, s3, bucket, _, _ = targets
    import shutil

    copy = tmp_path / "local"
    shutil.copytree(exported / "local", copy)
    text = config.read_text(encoding="utf-8").replace(str(exported / "local"), str(copy))
    bad_config = tmp_path / "bad.yaml"
    bad_config.write_text(text, encoding="utf-8")
    victim = next((copy / "gs/diagnosticpro-exports" / BILLING).rglob("*.enc"))
    data = bytearray(victim.read_bytes())
    data[-1] ^= 0xFF
    victim.write_bytes(bytes(data))
    result = dpexport("-c", bad_config, "replicate", "--table", "billing_transactions")
    assert result.code == 1
    assert re.search(r"FAIL .*sha256 at the source does not match", result.out), result.out
    folder = victim.parent.relative_to(copy / "gs/diagnosticpro-exports" / BILLING).as_posix()
    key = f"disaster-recovery/diagnosticpro_prod/billing_transactions/{folder}/SUCCESS"
    assert "Contents" not in s3.list_objects_v2(Bucket=bucket, Prefix=key)
