"""Parquet file properties: version, codec, dictionary, encodings, byte-sized row groups."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from dpexport.config.spec import CsvOptions, JsonlOptions, ParquetOptions
from dpexport.errors import InvalidArgument
from dpexport.formats import count_rows, open_writer


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
