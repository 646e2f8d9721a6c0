"""Parquet file properties: version, codec, dictionary, encodings, byte-sized row groups."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from dpexport.config.spec import CsvOptions, JsonlOptions, ParquetOptions
from dpexport.errors import InvalidArgument
from dpexport.formats import count_rows, open_writer
from dpexport.formats.parquet import TINY_FILE_ROWS, ParquetWriter, writer_properties


def sample(rows: int) -> pa.Table:
    return pa.table(
        {
            "id": pa.array(range(rows), pa.int64()),
            "equipment_id": pa.array([i % 1000 for i in range(rows)], pa.int64()),
            "kind": pa.array([f"kind-{i % 7}" for i in range(rows)]),
            "ts": pa.array(range(rows), pa.timestamp("us")),
            "v": pa.array([i * 0.5 for i in range(rows)]),
        }
    )


def write(path: Path, table: pa.Table, codec: str, options: ParquetOptions, chunk: int) -> None:
    writer = open_writer(
        path,
        table.schema,
        "PARQUET",
        codec,
        parquet=options,
        jsonl=JsonlOptions(),
        csv=CsvOptions(),
    )
    for batch in table.to_batches(max_chunksize=chunk):
        writer.write_batch(batch)
    writer.close()


@pytest.mark.parametrize("codec", ["SNAPPY", "ZSTD", "GZIP", "BROTLI", "NONE"])
def test_metadata(tmp_path: Path, codec: str) -> None:
    table = sample(20_000)
    path = tmp_path / "x.parquet"
    options = ParquetOptions(column_encoding={"equipment_id": "DELTA_BINARY_PACKED"})
    write(path, table, codec, options, 5_000)
    meta = pq.ParquetFile(path).metadata
    assert meta.format_version == "2.6"
    assert meta.num_rows == 20_000
    rg = meta.row_group(0)
    cols = {rg.column(i).path_in_schema: rg.column(i) for i in range(rg.num_columns)}
    assert {c.compression for c in cols.values()} == {codec if codec != "NONE" else "UNCOMPRESSED"}
    assert cols["kind"].has_dictionary_page
    assert "DELTA_BINARY_PACKED" in cols["equipment_id"].encodings
    assert not cols["equipment_id"].has_dictionary_page
    assert cols["id"].statistics is not None and cols["id"].statistics.has_min_max
    assert count_rows(path, "PARQUET", codec) == 20_000


def test_wildcard_encoding(tmp_path: Path) -> None:
    path = tmp_path / "x.parquet"
    write(
        path,
        sample(1000),
        "ZSTD",
        ParquetOptions(column_encoding={"*": "DELTA_BINARY_PACKED"}),
        300,
    )
    rg = pq.ParquetFile(path).metadata.row_group(0)
    cols = {rg.column(i).path_in_schema: rg.column(i) for i in range(rg.num_columns)}
    for name in ("id", "equipment_id", "ts"):
        assert "DELTA_BINARY_PACKED" in cols[name].encodings
    assert cols["kind"].has_dictionary_page


def test_row_groups_sized_in_bytes(tmp_path: Path) -> None:
    table = sample(200_000)
    target = 1024 * 1024
    path = tmp_path / "x.parquet"
    write(path, table, "SNAPPY", ParquetOptions(row_group_size=target), 7_000)
    pf = pq.ParquetFile(path)
    groups = pf.metadata.num_row_groups
    assert groups == pytest.approx(table.nbytes / target, abs=1.5)
    for i in range(groups - 1):
        assert pf.read_row_group(i).nbytes == pytest.approx(target, rel=0.1)
    assert pq.read_table(path).equals(table)


def test_bad_encoding_is_invalid_argument(tmp_path: Path) -> None:
    with pytest.raises(InvalidArgument, match="ROT13"):
        write(
            tmp_path / "a", sample(10), "SNAPPY", ParquetOptions(column_encoding={"id": "ROT13"}), 5
        )
    with pytest.raises(InvalidArgument, match="nope"):
        write(
            tmp_path / "b",
            sample(10),
            "SNAPPY",
            ParquetOptions(column_encoding={"nope": "PLAIN"}),
            5,
        )
    with pytest.raises(InvalidArgument):
        opts = ParquetOptions(column_encoding={"kind": "DELTA_BINARY_PACKED"})
        write(tmp_path / "c", sample(10), "SNAPPY", opts, 5)


def flat_table(rows: int) -> pa.Table:
    """Flat columns only, with NULLs (validity bitmaps sliced at odd offsets)."""
    return pa.table(
        {
            "id": pa.array(range(rows), pa.int64()),
            "kind": pa.array([None if i % 5 == 0 else f"kind-{i % 7}" for i in range(rows)]),
            "v": pa.array([None if i % 3 == 0 else i * 0.25 for i in range(rows)]),
            "ok": pa.array([i % 2 == 0 for i in range(rows)]),
        }
    )


def open_parquet(
    path: Path, schema: pa.Schema, options: ParquetOptions, codec: str = "ZSTD"
) -> ParquetWriter:
    writer = open_writer(
        path, schema, "PARQUET", codec, parquet=options, jsonl=JsonlOptions(), csv=CsvOptions()
    )
    assert isinstance(writer, ParquetWriter)
    return writer


@pytest.mark.parametrize("codec", ["ZSTD", "SNAPPY", "NONE"])
@pytest.mark.parametrize("rows", [TINY_FILE_ROWS, TINY_FILE_ROWS + 1])
def test_small_file_same_bytes_as_arrow_writer(tmp_path: Path, codec: str, rows: int) -> None:
    """A file that never fills a row group is encoded in memory at close: the bytes are
    exactly those of Arrow's writer with the same properties (no dictionary pages up to
    ``TINY_FILE_ROWS`` rows), hashed and sized."""
    table = flat_table(rows)
    options = ParquetOptions()
    writer = open_parquet(tmp_path / "small.parquet", table.schema, options, codec)
    batches = table.to_batches(max_chunksize=37)  # zero-copy slices at odd offsets
    for batch in batches:
        writer.write_batch(batch)
    written = writer.close()

    ref = tmp_path / "ref.parquet"
    props = writer_properties(table.schema, codec, options)
    props["use_dictionary"] = rows > TINY_FILE_ROWS
    with pq.ParquetWriter(ref, table.schema, **props) as w:
        w.write_table(table, row_group_size=table.num_rows)
    data = written.path.read_bytes()
    assert data == ref.read_bytes()
    assert written.sha256 == hashlib.sha256(data).hexdigest()
    assert written.stored_bytes == len(data)
    assert written.rows == rows
    assert written.uncompressed_bytes == sum(b.nbytes for b in batches)


def dictionary_columns(path: Path) -> list[str]:
    meta = pq.read_metadata(path)
    return [
        meta.schema.column(i).name
        for i in range(meta.num_columns)
        if meta.row_group(0).column(i).has_dictionary_page
    ]


def test_tiny_file_has_no_dictionary_pages_unless_the_encoding_is_pinned(tmp_path: Path) -> None:
    """Up to ``TINY_FILE_ROWS`` rows a dictionary page per column costs more than it saves;
    a config that pins the encoding (``pinned``) still gets its dictionary."""
    table = flat_table(TINY_FILE_ROWS)
    files = {}
    for name, options in (
        ("free", ParquetOptions()),
        ("pinned", ParquetOptions(pinned=True)),
        ("large", ParquetOptions()),
    ):
        data = table if name != "large" else flat_table(TINY_FILE_ROWS + 1)
        writer = open_parquet(tmp_path / f"{name}.parquet", data.schema, options)
        writer.write_batch(data.to_batches()[0])
        files[name] = writer.close()
        assert pq.read_table(files[name].path).equals(data)
    assert dictionary_columns(files["free"].path) == []
    assert dictionary_columns(files["pinned"].path) == [
        "id",
        "kind",
        "v",
    ]  # booleans never have one
    assert dictionary_columns(files["large"].path) == ["id", "kind", "v"]  # booleans never have one


def test_close_async_writes_the_same_file(tmp_path: Path) -> None:
    table = flat_table(300)
    results = []
    for name, in_background in (("a.parquet", False), ("b.parquet", True)):
        writer = open_parquet(tmp_path / name, table.schema, ParquetOptions())
        for batch in table.to_batches(max_chunksize=50):
            writer.write_batch(batch)
        results.append(writer.close_async().result() if in_background else writer.close())
    a, b = results
    assert a.path.read_bytes() == b.path.read_bytes()
    assert (a.sha256, a.rows, a.stored_bytes, a.uncompressed_bytes) == (
        b.sha256,
        b.rows,
        b.stored_bytes,
        b.uncompressed_bytes,
    )


def test_empty_file_is_a_valid_parquet_file(tmp_path: Path) -> None:
    table = flat_table(1)
    written = open_parquet(tmp_path / "e.parquet", table.schema, ParquetOptions()).close()
    assert written.rows == 0
    assert pq.read_table(written.path).schema.equals(table.schema)
    assert written.sha256 == hashlib.sha256(written.path.read_bytes()).hexdigest()


def expected_row_groups(batches: list[pa.RecordBatch], target: int) -> list[int]:
    """Row group sizes when every batch's Arrow bytes are counted as it arrives (the
    writer's contract: ``write_batch`` flushes whole groups once ``target`` is reached)."""
    groups: list[int] = []
    pending_rows, pending_bytes = 0, 0
    for batch in batches:
        pending_rows += batch.num_rows
        pending_bytes += batch.nbytes
        if pending_bytes >= target:
            per_row = pending_bytes / pending_rows
            group_rows = max(1, int(target / per_row))
            full = pending_rows // group_rows * group_rows
            groups += [group_rows] * (full // group_rows)
            pending_rows -= full
            pending_bytes = int(pending_rows * per_row)
    if pending_rows:
        per_row = pending_bytes / pending_rows
        group_rows = max(1, int(target / per_row))
        groups += [group_rows] * (pending_rows // group_rows)
        if pending_rows % group_rows:
            groups.append(pending_rows % group_rows)
    return groups


def test_row_groups_same_when_bytes_are_counted_late(tmp_path: Path) -> None:
    """Batches are small slices of many small parents, so the cheap bound of their bytes
    stays under the row group size for a while: the groups are still cut exactly where
    counting every batch at once cuts them."""
    parents = [flat_table(2000).slice(i * 7, 1500).combine_chunks() for i in range(40)]
    batches = [
        b
        for t in parents
        for b in pa.Table.from_batches(t.to_batches()).to_batches(max_chunksize=130)
    ]
    target = 256 * 1024
    writer = open_parquet(
        tmp_path / "x.parquet", parents[0].schema, ParquetOptions(row_group_size=target)
    )
    for batch in batches:
        writer.write_batch(batch)
    written = writer.close()
    meta = pq.ParquetFile(written.path).metadata
    got = [meta.row_group(i).num_rows for i in range(meta.num_row_groups)]
    assert got == expected_row_groups(batches, target)
    assert len(got) > 3
    assert written.uncompressed_bytes == sum(b.nbytes for b in batches)
    assert pq.read_table(written.path).equals(pa.Table.from_batches(batches))
