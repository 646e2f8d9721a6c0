"""Azure Key Vault key provider for client-side envelope encryption (spec 6.3, issue 21).

A data key is wrapped with RSA-OAEP-256 by an RSA key in Key Vault
(azure-keyvault-keys' ``CryptographyClient``). Key names are Key Vault key ids,
``https://VAULT.vault.azure.net/keys/NAME[/VERSION]``. The key's version that wrapped
is kept beside the wrapped bytes, so a file still opens after the key rotates. (The SDK
learns the version from ``keys/get``; without that permission and with a versionless key
id it is unknown, and files open only while the wrapping version is the current one.)

Credentials: ``$DPEXPORT_AZURE_KEY_VAULT_TOKEN`` (an access token for
``https://vault.azure.net``, e.g. from ``az account get-access-token --resource
https://vault.azure.net``) when set, else azure-identity's ``DefaultAzureCredential``.
Key Vault speaks HTTPS only. ``$DPEXPORT_KEY_VAULT_ENDPOINT`` (``https://HOST:PORT``)
sends every vault's requests there instead, as ``AWS_ENDPOINT_URL`` does for AWS: a
private endpoint, or a local stand-in (trusted through ``REQUESTS_CA_BUNDLE``; on a
loopback address its challenge's resource need not match the host).
"""

from __future__ import annotations

import os
import time
from typing import Any
from urllib.parse import urlparse

from dpexport.errors import (
    DecryptionError,
    ExportError,
    PermissionDenied,
    TransientError,
    UsageError,
)
from dpexport.security.kms_errors import wrap_error
from dpexport.storage.cloud import TIMEOUT, require

TOKEN_ENV = "DPEXPORT_AZURE_KEY_VAULT_TOKEN"
ENDPOINT_ENV = "DPEXPORT_KEY_VAULT_ENDPOINT"
_LOOPBACK = ("127.0.0.1", "localhost", "::1")
_ALGORITHM = "RSA-OAEP-256"

__all__ = [
    "ENDPOINT_ENV",
    "TOKEN_ENV",
    "VAULT_KEY_SCHEME",
    "AzureKeyVaultKeyProvider",
    "is_key_vault_key",
    "vault_key_id",
]


def is_key_vault_key(name: str) -> bool:
    """``https://HOST/keys/NAME[/VERSION]``: a Key Vault (or Managed HSM) key id."""
    url = urlparse(name)
    parts = url.path.strip("/").split("/")
    return (
        url.scheme == "https" and bool(url.hostname) and parts[0] == "keys" and len(parts) in (2, 3)
    )


#: a key named by its vault: ``azure-kv://NAME`` in ``encryption.cross_cloud.azure_blob.key_vault``
VAULT_KEY_SCHEME = "azure-kv://"


def vault_key_id(name: str, key_vault: str | None) -> str | None:
    """``azure-kv://NAME`` as the key id in ``key_vault`` (a vault name such as the spec's
    ``diagnosticpro-keys``, or its ``https://`` URL); other names unchanged; ``None`` when
    the name needs a vault and none is configured."""
    if not name.startswith(VAULT_KEY_SCHEME):
        return name
    if not key_vault:
        return None
    vault = key_vault if "://" in key_vault else f"https://{key_vault}.vault.azure.net"
    return f"{vault.rstrip('/')}/keys/{name.removeprefix(VAULT_KEY_SCHEME).strip('/')}"


def _parts(key_id: str) -> list[str]:
    return urlparse(key_id).path.strip("/").split("/")


class _StaticToken:
    """A token credential holding one bearer token (from :data:`TOKEN_ENV`)."""

    def __init__(self, token: str) -> None:
        self._token = token

    def get_token(self, *scopes: str, **kwargs: Any) -> Any:
        credentials = require("azure.core.credentials", "azure")
        return credentials.AccessToken(self._token, int(time.time()) + 3600)


