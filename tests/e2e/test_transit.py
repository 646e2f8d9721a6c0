"""Spec 6.3 ``encryption.in_transit`` is enforced by the store clients (issue 21).

Each emulator is put behind a TLS front (:mod:`tests.tls_proxy`) that speaks at most
TLS 1.2 with a self-signed certificate. The real GCS, S3 and Azure clients then export
through it: ``protocol: "TLS 1.2"`` with the front's CA as ``certificate`` succeeds;
``protocol: "TLS 1.3"`` fails the handshake (exit 1, the export's FAILURE names the
protocol); without the CA the server is not trusted (certificate verify failed).
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
from tests.e2e.test_clouds import _create_bucket
from tests.tls_proxy import TlsFront, tls_front

AT = "2025-09-16T12:00:00Z"
CONFIG = """\
project: p
environment: test
warehouse: {{engine: duckdb, path: {warehouse}}}
buckets: {{exports: {bucket}}}
retry_configuration: {{max_attempts: 1}}
exports:
  - source: ds.events
    destination: {bucket}/events/
    mode: FULL_REFRESH
encryption:
  in_transit:
    protocol: "{protocol}"{certificate}
"""
#: the emulator each scheme talks to, and the variable that points its client there
ENDPOINTS = {
    "s3": ("AWS_ENDPOINT_URL", "the S3 server (moto)"),
    "gs": ("STORAGE_EMULATOR_HOST", "the GCS server (fake-gcs-server)"),
    "az": ("AZURE_STORAGE_CONNECTION_STRING", "the Azure server (Azurite)"),
}


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("transit") / "warehouse.duckdb"
    con = duckdb.connect(str(path))
    con.execute("CREATE SCHEMA ds")
    con.execute("CREATE TABLE ds.events AS SELECT i AS id, 'e' || i AS name FROM range(40) t(i)")
    con.close()
    return path


@pytest.fixture(params=list(ENDPOINTS))
def front(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, str, TlsFront]]:
    """(scheme, bucket URI, the TLS 1.2 front of that scheme's emulator)."""
    scheme = str(request.param)
    var, what = ENDPOINTS[scheme]
    value = server_env(var, what)
    upstream = value
    if scheme == "az":
        upstream = value.split("BlobEndpoint=", 1)[1].split(";", 1)[0]
    name = unique_bucket("tls")
    close = _create_bucket(scheme, name)
    with tls_front(upstream, tmp_path) as tls:
        yield scheme, f"{scheme}://{name}", tls
    close()


def _env(scheme: str, tls: TlsFront) -> dict[str, str]:
    """The environment that points the scheme's client at the TLS front."""
    var, _ = ENDPOINTS[scheme]
    value = os.environ[var]
    if scheme != "az":
        return {var: tls.url}
    upstream = value.split("BlobEndpoint=", 1)[1].split(";", 1)[0]
    account = upstream.rstrip("/").rsplit("/", 1)[1]
    value = value.replace(f"BlobEndpoint={upstream}", f"BlobEndpoint={tls.url}/{account}")
    return {var: value.replace("DefaultEndpointsProtocol=http;", "DefaultEndpointsProtocol=https;")}


def _run(
    tmp_path: Path, warehouse: Path, bucket: str, env: dict[str, str], protocol: str, ca: str
) -> Result:
    certificate = f"\n    certificate: {ca}" if ca else ""
    config = tmp_path / "dpexport.yaml"
    config.write_text(
        CONFIG.format(
            warehouse=warehouse, bucket=bucket, protocol=protocol, certificate=certificate
        ),
        encoding="utf-8",
    )
    return dpexport("-c", config, "run", "--at", AT, "--json", env=env, cwd=tmp_path)


def test_a_tls_1_3_floor_refuses_a_tls_1_2_server_on_every_store(
    tmp_path: Path, warehouse: Path, front: tuple[str, str, TlsFront]
) -> None:
    scheme, bucket, tls = front
    env = _env(scheme, tls)
    refused = _run(tmp_path, warehouse, bucket, env, "TLS 1.3", str(tls.ca))
    assert refused.code == 1, refused.err
    [result] = json.loads(refused.out)
    assert result["status"] == "FAILURE"
    assert "VERSION" in result["error"].upper() or "PROTOCOL" in result["error"].upper(), result
    accepted = _run(tmp_path, warehouse, bucket, env, "TLS 1.2", str(tls.ca))
    assert accepted.code == 0, accepted.err
    [result] = json.loads(accepted.out)
    assert (result["status"], result["rows"]) == ("SUCCESS", 40)
    assert result["manifests"][0].startswith(bucket + "/events/")


def test_the_configured_ca_is_the_one_servers_are_verified_with(
    tmp_path: Path, warehouse: Path, front: tuple[str, str, TlsFront]
) -> None:
    scheme, bucket, tls = front
    untrusted = _run(tmp_path, warehouse, bucket, _env(scheme, tls), "TLS 1.2", "")
    assert untrusted.code == 1, untrusted.err
    [result] = json.loads(untrusted.out)
    assert "CERTIFICATE" in result["error"].upper(), result
