"""The concurrent commit against every backend's server: staging uploads and the commit's
moves, markers and clean-up run on ``batch.REMOTE_WORKERS`` threads through one store
(and its retrying wrapper), every object lands with its bytes, a move that cannot happen
fails the commit with its key and no SUCCESS, and no SDK drops pooled connections."""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Callable, Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

from dpexport.errors import NotFound
from dpexport.publish import commit
from dpexport.publish.commit import MarkerUpdate, Publication, Staging
from dpexport.reliability.retry import Retrier, RetryingStore, RetryPolicy
from dpexport.storage import batch, layout
from dpexport.storage.base import Store
from tests.conformance.test_azure_store import az_container  # noqa: F401  (a fixture)
from tests.conformance.test_gcs_store import gcs_bucket  # noqa: F401  (a fixture)
from tests.conformance.test_s3_store import s3_bucket  # noqa: F401  (a fixture)

EXPORT = "exp_20250916_143022_7f3b4e5a"
FILES = 48  # 96 moves: several rounds of the worker threads


@pytest.fixture(params=["s3", "gcs", "azure"])
def cloud_store(request: pytest.FixtureRequest) -> Iterator[Store]:
    if request.param == "s3":
        from dpexport.storage.s3 import S3Store

        with closing(S3Store(request.getfixturevalue("s3_bucket"))) as s3:
            yield s3
    elif request.param == "gcs":
        from dpexport.storage.gcs import GCSStore

        with closing(GCSStore(request.getfixturevalue("gcs_bucket"))) as gcs:
            yield gcs
    else:
        from dpexport.storage.azure import AzureStore

        with closing(AzureStore(request.getfixturevalue("az_container"))) as azure:
            yield azure


@pytest.fixture
def pool_warnings(caplog: pytest.LogCaptureFixture) -> Callable[[], list[str]]:
    """urllib3's "Connection pool is full" warnings logged during the test."""
    caplog.set_level(logging.WARNING, logger="urllib3")
    return lambda: [r.getMessage() for r in caplog.records if "pool is full" in r.getMessage()]


def staged(store: Store, tmp_path: Path) -> tuple[Publication, dict[str, bytes]]:
    """Data files and sidecars uploaded through a Staging batch, and their commit."""
    staging = Staging(store, EXPORT, tmp_path / "scratch")
    staging.begin()
    pub = Publication(EXPORT, "2025-09-16T14:30:22Z")
    expected: dict[str, bytes] = {}
    tops: dict[str, list[dict[str, Any]]] = {}
    with staging.batch() as uploads:
        for i in range(FILES):
            path = staging.new_path("parquet")
            data = os.urandom(200 + i)
            path.write_bytes(data)
            side = json.dumps({"name": path.name}).encode()
            top = f"out/2025/09/16/{i % 3:02d}"
            final = f"{top}/{i % 4}/t_{i:03d}.parquet"
            pub.moves.append((staging.put(path, uploads), final))
            pub.moves.append(
                (staging.put_bytes(path.name + ".metadata.json", side, uploads), final + ".m")
            )
            expected[final], expected[final + ".m"] = data, side
            tops.setdefault(top, []).append({"name": final[len(top) + 1 :]})
    for top, files in sorted(tops.items()):
        pub.manifests.append((f"{top}/manifest_20250916_143022.json", {"files": files}))
        pub.markers.append(MarkerUpdate(f"{top}/", "manifest_20250916_143022.json", len(files)))
    return pub, expected


def retrying(store: Store) -> RetryingStore:
    return RetryingStore(store, Retrier(RetryPolicy(max_attempts=3, initial_delay_seconds=0.1)))


def test_commit_on_threads(
    cloud_store: Store, tmp_path: Path, pool_warnings: Callable[[], list[str]]
) -> None:
    store = retrying(cloud_store)
    assert commit.io_workers(store) == batch.REMOTE_WORKERS
    pub, expected = staged(store, tmp_path)
    prefix = layout.staging_prefix(EXPORT)
    assert (
        len([o for o in store.list(prefix) if o.key != prefix + layout.STAGING_OWNER]) == 2 * FILES
    )
    steps: list[str] = []

    commit.publish(store, pub, on_step=steps.append)

    for key, data in expected.items():
        got = store.get(key)
        assert hashlib.sha256(got).hexdigest() == hashlib.sha256(data).hexdigest(), key
    assert len([o for o in store.list("out/") if o.key.endswith(".parquet")]) == FILES
    assert not list(store.list("_staging/"))
    assert steps.count("move") == 2 * FILES and steps.count("marker") == 3
    for marker in pub.markers:
        doc = json.loads(store.get(marker.folder_key + layout.SUCCESS))
        assert doc["manifests"] == [marker.manifest]
    assert pool_warnings() == []


def test_a_failed_move_fails_the_commit(
    cloud_store: Store, tmp_path: Path, pool_warnings: Callable[[], list[str]]
) -> None:
    store = retrying(cloud_store)
    pub, expected = staged(store, tmp_path)
    lost_src, _ = pub.moves[33]
    lost = cloud_store.get(lost_src)
    cloud_store.delete(lost_src)  # behind the export's back
    steps: list[str] = []

    with pytest.raises(NotFound) as info:
        commit.publish(store, pub, on_step=steps.append)
    assert lost_src in str(info.value)
    assert "marker" not in steps
    assert not [o.key for o in store.list("out/") if o.key.endswith(layout.SUCCESS)]

    # the object is back and the exporter gone: recovery rolls the commit forward
    cloud_store.put_bytes(lost_src, lost)
    cloud_store.delete(layout.staging_prefix(EXPORT) + layout.STAGING_OWNER)
    assert [(r.export_id, r.outcome) for r in commit.recover(store)] == [(EXPORT, "rolled forward")]
    for key, data in expected.items():
        assert store.get(key) == data, key
    assert not list(store.list("_staging/"))
    assert len([o for o in store.list("out/") if o.key.endswith(layout.SUCCESS)]) == 3
    assert pool_warnings() == []


def test_rolled_back_staging_is_deleted_on_threads(cloud_store: Store, tmp_path: Path) -> None:
    store = retrying(cloud_store)
    staged(store, tmp_path)
    Staging(store, EXPORT, tmp_path / "scratch").discard()
    assert not list(store.list("_staging/"))
