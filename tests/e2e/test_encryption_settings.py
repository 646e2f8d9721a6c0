"""Spec 6.3's encryption words each do what they say, or ``check`` refuses them (issue 17).

- ``cross_cloud.aws_s3.kms_master_key`` is the SSE-KMS key of a CMEK table's objects on
  S3 when the table's own key is not an AWS one: moto echoes the key id of every object.
- ``at_rest.sensitive_data.algorithm: AES-256-GCM`` is the cipher of the envelope a CMEK
  table gets on a local folder (its header says so; ``decrypt`` reads it back).
- ``at_rest.method`` (GMEK) and ``at_rest.algorithm`` (AES-256) describe every other
  table: the store's own keys, nothing sent by dpexport (no SSE-KMS key on S3).
- Any other method or cipher is refused by ``check`` at its YAML path, naming the
  values dpexport supports; so is a ``kms_master_key`` S3 cannot use.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import duckdb
import pytest

from dpexport.security.crypto import read_header
from tests.conformance.servers import server_env, unique_bucket
from tests.e2e.cli import dpexport

AT = "2025-09-16T12:00:00Z"
GCP_KEY = "projects/p/locations/us/keyRings/exports/cryptoKeys/sensitive-data"
SPEC_6_3 = {
    "method": "Google-managed keys (GMEK)",
    "algorithm": "AES-256",
    "sensitive_method": "Customer-managed keys (CMEK)",
    "sensitive_algorithm": "AES-256-GCM",
    "kms_master_key": "arn:aws:kms:us-east-1:...",
}
CONFIG = """\
project: p
environment: test
warehouse: {{engine: duckdb, path: warehouse.duckdb}}
buckets: {{exports: {bucket}}}
encryption:
  at_rest:
    method: "{method}"
    algorithm: "{algorithm}"
    sensitive_data:
      method: "{sensitive_method}"
      kms_key: "{kms_key}"
      algorithm: "{sensitive_algorithm}"
  cross_cloud:
    aws_s3:
      sse: "AES256"
      kms_master_key: "{kms_master_key}"
exports:
  - source: ds.payments
    destination: {bucket}/payments/
    mode: FULL_REFRESH
    encryption: CMEK
  - source: ds.events
    destination: {bucket}/events/
    mode: FULL_REFRESH
