"""S3Store against moto: the shared suite, multipart evidence, SSE as moto reports it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack, closing
from pathlib import Path
from typing import Any

import pytest

from dpexport.errors import PermissionDenied, TransientError
from dpexport.storage.cloud import ServerSideEncryption
from dpexport.storage.probe import probe_destination
from dpexport.storage.s3 import S3Store
from tests.conformance.faults import Fault, FaultProxy, fault_proxy
from tests.conformance.servers import server_env, unique_bucket
from tests.conformance.store_suite import CloudStoreSuite

SLOW_DOWN = (
    b'<?xml version="1.0" encoding="UTF-8"?><Error><Code>SlowDown</Code>'
    b"<Message>Please reduce your request rate.</Message></Error>"
)
UNAVAILABLE = (
    b'<?xml version="1.0" encoding="UTF-8"?><Error><Code>ServiceUnavailable</Code>'
    b"<Message>Service is unable to handle request.</Message></Error>"
)
ACCESS_DENIED = (
    b'<?xml version="1.0" encoding="UTF-8"?><Error><Code>AccessDenied</Code>'
    b"<Message>Access Denied</Message></Error>"
)
XML = {"Content-Type": "application/xml"}


def _client() -> Any:
    """A client for setting up and clearing the test bucket (not the store's)."""
    import boto3

    return boto3.session.Session().client("s3")


@pytest.fixture
def s3_bucket() -> Iterator[str]:
    server_env("AWS_ENDPOINT_URL", "the S3 server (moto)")
    client = _client()
    name = unique_bucket()
    client.create_bucket(Bucket=name)
    yield name
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=name):
        for obj in page.get("Contents", []):
            client.delete_object(Bucket=name, Key=obj["Key"])
    client.delete_bucket(Bucket=name)
    client.close()


class TestS3Store(CloudStoreSuite):
    @pytest.fixture
    def store(self, s3_bucket: str) -> Iterator[S3Store]:
        with closing(S3Store(s3_bucket)) as store:
            yield store

    @pytest.fixture
    def missing_bucket_store(self) -> Iterator[S3Store]:
        server_env("AWS_ENDPOINT_URL", "the S3 server (moto)")
        with closing(S3Store(unique_bucket("missing"))) as store:
            yield store

    @pytest.fixture
    def proxied_store(
        self, s3_bucket: str, monkeypatch: pytest.MonkeyPatch
    ) -> Iterator[Callable[[float], tuple[S3Store, FaultProxy]]]:
        with fault_proxy(server_env("AWS_ENDPOINT_URL", "moto")) as proxy, ExitStack() as stack:
            monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.url)
            # a denied call looks up the caller's ARN with STS (POST /), same endpoint
            proxy.ignore = lambda method, path: (method, path) == ("POST", "/")

            def make(timeout: float) -> tuple[S3Store, FaultProxy]:
                store = stack.enter_context(closing(S3Store(s3_bucket, timeout=timeout)))
                return store, proxy

            yield make

    def reply(self, fault: str) -> tuple[Fault, str]:
        if fault == "throttled":
            return Fault(503, SLOW_DOWN, XML), "RATE_LIMIT_EXCEEDED"
        if fault == "unavailable":
            return Fault(503, UNAVAILABLE, XML), "SERVICE_UNAVAILABLE"
        return Fault(403, ACCESS_DENIED, XML), "PERMISSION_DENIED"

    def assert_uploaded_in_parts(self, store: Any, key: str) -> None:
        etag = store.head(key).version
        assert etag.strip('"').endswith("-3"), etag  # 20 MB + in 8 MB parts


