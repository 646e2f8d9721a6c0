"""A local stand-in of Azure Key Vault's keys REST API (there is no emulator).

What azure-keyvault-keys' ``CryptographyClient`` calls, over HTTPS on 127.0.0.1 with a
self-signed certificate (the client trusts it through ``REQUESTS_CA_BUNDLE``):

- ``GET /keys/{name}[/{version}]``: the public part of the RSA key as a JWK;
- ``POST /keys/{name}/{version}/wrapkey`` and ``/unwrapkey``: genuine RSA-OAEP-256
  (SHA-256) with the key's private half, which never leaves the server.

Every request needs ``Authorization: Bearer {TOKEN}``; without one the server answers
401 with Key Vault's challenge, as the real service does, so the SDK's challenge flow
runs. Rotating a key adds a version; old versions still unwrap.
"""

from __future__ import annotations

import base64
import json
import ssl
import threading
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from tests.alert_servers import self_signed

TOKEN = "stand-in-token"
TENANT = "00000000-0000-0000-0000-000000000000"
CHALLENGE = (
    f'Bearer authorization="https://login.microsoftonline.com/{TENANT}", '
    'resource="https://vault.azure.net"'
)
_OAEP = padding.OAEP(mgf=padding.MGF1(hashes.SHA256()), algorithm=hashes.SHA256(), label=None)


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass
class KeyVaultStandIn:
    """The server, its keys (name -> versions, newest last) and the calls it served."""

    folder: Path
    cert: Path | None = None
    keys: dict[str, list[tuple[str, rsa.RSAPrivateKey]]] = field(default_factory=dict)
    calls: list[str] = field(default_factory=list)
    #: answer ``GET`` of a key 403, as for a principal without keys/get: the SDK then
    #: asks the vault to wrap too
    forbid_get: bool = False
    url: str = ""
    server: ThreadingHTTPServer | None = None

    def create_key(self, name: str) -> str:
        """Add a version of key ``name`` (a new key or a rotation); its versionless id."""
        version = uuid.uuid4().hex
        private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.keys.setdefault(name, []).append((version, private))
        return f"{self.url}/keys/{name}"

    def kid(self, name: str, version: str) -> str:
        return f"{self.url}/keys/{name}/{version}"

    def handle(self, method: str, path: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        parts = path.split("?")[0].strip("/").split("/")
        if len(parts) < 2 or parts[0] != "keys" or parts[1] not in self.keys:
            return 404, {
                "error": {
                    "code": "KeyNotFound",
                    "message": f"A key with (name/id) "
                    f"{'/'.join(parts[1:2])} was not found in this key vault.",
                }
            }
        versions = dict(self.keys[parts[1]])
        version = parts[2] if len(parts) > 2 and parts[2] else self.keys[parts[1]][-1][0]
        if version not in versions:
            return 404, {
                "error": {"code": "KeyNotFound", "message": f"version {version} not found"}
            }
        private, kid = versions[version], self.kid(parts[1], version)
        if method == "GET" and self.forbid_get:
            return 403, {"error": {"code": "Forbidden", "message": "no keys/get permission"}}
        if method == "GET" and len(parts) <= 3:
            numbers = private.public_key().public_numbers()
            key = {
                "kid": kid,
                "kty": "RSA",
                "key_ops": ["wrapKey", "unwrapKey"],
                "n": _b64url(numbers.n.to_bytes((numbers.n.bit_length() + 7) // 8, "big")),
                "e": _b64url(numbers.e.to_bytes(3, "big")),
            }
            return 200, {"key": key, "attributes": {"enabled": True}}
        verb = parts[3] if len(parts) > 3 else ""
        if method != "POST" or verb not in ("wrapkey", "unwrapkey"):
            return 400, {"error": {"code": "BadParameter", "message": f"{method} {path}"}}
        if body.get("alg") != "RSA-OAEP-256":
            return 400, {"error": {"code": "BadParameter", "message": f"alg {body.get('alg')}"}}
        value = _unb64url(body["value"])
        if verb == "wrapkey":
            return 200, {"kid": kid, "value": _b64url(private.public_key().encrypt(value, _OAEP))}
        try:
            plain = private.decrypt(value, _OAEP)
        except ValueError:
            return 400, {"error": {"code": "BadParameter", "message": "Decryption failed"}}
        return 200, {"kid": kid, "value": _b64url(plain)}

    def start(self) -> None:
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:
                return

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                if self.headers.get("Authorization") != f"Bearer {TOKEN}":
                    # the SDK's first request carries no body and no token: the challenge
                    self.send_response(401)
                    self.send_header("WWW-Authenticate", CHALLENGE)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                stand_in.calls.append(f"{self.command} {self.path.split('?')[0]}")
                status, reply = stand_in.handle(self.command, self.path, json.loads(raw or b"{}"))
                data = json.dumps(reply).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = _serve
            do_POST = _serve

        cert, key = self_signed(self.folder)
        self.cert = cert
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(cert, key)
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.url = f"https://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
