"""Per-file publication pieces: sidecar bytes, staging of small objects, re-reading staged
files before the commit, and moves into folders that do not exist yet."""

from __future__ import annotations

import dataclasses
import hashlib
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pytest

from dpexport.config import load_config_text
from dpexport.config.spec import CsvOptions, JsonlOptions, ParquetOptions, TableSpec
from dpexport.errors import ExportError, NotFound
from dpexport.formats import open_writer
from dpexport.formats.base import WrittenFile
from dpexport.publish.commit import Staging
from dpexport.publish.manifest import ExportFacts, FileEntry, dumps, sidecar_bytes, sidecar_document
from dpexport.publish.verification import verify_staged
from dpexport.storage.local import LocalStore, write_new_file
from dpexport.transforms.pipeline import Transforms

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


def spec_for(fmt: str = "PARQUET", compression: str = "ZSTD") -> TableSpec:
    config = load_config_text(
        f"""
project: p
environment: prod
buckets: {{exports: gs://b}}
exports:
  - source: d.t
    destination: gs://b/prod/d/t/
    format: {fmt}
    compression: {compression}
    mode: APPEND
"""
    )
    return config.table("t")


def staged_files(tmp_path: Path, count: int) -> list[WrittenFile]:
    table = pa.table({"id": pa.array(range(100), pa.int64()), "s": [f"v{i}" for i in range(100)]})
    out = []
    for i in range(count):
        writer = open_writer(
            tmp_path / f"part-{i:05d}.parquet.zst",
            table.schema,
            "PARQUET",
            "ZSTD",
            parquet=ParquetOptions(),
            jsonl=JsonlOptions(),
            csv=CsvOptions(),
        )
        writer.write_batch(table.slice(i, 50 + i).to_batches()[0])
        out.append(writer.close())
    return out


def transforms_for(spec: TableSpec, tmp_path: Path) -> Transforms:
    return Transforms.for_table(spec, tmp_path, store=LocalStore(tmp_path / "bucket"))


def test_verify_staged_accepts_what_was_written(tmp_path: Path) -> None:
    spec = spec_for()
    verify_staged(staged_files(tmp_path, 3), spec, transforms_for(spec, tmp_path))


def test_verify_staged_rereads_the_bytes(tmp_path: Path) -> None:
    """A changed byte, a wrong row count or a missing file is found by reading the file:
    the bytes by their CRC-32 taken while they were written, or, from a writer that took
    none, by their sha256; a CRC that does not match the file fails as well."""
    spec = spec_for()
    files = staged_files(tmp_path, 5)
    assert all(f.crc32 is not None for f in files)
    for changed in (files[0], files[3]):
        data = bytearray(changed.path.read_bytes())
        data[10] ^= 0xFF
        changed.path.write_bytes(bytes(data))
    files[3] = dataclasses.replace(files[3], crc32=None)
    files[4] = dataclasses.replace(files[4], crc32=(files[4].crc32 or 0) ^ 1)
    files[1] = WrittenFile(
        files[1].path,
        files[1].rows + 1,
        files[1].stored_bytes,
        files[1].uncompressed_bytes,
        files[1].sha256,
    )
    files[2].path.unlink()
    with pytest.raises(ExportError) as info:
        verify_staged(files, spec, transforms_for(spec, tmp_path))
    text = str(info.value)
    assert f"{files[0].path.name}: CRC-32 differs from the bytes written" in text
    assert f"{files[1].path.name}: 51 rows read back, 52 written" in text
    assert f"{files[2].path.name}: unreadable" in text
    assert f"{files[3].path.name}: sha256 differs from the bytes written" in text
    assert f"{files[4].path.name}: CRC-32 differs from the bytes written" in text
    assert text.count("differs") == 3


def test_verify_staged_a_footer_that_lies(tmp_path: Path) -> None:
    """Rows are counted from the stored footer: a file whose hash was recorded after it was
    truncated still fails, as unreadable."""
    spec = spec_for()
    [wf] = staged_files(tmp_path, 1)
    cut = wf.path.read_bytes()[:-20]
    wf.path.write_bytes(cut)
    forged = WrittenFile(wf.path, wf.rows, len(cut), 0, hashlib.sha256(cut).hexdigest())
    with pytest.raises(ExportError, match="unreadable"):
        verify_staged([forged], spec, transforms_for(spec, tmp_path))


