"""A Parquet file whose row groups' columns were encoded on several threads and spliced
(formats.parquet_splice) is the file pyarrow's own writer makes from the same batches,
byte for byte, whatever the number of parts, the types, codec, version and encodings."""

from __future__ import annotations

import decimal
from datetime import UTC, date, datetime
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from dpexport.config.spec import ParquetOptions
from dpexport.formats import parquet_splice, thrift_compact
from dpexport.formats.parquet import ParquetWriter, writer_properties


def telemetry(rows: int) -> pa.Table:
    """Columns like the benchmark's: unique strings (the dictionary overflows to PLAIN),
    repeated ones, NULLs, doubles, a time zone, a date, a boolean, a decimal."""
    return pa.table(
        {
            "reading_id": pa.array([f"{i * 2654435761 % 2**32:08x}-{i:012d}" for i in range(rows)]),
            "equipment_id": pa.array([i % 2000 for i in range(rows)], pa.int64()),
            "sensor_type": pa.array([("rpm", "temp", "oil")[i % 3] for i in range(rows)]),
            "created_at": pa.array(
                [datetime(2025, 9, 16, tzinfo=UTC)] * rows, pa.timestamp("us", "UTC")
            ),
            "reading_date": pa.array([date(2025, 9, 16)] * rows),
            "value": pa.array([i * 0.37 for i in range(rows)]),
            "error_code": pa.array([None if i % 10 else f"E{i % 40}" for i in range(rows)]),
            "is_anomaly": pa.array([i % 97 == 0 for i in range(rows)]),
            "amount": pa.array(
                [decimal.Decimal(i) / 100 for i in range(rows)], pa.decimal128(12, 2)
            ),
        }
    )


def nested(rows: int) -> pa.Table:
    """Fields of several Parquet columns each: a part holds whole fields."""
    return pa.table(
        {
            "id": pa.array(range(rows), pa.int64()),
            "point": pa.array(
                [{"x": i, "y": None if i % 5 == 0 else str(i)} for i in range(rows)],
                pa.struct([("x", pa.int32()), ("y", pa.string())]),
            ),
            "tags": pa.array([[f"t{j}" for j in range(i % 4)] for i in range(rows)]),
            "attrs": pa.array(
                [[("k", i)] if i % 2 else [] for i in range(rows)], pa.map_(pa.string(), pa.int64())
            ),
            "note": pa.array([f"n{i % 13}" for i in range(rows)]),
        }
    )


def spliced_and_reference(
    tmp_path: Path, table: pa.Table, codec: str, options: ParquetOptions, chunk: int
) -> tuple[bytes, bytes]:
    """The file dpexport's writer makes of ``table`` in batches of ``chunk`` rows, and
    the one ``pq.ParquetWriter`` makes of the same batches in the same row groups."""
    source = pa.Table.from_batches(table.to_batches(max_chunksize=chunk))
    path = tmp_path / "spliced.parquet"
    writer = ParquetWriter(path, table.schema, codec, options=options)
    for batch in source.to_batches():
        writer.write_batch(batch)
    written = writer.close()
    meta = pq.ParquetFile(path).metadata
    assert meta.num_row_groups >= 2, "the sizes must make several row groups"
    reference = pa.BufferOutputStream()
    props = writer_properties(table.schema, codec, options)
    with pq.ParquetWriter(reference, table.schema, **props) as arrow:
        start = 0
        for i in range(meta.num_row_groups):
            rows = meta.row_group(i).num_rows
            arrow.write_table(source.slice(start, rows), row_group_size=rows)
            start += rows
    data = path.read_bytes()
    assert written.stored_bytes == len(data)
    return data, reference.getvalue().to_pybytes()


CASES = {
    "telemetry SNAPPY": (telemetry, "SNAPPY", ParquetOptions(row_group_size=256 * 1024)),
    "telemetry ZSTD, version 1.0": (
        telemetry,
        "ZSTD",
        ParquetOptions(version="1.0", row_group_size=256 * 1024, compression_level=3),
    ),
    "telemetry PLAIN, small pages": (
        telemetry,
        "SNAPPY",
        ParquetOptions(dictionary=False, row_group_size=256 * 1024, page_size=8 * 1024),
    ),
    "telemetry column encodings": (
        telemetry,
        "GZIP",
        ParquetOptions(
            row_group_size=256 * 1024,
            column_encoding={"equipment_id": "DELTA_BINARY_PACKED", "value": "BYTE_STREAM_SPLIT"},
        ),
    ),
    "nested": (nested, "SNAPPY", ParquetOptions(row_group_size=128 * 1024)),
}


@pytest.mark.parametrize("parts", [1, 2, 3, 7])
@pytest.mark.parametrize("case", sorted(CASES))
def test_spliced_file_is_pyarrows_file(
    case: str, parts: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    make, codec, options = CASES[case]
    monkeypatch.setattr(parquet_splice, "workers", lambda: parts)
    table = make(20_000)
    data, reference = spliced_and_reference(tmp_path, table, codec, options, 3_000)
    assert data == reference
    assert pq.read_table(tmp_path / "spliced.parquet").equals(table)
    # and another reader than pyarrow
    with duckdb.connect() as con:
        rows = con.execute(f"SELECT count(*) FROM '{tmp_path / 'spliced.parquet'}'").fetchall()
    assert rows == [(20_000,)]


def test_parts_are_consecutive_fields_of_about_equal_bytes() -> None:
    table = pa.table({name: pa.array([0] * 1000, pa.int64()) for name in "abcdef"})
    assert parquet_splice.ranges(table, 2) == [range(0, 3), range(3, 6)]
    assert parquet_splice.ranges(table, 3) == [range(0, 2), range(2, 4), range(4, 6)]
    assert parquet_splice.ranges(table, 10) == [range(i, i + 1) for i in range(6)]
    wide = pa.table({"big": pa.array(["x" * 100] * 1000), "a": [1] * 1000, "b": [2] * 1000})
    assert parquet_splice.ranges(wide, 2) == [range(0, 1), range(1, 3)]


def test_footer_reads_and_writes_back_byte_for_byte(tmp_path: Path) -> None:
    path = tmp_path / "t.parquet"
    pq.write_table(nested(3_000), path, row_group_size=1_000)
    data = path.read_bytes()
    size = int.from_bytes(data[-8:-4], "little")
    raw = data[-8 - size : -8]
    assert thrift_compact.encode(thrift_compact.decode(raw)) == raw


def test_a_part_with_a_page_index_is_refused() -> None:
    buffer = pa.BufferOutputStream()
    pq.write_table(telemetry(100), buffer, write_page_index=True)
    meta = parquet_splice.footer(buffer.getvalue())
    [group] = thrift_compact.get(meta, 4)[1]
    chunk = thrift_compact.get(group, 1)[1][0]
    with pytest.raises(ValueError, match="page index"):
        parquet_splice._move(chunk, 100)
