"""Spec 6.3 ``encryption.in_transit``: the TLS every connection dpexport opens must use.

``protocol`` is the oldest TLS version a connection may negotiate: the store clients
(GCS, S3, Azure Blob), the BigQuery client, the Key Vault client, alert webhooks and
SMTP STARTTLS all refuse a server that offers less (``check`` already refuses a
minimum below TLS 1.2, the floor without one). ``certificate`` is a PEM file of the
certificate authorities servers are verified against instead of the system's (a
private CA, a TLS-inspecting proxy); a certificate *name* such as the spec's
``*.diagnosticpro.com`` is what the platform's own endpoints serve, which a client
cannot enforce, and ``check`` refuses it (:func:`certificate_problem`).

The setting is the process's: :func:`configure` is called when a config is loaded
(:class:`~dpexport.workspace.Workspace`), and each client is hardened when it is made
(:func:`harden_session`, :func:`harden_boto`, :func:`ssl_context`). gRPC channels
(Cloud KMS, the BigQuery Storage read API) take no TLS version setting; they negotiate
TLS 1.2 or 1.3 with Google's front ends.
"""

from __future__ import annotations

import os
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from dpexport.config.models.security import InTransit

_VERSIONS = {(1, 2): ssl.TLSVersion.TLSv1_2, (1, 3): ssl.TLSVersion.TLSv1_3}


@dataclass(frozen=True)
class Transit:
    """The TLS floor and the trusted authorities (None: the system's)."""

    minimum: ssl.TLSVersion = ssl.TLSVersion.TLSv1_2
    ca_bundle: str | None = None

    @property
    def label(self) -> str:
        return "TLS 1.3" if self.minimum is ssl.TLSVersion.TLSv1_3 else "TLS 1.2"


_current = Transit()


def from_config(block: InTransit | None) -> Transit:
    """The :class:`Transit` an ``in_transit`` block asks for (``check`` has refused
    what it cannot be: a version below 1.2, a certificate that is not a file)."""
    from dpexport.config.security_check import tls_version

    if block is None:
        return Transit()
    parsed = tls_version(block.protocol) if block.protocol else None
    minimum = ssl.TLSVersion.TLSv1_2
    if parsed is not None and parsed[0] == "TLS" and parsed[1] >= (1, 3):
        minimum = ssl.TLSVersion.TLSv1_3
    ca = str(Path(block.certificate).expanduser()) if block.certificate else None
    return Transit(minimum=minimum, ca_bundle=ca)


def configure(transit: Transit) -> None:
    """Make ``transit`` the process's setting for every client made from now on."""
    global _current
    _current = transit


def current() -> Transit:
    return _current


def certificate_problem(value: str) -> str | None:
    """Why ``in_transit.certificate`` cannot be used, or None for a readable PEM file."""
    path = Path(value).expanduser()
    if path.is_file():
        try:
            ssl.create_default_context(cafile=str(path))
        except (ssl.SSLError, OSError) as exc:
            return f"is not a PEM file of certificate authorities: {exc}"
        return None
    if "*" in value or "/" not in value:
        return (
            "names a server certificate; that is served by your endpoints, not by "
            "dpexport, a client, which cannot enforce it"
        )
    return "no such file"


def ssl_context() -> ssl.SSLContext:
    """A verifying client context with the configured floor and authorities (the
    system's, or ``SSL_CERT_FILE``'s, when no certificate is configured)."""
    cafile = _current.ca_bundle or os.environ.get("SSL_CERT_FILE") or None
    context = ssl.create_default_context(cafile=cafile)
    context.minimum_version = max(context.minimum_version, _current.minimum)
    return context


def harden_session(session: Any) -> Any:
    """Make a ``requests`` session (GCS, BigQuery, Azure) negotiate at least the
    configured TLS version, and verify servers with the configured authorities."""
    adapter = session.get_adapter("https://")
    adapter.poolmanager.connection_pool_kw["ssl_minimum_version"] = _current.minimum
    adapter.init_poolmanager = _with_floor(adapter.init_poolmanager)
    if _current.ca_bundle:
        session.verify = _current.ca_bundle
        # requests lets $REQUESTS_CA_BUNDLE override a session's verify; the adapter
        # is where the configured authorities cannot be overridden
        adapter.send = _verifying(adapter.send, _current.ca_bundle)
    return session


def _verifying(send: Any, ca_bundle: str) -> Any:
    def send_verified(request: Any, *args: Any, **kwargs: Any) -> Any:
        kwargs["verify"] = ca_bundle
        return send(request, *args, **kwargs)

    return send_verified


def _with_floor(init: Any) -> Any:
    """``init_poolmanager`` keeping the floor when requests rebuilds the pool."""

    def init_poolmanager(*args: Any, **kwargs: Any) -> None:
        kwargs["ssl_minimum_version"] = _current.minimum
        init(*args, **kwargs)

    return init_poolmanager


def harden_boto(client: Any) -> Any:
    """Make a botocore client negotiate at least the configured TLS version (its pool
    manager's SSL context; botocore has no setting for it)."""
    http = client._endpoint.http_session
    managers = [http._manager, *getattr(http, "_proxy_managers", {}).values()]
    for manager in managers:
        context = manager.connection_pool_kw.get("ssl_context")
        if context is not None:
            context.minimum_version = max(context.minimum_version, _current.minimum)
    return client


def boto_verify() -> str | None:
    """``verify=`` for a boto3 client: the configured authorities, else botocore's."""
    return _current.ca_bundle
