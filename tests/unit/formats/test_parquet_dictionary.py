"""PLAIN_DICTIONARY falls back to PLAIN per row group where the first page's worth of a
column shows the dictionary does not pay (formats.parquet_dictionary), as parquet-mr does:
read back from the footers, with the rows intact."""

from __future__ import annotations

import decimal
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from dpexport.config.spec import ParquetOptions
from dpexport.formats.parquet import ParquetWriter
from dpexport.formats.parquet_dictionary import (
    SAMPLE_ROWS,
    dictionary_pays,
    row_group_dictionary,
)

N = SAMPLE_ROWS + 5_000


@pytest.mark.parametrize(
    ("values", "pays"),
    [
        (pa.array([f"{i:036d}" for i in range(N)]), False),  # unique ids
        (pa.array([f"sensor-{i % 12}" for i in range(N)]), True),
        (pa.array([i * 0.37 for i in range(N)]), False),  # measurements
        (pa.array([float(i % 500) for i in range(N)]), True),
        (pa.array(range(N), pa.int64()), False),
        (pa.array([i % 100 for i in range(N)], pa.int16()), True),
        (pa.array([decimal.Decimal(i) / 100 for i in range(N)], pa.decimal128(12, 2)), False),
        (pa.array([None] * N, pa.string()), True),  # nothing to judge: as configured
        # 3 values in a 4-byte type: 2-bit indices and a 12-byte dictionary pay
        (pa.array([i % 3 for i in range(N)], pa.int32()), True),
    ],
    ids=["uuid", "repeated", "doubles", "few-doubles", "ids", "int16", "decimal", "nulls", "3"],
)
def test_dictionary_pays_on_the_first_pages_worth(values: pa.Array, pays: bool) -> None:
    assert dictionary_pays(pa.chunked_array([values])) is pays


def test_only_the_first_pages_worth_is_judged() -> None:
    """Repeated values in the first SAMPLE_ROWS rows, unique after: the dictionary pays
    on the sample, so the column keeps it (the rule looks at the first page only)."""
    values = [f"r{i % 10}" for i in range(SAMPLE_ROWS)] + [f"u{i}" for i in range(50_000)]
    assert dictionary_pays(pa.chunked_array([values])) is True


def test_row_group_dictionary_keeps_the_configuration_where_nothing_changes() -> None:
    table = pa.table(
        {
            "id": pa.array(range(N), pa.int64()),
            "kind": [f"k{i % 7}" for i in range(N)],
            "point": pa.array([{"x": i} for i in range(N)]),  # nested: Arrow decides
            "flag": [i % 2 == 0 for i in range(N)],
        }
    )
    paths = [["id"], ["kind"], ["point.x"], ["flag"]]
    assert row_group_dictionary(table, True, paths) == ["kind", "point.x", "flag"]
    assert row_group_dictionary(table, ["id", "kind"], paths) == ["kind"]
    assert row_group_dictionary(table, False, paths) is False
    # a row group of one page's worth of rows is left as configured
    assert row_group_dictionary(table.slice(0, SAMPLE_ROWS), True, paths) is True
    assert row_group_dictionary(table.select([1, 2, 3]), True, paths[1:]) is True


def _dictionary_columns(path: Path) -> list[list[str]]:
    meta = pq.ParquetFile(path).metadata
    return [
        [
            meta.row_group(g).column(c).path_in_schema
            for c in range(meta.num_columns)
            if meta.row_group(g).column(c).has_dictionary_page
        ]
        for g in range(meta.num_row_groups)
    ]


def _telemetry(rows: int) -> pa.Table:
    """``seq`` is unique in the first 60,000 rows, repeats in the next 60,000, and so on."""
    return pa.table(
        {
            "reading_id": [f"{i * 2654435761 % 2**32:08x}-{i:027d}" for i in range(rows)],
            "kind": [f"sensor-{i % 12}" for i in range(rows)],
            "value": [i * 0.37 for i in range(rows)],
            "seq": pa.array([i if (i // 60_000) % 2 == 0 else i % 9 for i in range(rows)]),
        }
    )


@pytest.mark.parametrize("rows", [30_000, 3 * 60_000 + 10])  # in memory; spliced groups
def test_each_row_group_is_judged_on_its_own(tmp_path: Path, rows: int) -> None:
    """Row groups of 60,000 rows: ``seq`` gets a dictionary in odd groups only, the ids
    and measurements in none, ``kind`` in all; the last group of 10 rows (one page)
    keeps the configured dictionary on every column. The values read back unchanged,
    and the file is smaller than Arrow's with a dictionary tried on every column."""
    table = _telemetry(rows)
    options = ParquetOptions(row_group_size=_telemetry(60_000).nbytes)
    writer = ParquetWriter(tmp_path / "t.parquet", table.schema, "SNAPPY", options=options)
    for batch in table.to_batches(max_chunksize=6_000):
        writer.write_batch(batch)
    written = writer.close()
    assert written.rows == rows
    judged = [["kind", "seq"] if g % 2 else ["kind"] for g in range(rows // 60_000 or 1)]
    tail = [table.column_names] if rows % 60_000 == 10 else []
    assert _dictionary_columns(tmp_path / "t.parquet") == judged + tail
    meta = pq.ParquetFile(tmp_path / "t.parquet").metadata
    assert set(meta.row_group(0).column(0).encodings) == {"PLAIN", "RLE"}
    assert pq.read_table(tmp_path / "t.parquet").equals(table)
    everything = tmp_path / "arrow.parquet"
    pq.write_table(table, everything, row_group_size=60_000, compression="snappy")
    assert written.stored_bytes < everything.stat().st_size
