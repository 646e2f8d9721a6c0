"""Which increments `dpexport files` lists beside compact's snapshot."""

from __future__ import annotations

from pathlib import Path

from dpexport.config.spec import CsvOptions, JsonlOptions
from dpexport.ops.files import _not_before
from dpexport.publish.committed import CommittedFile
from dpexport.storage.base import Store
from dpexport.storage.local import LocalStore


def _increment(name: str, exported_at: str) -> CommittedFile:
    return CommittedFile(
        name, "PARQUET", "SNAPPY", JsonlOptions(), CsvOptions(), 5, exported_at=exported_at
    )


def test_an_increment_started_in_the_snapshots_second_is_listed(tmp_path: Path) -> None:
    """Export times are whole seconds: an increment that started in the second the
    snapshot's export started may be missing from it, and was once left out (a `files`
    view without its rows, seen in CI)."""
    store: Store = LocalStore(tmp_path)
    taken = "2026-12-07T14:50:03Z"
    found = [
        (store, _increment("a", "2026-12-07T14:50:02Z")),
        (store, _increment("b", taken)),
        (store, _increment("c", "2026-12-07T14:50:04Z")),
    ]
    assert [f.key for _, f in _not_before(found, taken)] == ["b", "c"]
