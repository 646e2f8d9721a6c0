"""CONTRACT §11: the principal is also the credential.

S3, end to end on a moto server of this module's own with IAM enforced: the machine's
user may only assume roles, each principal names its role (``aws_role_arn``), and
``run --as P`` writes through P's role. A role without ``s3:PutObject`` gets moto's
real AccessDenied: exit 1, FAILURE, a DLQ entry naming principal and bucket, no retry.

GCS and BigQuery impersonation cannot run against fake-gcs-server or the BigQuery
emulator (no IAM credentials endpoint), nor Azure client ids against Azurite (account
keys only): those tests check the credentials the stores and the engine are built
with, without a request.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from dpexport.security.identity import Identity, identity_of
from tests.conformance.servers import unique_bucket
from tests.e2e.cli import dpexport, warehouse_sql

AT = "2025-09-16T12:00:00Z"
MOTO = Path(__file__).resolve().parents[2] / ".tools/servers-venv/bin/moto_server"
ACCOUNT = "123456789012"  # moto's account
TABLE = "diagnosticpro_prod.parts_catalog"
WRITER, READER = "s3-writer", "s3-reader"
ROLES = "[roles/bigquery.dataViewer, roles/storage.objectCreator, custom/aws-s3-writer]"
CONFIG = """\
project: p
environment: prod
warehouse: {{engine: duckdb, path: {warehouse}}}
buckets: {{exports: s3://{bucket}}}
service_accounts:
  {writer}: {{roles: {roles}, aws_role_arn: "arn:aws:iam::{account}:role/writer"}}
  {reader}: {{roles: {roles}, aws_role_arn: "arn:aws:iam::{account}:role/reader"}}
dlq_configuration: {{storage_location: {state}/dlq/}}
idempotency_design: {{storage: {{location: {state}/tokens/}}}}
retry_configuration: {{max_attempts: 3, initial_delay_seconds: 0.01, max_delay_seconds: 0.02}}
exports:
  - source: {table}
    destination: s3://{bucket}/prod/parts/
    format: PARQUET
    mode: FULL_REFRESH
"""


def _policy(actions: list[str], resource: str | list[str] = "*") -> str:
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": actions, "Resource": resource}],
        }
    )


@pytest.fixture(scope="module")
def iam_moto() -> Iterator[str]:
    """A moto server of this module's own on a free port; it authorizes no request
    until :func:`aws` turns IAM on (moto's reset-auth)."""
    if not MOTO.exists():
        pytest.skip(f"{MOTO} is missing (./dev test installs the servers)")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {**os.environ, "INITIAL_NO_AUTH_ACTION_COUNT": "1000000"}
    proc = subprocess.Popen(
        [str(MOTO), "-H", "127.0.0.1", "-p", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(200):
            try:
                urllib.request.urlopen(f"{url}/moto-api/", timeout=1).close()
                break
            except OSError:
                time.sleep(0.1)
        else:
            pytest.fail("the IAM-enforcing moto server did not start")
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture(scope="module")
def aws(iam_moto: str) -> dict[str, str]:
    """The bucket, an admin user (to look at it), the machine's user (may only assume
    roles), role ``writer`` (S3 read and write) and ``reader`` (no ``s3:PutObject``),
    made unauthenticated; then IAM is enforced for every request. Returns the env of
    the machine's user."""
    import boto3

    keys = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
    iam = boto3.client("iam", endpoint_url=iam_moto, region_name="us-east-1", **keys)
    s3 = boto3.client("s3", endpoint_url=iam_moto, region_name="us-east-1", **keys)
    bucket = unique_bucket("creds")
    s3.create_bucket(Bucket=bucket)
    creds = {}
    for user, policy in (("admin", _policy(["*"])), ("machine", _policy(["sts:AssumeRole"]))):
        iam.create_user(UserName=user)
        iam.put_user_policy(UserName=user, PolicyName="p", PolicyDocument=policy)
        creds[user] = iam.create_access_key(UserName=user)["AccessKey"]
    trust = json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:user/machine"},
                    "Action": "sts:AssumeRole",
                }
            ],
        }
    )
    arns = [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"]
    read = ["s3:GetObject", "s3:ListBucket", "s3:GetBucketLocation", "s3:DeleteObject"]
    for role, actions in (("writer", [*read, "s3:PutObject"]), ("reader", read)):
        iam.create_role(RoleName=role, AssumeRolePolicyDocument=trust)
        iam.put_role_policy(RoleName=role, PolicyName="p", PolicyDocument=_policy(actions, arns))
    iam.close()
    s3.close()
    request = urllib.request.Request(
        f"{iam_moto}/moto-api/reset-auth", b"0", {"Content-Type": "text/plain"}, method="POST"
    )
    urllib.request.urlopen(request, timeout=10).close()

    def env(user: str) -> dict[str, str]:
        return {
            "AWS_ENDPOINT_URL": iam_moto,
            "AWS_ACCESS_KEY_ID": creds[user]["AccessKeyId"],
            "AWS_SECRET_ACCESS_KEY": creds[user]["SecretAccessKey"],
            "AWS_DEFAULT_REGION": "us-east-1",
            "BUCKET": bucket,
        }

    return {**env("machine"), **{f"ADMIN_{k}": v for k, v in env("admin").items()}}


def _client(aws: dict[str, str], admin: bool) -> Any:
    import boto3

    pre = "ADMIN_" if admin else ""
    return boto3.client(
        "s3",
        endpoint_url=aws["AWS_ENDPOINT_URL"],
        region_name="us-east-1",
        aws_access_key_id=aws[pre + "AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=aws[pre + "AWS_SECRET_ACCESS_KEY"],
    )


def _setup(
    tmp_path: Path, demo_warehouse: Path, aws: dict[str, str], template: str = CONFIG
) -> Path:
    """A copy of the demo warehouse and ``template`` filled in (a template uses the
    placeholders it needs: ``str.format`` ignores the others)."""
    shutil.copyfile(demo_warehouse, tmp_path / "warehouse.duckdb")
    config = tmp_path / "dpexport.yaml"
    config.write_text(
        template.format(
            warehouse=tmp_path / "warehouse.duckdb",
            bucket=aws["BUCKET"],
            writer=WRITER,
            reader=READER,
            roles=ROLES,
            account=ACCOUNT,
            state=tmp_path / "state",
            table=TABLE,
            prefix=tmp_path.name,
        )
    )
    return config


def _env(aws: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in aws.items() if not k.startswith("ADMIN_") and k != "BUCKET"}


def test_the_machines_own_user_may_not_write(aws: dict[str, str]) -> None:
    """IAM is enforced: the credentials dpexport starts with cannot write the bucket
    themselves, so a write that lands went through a role."""
    from botocore.exceptions import ClientError

    client = _client(aws, admin=False)
    with pytest.raises(ClientError) as info:
        client.put_object(Bucket=aws["BUCKET"], Key="probe", Body=b"x")
    client.close()
    assert info.value.response["Error"]["Code"] == "AccessDenied"


def test_a_principal_writes_through_its_assumed_role(
    tmp_path: Path, demo_warehouse: Path, aws: dict[str, str]
) -> None:
    config = _setup(tmp_path, demo_warehouse, aws)
    result = dpexport("-c", config, "run", "--as", WRITER, "--at", AT, "--json", env=_env(aws))
    assert result.code == 0, result.out + result.err
    [run] = json.loads(result.out)
    assert run["status"] == "SUCCESS"
    admin = _client(aws, admin=True)
    listed = admin.list_objects_v2(Bucket=aws["BUCKET"], Prefix="prod/parts/")
    keys = [o["Key"] for o in listed.get("Contents", [])]
    [data] = [k for k in keys if k.endswith(".parquet.snappy")]
    body = admin.get_object(Bucket=aws["BUCKET"], Key=data)["Body"].read()
    admin.close()
    assert any(k.endswith("/SUCCESS") for k in keys), keys
    rows = pq.read_table(pa.BufferReader(body)).num_rows
    [(expected,)] = warehouse_sql(tmp_path, f"SELECT count(*) FROM {TABLE}")
    assert rows == run["rows"] == expected > 0


def test_a_role_without_put_object_is_denied_by_the_server_and_not_retried(
    tmp_path: Path, demo_warehouse: Path, aws: dict[str, str]
) -> None:
    config = _setup(tmp_path, demo_warehouse, aws)
    result = dpexport("-c", config, "run", "--as", READER, "--at", AT, "--json", env=_env(aws))
    assert result.code == 1, result.out + result.err
    [run] = json.loads(result.out)
    assert run["status"] == "FAILURE"
    bucket = aws["BUCKET"]
    assert "AccessDenied" in run["error"] and bucket in run["error"], run["error"]
    assert READER in run["error"], run["error"]
    listed = dpexport("-c", config, "dlq", "list", "--json", env=_env(aws))
    assert listed.code == 0, listed.err
    [entry] = json.loads(listed.out)
    assert entry["code"] == "PERMISSION_DENIED" and entry["dlq_retries"] == 0
    assert READER in entry["error"] and f"bucket {bucket}" in entry["error"], entry["error"]
    history = json.loads((Path(entry["uri"]) / "retry_history.json").read_text())
    denied = [h for h in history if h["code"] == "PERMISSION_DENIED"]
    assert denied and "AccessDenied" in denied[0]["message"]
    # nothing was tried twice: each call's one attempt gave up as not retryable
    assert {(h["attempt"], h["gave_up"], h["delay_seconds"]) for h in history} == {
        (1, "non_retryable", None)
    }
    admin = _client(aws, admin=True)
    listed_objects = admin.list_objects_v2(Bucket=bucket, Prefix="prod/parts/")
    admin.close()
    assert not [o for o in listed_objects.get("Contents", []) if o["Key"].endswith(".parquet")]


# -- the other clouds: the credentials built, no request --------------------------------
SA = "exporter@proj.iam.gserviceaccount.com"


def _key_file(path: Path) -> Path:
    """A service-account key file for ADC (a fresh RSA key; never used to sign here)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    doc = {
        "type": "service_account",
        "project_id": "machine-project",
        "private_key_id": "1",
        "private_key": pem,
        "client_email": "machine@machine-project.iam.gserviceaccount.com",
        "client_id": "1",
        "token_uri": "https://oauth2.googleapis.com/token",
    }
    path.write_text(json.dumps(doc))
    return path


def _accounts(**fields: str) -> Any:
    from dpexport.config.models.security import ServiceAccount

    return {SA: ServiceAccount(roles=["roles/storage.objectCreator"], **fields)}


def test_identity_comes_from_service_accounts_only() -> None:
    assert identity_of(_accounts(), None) is None
    assert identity_of(_accounts(), "someone-else@x.iam.gserviceaccount.com") is None
    who = identity_of(_accounts(aws_role_arn="arn:aws:iam::1:role/r"), SA)
    assert who == Identity(SA, aws_role_arn="arn:aws:iam::1:role/r", gcp_service_account=SA)


def test_gcs_impersonates_the_principals_service_account(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from google.auth import impersonated_credentials

    from dpexport.storage.uri import StoreResolver

    monkeypatch.delenv("STORAGE_EMULATOR_HOST", raising=False)
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(_key_file(tmp_path / "k.json")))
    store, _ = StoreResolver(identity=identity_of(_accounts(), SA)).resolve("gs://b/x/")
    creds = store.inner.client._credentials  # type: ignore[attr-defined]
    assert isinstance(creds, impersonated_credentials.Credentials)
    assert creds.service_account_email == SA
    assert creds._source_credentials.service_account_email.startswith("machine@")
    assert store.inner.principal == SA  # type: ignore[attr-defined]
    plain, _ = StoreResolver().resolve("gs://b/x/")
    assert not isinstance(
        plain.inner.client._credentials,  # type: ignore[attr-defined]
        impersonated_credentials.Credentials,
    )


def test_bigquery_impersonates_the_principals_service_account(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from google.auth import impersonated_credentials

    from dpexport.config.spec import WarehouseSpec
    from dpexport.engines import open_engine

    monkeypatch.delenv("BIGQUERY_EMULATOR_HOST", raising=False)
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(_key_file(tmp_path / "k.json")))
    spec = WarehouseSpec(engine="bigquery", project="p")
    engine = open_engine(spec, identity=identity_of(_accounts(), SA))
    try:
        creds = engine.client._credentials  # type: ignore[attr-defined]
        assert isinstance(creds, impersonated_credentials.Credentials)
        assert creds.service_account_email == SA
    finally:
        engine.close()


def test_azure_signs_in_as_the_principals_client_id(monkeypatch: pytest.MonkeyPatch) -> None:
    from azure.identity import ClientSecretCredential, ManagedIdentityCredential

    from dpexport.storage.uri import StoreResolver

    monkeypatch.delenv("AZURE_STORAGE_CONNECTION_STRING", raising=False)
    monkeypatch.setenv("AZURE_STORAGE_ACCOUNT_URL", "https://127.0.0.1:9/devstoreaccount1")
    for var in ("AZURE_CLIENT_SECRET", "AZURE_TENANT_ID"):
        monkeypatch.delenv(var, raising=False)
    who = identity_of(_accounts(azure_client_id="11111111-2222-3333-4444-555555555555"), SA)
    store, _ = StoreResolver(identity=who).resolve("az://c/x/")
    cred = store.inner.service.credential  # type: ignore[attr-defined]
    assert isinstance(cred, ManagedIdentityCredential)
    monkeypatch.setenv("AZURE_CLIENT_SECRET", "s")
    monkeypatch.setenv("AZURE_TENANT_ID", "t")
    store, _ = StoreResolver(identity=who).resolve("az://c/x/")
    cred = store.inner.service.credential  # type: ignore[attr-defined]
    assert isinstance(cred, ClientSecretCredential)
    assert cred._client_id == who.azure_client_id  # type: ignore[union-attr]
