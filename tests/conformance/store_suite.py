"""One conformance suite for the Store interface; every backend's test module
subclasses ``StoreSuite`` and provides the ``store`` fixture (fsspec's pattern)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from dpexport.errors import AlreadyExists, NotFound, PreconditionFailed
from dpexport.storage.base import Store


class StoreSuite:
    """Behaviour every Store must have."""

    @pytest.mark.parametrize("size", [0, 1, 20 * 1024 * 1024])
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

    def test_list_by_prefix_in_key_order(self, store: Store) -> None:
        for key in ("l/b/2", "l/a/1", "l/a/3", "lz/other", "m/x"):
            store.put_bytes(key, key.encode())
        assert [o.key for o in store.list("l/")] == ["l/a/1", "l/a/3", "l/b/2"]
        assert [o.key for o in store.list("l/a")] == ["l/a/1", "l/a/3"]
        assert list(store.list("nothing/")) == []

    def test_conditional_create(self, store: Store) -> None:
        store.put_if_absent("tokens/t1", b"first")
        with pytest.raises(AlreadyExists):
            store.put_if_absent("tokens/t1", b"second")
        assert store.get("tokens/t1") == b"first"

    def test_compare_and_swap(self, store: Store) -> None:
        first = store.replace_if_match("cas/doc.json", b"v1", None)
        with pytest.raises(PreconditionFailed):
            store.replace_if_match("cas/doc.json", b"v1-again", None)  # must not exist
        second = store.replace_if_match("cas/doc.json", b"v2", first.version)
        with pytest.raises(PreconditionFailed):
            store.replace_if_match("cas/doc.json", b"stale", first.version)
        assert store.get("cas/doc.json") == b"v2"
        assert second.version != first.version

    def test_copy_move_delete(self, store: Store) -> None:
        store.put_bytes("c/src", b"payload")
        store.copy("c/src", "c/copy")
        assert store.get("c/copy") == b"payload"
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
            store.copy("absent", "elsewhere")

    def test_uri(self, store: Store) -> None:
        assert store.uri("a/b.json").endswith("/a/b.json")