def test_move_into_a_new_folder_and_a_missing_source(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "bucket")
    store.put_bytes("_staging/e/a", b"A")
    store.put_bytes("_staging/e/b", b"B")
    info = store.move("_staging/e/a", "out/2025/09/16/14/07/x/a")
    assert info.size == 1 and store.get("out/2025/09/16/14/07/x/a") == b"A"
    store.move("_staging/e/b", "out/2025/09/16/14/07/x/b")  # the folder exists now
    assert not (tmp_path / "bucket" / "_staging").exists()  # emptied staging is pruned
    with pytest.raises(NotFound):
        store.move("_staging/e/a", "elsewhere/deep/a")
    assert not (tmp_path / "bucket" / "elsewhere").exists()


def test_write_new_file_replaces_content(tmp_path: Path) -> None:
    path = tmp_path / "f.bin"
    write_new_file(path, b"a much longer first content")
    write_new_file(path, pa.py_buffer(b"short"))
    assert path.read_bytes() == b"short"


def test_verify_staged_on_threads_lists_problems_in_file_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Files are checked on several threads; the problems come back in the files' order,
    the same report as one thread gives."""
    import dpexport.publish.verification as verification

    spec = spec_for()
    files = staged_files(tmp_path, 40)
    data = bytearray(files[3].path.read_bytes())
    data[10] ^= 0xFF
    files[3].path.write_bytes(bytes(data))
    f = files[17]
    files[17] = WrittenFile(f.path, f.rows + 2, f.stored_bytes, f.uncompressed_bytes, f.sha256)
    files[38].path.unlink()
    f = files[39]
    files[39] = WrittenFile(f.path, f.rows, f.stored_bytes + 1, f.uncompressed_bytes, f.sha256)
    messages = []
    for threads in (4, 1):
        monkeypatch.setattr(verification, "workers", lambda threads=threads: threads)
        with pytest.raises(ExportError) as info:
            verify_staged(files, spec, transforms_for(spec, tmp_path))
        messages.append(str(info.value))
    assert messages[0] == messages[1]
    names = [files[i].path.name for i in (3, 17, 38, 39)]
    positions = [messages[0].index(f"{name}: ") for name in names]
    assert positions == sorted(positions)
    assert f"{names[1]}: 67 rows read back, 69 written" in messages[0]
    assert f"{names[3]}: size" in messages[0]


def _snapshot(store: LocalStore, folder: str, table: str, name: str) -> None:
    store.put_bytes(f"{folder}{name}", b"data")
    manifest = {"source": {"dataset": "d", "table": table}, "files": [{"name": name}]}
    store.put_bytes(f"{folder}manifest_20250915_000000.json", dumps(manifest))
    store.put_bytes(f"{folder}SUCCESS", b"{}")


def _spec(table: str) -> TableSpec:
    from dpexport.config.spec import Partitioning

    return TableSpec("d", table, "gs://bk/ds/", "PARQUET", "SNAPPY", "FULL_REFRESH", Partitioning())


def test_retirement_leaves_another_tables_objects(tmp_path: Path) -> None:
    """Issue 15, case 2: every manifest under the prefix was retired, whatever its
    table, so a FULL_REFRESH to ``ds/`` deleted the table exported to ``ds/t/``."""
    from dpexport.publish.publication import previous_snapshot

    store = LocalStore(tmp_path)
    _snapshot(store, "ds/2025/09/15/", "t2", "t2_old.parquet")
    _snapshot(store, "ds/t/2025/09/15/", "t", "t_keep.parquet")
    spec = _spec("t2")
    retired = previous_snapshot(store, spec, "ds/", set())
    assert "ds/2025/09/15/t2_old.parquet" in retired
    assert not [k for k in retired if k.startswith("ds/t/")]


def test_retirement_refuses_an_unreadable_manifest(tmp_path: Path) -> None:
    from dpexport.publish.publication import previous_snapshot

    store = LocalStore(tmp_path)
    store.put_bytes("ds/2025/09/15/manifest_20250915_000000.json", b"{torn")
    spec = _spec("t2")
    with pytest.raises(ExportError, match=r"manifest_20250915_000000\.json cannot be read"):
        previous_snapshot(store, spec, "ds/", set())
