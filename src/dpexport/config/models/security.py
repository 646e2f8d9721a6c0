"""Spec 6.1-6.3: service accounts, bucket policies, encryption."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from dpexport.config.models.common import Block, Duration, empty_list


class ServiceAccount(Block):
    roles: list[str] = Field(default_factory=empty_list)
    #: CONTRACT §11: the role S3 assumes and the client id Azure signs in as for this
    #: principal (GCS and BigQuery impersonate the principal's own name)
    aws_role_arn: str | None = None
    azure_client_id: str | None = None


class LifecycleRule(Block):
    age: int
    action: str


class IamBinding(Block):
    """One role granted to members; ``allow_public`` must say so before ``allUsers`` or
    ``allAuthenticatedUsers`` is accepted (``check`` refuses them otherwise)."""

    role: str
    members: list[str] = Field(default_factory=empty_list)
    allow_public: bool = False


class BucketPolicy(Block):
    """Spec 6.2: one bucket's access, versioning and storage-class rules."""

    uniform_access: bool = True
    versioning: bool = True
    lifecycle_rules: list[LifecycleRule] = Field(default_factory=empty_list)
    iam_bindings: list[IamBinding] = Field(default_factory=empty_list)

    @field_validator("versioning", mode="before")
    @classmethod
    def _enabled(cls, value: object) -> object:
        # The spec writes `versioning: enabled`.
        if isinstance(value, str) and value.lower() in ("enabled", "disabled", "suspended"):
            return value.lower() == "enabled"
        return value


class SensitiveData(Block):
    """The CMEK tables' encryption; ``method`` and ``algorithm`` are held to what
    dpexport does by ``check`` (:mod:`dpexport.security.settings`)."""

    method: str | None = None
    kms_key: str | None = None
    algorithm: str = "AES-256-GCM"


class AtRest(Block):
    """Every other table's encryption at rest: the store's own keys (GMEK), AES-256."""

    method: str | None = None
    algorithm: str = "AES-256"
    key_rotation: Duration | None = None
    sensitive_data: SensitiveData | None = None


class InTransit(Block):
    protocol: str | None = None
    cipher_suites: list[str] = Field(default_factory=empty_list)
    certificate: str | None = None


class AwsS3Encryption(Block):
    sse: str | None = None
    kms_master_key: str | None = None


class AzureBlobEncryption(Block):
    encryption_scope: str | None = None
    key_vault: str | None = None


class CrossCloudEncryption(Block):
    aws_s3: AwsS3Encryption | None = None
    azure_blob: AzureBlobEncryption | None = None


class KeyProvider(Block):
    """How KMS key names are reached: ``auto`` picks by the key name's form
    (``projects/...`` GCP, ``arn:aws:kms:...`` AWS, ``https://*.vault.azure.net`` Azure);
    ``local`` keeps key files under ``local_dir`` (what ``--local-root`` does)."""

    kind: Literal["auto", "gcp_kms", "aws_kms", "azure_key_vault", "local"] = "auto"
    local_dir: str | None = None
    endpoint: str | None = None
    credentials_env: str | None = None


class EncryptionBlock(Block):
    """Spec 6.3 ``encryption`` plus ``key_provider``."""

    at_rest: AtRest | None = None
    in_transit: InTransit | None = None
    cross_cloud: CrossCloudEncryption | None = None
    key_provider: KeyProvider = Field(default_factory=KeyProvider.model_construct)
