"""Concurrent commit steps: the batch runner, ``commit.apply`` over a store whose calls
run on threads (a local folder standing in for a bucket, so every write is real), and
the staging uploads of ``publication.build``."""

from __future__ import annotations

import functools
import hashlib
import json
import os
import threading
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pytest

from dpexport.errors import ExportError, NotFound
from dpexport.formats.base import WrittenFile
from dpexport.formats.router import Folder
from dpexport.publish import commit, publication
from dpexport.publish.commit import MarkerUpdate, Publication, Staging
from dpexport.reliability.retry import Retrier, RetryingStore, RetryPolicy
from dpexport.storage import layout
from dpexport.storage.batch import REMOTE_WORKERS, Batch, run_all
from dpexport.storage.local import LocalStore
from tests.unit.test_publication import facts, spec_for, staged_files

EXPORT = "exp_20250916_143022_7f3b4e5a"
AT = datetime(2025, 9, 16, 14, 30, 22, tzinfo=UTC)


class BucketLike(LocalStore):
    """A local folder without a staging folder of its own, as a cloud bucket: staging
    is uploaded with ``put_file``/``put_bytes`` and the commit's calls run on threads."""

    def staging_dir(self) -> Path | None:
        return None


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# -- Batch -------------------------------------------------------------------------------
def test_results_in_order_and_on_done_on_the_calling_thread() -> None:
    caller = threading.get_ident()
    done_on: list[int] = []
    ran_on: set[int] = set()

    def square(n: int) -> int:
        ran_on.add(threading.get_ident())
        return n * n

    out = run_all(
        range(500), square, workers=8, on_done=lambda: done_on.append(threading.get_ident())
    )
    assert out == [n * n for n in range(500)]
    assert done_on == [caller] * 500
    assert caller not in ran_on


def test_one_worker_runs_inline() -> None:
    caller = threading.get_ident()
    seen: list[int] = []

    def record(n: int) -> int:
        seen.append(threading.get_ident())
        return n

    out = run_all([1, 2, 3], record, workers=1)
    assert out == [1, 2, 3] and seen == [caller] * 3


def test_first_failure_raised_after_running_calls_finish_and_nothing_new_starts() -> None:
    workers = 4
    events: list[tuple[str, int]] = []
    running: set[int] = set()
    lock = threading.Lock()
    failing = {10, 11, 30}

    def call(n: int) -> int:
        with lock:
            events.append(("start", n))
            running.add(n)
        try:
            if n in failing:
                with lock:
                    events.append(("fail", n))
                raise ValueError(f"item {n} failed")
            return n
        finally:
            with lock:
                running.discard(n)

    completed: list[int] = []
    with pytest.raises(ValueError, match="item 10 failed"):
        run_all(range(200), call, workers=workers, on_done=lambda: completed.append(1))
    assert not running  # every call that started had finished when the failure was raised
    started = [n for kind, n in events if kind == "start"]
    first_fail = events.index(next(e for e in events if e[0] == "fail"))
    # after a failure no call starts, bar those already past the check on another thread
    assert len([e for e in events[first_fail:] if e[0] == "start"]) <= workers - 1
    assert len(started) < 200
    assert len(completed) == len(started) - len(failing & set(started))


def test_the_earliest_submitted_failure_is_raised() -> None:
    def call(n: int) -> int:
        raise KeyError(n)

    with pytest.raises(KeyError) as info:
        run_all(range(3), call, workers=3)
    assert info.value.args == (0,)


def test_an_error_in_the_block_drops_calls_not_started() -> None:
    started: list[int] = []
    busy = threading.Barrier(3)
    gate = threading.Event()

    def call(n: int) -> None:
        started.append(n)
        busy.wait(5)
        gate.wait(5)

    opener = threading.Timer(0.2, gate.set)
    with pytest.raises(RuntimeError, match="producer"), Batch[None](2) as batch:
        for n in range(3):
            batch.submit(functools.partial(call, n))
        busy.wait(5)  # both workers are in a call; the third call waits in the queue
        opener.start()
        raise RuntimeError("producer")
    opener.join()
    assert sorted(started) == [0, 1]


def test_an_error_in_on_done_stops_the_batch() -> None:
    ran: list[int] = []
    lock = threading.Lock()

    def call(n: int) -> int:
        with lock:
            ran.append(n)
        return n

    def on_done() -> None:
        raise SystemExit("killed at the first step")

    with pytest.raises(SystemExit):
        run_all(range(1000), call, workers=4, on_done=on_done)
    assert len(ran) < 1000


