"""Spec 6.2 ``uniform_access`` and ``iam_bindings`` (issue 21): ``lifecycle apply`` writes
them where the store takes them and reads them back; ``iam render`` prints them.

- moto stores Object Ownership, the public access block and the bucket policy, so each is
  read back from the server here (moto does not *enforce* the public access block).
- fake-gcs-server has no IAM endpoint (``/b/BUCKET/iam`` is 404) and does not store
  ``iamConfiguration``: the command must say neither was applied, not claim it was.
- Azure container access is RBAC (management plane): named as not applied.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conformance.servers import server_env, unique_bucket
from tests.e2e.cli import dpexport

READER = "arn:aws:iam::123456789012:role/analytics-reader"
WRITER = "arn:aws:iam::123456789012:role/bigquery-exporter"
CONFIG = """\
project: p
environment: prod
buckets: {{exports: {bucket}}}
exports:
  - source: ds.events
    destination: {bucket}/events/
    mode: APPEND
bucket_policies:
  {name}:
    uniform_access: true
    iam_bindings:
      - role: "roles/storage.objectViewer"
        members: ["group:data-analysts@diagnosticpro.com", "{reader}"]
      - role: "roles/storage.objectCreator"
        members: ["serviceAccount:{writer}"]{public}
"""
PUBLIC = """
      - role: "roles/storage.objectViewer"
        members: ["allUsers"]
        allow_public: true"""


def _config(tmp_path: Path, bucket: str, public: bool = False) -> Path:
    path = tmp_path / "dpexport.yaml"
    name = bucket.split("://", 1)[1]
    text = CONFIG.format(
        bucket=bucket, name=name, reader=READER, writer=WRITER, public=PUBLIC if public else ""
    )
    path.write_text(text, encoding="utf-8")
    return path


def _apply(config: Path) -> dict[str, Any]:
    result = dpexport("-c", config, "lifecycle", "apply", "--json")
    assert result.code == 0, result.err + result.out
    (doc,) = json.loads(result.out)
    assert doc["error"] is None, doc
    return dict(doc)


@pytest.fixture
def s3() -> Iterator[tuple[Any, str]]:
    server_env("AWS_ENDPOINT_URL", "the S3 server (moto)")
    import boto3

    client = boto3.session.Session().client("s3")
    name = unique_bucket("acl")
    client.create_bucket(Bucket=name)
    yield client, name
    client.close()


def test_s3_ownership_policy_and_public_block(tmp_path: Path, s3: tuple[Any, str]) -> None:
    client, name = s3
    other = {"Sid": "someone-else", "Effect": "Deny", "Principal": "*", "Action": "s3:DeleteBucket",
             "Resource": f"arn:aws:s3:::{name}"}  # fmt: skip
    client.put_bucket_policy(
        Bucket=name, Policy=json.dumps({"Version": "2012-10-17", "Statement": [other]})
    )
    doc = _apply(_config(tmp_path, f"s3://{name}"))
    owner = client.get_bucket_ownership_controls(Bucket=name)["OwnershipControls"]
    assert owner == {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]}
    block = client.get_public_access_block(Bucket=name)["PublicAccessBlockConfiguration"]
    assert block == dict.fromkeys(
        ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets"), True
    )
    statements = json.loads(client.get_bucket_policy(Bucket=name)["Policy"])["Statement"]
    by_sid = {s["Sid"]: s for s in statements}
    assert by_sid["someone-else"]["Effect"] == "Deny"  # another author's statement is kept
    viewer = by_sid["dpexport-0-storage.objectViewer"]
    assert viewer["Principal"] in ({"AWS": [READER]}, {"AWS": READER})
    assert sorted(viewer["Action"]) == ["s3:GetObject", "s3:ListBucket"]
    creator = by_sid["dpexport-1-storage.objectCreator"]
    assert creator["Action"] in (["s3:PutObject"], "s3:PutObject")
    assert creator["Resource"] in ([f"arn:aws:s3:::{name}/*"], f"arn:aws:s3:::{name}/*")
    assert not any("read back differs" in x for x in doc["not_applied"]), doc
    assert any(x.startswith("bucket policy dpexport-0") for x in doc["applied"])
    # the GCP group is not an AWS principal: named, not silently dropped
    (group,) = [x for x in doc["not_applied"] if "group:data-analysts" in x]
    assert "not AWS principals" in group and "iam render" in group


def test_s3_allow_public_opens_only_the_policy_flags(tmp_path: Path, s3: tuple[Any, str]) -> None:
    client, name = s3
    _apply(_config(tmp_path, f"s3://{name}", public=True))
    block = client.get_public_access_block(Bucket=name)["PublicAccessBlockConfiguration"]
    assert block == {
        "BlockPublicAcls": True,
        "IgnorePublicAcls": True,
        "BlockPublicPolicy": False,
        "RestrictPublicBuckets": False,
    }
    statements = json.loads(client.get_bucket_policy(Bucket=name)["Policy"])["Statement"]
    assert [s["Principal"] for s in statements if s["Principal"] == "*"] == ["*"]


def test_gcs_says_what_the_emulator_did_not_keep(tmp_path: Path) -> None:
    server_env("STORAGE_EMULATOR_HOST", "the GCS server (fake-gcs-server)")
    import google.cloud.storage as storage
    from google.auth.credentials import AnonymousCredentials

    client = storage.Client(project="dpexport-test", credentials=AnonymousCredentials())
    name = unique_bucket("acl")
    client.create_bucket(name)
    try:
        doc = _apply(_config(tmp_path, f"gs://{name}"))
    finally:
        client.close()
    # fake-gcs-server drops iamConfiguration and has no IAM endpoint; real GCS keeps both
    (ubla,) = [x for x in doc["not_applied"] if x.startswith("uniform bucket-level access")]
    assert "read back differs" in ubla
    (iam,) = [x for x in doc["not_applied"] if x.startswith("iam_bindings")]
    assert "did not take the IAM policy" in iam and "iam render" in iam
    assert not any("uniform" in x or "IAM" in x for x in doc["applied"])


def test_azure_names_what_it_cannot_apply(tmp_path: Path) -> None:
    conn = server_env("AZURE_STORAGE_CONNECTION_STRING", "the Azure server (Azurite)")
    from azure.storage.blob import BlobServiceClient

    service = BlobServiceClient.from_connection_string(conn)
    name = unique_bucket("acl")
    service.create_container(name)
    try:
        doc = _apply(_config(tmp_path, f"az://{name}"))
    finally:
        service.close()
    assert any("RBAC role assignments" in x for x in doc["not_applied"]), doc


def test_iam_render_prints_one_policy_per_bucket(tmp_path: Path) -> None:
    config = _config(tmp_path, "gs://exports-bucket", public=True)
    result = dpexport("-c", config, "iam", "render", "--json")
    assert result.code == 0, result.err
    (doc,) = json.loads(result.out)
    assert doc["bucket"] == "exports-bucket"
    assert doc["uniform_bucket_level_access"] is True
    assert doc["gcloud"].startswith("gcloud storage buckets set-iam-policy gs://exports-bucket ")
    assert doc["iam_policy"] == {
        "version": 3,
        "bindings": [
            {  # the two objectViewer bindings are one: a policy holds a role once
                "role": "roles/storage.objectViewer",
                "members": ["group:data-analysts@diagnosticpro.com", READER, "allUsers"],
            },
            {"role": "roles/storage.objectCreator", "members": [f"serviceAccount:{WRITER}"]},
        ],
    }
    resources = [r["google_storage_bucket_iam_binding"] for r in doc["terraform"]]
    assert resources[1] == {
        "bucket": "exports-bucket",
        "role": "roles/storage.objectCreator",
        "members": [f"serviceAccount:{WRITER}"],
    }
    text = dpexport("-c", config, "iam", "render")
    assert text.code == 0 and json.loads(text.out.split("\n", 1)[1]) == doc["iam_policy"]


def test_a_local_folder_says_the_bindings_were_not_applied(tmp_path: Path) -> None:
    config = _config(tmp_path, "gs://exports-bucket")
    result = dpexport(
        "-c", config, "--local-root", tmp_path / "out", "lifecycle", "apply", "--json"
    )
    assert result.code == 0, result.err
    (doc,) = json.loads(result.out)
    assert any("a local folder has no access policy" in x for x in doc["not_applied"]), doc
