"""Retention (spec 4.1 ``retention``, CONTRACT §12) and Azure tiering (spec 10.2), run as
a user runs them: the CLI against a local bucket and the emulators.

- S3 (moto, which enforces governance-mode Object Lock): an export of a table with
  retention puts its data files, sidecars and manifests under a lock until write time +
  retention; moto refuses a delete of the locked version, and ``sweep`` with a clock
  past dpexport's own date but before the server's reports the refusal (exit 1, the
  object and the date).
- A local bucket: ``sweep`` keeps a due folder to the second of its retention's end and
  deletes it a second later; a FULL_REFRESH whose previous snapshot is held fails before
  its commit, publishing and deleting nothing.
- Azurite stores blob tiers (and refuses a read of an archived blob): ``sweep`` moves a
  data file Cool -> Cold -> Archive by age; markers stay Hot.

Objects cannot be back-dated on a server, so ``--now`` moves the clock instead, computed
from the objects' own write times (no wall-clock asserts).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pytest

from tests.conformance.servers import server_env, unique_bucket
from tests.e2e.cli import dpexport

AT = "2025-09-16T12:00:00Z"
KEEP = timedelta(days=2190)
DEST = "test/ds/api_access_log/"
CONFIG = """
project: p
environment: test
warehouse: {{engine: duckdb, path: warehouse.duckdb}}
buckets: {{exports: {bucket}}}
exports:
  - source: ds.api_access_log
    destination: {bucket}/test/ds/api_access_log/
    format: PARQUET
    mode: APPEND
    partitioning: {{field: ts, granularity: daily}}
  - source: ds.ref
    destination: {bucket}/prod/ds/ref/
    format: PARQUET
    mode: FULL_REFRESH
append_only:
  api_access_log:
    reason: "Security audit trail"
    export_mode: "APPEND"
    retention: "2190 days"
lifecycle_policies:
  30_days: {{action: "Transition to NEARLINE"}}
  90_days: {{action: "Transition to COLDLINE"}}
  365_days: {{action: "Transition to ARCHIVE"}}
  auto_delete: {{test_exports: "1 day"}}