# -- apply -------------------------------------------------------------------------------
def staged_publication(
    store: LocalStore, files: int, *, folders: int = 7
) -> tuple[Publication, dict[str, bytes]]:
    """``files`` data files and sidecars staged under the export's staging prefix, with
    the moves, manifests and markers of their commit."""
    prefix = layout.staging_prefix(EXPORT)
    pub = Publication(EXPORT, "2025-09-16T14:30:22Z")
    expected: dict[str, bytes] = {}
    per_top: dict[str, list[dict[str, object]]] = {}
    for i in range(files):
        top = f"out/2025/09/16/{i % folders:02d}"
        data = os.urandom(100 + i)
        side = json.dumps({"file": i}).encode()
        final = f"{top}/{i % 5}/sensor_{i}/t_{i:05d}.parquet"
        store.put_bytes(f"{prefix}part-{i:05d}.parquet", data)
        store.put_bytes(f"{prefix}part-{i:05d}.parquet.metadata.json", side)
        pub.moves.append((f"{prefix}part-{i:05d}.parquet", final))
        pub.moves.append((f"{prefix}part-{i:05d}.parquet.metadata.json", final + ".metadata.json"))
        expected[final] = data
        expected[final + ".metadata.json"] = side
        per_top.setdefault(top, []).append({"name": final[len(top) + 1 :], "rows": 1})
    for top, entries in sorted(per_top.items()):
        name = layout.manifest_name(AT)
        pub.manifests.append((f"{top}/{name}", {"files": entries}))
        pub.markers.append(MarkerUpdate(f"{top}/", name, len(entries)))
    return pub, expected


def test_apply_moves_every_file_concurrently(tmp_path: Path) -> None:
    store = BucketLike(tmp_path / "bucket", url="gs://bucket")
    assert commit.io_workers(store) == REMOTE_WORKERS > 1
    pub, expected = staged_publication(store, 150)
    steps: list[str] = []
    threads: set[int] = set()

    def on_step(name: str) -> None:
        steps.append(name)
        threads.add(threading.get_ident())

    retrying = RetryingStore(store, Retrier(RetryPolicy(max_attempts=1)))
    commit.publish(retrying, pub, on_step=on_step)

    for key, data in expected.items():
        assert sha(store.get(key)) == sha(data), key
    data_files = [o.key for o in store.list("out/") if o.key.endswith(".parquet")]
    assert len(data_files) == 150
    assert not list(store.list("_staging/"))
    assert threads == {threading.get_ident()}
    # one step per write, each step's writes all done before the next step's
    assert Counter(steps) == {"journal": 1, "manifest": 7, "move": 300, "marker": 7, "clean": 1}
    order = ["journal", "manifest", "move", "marker", "clean"]
    assert [order.index(s) for s in steps] == sorted(order.index(s) for s in steps)
    for marker in pub.markers:
        success = json.loads(store.get(marker.folder_key + layout.SUCCESS))
        assert success["manifests"] == [marker.manifest]


def test_a_move_whose_source_vanished_fails_the_commit_without_success(tmp_path: Path) -> None:
    store = BucketLike(tmp_path / "bucket", url="gs://bucket")
    pub, expected = staged_publication(store, 60)
    lost_src, lost_dst = pub.moves[41]
    lost = store.get(lost_src)
    os.unlink(store.root / lost_src)  # behind the store's back
    moved: list[str] = []

    with pytest.raises(NotFound) as info:
        commit.publish(store, pub, on_step=moved.append)
    assert lost_src in str(info.value)
    assert not [o.key for o in store.list("out/") if o.key.endswith(layout.SUCCESS)]
    assert "marker" not in moved and moved.count("move") < len(pub.moves)
    journal = layout.staging_prefix(EXPORT) + layout.STAGING_JOURNAL
    assert store.head(journal) is not None  # the commit point stands: roll forward later

    # the file comes back; recovery rolls the commit forward: each file once, in place
    store.put_bytes(lost_src, lost)
    assert [(r.export_id, r.outcome) for r in commit.recover(store)] == [(EXPORT, "rolled forward")]
    for key, data in expected.items():
        assert store.get(key) == data, key
    assert lost_dst in expected
    assert not list(store.list("_staging/"))
    assert len([o for o in store.list("out/") if o.key.endswith(layout.SUCCESS)]) == 7


def test_a_move_onto_a_folder_fails_with_its_key(tmp_path: Path) -> None:
    """A destination taken by a folder (as a read-only one would be, for a non-root
    user) fails the move for real; nothing is marked, and what was moved is whole."""
    store = BucketLike(tmp_path / "bucket", url="gs://bucket")
    pub, expected = staged_publication(store, 40)
    _, blocked = pub.moves[17]
    (store.root / blocked).mkdir(parents=True)

    with pytest.raises(ExportError) as info:
        commit.apply(store, pub)
    assert blocked in str(info.value) and "Is a directory" in str(info.value)
    assert not [o.key for o in store.list("out/") if o.key.endswith(layout.SUCCESS)]
    assert store.head(pub.moves[17][0]) is not None  # still staged
    for key, data in expected.items():
        if key != blocked and store.head(key) is not None:
            assert store.get(key) == data, key