class AzureKeyVaultKeyProvider:
    """Key Vault ``wrapKey``/``unwrapKey`` (RSA-OAEP-256) on an RSA key."""

    name = "azure-key-vault"

    def __init__(self, *, credential: Any = None, timeout: float = TIMEOUT) -> None:
        self._crypto = require("azure.keyvault.keys.crypto", "azure")
        self._aexc = require("azure.core.exceptions", "azure")
        self._credential = credential
        self.timeout = timeout
        self._clients: dict[str, Any] = {}

    def __repr__(self) -> str:
        return "AzureKeyVaultKeyProvider()"

    def _client(self, key_id: str) -> Any:
        if key_id not in self._clients:
            if not is_key_vault_key(key_id):
                raise UsageError(
                    f"{key_id!r} is not a Key Vault key id: expected "
                    "https://VAULT.vault.azure.net/keys/NAME[/VERSION]"
                )
            if self._credential is None:
                token = os.environ.get(TOKEN_ENV)
                if token:
                    self._credential = _StaticToken(token)
                else:
                    identity = require("azure.identity", "azure")
                    self._credential = identity.DefaultAzureCredential()
            target = key_id
            endpoint = os.environ.get(ENDPOINT_ENV)
            if endpoint:
                target = endpoint.rstrip("/") + urlparse(key_id).path
            local = urlparse(target).hostname in _LOOPBACK
            self._clients[key_id] = self._crypto.CryptographyClient(
                target,
                self._credential,
                transport=_transport(),
                verify_challenge_resource=not local,
                connection_timeout=self.timeout,
                read_timeout=self.timeout,
            )
        return self._clients[key_id]

    def wrap(self, key_name: str, data_key: bytes) -> bytes:
        algorithm = self._crypto.KeyWrapAlgorithm.rsa_oaep_256
        try:
            result = self._client(key_name).wrap_key(algorithm, data_key)
        except self._aexc.AzureError as exc:
            raise self._error(key_name, exc) from exc
        # the version that wrapped, so the file opens after the key rotates; unknown (empty)
        # when the SDK asked the vault to wrap with a versionless id (no keys/get)
        parts = _parts(result.key_id or key_name)
        version = (parts[2] if len(parts) == 3 else "").encode()
        return len(version).to_bytes(2, "big") + version + bytes(result.encrypted_key)

    def unwrap(self, key_name: str, wrapped: bytes) -> bytes:
        size = int.from_bytes(wrapped[:2], "big")
        version = wrapped[2 : 2 + size].decode(errors="replace")
        if len(wrapped) <= 2 + size or "/" in version:
            raise DecryptionError(f"the data key wrapped by Key Vault key {key_name!r} is damaged")
        key_id = f"https://{urlparse(key_name).netloc}/keys/{_parts(key_name)[1]}"
        key_id += f"/{version}" if version else ""
        algorithm = self._crypto.KeyWrapAlgorithm.rsa_oaep_256
        try:
            result = self._client(key_id).unwrap_key(algorithm, wrapped[2 + size :])
        except self._aexc.AzureError as exc:
            raise DecryptionError(
                f"Azure Key Vault could not unwrap the data key with {key_id!r}: "
                f"{getattr(exc, 'status_code', None) or type(exc).__name__} {exc.message}"
            ) from exc
        return bytes(result.key)

    def _error(self, key_name: str, exc: Any) -> ExportError:
        if isinstance(exc, self._aexc.ClientAuthenticationError) and exc.status_code is None:
            return PermissionDenied(
                f"no Azure credentials for Key Vault key {key_name!r}: set {TOKEN_ENV} or "
                f"sign in for DefaultAzureCredential ({exc.message})"
            )
        if isinstance(exc, self._aexc.ServiceRequestError | self._aexc.ServiceResponseError):
            return TransientError(f"Azure Key Vault unreachable for {key_name!r}: {exc.message}")
        return wrap_error(key_name, getattr(exc, "status_code", None), exc.message)

    def close(self) -> None:
        for client in self._clients.values():
            client.close()
        self._clients.clear()


def _transport() -> Any:
    """The SDK's own HTTP transport, held to spec 6.3's ``in_transit`` TLS floor."""
    from azure.core.pipeline.transport import RequestsTransport

    from dpexport.security import transit

    transport = RequestsTransport(connection_verify=transit.current().ca_bundle or True)
    transport.open()
    transit.harden_session(transport.session)
    return transport
