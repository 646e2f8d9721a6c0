"""The stores' HTTP clients never negotiate below TLS 1.2, the floor ``check`` holds
``encryption.in_transit.protocol`` to (issue 21). botocore (S3) builds its own SSL
context; the GCS and Azure SDKs go through requests, whose adapters leave the context to
urllib3's default. Both come from urllib3 2, whose contexts set TLS 1.2 as the minimum:
a downgrade to urllib3 1 (TLS 1.0 allowed) fails here."""

from __future__ import annotations

import ssl

from dpexport.config.security_check import MIN_TLS


def test_the_check_floor_is_tls_1_2() -> None:
    assert MIN_TLS == (1, 2)


def test_s3_client_context_refuses_below_tls_1_2() -> None:
    from botocore.httpsession import URLLib3Session

    context = URLLib3Session()._get_ssl_context()
    assert context.minimum_version >= ssl.TLSVersion.TLSv1_2


def test_gcs_and_azure_sessions_use_urllib3s_tls_1_2_floor() -> None:
    from azure.core.pipeline.transport import RequestsTransport
    from google.auth.transport.requests import AuthorizedSession
    from urllib3.util.ssl_ import create_urllib3_context

    assert create_urllib3_context().minimum_version >= ssl.TLSVersion.TLSv1_2
    transport = RequestsTransport()
    transport.open()
    sessions = [AuthorizedSession(None), transport.session]
    for session in sessions:
        adapter = session.get_adapter("https://storage.googleapis.com")
        # no context of the SDK's own: urllib3 makes the default one per connection
        assert adapter.poolmanager.connection_pool_kw.get("ssl_context") is None
        assert adapter.poolmanager.connection_pool_kw.get("ssl_minimum_version") is None
    transport.close()
    sessions[0].close()
