"""One conformance suite for the Store interface; every backend's test module
subclasses ``StoreSuite`` and provides the ``store`` fixture (fsspec's pattern).

Cloud backends subclass ``CloudStoreSuite``, which adds what needs a server: a missing
bucket, and faults (503, throttling, resets, timeouts, cut replies, 403) mapped to their
spec 7.1 class and retried by the spec 7.1 policy exactly as configured.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from pathlib import Path

import pytest

from dpexport.errors import (
    AlreadyExists,
    NotFound,
    PermissionDenied,
    PreconditionFailed,
    TerminalError,
    TransientError,
)
from dpexport.reliability.retry import Retrier, RetryingStore, RetryPolicy
from dpexport.storage.base import Store
from dpexport.storage.probe import probe_destination
from tests.conformance.faults import Fault, FaultProxy

BIG = 20 * 1024 * 1024  # past every backend's multipart / resumable threshold


class StoreSuite:
    """Behaviour every Store must have."""

    @pytest.mark.parametrize("size", [0, 1, BIG])
    def test_round_trip_bytes(self, store: Store, size: int) -> None:
        data = os.urandom(size)
        info = store.put_bytes(f"rt/{size}.bin", data)
        assert info.size == size
        assert store.get(f"rt/{size}.bin") == data
        head = store.head(f"rt/{size}.bin")
        assert head is not None and head.size == size

    def test_put_file(self, store: Store, tmp_path: Path) -> None:
        src = tmp_path / "upload.bin"
        src.write_bytes(b"x" * 1000)
        info = store.put_file("files/upload.bin", src)
        assert info.size == 1000
        assert store.get("files/upload.bin") == b"x" * 1000

    def test_put_large_file_in_parts_and_stream_it_back(self, store: Store, tmp_path: Path) -> None:
        data = os.urandom(BIG + 12345)
        src = tmp_path / "big.bin"
        src.write_bytes(data)
        info = store.put_file("files/big.bin", src)
        assert info.size == len(data)
        self.assert_uploaded_in_parts(store, "files/big.bin")
        digest = hashlib.sha256()
        with store.open_read("files/big.bin") as fh:
            while chunk := fh.read(1 << 20):
                digest.update(chunk)
        assert digest.hexdigest() == hashlib.sha256(data).hexdigest()

    def assert_uploaded_in_parts(self, store: Store, key: str) -> None:
        """Backends with a multipart path override this to prove it was taken."""

    def test_list_by_prefix_in_key_order(self, store: Store) -> None:
        for key in ("l/b/2", "l/a/1", "l/a/3", "lz/other", "m/x", "l/a/10"):
            store.put_bytes(key, key.encode())
        assert [o.key for o in store.list("l/")] == ["l/a/1", "l/a/10", "l/a/3", "l/b/2"]
        assert [o.key for o in store.list("l/a")] == ["l/a/1", "l/a/10", "l/a/3"]
        assert [o.size for o in store.list("l/a/1")] == [5, 6]
        assert list(store.list("nothing/")) == []

    def test_conditional_create(self, store: Store) -> None:
        first = store.put_if_absent("tokens/t1", b"first")
        assert first.size == 5
        with pytest.raises(AlreadyExists) as err:
            store.put_if_absent("tokens/t1", b"second")
        assert err.value.code == "ALREADY_EXISTS"
        assert store.get("tokens/t1") == b"first"

    def test_compare_and_swap(self, store: Store) -> None:
        first = store.replace_if_match("cas/doc.json", b"v1", None)
        with pytest.raises(PreconditionFailed):
            store.replace_if_match("cas/doc.json", b"v1-again", None)  # must not exist
        head = store.head("cas/doc.json")
        assert head is not None and head.version == first.version
        second = store.replace_if_match("cas/doc.json", b"v2", first.version)
        with pytest.raises(PreconditionFailed) as err:
            store.replace_if_match("cas/doc.json", b"stale", first.version)
        assert not isinstance(err.value, TransientError)
        assert store.get("cas/doc.json") == b"v2"
        assert second.version != first.version
        third = store.replace_if_match("cas/doc.json", b"v3", second.version)
        assert store.get("cas/doc.json") == b"v3" and third.version not in (None, second.version)

    def test_copy_move_delete(self, store: Store) -> None:
        store.put_bytes("c/src", b"payload")
        copied = store.copy("c/src", "c/copy")
        assert copied.size == 7
        assert store.get("c/copy") == b"payload"
        assert store.get("c/src") == b"payload"
        store.move("c/copy", "d/moved")
        assert store.head("c/copy") is None
        assert store.get("d/moved") == b"payload"
        store.delete("d/moved")
        store.delete("d/moved")  # deleting a missing key is not an error
        assert store.head("d/moved") is None

    def test_missing_objects(self, store: Store) -> None:
        assert store.head("absent") is None
        with pytest.raises(NotFound):
            store.get("absent")
        with pytest.raises(NotFound):
            store.open_read("absent").read()
        with pytest.raises(NotFound):
            store.copy("absent", "elsewhere")

    def test_probe_destination_leaves_nothing(self, store: Store) -> None:
        probe_destination(store, "prod/x/")
        assert [o.key for o in store.list("_staging/")] == []

    def test_uri(self, store: Store) -> None:
        assert store.uri("a/b.json").endswith("/a/b.json")

    def test_no_staging_dir_unless_local(self, store: Store) -> None:
        local = store.staging_dir()
        assert local is None or isinstance(local, Path)


#: a factory of stores on the test bucket whose every request goes through one fault
#: proxy, made by the backend from the environment as users' stores are (so the SDK
#: client settings under test are the product's own); its argument is the store's
#: client timeout in seconds. The proxy's ``ignore`` leaves out requests an SDK makes
#: besides the store's calls, so ``requests`` counts the attempts of those calls.
ProxiedStore = Callable[[float], tuple[Store, FaultProxy]]

#: a short client timeout, for the stalled requests
SHORT_TIMEOUT = 0.5


def _retrier(max_attempts: int) -> Retrier:
    """The spec 7.1 policy with ``max_attempts``, its waits recorded, never slept."""
    policy = RetryPolicy(max_attempts=max_attempts, deadline_seconds=None)
    return Retrier(policy, sleep=lambda _seconds: None)


class CloudStoreSuite(StoreSuite):
    """What only a store behind a server has. Subclasses provide ``missing_bucket_store``
    (a store on a bucket that does not exist), ``proxied_store`` (a
    :data:`ProxiedStore`), and :meth:`reply` (the backend's own error replies).

    The retry tests prove that spec 7.1's policy is the only retry layer: with the
    SDKs' retries off, the server sees exactly one request per attempt the policy
    makes, so ``max_attempts: 3`` is three requests for a call that keeps failing,
    not three times the SDK's own attempts; a terminal error is one request.
    """

    #: requests a download makes per attempt when its reply body is cut short (an
    #: SDK that re-reads such a body by itself, and cannot be told not to, says more)
    body_rereads = 1

    def reply(self, fault: str) -> tuple[Fault, str]:
        """The backend's reply for ``fault`` (``unavailable``, ``throttled``,
        ``denied``) and the spec 7.1 code it maps to."""
        raise NotImplementedError

    def _fault(self, fault: str) -> tuple[Fault, str]:
        if fault == "reset":
            return Fault(kind="reset"), "SERVICE_UNAVAILABLE"
        if fault == "stall":
            return Fault(kind="stall"), "TIMEOUT"
        return self.reply(fault)

    def test_missing_bucket_is_not_found(self, missing_bucket_store: Store) -> None:
        with pytest.raises(NotFound) as err:
            missing_bucket_store.get("any/key")
        assert err.value.code == "NOT_FOUND"
        with pytest.raises(NotFound):
            missing_bucket_store.put_bytes("any/key", b"x")
        with pytest.raises(NotFound):
            list(missing_bucket_store.list("any/"))
        with pytest.raises(TerminalError):
            probe_destination(missing_bucket_store, "any/")

    # The fault proxy answers and closes; the SDKs' pooled connections to it are
    # sometimes collected unclosed, a socket warning that is the proxy's, not ours.
    @pytest.mark.filterwarnings("ignore::ResourceWarning")
    @pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
    @pytest.mark.parametrize("fault", ["unavailable", "throttled", "reset", "stall"])
    def test_a_failing_call_is_tried_max_attempts_times(
        self, proxied_store: ProxiedStore, fault: str
    ) -> None:
        store, proxy = proxied_store(SHORT_TIMEOUT)
        injected, code = self._fault(fault)
        proxy.fault = injected
        calls: dict[str, Callable[[Store], object]] = {
            "get": lambda s: s.get("any/key"),
            "put_bytes": lambda s: s.put_bytes("any/key", b"x"),
        }
        for name, call in calls.items():
            before = proxy.requests
            retrier = _retrier(3)
            with pytest.raises(TransientError) as err:
                call(RetryingStore(store, retrier))
            assert err.value.code == code, name
            assert proxy.requests - before == 3, name
            assert [a.attempt for a in retrier.history] == [1, 2, 3], name
            assert [a.gave_up for a in retrier.history] == [None, None, "max_attempts"], name
            assert {a.code for a in retrier.history} == {code}, name

    @pytest.mark.filterwarnings("ignore::ResourceWarning")
    @pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
    @pytest.mark.parametrize("fault", ["unavailable", "throttled", "reset"])
    def test_one_transient_fault_is_retried_once(
        self, proxied_store: ProxiedStore, fault: str
    ) -> None:
        store, proxy = proxied_store(SHORT_TIMEOUT)
        injected, code = self._fault(fault)
        injected.times = 1
        proxy.fault = injected
        retrier = _retrier(5)
        info = RetryingStore(store, retrier).put_bytes("once/key", b"after one fault")
        assert info.size == len(b"after one fault")
        assert proxy.requests == 2 and proxy.failed == 1
        assert retrier.retry_count == 1 and retrier.history[0].code == code
        assert store.get("once/key") == b"after one fault"

    @pytest.mark.filterwarnings("ignore::ResourceWarning")
    @pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
    def test_a_failed_part_is_retried_from_the_file(
        self, proxied_store: ProxiedStore, tmp_path: Path
    ) -> None:
        """One part (chunk, block) of a large upload fails: the SDK does not retry
        the part, the policy retries the whole upload from the file, once."""
        store, proxy = proxied_store(60.0)
        data = os.urandom(BIG)
        source = tmp_path / "big.bin"
        source.write_bytes(data)
        injected, _code = self.reply("unavailable")
        injected.skip, injected.times = 1, 1  # the request after the upload's first
        proxy.fault = injected
        retrier = _retrier(3)
        info = RetryingStore(store, retrier).put_file("parts/big.bin", source)
        assert proxy.failed == 1
        assert retrier.retry_count == 1 and retrier.history[0].code == "SERVICE_UNAVAILABLE"
        assert info.size == BIG and store.get("parts/big.bin") == data

    @pytest.mark.filterwarnings("ignore::ResourceWarning")
    @pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
    def test_a_reply_cut_short_is_retried(self, proxied_store: ProxiedStore) -> None:
        store, proxy = proxied_store(SHORT_TIMEOUT)
        data = os.urandom(64 * 1024)
        store.put_bytes("cut/key", data)
        before = proxy.requests
        proxy.fault = Fault(kind="truncate")
        retrier = _retrier(2)
        with pytest.raises(TransientError) as err:
            RetryingStore(store, retrier).get("cut/key")
        assert err.value.code == "SERVICE_UNAVAILABLE"
        assert proxy.requests - before == 2 * self.body_rereads
        assert [a.gave_up for a in retrier.history] == [None, "max_attempts"]
        proxy.fault = None
        assert RetryingStore(store, _retrier(1)).get("cut/key") == data

    @pytest.mark.filterwarnings("ignore::ResourceWarning")
    @pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
    def test_a_terminal_error_is_tried_once(self, proxied_store: ProxiedStore) -> None:
        store, proxy = proxied_store(SHORT_TIMEOUT)
        retrier = _retrier(5)
        with pytest.raises(NotFound):  # the server's own 404: no injection
            RetryingStore(store, retrier).get("absent/key")
        assert proxy.requests == 1
        assert [a.gave_up for a in retrier.history] == ["non_retryable"]
        injected, code = self.reply("denied")
        proxy.fault = injected
        retrier = _retrier(5)
        with pytest.raises(PermissionDenied) as err:
            RetryingStore(store, retrier).put_bytes("any/key", b"x")
        assert err.value.code == code
        assert proxy.requests == 2
        assert [a.gave_up for a in retrier.history] == ["non_retryable"]
