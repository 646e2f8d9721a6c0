"""CONTRACT §11 beyond ``run``: ``schedule`` and ``replicate`` write through the
principal's credentials too (issue 21).

On the IAM-enforcing moto of :mod:`tests.e2e.test_credentials` the machine's own user
may only assume roles, so an object that lands was written through a principal's role.
``exporter`` (role ``writer``) is the only principal whose roles allow an export and a
replication to S3; ``viewer`` (role ``reader``, no ``s3:PutObject``) may only read.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.cli import dpexport
from tests.e2e.test_credentials import _client, _env, aws, iam_moto
from tests.e2e.test_credentials import _setup as credentials_setup

__all__ = ["aws", "iam_moto"]  # the module's fixtures, shared with test_credentials

AT = "2025-09-16T12:00:00Z"
CONFIG = """\
project: p
environment: prod
warehouse: {{engine: duckdb, path: {warehouse}}}
buckets: {{exports: s3://{bucket}}}
service_accounts:
  exporter:
    roles: [roles/bigquery.dataViewer, roles/storage.objectCreator,
            roles/storage.objectViewer, custom/aws-s3-writer]
    aws_role_arn: "arn:aws:iam::{account}:role/writer"
  viewer:
    roles: [roles/storage.objectViewer]
    aws_role_arn: "arn:aws:iam::{account}:role/reader"
dlq_configuration: {{storage_location: {state}/dlq/}}
idempotency_design: {{storage: {{location: {state}/tokens/}}}}
retry_configuration: {{max_attempts: 2, initial_delay_seconds: 0.01, max_delay_seconds: 0.02}}
exports:
  - source: {table}
    destination: s3://{bucket}/{prefix}/parts/
    format: PARQUET
    mode: FULL_REFRESH
    schedule: "0 6 * * *"
replication:
  - tables: [parts_catalog]
    target: s3://{bucket}/{prefix}/dr/
"""


def _setup(tmp_path: Path, demo_warehouse: Path, aws: dict[str, str]) -> Path:
    return credentials_setup(tmp_path, demo_warehouse, aws, CONFIG)


def _keys(aws: dict[str, str], prefix: str) -> list[str]:
    admin: Any = _client(aws, admin=True)
    listed = admin.list_objects_v2(Bucket=aws["BUCKET"], Prefix=prefix)
    admin.close()
    return [o["Key"] for o in listed.get("Contents", [])]


def test_schedule_exports_as_the_only_principal_allowed(
    tmp_path: Path, demo_warehouse: Path, aws: dict[str, str]
) -> None:
    """No --as: the job runs as ``exporter``, the only principal allowed to export, and
    writes through its role (the machine's user could not)."""
    config = _setup(tmp_path, demo_warehouse, aws)
    result = dpexport("-c", config, "schedule", "--once", "--now", AT, "--port", "0", env=_env(aws))
    assert result.code == 0, result.out + result.err
    keys = _keys(aws, f"{tmp_path.name}/parts/")
    assert any(k.endswith("/SUCCESS") for k in keys), keys
    assert any(k.endswith(".parquet.snappy") for k in keys), keys
    records = list((tmp_path / "state").rglob("*.json"))
    assert records  # the tokens and the lease went to the local state folder


def test_schedule_as_a_principal_its_roles_refuse_is_exit_2_before_any_work(
    tmp_path: Path, demo_warehouse: Path, aws: dict[str, str]
) -> None:
    config = _setup(tmp_path, demo_warehouse, aws)
    result = dpexport(
        "-c", config, "schedule", "--once", "--now", AT, "--as", "viewer", env=_env(aws)
    )
    assert result.code == 2, result.out + result.err
    assert "'viewer' may not run" in result.err
    assert "roles/storage.objectCreator" in result.err
    assert _keys(aws, f"{tmp_path.name}/") == []


def test_replicate_copies_through_the_principals_role(
    tmp_path: Path, demo_warehouse: Path, aws: dict[str, str]
) -> None:
    config = _setup(tmp_path, demo_warehouse, aws)
    ran = dpexport("-c", config, "run", "--at", AT, "--json", env=_env(aws))
    assert ran.code == 0, ran.out + ran.err
    [run] = json.loads(ran.out)
    copied = dpexport("-c", config, "replicate", env=_env(aws))
    assert copied.code == 0, copied.out + copied.err
    source = [k for k in _keys(aws, f"{tmp_path.name}/parts/") if k.endswith(".parquet.snappy")]
    replica = _keys(aws, f"{tmp_path.name}/dr/")
    assert len(source) == run["files"] > 0
    assert {k.rsplit("/", 1)[1] for k in source} <= {k.rsplit("/", 1)[1] for k in replica}
    assert any(k.endswith("/SUCCESS") for k in replica), replica


@pytest.mark.parametrize("command", [["replicate"], ["lifecycle", "apply"]])
def test_a_principal_without_the_role_is_refused_naming_it(
    tmp_path: Path, demo_warehouse: Path, aws: dict[str, str], command: list[str]
) -> None:
    config = _setup(tmp_path, demo_warehouse, aws)
    result = dpexport("-c", config, *command, "--as", "viewer", env=_env(aws))
    assert result.code == 2, result.out + result.err
    assert "principal 'viewer' may not" in result.err
    assert "lacks" in result.err
