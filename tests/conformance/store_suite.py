"""One conformance suite for the Store interface; every backend's test module
subclasses ``StoreSuite`` and provides the ``store`` fixture (fsspec's pattern).

Cloud backends subclass ``CloudStoreSuite``, which adds what needs a server: a missing
bucket, and a 503 / throttling reply mapped to a retryable error with its spec 7.1 code.
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
    PreconditionFailed,
    TerminalError,
    TransientError,
)
from dpexport.storage.base import Store
from dpexport.storage.probe import probe_destination

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


class CloudStoreSuite(StoreSuite):
    """What only a store behind a server has. Subclasses provide ``missing_bucket_store``
    (a store on a bucket that does not exist) and ``faulty_store`` (a factory: HTTP
    status and body -> a store whose server answers every request with them)."""

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

    # The fault proxy answers 503/429 and closes; the SDKs' pooled connections to it are
    # sometimes collected unclosed, a socket warning that is the proxy's, not ours.
    @pytest.mark.filterwarnings("ignore::ResourceWarning")
    @pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
    @pytest.mark.parametrize("fault", ["unavailable", "throttled"])
    def test_server_errors_are_retryable(
        self, faulty_store: Callable[[str], tuple[Store, str]], fault: str
    ) -> None:
        store, code = faulty_store(fault)
        with pytest.raises(TransientError) as err:
            store.get("any/key")
        assert err.value.code == code
        with pytest.raises(TransientError) as err:
            store.put_bytes("any/key", b"x")
        assert err.value.code == code
