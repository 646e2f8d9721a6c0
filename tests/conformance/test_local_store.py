"""The local-folder store passes the shared Store suite, plus its own rules."""

from __future__ import annotations

from pathlib import Path

import pytest

from dpexport.errors import InvalidArgument
from dpexport.storage.local import LocalStore
from tests.conformance.store_suite import StoreSuite


class TestLocalStore(StoreSuite):
    @pytest.fixture
    def store(self, tmp_path: Path) -> LocalStore:
        return LocalStore(tmp_path / "bucket", url="gs://bucket")


def test_keys_cannot_escape(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "bucket")
    for key in ("../x", "a/../../x", "/etc/passwd", "a/./b"):
        with pytest.raises(InvalidArgument):
            store.put_bytes(key, b"x")
    assert not (tmp_path / "x").exists()


def test_delete_prunes_empty_folders(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "bucket")
    store.put_bytes("a/b/c/file", b"x")
    store.delete("a/b/c/file")
    assert not (tmp_path / "bucket" / "a").exists()
    assert (tmp_path / "bucket").exists()


def test_hidden_lock_and_temp_files_are_not_listed(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "bucket")
    store.replace_if_match("doc", b"1", None)
    (tmp_path / "bucket" / ".doc.tmp-abc").write_bytes(b"partial")
    assert [o.key for o in store.list("")] == ["doc"]
