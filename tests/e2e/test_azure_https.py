"""Spec 1.3's Azure form, ``https://ACCOUNT.blob.core.windows.net/CONTAINER/path``, is
taken wherever a location is (issue 17): it is ``az://CONTAINER/path`` in that account.

What is tested here, and how far it reaches:

- with ``--local-root`` it lands where ``az://CONTAINER/path`` does (no credentials used);
- ``check`` refuses other web addresses, a SAS query and an account the Azure
  credentials do not name (exit 2, at the YAML path);
- against Azurite: the emulator's account is ``devstoreaccount1`` and its connection
  string (``AZURE_STORAGE_CONNECTION_STRING``) points at the emulator, so
  ``https://devstoreaccount1.blob.core.windows.net/C/...`` runs, verifies and replicates
  through the emulator. That proves the URL selects the store and its account is held
  against the credentials' own; it does not reach the real ``*.blob.core.windows.net``
  endpoint (used when no credentials name an account), which needs a real account.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest

from tests.conformance.servers import server_env, unique_bucket
from tests.e2e.cli import Result, dpexport

AT = "2025-09-16T12:00:00Z"
HOST = ".blob.core.windows.net"
CONFIG = """\
project: p
environment: test
warehouse: {{engine: duckdb, path: warehouse.duckdb}}
buckets: {{exports: {bucket}}}
exports:
  - source: ds.events
    destination: {destination}
    mode: FULL_REFRESH
replication:
  - tables: [events]
    target: {target}