"""


def _base(tmp_path: Path, bucket: str, kms_key: str = GCP_KEY, **words: str) -> Path:
    con = duckdb.connect(str(tmp_path / "warehouse.duckdb"))
    con.execute("CREATE SCHEMA ds")
    con.execute("CREATE TABLE ds.payments AS SELECT i AS id, i * 1.5 AS amount FROM range(40) t(i)")
    con.execute("CREATE TABLE ds.events AS SELECT i AS id, 'e' || i AS name FROM range(30) t(i)")
    con.close()
    text = CONFIG.format(bucket=bucket, kms_key=kms_key, **{**SPEC_6_3, **words})
    (tmp_path / "dpexport.yaml").write_text(text, encoding="utf-8")
    return tmp_path / "dpexport.yaml"


# -- check: the spec's words pass, anything else is refused at its path --------------------


def test_the_spec_6_3_words_pass_check(tmp_path: Path) -> None:
    config = _base(tmp_path, "gs://b")
    result = dpexport("-c", config, "--local-root", tmp_path / "out", "check")
    assert result.code == 0, result.err


@pytest.mark.parametrize(
    ("word", "value", "path", "supported"),
    [
        ("method", "Customer-managed keys (CMEK)", "encryption.at_rest.method",
         "'Google-managed keys (GMEK)'"),
        ("method", "Customer-supplied keys (CSEK)", "encryption.at_rest.method", "'GMEK'"),
        ("algorithm", "AES-128", "encryption.at_rest.algorithm", "'AES-256'"),
        ("sensitive_method", "Google-managed keys (GMEK)",
         "encryption.at_rest.sensitive_data.method", "'Customer-managed keys (CMEK)'"),
        ("sensitive_algorithm", "ChaCha20-Poly1305",
         "encryption.at_rest.sensitive_data.algorithm", "'AES-256-GCM'"),
        ("sensitive_algorithm", "AES-128-GCM",
         "encryption.at_rest.sensitive_data.algorithm", "'AES-256'"),
        ("kms_master_key", GCP_KEY, "encryption.cross_cloud.aws_s3.kms_master_key",
         "arn:aws:kms:REGION:ACCOUNT:key/ID"),
        ("kms_master_key", "key/1234abcd-12ab-34cd-56ef-1234567890ab",
         "encryption.cross_cloud.aws_s3.kms_master_key", "alias/NAME"),
    ],
)  # fmt: skip
def test_check_refuses_what_dpexport_does_not_do(
    tmp_path: Path, word: str, value: str, path: str, supported: str
) -> None:
    config = _base(tmp_path, "gs://b", **{word: value})
    result = dpexport("-c", config, "--local-root", tmp_path / "out", "check")
    assert result.code == 2, result.err
    lines = [x for x in result.err.splitlines() if path in x]
    shown = "<redacted>" if word == "kms_master_key" else value  # key names are not echoed
    assert any(shown in x and supported in x for x in lines), result.err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("word", "value"),
    [("algorithm", "AES256"), ("sensitive_algorithm", "aes-256"), ("method", "GMEK"),
     ("sensitive_method", "cmek"), ("kms_master_key", "alias/exports")],
)  # fmt: skip
def test_check_takes_the_other_spellings_of_the_same_thing(
    tmp_path: Path, word: str, value: str
) -> None:
    config = _base(tmp_path, "gs://b", **{word: value})
    result = dpexport("-c", config, "--local-root", tmp_path / "out", "check")
    assert result.code == 0, result.err


# -- effects ---------------------------------------------------------------------------------


def test_sensitive_algorithm_is_the_cipher_of_a_cmek_tables_files(tmp_path: Path) -> None:
    config = _base(tmp_path, "gs://b")
    out = tmp_path / "out"
    ran = dpexport("-c", config, "--local-root", out, "run", "--at", AT, "--json")
    assert ran.code == 0, ran.err
    [data] = (out / "gs" / "b" / "payments").rglob("payments_*.parquet.snappy.enc")
    with data.open("rb") as fh:
        header = read_header(fh)
    assert header.algorithm == SPEC_6_3["sensitive_algorithm"]
    assert header.key_name == GCP_KEY
    [manifest] = (out / "gs" / "b" / "payments").rglob("manifest_*.json")
    block = json.loads(manifest.read_text())["encryption"]
    assert block["algorithm"] == "AES-256-GCM" and block["client_side"] is True
    plain = tmp_path / "plain.parquet"
    restored = dpexport("-c", config, "--local-root", out, "decrypt", str(data), "-o", str(plain))
    assert restored.code == 0, restored.err
    with duckdb.connect() as con:
        assert con.execute(f"SELECT count(*) FROM '{plain}'").fetchone() == (40,)
    # at_rest (GMEK) leaves the other table to the store: plain files
    assert list((out / "gs" / "b" / "events").rglob("events_*.parquet.snappy"))
    assert not list((out / "gs" / "b" / "events").rglob("*.enc"))


def _heads(s3: Any, bucket: str, prefix: str) -> list[dict[str, Any]]:
    listed = s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])
    keys = [o["Key"] for o in listed if ".parquet" in o["Key"]]
    assert keys, listed
    return [s3.head_object(Bucket=bucket, Key=k) for k in keys]


@pytest.mark.parametrize("master", [True, False])
def test_kms_master_key_is_the_sse_kms_key_of_cmek_objects_on_s3(
    tmp_path: Path, master: bool
) -> None:
    server_env("AWS_ENDPOINT_URL", "the S3 server (moto)")
    import boto3

    session = boto3.session.Session()
    s3, kms = session.client("s3"), session.client("kms")
    bucket = unique_bucket()
    s3.create_bucket(Bucket=bucket)
    try:
        arn = kms.create_key(Description="dpexport kms_master_key")["KeyMetadata"]["Arn"]
        words = {"kms_master_key": arn} if master else {}
        config = _base(tmp_path, f"s3://{bucket}", **words)
        checked = dpexport("-c", config, "check", cwd=tmp_path)
        assert checked.code == 0, checked.err
        ran = dpexport("-c", config, "run", "--at", AT, "--json", cwd=tmp_path)
        assert ran.code == 0, ran.err
        for head in _heads(s3, bucket, "payments/"):
            if master:
                assert head["ServerSideEncryption"] == "aws:kms"
                assert head["SSEKMSKeyId"] == arn
            else:  # the spec's placeholder names no key: cross_cloud.aws_s3.sse
                assert head["ServerSideEncryption"] == "AES256"
                assert "SSEKMSKeyId" not in head
        manifests = s3.list_objects_v2(Bucket=bucket, Prefix="payments/")["Contents"]
        [key] = [o["Key"] for o in manifests if "/manifest_" in o["Key"]]
        block = json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())["encryption"]
        assert block["sse"] == ("aws:kms" if master else "AES256")
        assert block.get("kms_key") == (arn if master else None)
        # at_rest GMEK: a table not marked CMEK gets no key from dpexport
        for head in _heads(s3, bucket, "events/"):
            assert "SSEKMSKeyId" not in head
    finally:
        s3.close()
        kms.close()
