"""An export encrypted client-side with an Azure Key Vault key (spec 6.3, issue 21): the
data key is wrapped by the local Key Vault stand-in (tests/keyvault_stand_in.py), and
``dpexport decrypt`` finds the key through the file's header and restores the bytes."""

from __future__ import annotations

import io
import json
from contextlib import closing
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from dpexport.security.crypto import open_decrypted
from dpexport.security.keyvault import ENDPOINT_ENV, TOKEN_ENV, AzureKeyVaultKeyProvider
from tests.conformance.servers import server_env, unique_bucket
from tests.e2e.cli import dpexport
from tests.keyvault_stand_in import TOKEN, KeyVaultStandIn

CONFIG = """\
project: p
environment: prod
warehouse: {{engine: duckdb, path: {warehouse}}}
buckets: {{exports: s3://{bucket}}}
exports:
  - source: diagnosticpro_prod.parts_catalog
    destination: s3://{bucket}/prod/diagnosticpro_prod/parts_catalog/
    format: PARQUET
    mode: FULL_REFRESH
    encryption: CMEK
    kms_key: "{key}"
    client_side: true
{vault}"""
KEY_ID = "https://diagnosticpro-keys.vault.azure.net/keys/exports"
#: the spec's cross_cloud block: the vault by name, the key by its name in it
SPEC_VAULT = """\
encryption:
  cross_cloud:
    azure_blob:
      key_vault: "diagnosticpro-keys"
"""


@pytest.mark.parametrize(
    ("kms_key", "vault"), [(KEY_ID, ""), ("azure-kv://exports", SPEC_VAULT)], ids=["id", "vault"]
)
def test_client_side_export_with_a_key_vault_key_decrypts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kms_key: str, vault: str
) -> None:
    server_env("AWS_ENDPOINT_URL", "the S3 server (moto)")
    import boto3

    from dpexport.demo.warehouse import create_demo_warehouse

    create_demo_warehouse(tmp_path / "warehouse.duckdb", 50)
    stand_in = KeyVaultStandIn(tmp_path)
    stand_in.start()
    bucket = unique_bucket("akv")
    s3 = boto3.session.Session().client("s3")
    s3.create_bucket(Bucket=bucket)
    stand_in.create_key("exports")
    # the spec's vault by its real name; the requests go to the stand-in
    key = KEY_ID
    config = tmp_path / "akv.yaml"
    config.write_text(
        CONFIG.format(
            warehouse=tmp_path / "warehouse.duckdb", bucket=bucket, key=kms_key, vault=vault
        )
    )
    env = {"REQUESTS_CA_BUNDLE": str(stand_in.cert), TOKEN_ENV: TOKEN, ENDPOINT_ENV: stand_in.url}
    try:
        result = dpexport("-c", config, "run", "--at", "2025-09-16T12:00:00Z", "--json", env=env)
        assert result.code == 0, result.err
        [run] = json.loads(result.out)
        manifest_key = run["manifests"][0].removeprefix(f"s3://{bucket}/")
        doc = json.loads(s3.get_object(Bucket=bucket, Key=manifest_key)["Body"].read())
        assert doc["encryption"]["key_provider"] == "azure-key-vault"
        [entry] = doc["files"]
        data_key = manifest_key.rsplit("/", 1)[0] + "/" + entry["name"]
        stored = s3.get_object(Bucket=bucket, Key=data_key)["Body"].read()
        assert stored[:7] == b"DPXENC1" and key.encode() in stored[:4096]
        assert b"PAR1" not in stored
        unwraps = sum(c.endswith("/unwrapkey") for c in stand_in.calls)
        plain = tmp_path / "plain.parquet"
        out = dpexport("decrypt", f"s3://{bucket}/{data_key}", "-o", plain, env=env)
        assert out.code == 0, out.err
        assert sum(c.endswith("/unwrapkey") for c in stand_in.calls) == unwraps + 1
        assert pq.read_table(plain).num_rows == run["rows"] == entry["rows"] > 0
        # the bytes decrypt wrote are the envelope's plain bytes, read here in process
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        with closing(AzureKeyVaultKeyProvider()) as provider:
            assert open_decrypted(io.BytesIO(stored), provider).read() == plain.read_bytes()
        # without the vault's token the file does not open, and nothing is written
        denied = tmp_path / "denied.parquet"
        bad = dpexport(
            "decrypt",
            f"s3://{bucket}/{data_key}",
            "-o",
            denied,
            env={**env, TOKEN_ENV: "not-the-token"},
        )
        assert bad.code != 0 and key in bad.err and not denied.exists()
    finally:
        s3.close()
        stand_in.stop()


def test_a_vault_key_without_a_vault_is_a_config_error(tmp_path: Path) -> None:
    config = tmp_path / "akv.yaml"
    text = CONFIG.format(
        warehouse=tmp_path / "w.duckdb", bucket="b", key="azure-kv://exports", vault=""
    )
    config.write_text(text)
    result = dpexport("-c", config, "check")
    assert result.code == 2
    assert "exports[0].kms_key: names a Key Vault key but no vault is configured" in result.err
    assert "encryption.cross_cloud.azure_blob.key_vault" in result.err
