"""The JSONL/CSV settings of spec 2.2/2.3 round-trip the edge table in every codec, the
epoch forms are exact, and the config's Parquet level ranges are pyarrow's (issue 17)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pyarrow as pa
import pytest

from dpexport.config.models.formats import PARQUET_LEVELS, text_encoding, timestamp_format
from dpexport.config.spec import TIMESTAMP_FORMATS, CsvOptions, JsonlOptions, ParquetOptions
from dpexport.errors import InvalidArgument
from dpexport.formats import count_rows, open_writer, read_file
from dpexport.formats.text import epoch_text
from tests.unit.formats.formats_cases import assert_rows_equal, edge_table

JSONL_CASES = [
    JsonlOptions(encoding="UTF-16", timestamp_format="UNIX_EPOCH", null_representation="NULL!"),
    JsonlOptions(encoding="latin-1", newline_delimited=False, schema_included=True),
    JsonlOptions(null_representation="omit", timestamp_format="ISO8601", schema_included=True),
    JsonlOptions(encoding="utf-32", timestamp_format="UNIX_EPOCH_MICROS", newline_delimited=False),
    JsonlOptions(encoding="utf-8-sig", null_representation="<null>"),
]


def _write(path: Path, table: pa.Table, fmt: str, codec: str, **kw: object) -> None:
    writer = open_writer(
        path,
        table.schema,
        fmt,
        codec,
        parquet=ParquetOptions(),
        jsonl=kw.get("jsonl", JsonlOptions()),  # type: ignore[arg-type]
        csv=kw.get("csv", CsvOptions()),  # type: ignore[arg-type]
    )
    for batch in table.to_batches(max_chunksize=4):
        writer.write_batch(batch)
    writer.close()


def _latin1_table() -> pa.Table:
    """The edge table without what ISO-8859-1 cannot hold (the emoji, the CJK)."""
    table = edge_table()
    names = [s if s is None or s.isascii() else "ünï" for s in table.column("s").to_pylist()]
    return table.set_column(0, "s", pa.array(names, pa.string()))


@pytest.mark.parametrize("codec", ["NONE", "GZIP", "ZSTD"])
@pytest.mark.parametrize("index", range(len(JSONL_CASES)))
def test_jsonl_settings_round_trip(tmp_path: Path, index: int, codec: str) -> None:
    options = JSONL_CASES[index]
    table = _latin1_table() if options.encoding == "latin-1" else edge_table()
    path = tmp_path / "f.jsonl"
    _write(path, table, "JSONL", codec, jsonl=options)
    assert count_rows(path, "JSONL", codec, jsonl=options) == table.num_rows
    back = read_file(path, "JSONL", codec, jsonl=options, schema=table.schema)
    assert_rows_equal(back.to_pylist(), table.to_pylist())
    assert read_file(path, "JSONL", codec, jsonl=options).num_rows == table.num_rows


@pytest.mark.parametrize("encoding", ["UTF-16", "utf-16-be", "ISO-8859-1", "cp1252"])
def test_csv_encodings_round_trip(tmp_path: Path, encoding: str) -> None:
    table = edge_table() if encoding.lower().startswith("utf") else _latin1_table()
    options = CsvOptions(encoding=encoding)
    path = tmp_path / "f.csv"
    _write(path, table, "CSV", "GZIP", csv=options)
    assert count_rows(path, "CSV", "GZIP", csv=options) == table.num_rows
    back = read_file(path, "CSV", "GZIP", csv=options, schema=table.schema)
    assert back.column("s").to_pylist() == table.column("s").to_pylist()


def test_a_column_name_the_encoding_cannot_hold(tmp_path: Path) -> None:
    table = pa.table({"straße": [1]})
    with pytest.raises(InvalidArgument, match="column 'straße', its header: its name holds 'ß'"):
        _write(tmp_path / "f.csv", table, "CSV", "NONE", csv=CsvOptions(encoding="ascii"))


def test_epoch_text_is_exact_and_rounds_down() -> None:
    values = [
        dt.datetime(2025, 9, 16, 14, 30, 22, 123456),
        dt.datetime(1969, 12, 31, 23, 59, 59, 1),
        None,
    ]
    arr = pa.array(values, pa.timestamp("us"))
    assert epoch_text(arr, "UNIX_EPOCH").to_pylist() == ["1758033022.123456", "-0.999999", None]
    assert epoch_text(arr, "UNIX_EPOCH_MILLIS").to_pylist() == ["1758033022123", "-1000", None]
    assert epoch_text(arr, "UNIX_EPOCH_NANOS").to_pylist() == [
        "1758033022123456000",
        "-999999000",
        None,
    ]
    seconds = pa.array([dt.datetime(1970, 1, 1, 0, 0, 1)], pa.timestamp("s", "UTC"))
    assert epoch_text(seconds, "UNIX_EPOCH").to_pylist() == ["1"]


def test_level_ranges_are_pyarrows() -> None:
    for codec, (low, high) in PARQUET_LEVELS.items():
        name = codec.lower()
        assert pa.Codec.minimum_compression_level(name) == low
        assert pa.Codec.maximum_compression_level(name) == high
    assert not pa.Codec.supports_compression_level("snappy")


def test_config_spellings() -> None:
    assert timestamp_format("rfc 3339") == "RFC3339"
    assert timestamp_format("unix-epoch-millis") == "UNIX_EPOCH_MILLIS"
    assert timestamp_format("UNIX_MILLIS") == "UNIX_EPOCH_MILLIS"
    assert timestamp_format("sometimes") == "sometimes"
    assert set(TIMESTAMP_FORMATS) == {timestamp_format(f) for f in TIMESTAMP_FORMATS}
    assert text_encoding("ISO-8859-1") == "iso8859-1"
    assert text_encoding("UTF16") == "utf-16"
    assert text_encoding("base64") is None  # a codec, not a text encoding
    assert text_encoding("idna") is None
    assert text_encoding("UTF-17") is None


def test_an_epoch_beyond_64_bits_names_its_row(tmp_path: Path) -> None:
    table = pa.table({"ts": pa.array([dt.datetime(2025, 1, 1), dt.datetime(1, 1, 1)])})
    options = JsonlOptions(timestamp_format="UNIX_EPOCH_NANOS")
    with pytest.raises(InvalidArgument, match="column 'ts', row 2: the timestamp is beyond"):
        _write(tmp_path / "f.jsonl", table, "JSONL", "NONE", jsonl=options)


@pytest.mark.parametrize("index", range(len(JSONL_CASES)))
def test_an_empty_file_has_no_rows(tmp_path: Path, index: int) -> None:
    options = JSONL_CASES[index]
    table = edge_table().slice(0, 0)
    _write(tmp_path / "f.jsonl", table, "JSONL", "GZIP", jsonl=options)
    assert count_rows(tmp_path / "f.jsonl", "JSONL", "GZIP", jsonl=options) == 0
