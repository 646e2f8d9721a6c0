"""Cloud KMS key providers for client-side envelope encryption (spec 6.3).

Both implement :class:`dpexport.security.crypto.KeyProvider`: a fresh data key is
wrapped by the named key-encryption key inside the cloud's KMS (the key never leaves
it), and only the wrapped bytes are stored in the file header. Each wrap binds
``dpexport-data-key-v1`` as additional authenticated data / encryption context, so a
wrapped key cannot be replayed into another KMS use.

- :class:`GcpKmsKeyProvider` (google-cloud-kms): key names ``projects/P/locations/L/
  keyRings/R/cryptoKeys/K``; Application Default Credentials; ``endpoint`` for a
  private or local endpoint.
- :class:`AwsKmsKeyProvider` (boto3): key ids, ARNs or ``alias/NAME``; the AWS
  credential chain and ``AWS_ENDPOINT_URL`` as every AWS client.
- Azure Key Vault keys (``https://VAULT.vault.azure.net/keys/NAME``):
  :class:`dpexport.security.keyvault.AzureKeyVaultKeyProvider`.

Errors never contain key material: a failed unwrap is a :class:`DecryptionError`
naming the key; a failed wrap is our usual error type (retryable or not).
"""

from __future__ import annotations

from typing import Any

from dpexport.errors import (
    DecryptionError,
    ExportError,
    PermissionDenied,
    TransientError,
    UsageError,
)
from dpexport.security.keyvault import AzureKeyVaultKeyProvider, is_key_vault_key
from dpexport.security.kms_errors import wrap_error
from dpexport.storage.cloud import TIMEOUT, require

AAD = b"dpexport-data-key-v1"
_CONTEXT = {"purpose": AAD.decode()}

# AWS KMS answers 400 for most failures; its error code says which
_AWS_STATUS = {
    "NotFoundException": 404,
    "AccessDeniedException": 403,
    "ThrottlingException": 429,
    "LimitExceededException": 429,
    "KMSInternalException": 500,
    "DependencyTimeoutException": 503,
}

__all__ = ["AwsKmsKeyProvider", "GcpKmsKeyProvider", "key_provider_for"]


class GcpKmsKeyProvider:
    """Cloud KMS ``encrypt``/``decrypt`` on a symmetric CryptoKey."""

    name = "gcp-kms"

    def __init__(
        self,
        *,
        client: Any = None,
        endpoint: str | None = None,
        credentials: Any = None,
        timeout: float = TIMEOUT,
    ) -> None:
        self._kms = require("google.cloud.kms", "gcs")
        self._gexc = require("google.api_core.exceptions", "gcs")
        self.timeout = timeout
        self._client = client
        self._endpoint = endpoint
        self._credentials = credentials

    @property
    def client(self) -> Any:
        """Made on first use, so choosing a provider needs no credentials yet."""
        if self._client is None:
            options = {"api_endpoint": self._endpoint} if self._endpoint else None
            plain_http = bool(self._endpoint and self._endpoint.startswith("http://"))
            try:
                self._client = self._kms.KeyManagementServiceClient(
                    credentials=self._credentials,
                    client_options=options,
                    transport="rest" if plain_http else None,
                )
            except Exception as exc:
                if type(exc).__name__ == "DefaultCredentialsError":
                    raise PermissionDenied(
                        "no Google credentials found for Cloud KMS (Application Default "
                        "Credentials)"
                    ) from exc
                raise
        return self._client

    def __repr__(self) -> str:
        return "GcpKmsKeyProvider()"

    def wrap(self, key_name: str, data_key: bytes) -> bytes:
        try:
            resp = self.client.encrypt(
                request={
                    "name": key_name,
                    "plaintext": data_key,
                    "additional_authenticated_data": AAD,
                },
                timeout=self.timeout,
            )
        except self._gexc.GoogleAPICallError as exc:
            raise wrap_error(key_name, exc.code, exc.message) from exc
        return bytes(resp.ciphertext)

    def unwrap(self, key_name: str, wrapped: bytes) -> bytes:
        try:
            resp = self.client.decrypt(
                request={
                    "name": key_name,
                    "ciphertext": wrapped,
                    "additional_authenticated_data": AAD,
                },
                timeout=self.timeout,
            )
        except self._gexc.GoogleAPICallError as exc:
            raise DecryptionError(
                f"Cloud KMS could not unwrap the data key with {key_name!r}: "
                f"{exc.code} {exc.message}"
            ) from exc
        return bytes(resp.plaintext)

    def close(self) -> None:
        if self._client is not None:
            self._client.transport.close()