"""


def _setup(base: Path, bucket: str) -> Path:
    con = duckdb.connect(str(base / "warehouse.duckdb"))
    con.execute("CREATE SCHEMA ds")
    con.execute(
        "CREATE TABLE ds.api_access_log AS SELECT i AS id, "
        "TIMESTAMP '2025-09-15 10:00:00' + to_hours(i) AS ts FROM range(5) t(i)"
    )
    con.execute("CREATE TABLE ds.ref AS SELECT i AS id FROM range(3) t(i)")
    con.close()
    config = base / "dpexport.yaml"
    config.write_text(CONFIG.format(bucket=bucket), encoding="utf-8")
    return config


def _iso(when: datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


def _sweep(config: Path, now: datetime, *root: str | Path) -> tuple[int, list[Any], str]:
    result = dpexport("-c", config, *root, "lifecycle", "sweep", "--json", "--now", _iso(now))
    return result.code, json.loads(result.out), result.err


# -- S3 Object Lock ------------------------------------------------------------------------
@pytest.fixture
def s3() -> Any:
    server_env("AWS_ENDPOINT_URL", "the S3 server (moto)")
    import boto3

    client = boto3.session.Session().client("s3")
    yield client
    client.close()


def test_s3_lock_refuses_an_early_delete_and_sweep_reports_it(s3: Any, tmp_path: Path) -> None:
    bucket = unique_bucket("ret")
    s3.create_bucket(Bucket=bucket, ObjectLockEnabledForBucket=True)
    config = _setup(tmp_path, f"s3://{bucket}")
    applied = dpexport("-c", config, "lifecycle", "apply", "--json", cwd=tmp_path)
    assert applied.code == 0, applied.err
    (doc,) = json.loads(applied.out)
    assert any(line.startswith("Object Lock enabled: exports put") for line in doc["applied"])
    run = dpexport("-c", config, "run", "--at", AT, "--table", "api_access_log", cwd=tmp_path)
    assert run.code == 0, run.err + run.out

    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix=DEST)["Contents"]]
    heads = {k: s3.head_object(Bucket=bucket, Key=k) for k in keys}
    data = next(k for k in keys if k.endswith(".parquet.snappy"))
    manifest = next(k for k in keys if "/manifest_" in k)
    locked = {k for k, h in heads.items() if h.get("ObjectLockMode") == "GOVERNANCE"}
    assert locked == set(keys) - {k for k in keys if k.endswith("/SUCCESS")}
    assert data in locked and manifest in locked and data + ".metadata.json" in locked
    for key in locked:  # retain-until is the write time + 2190 days
        held = heads[key]["ObjectLockRetainUntilDate"] - heads[key]["LastModified"]
        assert abs(held - KEEP) < timedelta(minutes=1), (key, held)

    # the server itself refuses to delete the locked version, and dpexport's S3 store,
    # which deletes a locked object by its version, says so instead of hiding it behind a
    # delete marker
    from botocore.exceptions import ClientError

    from dpexport.storage.s3 import ObjectLocked, S3Store

    with pytest.raises(ClientError, match="AccessDenied"):
        s3.delete_object(Bucket=bucket, Key=data, VersionId=heads[data]["VersionId"])
    store = S3Store(bucket)
    until = heads[data]["ObjectLockRetainUntilDate"]
    with pytest.raises(ObjectLocked, match=f"s3://{bucket}/{data} is kept until {until:%Y-%m-%d}"):
        store.delete(data)
    store.close()
    assert s3.head_object(Bucket=bucket, Key=data)["VersionId"] == heads[data]["VersionId"]

    written = max(h["LastModified"] for h in heads.values())
    until = max(heads[k]["ObjectLockRetainUntilDate"] for k in locked)
    # 3 years on: due under test_exports (1 day), held by dpexport's own retention check
    code, items, err = _sweep(config, written + timedelta(days=3 * 365))
    assert code == 0, err
    (item,) = [i for i in items if i["what"].startswith(DEST)]
    assert (item["status"], item["reason"], item["refused"]) == (
        "kept",
        f"retention until {written + KEEP:%Y-%m-%d} (retention 2190 days of ds.api_access_log)",
        None,
    )
    assert s3.list_objects_v2(Bucket=bucket, Prefix=DEST)["KeyCount"] == len(keys)

    # 15 years on dpexport's clock, but the server's lock still holds: nothing of the
    # folder is deleted (not even its SUCCESS), and the refusal is an error
    code, items, err = _sweep(config, written + timedelta(days=15 * 365))
    assert code == 1
    (item,) = [i for i in items if i["what"].startswith(DEST)]
    assert (item["status"], item["reason"]) == ("kept", f"retention until {until:%Y-%m-%d}")
    assert f"is kept until {until:%Y-%m-%d} by the server's object lock" in err
    assert "(3 of 4 object(s) locked); not deleted" in err and f"s3://{bucket}/{DEST}" in err
    assert s3.list_objects_v2(Bucket=bucket, Prefix=DEST)["KeyCount"] == len(keys)


def test_s3_apply_says_when_the_bucket_has_no_object_lock(s3: Any, tmp_path: Path) -> None:
    bucket = unique_bucket("ret")
    s3.create_bucket(Bucket=bucket)
    config = _setup(tmp_path, f"s3://{bucket}")
    applied = dpexport("-c", config, "lifecycle", "apply", "--json", cwd=tmp_path)
    assert applied.code == 0, applied.err
    (doc,) = json.loads(applied.out)
    assert any(
        f"Object Lock is not enabled on bucket {bucket}" in line for line in doc["not_applied"]
    )
    # exports still go through, unlocked (dpexport's own checks keep the objects)
    run = dpexport("-c", config, "run", "--at", AT, "--table", "api_access_log", cwd=tmp_path)
    assert run.code == 0, run.err + run.out
    key = next(
        o["Key"]
        for o in s3.list_objects_v2(Bucket=bucket, Prefix=DEST)["Contents"]
        if o["Key"].endswith(".parquet.snappy")
    )
    assert "ObjectLockMode" not in s3.head_object(Bucket=bucket, Key=key)


# -- a local bucket: the boundary, FULL_REFRESH ---------------------------------------------
def test_sweep_keeps_until_the_retention_ends_then_deletes(tmp_path: Path) -> None:
    config = _setup(tmp_path, "gs://bk")
    root = ("--local-root", tmp_path / "out")
    run = dpexport(
        "-c", config, *root, "run", "--at", AT, "--table", "api_access_log", cwd=tmp_path
    )
    assert run.code == 0, run.err + run.out
    folder = tmp_path / "out" / "gs" / "bk" / DEST
    files = sorted(p for p in folder.rglob("*") if p.is_file())
    assert len(files) == 4  # data, sidecar, manifest, SUCCESS
    newest = max(datetime.fromtimestamp(p.stat().st_mtime).astimezone() for p in files)

    code, items, err = _sweep(config, newest + KEEP - timedelta(seconds=1), *root)
    assert code == 0, err
    (item,) = [i for i in items if i["what"].startswith(DEST)]
    assert item["status"] == "kept"
    assert item["reason"].startswith(f"retention until {newest + KEEP:%Y-%m-%d} (retention 2190")
    assert all(p.exists() for p in files)

    code, items, err = _sweep(config, newest + KEEP + timedelta(seconds=1), *root)
    assert code == 0, err
    (item,) = [i for i in items if i["what"].startswith(DEST)]
    assert item["status"] == "deleted"
    assert not any(p.exists() for p in files)


def test_full_refresh_of_a_held_snapshot_fails_before_its_commit(tmp_path: Path) -> None:
    """``check`` refuses a FULL_REFRESH table kept for compliance; a spec built in Python
    past it still cannot retire a held snapshot: the export fails before its commit."""
    import dataclasses

    from dpexport.config import load_config
    from dpexport.engines import open_engine
    from dpexport.flow.context import RunOptions
    from dpexport.flow.runner import run_exports

    config_path = _setup(tmp_path, "gs://bk")
    root = ("--local-root", tmp_path / "out")
    first = dpexport("-c", config_path, *root, "run", "--at", AT, "--table", "ref", cwd=tmp_path)
    assert first.code == 0, first.err + first.out
    bucket = tmp_path / "out" / "gs" / "bk"
    before = sorted(p.relative_to(bucket) for p in (bucket / "prod/ds/ref").rglob("*"))
    manifest = next(p for p in before if p.name.startswith("manifest_"))
    text = config_path.read_text().replace(
        "    mode: FULL_REFRESH\n", "    mode: FULL_REFRESH\n    compliance: [SOC2_audit_trail]\n"
    )
    config_path.with_name("kept.yaml").write_text(text, encoding="utf-8")
    refused = dpexport("-c", config_path.with_name("kept.yaml"), *root, "check", cwd=tmp_path)
    assert refused.code == 2 and "exports[1].compliance: FULL_REFRESH retires" in refused.err

    config = load_config(config_path)
    kept = dataclasses.replace(config.table("ref"), compliance=("SOC2_audit_trail",))
    engine = open_engine(config.warehouse, base_dir=tmp_path)
    options = RunOptions(
        tables=("ref",),
        at=datetime(2025, 9, 17, 12, tzinfo=UTC),
        local_root=tmp_path / "out",
    )
    try:
        [second] = run_exports(dataclasses.replace(config, tables=(kept,)), engine, options)
    finally:
        engine.close()
    assert second.status == "FAILURE" and second.error is not None
    assert f"gs://bk/{manifest} is kept until " in second.error
    assert "(retention 3652 days of ds.ref, compliance: SOC2_audit_trail)" in second.error
    assert "nothing was published" in second.error and "mode APPEND" in second.error
    after = sorted(p.relative_to(bucket) for p in (bucket / "prod/ds/ref").rglob("*"))
    # the held snapshot is whole; the new day has only its FAILURE marker
    assert [p for p in after if "2025/09/17" not in str(p)] == before
    assert [p.name for p in after if "2025/09/17" in str(p) and p.suffix] == []
    assert (bucket / "prod/ds/ref/2025/09/17/FAILURE").exists()


# -- Azure tiers ---------------------------------------------------------------------------
def test_azure_sweep_moves_data_files_to_colder_tiers_by_age(tmp_path: Path) -> None:
    conn = server_env("AZURE_STORAGE_CONNECTION_STRING", "the Azure server (Azurite)")
    from azure.core.exceptions import ResourceExistsError
    from azure.storage.blob import BlobServiceClient

    service = BlobServiceClient.from_connection_string(conn)
    name = unique_bucket("tier")
    container = service.create_container(name)
    try:
        config = _setup(tmp_path, f"az://{name}")
        data, success = (
            "prod/ds/ref/2025/09/16/ref_1.parquet.snappy",
            "prod/ds/ref/2025/09/16/SUCCESS",
        )
        for key in (data, success):
            container.upload_blob(key, b"x" * 10)
        props = container.get_blob_client(data).get_blob_properties()
        written = props.last_modified

        def tiers_at(days: int) -> tuple[str, str]:
            code, items, err = _sweep(config, written + timedelta(days=days, minutes=1))
            assert code == 0, err
            got = [(i["what"], i["rule"]) for i in items if i["status"] == "tiered"]
            assert got in ([], [(data, "tier:" + _tier(container, data))])
            return _tier(container, data), _tier(container, success)

        assert tiers_at(29) == ("Hot", "Hot")
        assert tiers_at(30) == ("Cool", "Hot")
        assert tiers_at(90) == ("Cold", "Hot")
        assert tiers_at(365) == ("Archive", "Hot")
        # Azurite, like Azure, refuses to read an archived blob: the tier is real
        with pytest.raises(ResourceExistsError, match="archived blob"):
            container.get_blob_client(data).download_blob().readall()
    finally:
        service.delete_container(name)
        service.close()


def _tier(container: Any, key: str) -> str:
    return str(container.get_blob_client(key).get_blob_properties().blob_tier)