"""
#: a connection string naming an account other than the configs' ``diagnosticpro``
OTHER_ACCOUNT = (
    "DefaultEndpointsProtocol=http;AccountName=someoneelse;AccountKey=a2V5;"
    "BlobEndpoint=http://127.0.0.1:9/someoneelse;"
)


def _warehouse(base: Path) -> Path:
    con = duckdb.connect(str(base / "warehouse.duckdb"))
    con.execute("CREATE SCHEMA ds")
    con.execute("CREATE TABLE ds.events AS SELECT i AS id, 'e' || i AS name FROM range(25) t(i)")
    con.close()
    return base


def _config(base: Path, destination: str, *, bucket: str = "gs://b", target: str = "") -> Path:
    target = target or destination.rstrip("/") + "-replica/"
    text = CONFIG.format(bucket=bucket, destination=destination, target=target)
    path = base / "dpexport.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def _cli(config: Path, *args: str, env: dict[str, str] | None = None) -> Result:
    return dpexport("-c", config, *args, cwd=config.parent, env=env)


def _without_azure() -> dict[str, str]:
    """The environment with no Azure setting naming an account."""
    return {
        "AZURE_STORAGE_CONNECTION_STRING": "",
        "AZURE_STORAGE_ACCOUNT_URL": "",
        "AZURE_STORAGE_ACCOUNT": "",
    }


# -- --local-root: the same folder as az:// ----------------------------------------------


def test_the_https_form_lands_where_az_does_under_local_root(tmp_path: Path) -> None:
    base = _warehouse(tmp_path)
    url = f"https://diagnosticpro{HOST}/backup/events/"
    config = _config(base, url, bucket=f"https://diagnosticpro{HOST}/backup")
    # credentials for another account do not matter: --local-root uses none
    env = {"AZURE_STORAGE_CONNECTION_STRING": OTHER_ACCOUNT}
    checked = _cli(config, "--local-root", "out", "check", env=env)
    assert checked.code == 0, checked.err
    ran = _cli(config, "--local-root", "out", "run", "--at", AT, "--json", env=env)
    assert ran.code == 0, ran.err
    [record] = json.loads(ran.out)
    assert record["status"] == "SUCCESS" and record["rows"] == 25
    folder = base / "out" / "az" / "backup" / "events"
    assert list(folder.rglob("events_*.parquet.snappy")), sorted(base.joinpath("out").rglob("*"))
    assert list(folder.rglob("SUCCESS"))
    [manifest] = folder.rglob("manifest_*.json")
    verified = _cli(config, "--local-root", "out", "verify", str(manifest.parent), env=env)
    assert verified.code == 0, verified.err
    # the az:// form of the same place is the same folder
    same = _cli(config, "--local-root", "out", "verify", "az://backup/events/", env=env)
    assert same.code == 0, same.err
    copied = _cli(config, "--local-root", "out", "replicate", env=env)
    assert copied.code == 0, copied.err
    replica = base / "out" / "az" / "backup" / "events-replica"
    assert list(replica.rglob("events_*.parquet.snappy"))


# -- check: what is refused, at its path ---------------------------------------------------


@pytest.mark.parametrize(
    ("destination", "words", "suggestion"),
    [
        ("https://example.com/exports/events/", "not a storage location", None),
        ("https://diagnosticpro.dfs.core.windows.net/c/x/", "not a storage location", None),
        (
            f"http://diagnosticpro{HOST}/backup/x/",
            "not Azure Blob's scheme",
            f"https://diagnosticpro{HOST}/backup/x/",
        ),
        (
            f"https://diagnosticpro{HOST}/backup/x/?sv=2024&sig=abc",
            "a SAS token is a secret",
            f"https://diagnosticpro{HOST}/backup/x/",
        ),
        (f"https://diagnosticpro{HOST}/", "names no container", None),
        (f"https://diagnostic_pro{HOST}/backup/x/", "not a valid Azure storage account", None),
        (
            f"https://DiagnosticPro{HOST}/backup/x/",
            "host names are lower-case",
            f"https://diagnosticpro{HOST}/backup/x/",
        ),
        (
            f"https://diagnosticpro{HOST}/Backup/x/",
            "not a valid Azure container name",
            f"https://diagnosticpro{HOST}/backup/x/",
        ),
    ],
)
def test_check_refuses_what_is_not_spec_1_3s_form(
    tmp_path: Path, destination: str, words: str, suggestion: str | None
) -> None:
    config = _config(_warehouse(tmp_path), destination, target="az://replicas/")
    result = _cli(config, "--local-root", "out", "check", env=_without_azure())
    assert result.code == 2, result.err
    assert "exports[0].destination" in result.err
    assert words in result.err
    if suggestion is not None:
        assert suggestion in result.err
    assert not (tmp_path / "out").exists()


def test_other_web_addresses_are_told_the_accepted_forms(tmp_path: Path) -> None:
    config = _config(_warehouse(tmp_path), "https://example.com/x/", target="az://replicas/")
    result = _cli(config, "--local-root", "out", "check", env=_without_azure())
    assert result.code == 2
    for form in ("gs://BUCKET/", "s3://BUCKET/", "az://CONTAINER/", f"https://ACCOUNT{HOST}/"):
        assert form in result.err, result.err


def test_check_refuses_an_account_the_credentials_do_not_name(tmp_path: Path) -> None:
    base = _warehouse(tmp_path)
    config = _config(
        base,
        "gs://b/events/",
        bucket=f"https://diagnosticpro{HOST}/backup",
        target=f"https://diagnosticpro{HOST}/ml-training/",
    )
    env = {"AZURE_STORAGE_CONNECTION_STRING": OTHER_ACCOUNT}
    result = _cli(config, "check", env=env)
    assert result.code == 2, result.err
    for path in ("buckets.exports", "replication[0].target"):
        assert path in result.err, result.err
    assert "'diagnosticpro'" in result.err and "'someoneelse'" in result.err
    assert "AZURE_STORAGE_CONNECTION_STRING" in result.err
    named = {**_without_azure(), "AZURE_STORAGE_ACCOUNT": "someoneelse"}
    result = _cli(config, "check", env=named)
    assert result.code == 2 and "AZURE_STORAGE_ACCOUNT" in result.err, result.err


def test_check_takes_the_account_when_the_credentials_name_it_or_none(tmp_path: Path) -> None:
    base = _warehouse(tmp_path)
    config = _config(base, f"https://diagnosticpro{HOST}/backup/events/")
    same = {**_without_azure(), "AZURE_STORAGE_ACCOUNT_URL": f"https://diagnosticpro{HOST}"}
    for env in (same, _without_azure()):
        result = _cli(config, "check", env=env)
        assert result.code == 0, result.err


# -- Azurite: devstoreaccount1's https form through the emulator ---------------------------


@pytest.fixture
def azurite_container() -> Iterator[str]:
    conn = server_env("AZURE_STORAGE_CONNECTION_STRING", "the Azure server (Azurite)")
    from azure.storage.blob import BlobServiceClient

    name = unique_bucket("https")
    service = BlobServiceClient.from_connection_string(conn)
    service.create_container(name)
    try:
        yield name
    finally:
        service.delete_container(name)
        service.close()


def _blobs(container: str, prefix: str) -> list[str]:
    from azure.storage.blob import BlobServiceClient

    conn = os.environ["AZURE_STORAGE_CONNECTION_STRING"]
    with BlobServiceClient.from_connection_string(conn) as service:
        client = service.get_container_client(container)
        return sorted(b.name for b in client.list_blobs(name_starts_with=prefix))


def test_the_emulators_account_in_the_https_form_runs_on_azurite(
    tmp_path: Path, azurite_container: str
) -> None:
    base = _warehouse(tmp_path)
    root = f"https://devstoreaccount1{HOST}/{azurite_container}"
    config = _config(base, f"{root}/events/", bucket=root, target=f"{root}/replica/")
    checked = _cli(config, "check")
    assert checked.code == 0, checked.err
    ran = _cli(config, "run", "--at", AT, "--json")
    assert ran.code == 0, ran.err
    [record] = json.loads(ran.out)
    assert record["status"] == "SUCCESS" and record["rows"] == 25
    names = _blobs(azurite_container, "events/")
    assert any(n.endswith(".parquet.snappy") for n in names), names
    assert any(n.endswith("/SUCCESS") for n in names), names
    manifest = next(n for n in names if n.rsplit("/", 1)[-1].startswith("manifest_"))
    for uri in (f"{root}/{manifest}", f"az://{azurite_container}/{manifest}"):
        verified = _cli(config, "verify", uri)
        assert verified.code == 0, verified.err
    copied = _cli(config, "replicate")
    assert copied.code == 0, copied.err
    assert any(n.endswith(".parquet.snappy") for n in _blobs(azurite_container, "replica/"))


def test_azurite_refuses_a_url_of_another_account_at_run(
    tmp_path: Path, azurite_container: str
) -> None:
    base = _warehouse(tmp_path)
    root = f"https://diagnosticpro{HOST}/{azurite_container}"
    config = _config(base, f"{root}/events/", bucket=root)
    result = _cli(config, "run", "--at", AT, "--json")
    assert result.code == 2, result.err  # refused before any work, nothing written
    assert "'diagnosticpro'" in result.out + result.err
    assert "'devstoreaccount1'" in result.out + result.err
    assert _blobs(azurite_container, "") == []
