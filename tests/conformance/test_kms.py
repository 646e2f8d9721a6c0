"""Cloud KMS key providers under the client-side envelope: AWS KMS on moto, Cloud KMS
on a tiny local stand-in of its REST API (no Cloud KMS emulator exists). A file
encrypted with each reads back, a wrong key fails, and no key bytes show anywhere."""

from __future__ import annotations

import base64
import io
import json
import os
import threading
from collections.abc import Iterator
from contextlib import closing
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from dpexport.errors import DecryptionError, NotFound
from dpexport.security.crypto import Encryptor, KeyProvider, open_decrypted, read_header
from dpexport.security.kms import AwsKmsKeyProvider, GcpKmsKeyProvider, key_provider_for
from tests.conformance.servers import server_env

GCP_KEY = "projects/p/locations/us/keyRings/exports/cryptoKeys/sensitive-data"


def _round_trip(provider: KeyProvider, key_name: str) -> bytes:
    plain = os.urandom(200_000)
    sink = io.BytesIO()
    writer = Encryptor(provider, key_name, chunk_size=64 * 1024).open(sink, close_dst=False)
    writer.write(plain)
    writer.close()
    stored = sink.getvalue()
    assert plain not in stored
    assert read_header(io.BytesIO(stored)).key_name == key_name
    assert open_decrypted(io.BytesIO(stored), provider).read() == plain
    return stored


# -- AWS KMS on moto ---------------------------------------------------------------------
@pytest.fixture
def aws() -> Iterator[tuple[AwsKmsKeyProvider, str, str]]:
    server_env("AWS_ENDPOINT_URL", "the AWS server (moto)")
    provider = AwsKmsKeyProvider()
    key = provider.client.create_key(Description="kek")["KeyMetadata"]["Arn"]
    other = provider.client.create_key(Description="other")["KeyMetadata"]["Arn"]
    with closing(provider):
        yield provider, key, other


def test_aws_kms_envelope_round_trip(aws: tuple[AwsKmsKeyProvider, str, str]) -> None:
    provider, key, other = aws
    stored = _round_trip(provider, key)
    header = read_header(io.BytesIO(stored))
    with pytest.raises(DecryptionError) as err:
        provider.unwrap(other, header.wrapped_key)  # wrapped by another key
    assert key in str(err.value) or other in str(err.value)
    assert repr(provider) == "AwsKmsKeyProvider()"


def test_aws_kms_missing_key_is_terminal(aws: tuple[AwsKmsKeyProvider, str, str]) -> None:
    provider, _, _ = aws
    missing = "arn:aws:kms:us-east-1:123456789012:key/00000000-0000-0000-0000-000000000000"
    with pytest.raises(NotFound):
        provider.wrap(missing, b"k" * 32)


# -- Cloud KMS on a local stand-in of its REST API ----------------------------------------
class _FakeCloudKms:
    """``POST /v1/{name}:encrypt|decrypt`` as Cloud KMS's REST API, one AES key per name."""

    def __init__(self) -> None:
        self.keys: dict[str, bytes] = {GCP_KEY: AESGCM.generate_key(bit_length=256)}
        self.calls: list[str] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:
                return

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                name, _, verb = self.path.split("?")[0].removeprefix("/v1/").rpartition(":")
                fake.calls.append(verb)
                status, reply = fake.handle(name, verb, body)
                data = json.dumps(reply).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def handle(self, name: str, verb: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        if name not in self.keys:
            return 404, {
                "error": {"code": 404, "message": f"{name} not found", "status": "NOT_FOUND"}
            }
        aead = AESGCM(self.keys[name])
        aad = base64.b64decode(body.get("additionalAuthenticatedData", ""))
        if verb == "encrypt":
            nonce = os.urandom(12)
            sealed = nonce + aead.encrypt(nonce, base64.b64decode(body["plaintext"]), aad)
            return 200, {"name": name, "ciphertext": base64.b64encode(sealed).decode()}
        raw = base64.b64decode(body["ciphertext"])
        try:
            plain = aead.decrypt(raw[:12], raw[12:], aad)
        except Exception:
            error = {"code": 400, "message": "Decryption failed", "status": "INVALID_ARGUMENT"}
            return 400, {"error": error}
        return 200, {"plaintext": base64.b64encode(plain).decode()}


@pytest.fixture
def gcp() -> Iterator[tuple[GcpKmsKeyProvider, _FakeCloudKms]]:
    from google.auth.credentials import AnonymousCredentials

    fake = _FakeCloudKms()
    provider = GcpKmsKeyProvider(endpoint=fake.url, credentials=AnonymousCredentials())
    yield provider, fake
    provider.close()
    fake.server.shutdown()
    fake.server.server_close()


def test_gcp_kms_envelope_round_trip(gcp: tuple[GcpKmsKeyProvider, _FakeCloudKms]) -> None:
    provider, fake = gcp
    stored = _round_trip(provider, GCP_KEY)
    assert fake.calls == ["encrypt", "decrypt"]
    header = read_header(io.BytesIO(stored))
    tampered = header.wrapped_key[:-1] + bytes([header.wrapped_key[-1] ^ 1])
    with pytest.raises(DecryptionError) as err:
        provider.unwrap(GCP_KEY, tampered)
    assert GCP_KEY in str(err.value)
    with pytest.raises(NotFound):
        provider.wrap(GCP_KEY.replace("sensitive-data", "absent"), b"k" * 32)


def test_provider_by_key_name() -> None:
    assert isinstance(key_provider_for(GCP_KEY, endpoint="http://127.0.0.1:1"), GcpKmsKeyProvider)
    aws = key_provider_for("alias/exports")
    assert isinstance(aws, AwsKmsKeyProvider)
    aws.close()