class AwsKmsKeyProvider:
    """AWS KMS ``Encrypt``/``Decrypt`` (data keys are 32 bytes, under KMS's 4 KB limit)."""

    name = "aws-kms"

    def __init__(self, *, client: Any = None, timeout: float = TIMEOUT) -> None:
        boto3 = require("boto3", "s3")
        self._bexc = require("botocore.exceptions", "s3")
        if client is None:
            config = require("botocore.config", "s3").Config(
                connect_timeout=timeout, read_timeout=timeout, retries={"mode": "standard"}
            )
            client = boto3.session.Session().client("kms", config=config)
        self.client = client

    def __repr__(self) -> str:
        return "AwsKmsKeyProvider()"

    def wrap(self, key_name: str, data_key: bytes) -> bytes:
        try:
            resp = self.client.encrypt(
                KeyId=key_name, Plaintext=data_key, EncryptionContext=_CONTEXT
            )
        except (
            self._bexc.ClientError,
            self._bexc.HTTPClientError,
            self._bexc.ConnectionError,
        ) as exc:
            raise aws_error(key_name, exc) from exc
        return bytes(resp["CiphertextBlob"])

    def unwrap(self, key_name: str, wrapped: bytes) -> bytes:
        try:
            resp = self.client.decrypt(
                CiphertextBlob=wrapped, KeyId=key_name, EncryptionContext=_CONTEXT
            )
        except self._bexc.ClientError as exc:
            code = exc.response.get("Error", {}).get("Code")
            raise DecryptionError(
                f"AWS KMS could not unwrap the data key with {key_name!r}: {code}"
            ) from exc
        return bytes(resp["Plaintext"])

    def close(self) -> None:
        self.client.close()


def aws_error(
    key_name: str, exc: Exception, what: str = "could not wrap a data key"
) -> ExportError:
    """Our error for a botocore error on ``key_name``: a ``ClientError`` by its code, a
    connection failure transient."""
    response = getattr(exc, "response", None)
    if not isinstance(response, dict):
        return TransientError(f"AWS KMS unreachable: {type(exc).__name__}")
    err = response.get("Error", {})
    code = str(err.get("Code"))
    status = _AWS_STATUS.get(code) or response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return wrap_error(key_name, status, f"{code}: {err.get('Message')}", what)


def key_provider_for(
    key_name: str, *, kind: str = "auto", endpoint: str | None = None
) -> GcpKmsKeyProvider | AwsKmsKeyProvider | AzureKeyVaultKeyProvider:
    """The cloud provider for a key name: ``projects/...`` is Cloud KMS, ``arn:aws:kms:``
    or ``alias/`` AWS KMS, ``https://VAULT.vault.azure.net/keys/NAME`` Azure Key Vault
    (``kind`` forces one: ``gcp_kms`` | ``aws_kms`` | ``azure_key_vault``)."""
    if kind == "gcp_kms" or (kind == "auto" and key_name.startswith("projects/")):
        return GcpKmsKeyProvider(endpoint=endpoint)
    if kind == "aws_kms" or (kind == "auto" and key_name.startswith(("arn:aws:kms:", "alias/"))):
        return AwsKmsKeyProvider()
    if kind == "azure_key_vault" or (kind == "auto" and is_key_vault_key(key_name)):
        return AzureKeyVaultKeyProvider()
    raise UsageError(
        f"no cloud KMS for key {key_name!r}: expected projects/.../cryptoKeys/K (Cloud KMS), "
        "arn:aws:kms:... / alias/NAME (AWS KMS) or https://VAULT.vault.azure.net/keys/NAME "
        "(Azure Key Vault)"
    )