@pytest.mark.filterwarnings("ignore::ResourceWarning")
def test_no_sdk_retries_even_if_the_environment_asks(
    s3_bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """AWS_MAX_ATTEMPTS would give botocore retries of its own; the store's client
    still makes one request per call."""
    with fault_proxy(server_env("AWS_ENDPOINT_URL", "moto")) as proxy:
        monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.url)
        monkeypatch.setenv("AWS_MAX_ATTEMPTS", "7")
        monkeypatch.setenv("AWS_RETRY_MODE", "adaptive")
        proxy.fault = Fault(503, SLOW_DOWN, XML)
        with closing(S3Store(s3_bucket)) as store, pytest.raises(TransientError):
            store.get("any/key")
    assert proxy.requests == 1


def test_sse_kms_and_aes256_as_moto_reports(s3_bucket: str, tmp_path: Path) -> None:
    import boto3

    with closing(boto3.session.Session().client("kms")) as kms:
        key_arn = kms.create_key(Description="dpexport test")["KeyMetadata"]["Arn"]
    base = S3Store(s3_bucket)
    store = base.with_encryption(ServerSideEncryption(kms_key=key_arn, algorithm="aws:kms"))
    store.put_bytes("enc/small", b"secret rows")
    big = tmp_path / "big"
    big.write_bytes(b"z" * (9 * 1024 * 1024))
    store.put_file("enc/big", big)
    store.copy("enc/small", "enc/copied")
    for key in ("enc/small", "enc/big", "enc/copied"):
        head = store.head_raw(key)
        assert head["ServerSideEncryption"] == "aws:kms", key
        assert head["SSEKMSKeyId"] == key_arn, key
    assert store.encryption_info() == {
        "mode": "CMEK",
        "client_side": False,
        "server_side": "s3",
        "sse": "aws:kms",
        "kms_key": key_arn,
    }
    plain = base.with_encryption(ServerSideEncryption(algorithm="AES256"))
    plain.put_bytes("enc/aes", b"x")
    assert plain.head_raw("enc/aes")["ServerSideEncryption"] == "AES256"
    assert "SSEKMSKeyId" not in plain.head_raw("enc/aes")
    base.close()


def test_probe_denied_names_bucket_and_principal_without_retry(
    s3_bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with fault_proxy(server_env("AWS_ENDPOINT_URL", "moto")) as proxy:
        monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.url)
        store = S3Store(s3_bucket)
        proxy.fault = Fault(403, ACCESS_DENIED, times=1)  # the STS lookup then goes through
        with pytest.raises(PermissionDenied) as err:
            probe_destination(store, "prod/financial/")
        store.close()
    assert proxy.failed == 1  # denied once, never retried
    message = str(err.value)
    assert f"bucket {s3_bucket}" in message
    assert "principal arn:aws:" in message
    assert f"s3://{s3_bucket}/prod/financial/" in message
    assert err.value.code == "PERMISSION_DENIED"


@pytest.mark.filterwarnings("ignore::ResourceWarning")
def test_the_stores_every_command_opens_retry_by_the_policy_once(
    s3_bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """verify, replicate, compact, lifecycle and logs open their stores through
    StoreResolver: a cloud store it opens is retried by spec 7.1's policy (the only
    retry layer), and an export's own retrying wrapper replaces it, never nests in it."""
    from dpexport.reliability.retry import Retrier, RetryingStore, RetryPolicy
    from dpexport.storage.uri import StoreResolver

    with fault_proxy(server_env("AWS_ENDPOINT_URL", "moto")) as proxy:
        monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.url)
        proxy.fault = Fault(503, SLOW_DOWN, XML)
        store, key = StoreResolver(
            None, RetryPolicy(max_attempts=3, initial_delay_seconds=0, jitter=False)
        ).resolve(f"s3://{s3_bucket}/any/key")
        with pytest.raises(TransientError):
            store.get(key)
        assert proxy.requests == 3
        export_store = RetryingStore(
            store, Retrier(RetryPolicy(max_attempts=2, initial_delay_seconds=0))
        )
        with pytest.raises(TransientError):
            export_store.get(key)
        assert proxy.requests == 3 + 2  # not 2 x 3
