"""CONTRACT §11: on a cloud the principal is also the credential.

A principal of ``service_accounts`` may name its identity on each cloud: GCS and
BigQuery impersonate the principal itself when its name is a GCP service account
(``NAME@PROJECT.iam.gserviceaccount.com``), S3 assumes its ``aws_role_arn`` (STS
AssumeRole, refreshed before it expires) and Azure Blob signs in as its
``azure_client_id`` (a client secret from ``AZURE_CLIENT_SECRET`` and
``AZURE_TENANT_ID`` when set, else the managed identity with that client id). The
machine's own credentials (ADC, the AWS chain, ``DefaultAzureCredential``) are the
source the principal's are obtained with. No principal, or none of these for a cloud:
that cloud's stores use the machine's credentials, as without principals.

Emulators take no identity: with ``STORAGE_EMULATOR_HOST`` (GCS), an ``http://``
BigQuery endpoint or ``AZURE_STORAGE_CONNECTION_STRING`` (an account key) the stores
and the engine connect as before; moto runs STS and IAM, so S3 assumes the role there.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from dpexport.errors import PermissionDenied

if TYPE_CHECKING:
    from dpexport.config.models.security import ServiceAccount

#: the form of a GCP service account's email
_GCP_ACCOUNT = re.compile(r"^[^@\s]+@[^@\s]+\.iam\.gserviceaccount\.com$")
#: characters STS takes in a RoleSessionName (2 to 64 of them)
_SESSION_CHARS = re.compile(r"[^\w+=,.@-]")
SCOPES = ("https://www.googleapis.com/auth/cloud-platform",)


@dataclass(frozen=True)
class Identity:
    """A principal and its identity on each cloud (None: that cloud's default)."""

    principal: str
    aws_role_arn: str | None = None
    azure_client_id: str | None = None
    gcp_service_account: str | None = None


def identity_of(accounts: Mapping[str, ServiceAccount], principal: str | None) -> Identity | None:
    """The identity of ``principal`` as ``service_accounts`` gives it; None for no
    principal or one the config does not list."""
    if not principal:
        return None
    account = accounts.get(principal)
    if account is None:
        return None
    return Identity(
        principal,
        aws_role_arn=account.aws_role_arn,
        azure_client_id=account.azure_client_id,
        gcp_service_account=principal if _GCP_ACCOUNT.match(principal) else None,
    )


def session_name(principal: str) -> str:
    """The STS RoleSessionName for ``principal``: its name, in the characters STS takes."""
    name = _SESSION_CHARS.sub("-", principal)[:64]
    return name if len(name) >= 2 else f"dpexport-{name}"


def aws_session(identity: Identity, endpoint_url: str | None = None) -> Any:
    """A boto3 session with the credentials of ``identity``'s role, assumed with the
    machine's credentials and assumed again before they expire; a refusal is
    PermissionDenied naming the principal and the role."""
    import boto3
    from botocore.credentials import RefreshableCredentials
    from botocore.exceptions import ClientError
    from botocore.session import get_session

    role, name = identity.aws_role_arn, session_name(identity.principal)

    def assume() -> dict[str, str]:
        sts = boto3.session.Session().client("sts", endpoint_url=endpoint_url)
        try:
            creds = sts.assume_role(RoleArn=role, RoleSessionName=name)["Credentials"]
        except ClientError as exc:  # refused; not reaching STS is the caller's to map
            raise PermissionDenied(
                f"principal {identity.principal} cannot assume its AWS role {role}: {exc}; "
                "check the role's trust policy and service_accounts.*.aws_role_arn"
            ) from exc
        finally:
            sts.close()
        return {
            "access_key": creds["AccessKeyId"],
            "secret_key": creds["SecretAccessKey"],
            "token": creds["SessionToken"],
            "expiry_time": creds["Expiration"].isoformat(),
        }

    refreshable = RefreshableCredentials.create_from_metadata(
        metadata=assume(), refresh_using=assume, method="sts-assume-role"
    )
    core = get_session()
    core._credentials = refreshable  # botocore's own way for AssumeRole providers
    return boto3.session.Session(botocore_session=core)


def gcp_credentials(identity: Identity, source: Any = None) -> tuple[Any, str | None]:
    """Credentials impersonating ``identity``'s service account, obtained with
    ``source`` (default: ADC), and the source's project."""
    from google.auth import impersonated_credentials

    project = None
    if source is None:
        import google.auth

        source, project = google.auth.default(scopes=list(SCOPES))
    target = identity.gcp_service_account
    creds = impersonated_credentials.Credentials(
        source_credentials=source, target_principal=target, target_scopes=list(SCOPES)
    )
    return creds, project


def azure_credential(identity: Identity) -> Any:
    """The Azure credential of ``identity``'s client id: its client secret when
    ``AZURE_CLIENT_SECRET`` and ``AZURE_TENANT_ID`` are set, else its managed identity."""
    from azure import identity as azid

    client_id = identity.azure_client_id or ""  # only called for one that has it
    secret, tenant = os.environ.get("AZURE_CLIENT_SECRET"), os.environ.get("AZURE_TENANT_ID")
    if secret and tenant:
        return azid.ClientSecretCredential(tenant, client_id, secret)
    return azid.ManagedIdentityCredential(client_id=client_id)
