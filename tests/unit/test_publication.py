"""Per-file publication pieces: sidecar bytes and staging of small objects."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pytest

from dpexport.commit import Staging
from dpexport.manifest import ExportFacts, FileEntry, dumps, sidecar_bytes, sidecar_document
from dpexport.storage.local import LocalStore

AT = datetime(2025, 9, 16, 14, 30, 22, tzinfo=UTC)


def facts(schema: pa.Schema) -> ExportFacts:
    return ExportFacts(
        export_id="exp_20250916_143022_7f3b4e5a",
        export_timestamp=AT,
        logical_time=AT,
        project="p",
        dataset="d",
        table="t",
        format="PARQUET",
        compression="ZSTD",
        mode="APPEND",
        schema=schema,
        schema_version="v1",
    )


ODD_SCHEMA = pa.schema(
    [
        ("id", pa.int64()),
        ('qu"ote\\', pa.string()),
        ("ünï 中文 😀", pa.float64()),
        ("\x01", pa.bool_()),
    ]
)


@pytest.mark.parametrize(
    "name",
    [
        "2025/09/16/14/07/engine_temp/t_20250916_143022_7f3b4e5a.parquet.zst",
        't_"odd"\\ ünï 😀\x1f.parquet',
        "plain.parquet",
    ],
)
def test_sidecar_bytes_are_the_documents_dump(name: str) -> None:
    f = facts(ODD_SCHEMA)
    for rows, size in ((0, 0), (17, 8800), (2**40, 2**50)):
        entry = FileEntry(name, rows, size, "sha256:" + "ab" * 32, 123)
        assert sidecar_bytes(f, entry, None) == dumps(sidecar_document(f, entry, None))


def test_sidecar_bytes_with_encryption_block() -> None:
    f = facts(ODD_SCHEMA)
    entry = FileEntry("a.parquet.enc", 3, 99, "sha256:00")
    block = {"algorithm": "AES-256-GCM", "key": "projects/x/keys/k", "nonce": "AAEC"}
    assert sidecar_bytes(f, entry, block) == dumps(sidecar_document(f, entry, block))


def test_staging_puts_small_objects_in_the_local_store(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "bucket")
    staging = Staging(store, "exp_1", tmp_path / "scratch")
    staging.begin()
    key = staging.put_bytes("part-00001.parquet.metadata.json", b'{"a": 1}\n')
    assert key == "_staging/exp_1/part-00001.parquet.metadata.json"
    assert store.get(key) == b'{"a": 1}\n'
    staging.discard()
    assert store.head(key) is None


def test_staging_uploads_small_objects_to_a_remote_store(tmp_path: Path) -> None:
    """A store without a staging folder of its own (as a cloud bucket) gets ``put_bytes``."""

    class NoStagingDir(LocalStore):
        def staging_dir(self) -> Path | None:
            return None

    store = NoStagingDir(tmp_path / "bucket")
    staging = Staging(store, "exp_2", tmp_path / "scratch")
    staging.begin()
    key = staging.put_bytes("x.metadata.json", b"{}\n")
    assert store.get(key) == b"{}\n"
    assert not (tmp_path / "scratch" / "exp_2" / "x.metadata.json").exists()