def test_full_refresh_retires_markers_then_manifests_then_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = BucketLike(tmp_path / "bucket", url="gs://bucket")
    old = [f"old/2025/09/15/{i:02d}/" for i in range(5)]
    retire: list[str] = []
    for folder in old:
        store.put_bytes(folder + layout.SUCCESS, b"{}")
        retire.append(folder + layout.SUCCESS)
    for folder in old:
        store.put_bytes(folder + "manifest_20250915_000000.json", b"{}")
        retire.append(folder + "manifest_20250915_000000.json")
    for folder in old:
        for n in range(20):
            store.put_bytes(f"{folder}f{n}.parquet", b"x")
            retire.append(f"{folder}f{n}.parquet")
    pub, _ = staged_publication(store, 10, folders=2)
    pub.replace = True
    pub.retire = retire
    seen: list[tuple[str, list[str]]] = []
    real_delete = store.delete

    def delete(key: str) -> None:
        # what is still there when a manifest or a data file goes
        if key.startswith("old/") and not key.endswith(layout.SUCCESS):
            kind = "file" if key.endswith(".parquet") else "manifest"
            seen.append((kind, [o.key for o in store.list("old/")]))
        real_delete(key)

    monkeypatch.setattr(store, "delete", delete)
    commit.apply(store, pub)
    assert not list(store.list("old/"))
    assert seen
    for kind, keys in seen:
        assert not any(k.endswith(layout.SUCCESS) for k in keys), kind
        if kind == "file":
            assert not any(layout.is_manifest(k.rsplit("/", 1)[-1]) for k in keys)


def test_retire_phases_keep_journal_order() -> None:
    keys = ["a/SUCCESS", "a/FAILURE", "a/manifest_20250915_000000.json", "a/x.parquet", "b/y"]
    assert list(commit._retire_phases(keys)) == [
        ["a/SUCCESS", "a/FAILURE"],
        ["a/manifest_20250915_000000.json"],
        ["a/x.parquet", "b/y"],
    ]


# -- publication.build --------------------------------------------------------------------
def build(store: LocalStore, scratch: Path, written: list[WrittenFile]) -> Publication:
    """``publication.build`` of copies of ``written``, staged as an export stages them."""
    staging = Staging(store, EXPORT, scratch)
    staging.begin()
    pairs = []
    for n, wf in enumerate(written):
        path = staging.new_path("parquet.zst")
        if wf.path.exists():
            path.write_bytes(wf.path.read_bytes())
        copy = WrittenFile(path, wf.rows, wf.stored_bytes, wf.uncompressed_bytes, wf.sha256)
        pairs.append((Folder("2025/09/16", f"{n % 3:02d}/{n % 2}"), copy))
    pub, _ = publication.build(
        spec=spec_for(),
        store=store,
        staging=staging,
        facts=facts(pa.schema([("id", pa.int64()), ("s", pa.string())])),
        written=pairs,
        dest_key="prod/d/t/",
        uuid8="7f3b4e5a",
        duration_ms=1,
        deduplicated=False,
    )
    return pub


def test_build_uploads_concurrently_in_a_deterministic_order(tmp_path: Path) -> None:
    written = staged_files(tmp_path, 30)
    by_part = {f"part-{n + 1:05d}.parquet.zst": wf for n, wf in enumerate(written)}
    local = LocalStore(tmp_path / "local", url="gs://b")
    remote = BucketLike(tmp_path / "remote", url="gs://b")
    pub_local = build(local, tmp_path / "l", written)
    pub_remote = build(remote, tmp_path / "r", written)

    # the same keys, moves and manifest entries, in the same order, however uploads ran
    assert pub_remote.moves == pub_local.moves
    assert pub_remote.manifests == pub_local.manifests
    assert len(pub_remote.moves) == 60
    for staged, _final in pub_remote.moves[::2]:
        wf = by_part[staged.rsplit("/", 1)[1]]
        assert sha(remote.get(staged)) == wf.sha256 == sha(local.get(staged))
    for staged, final in pub_remote.moves[1::2]:
        doc = json.loads(remote.get(staged))
        assert remote.get(staged) == local.get(staged)
        assert final.endswith("/" + doc["name"] + ".metadata.json")
        assert doc["checksum"] == "sha256:" + by_part[staged.rsplit("/", 1)[1][:-14]].sha256


def test_build_fails_on_a_failed_upload(tmp_path: Path) -> None:
    written = staged_files(tmp_path, 12)
    written[7].path.unlink()  # part 8 is gone before its upload
    remote = BucketLike(tmp_path / "remote", url="gs://b")
    with pytest.raises(NotFound, match=r"no such file: .*part-00008"):
        build(remote, tmp_path / "r", written)
