"""The hashing sink and how current stored_bytes stays while a file is written."""

from __future__ import annotations

import contextlib
import hashlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from dpexport import formats
from dpexport.config.spec import CODECS_BY_FORMAT, CsvOptions, JsonlOptions, ParquetOptions
from dpexport.formats import HashingSink, open_writer


def test_hashing_sink(tmp_path: Path) -> None:
    sink = HashingSink(tmp_path / "f")
    chunks = [os.urandom(n) for n in (0, 1, 5000, 3 * 1024 * 1024)]
    for c in chunks:
        sink.write(c)
    sink.close()
    data = b"".join(chunks)
    assert (tmp_path / "f").read_bytes() == data
    assert sink.bytes_written == len(data)
    assert sink.hexdigest() == hashlib.sha256(data).hexdigest()


def table(rows: int) -> pa.Table:
    return pa.table(
        {
            "id": pa.array(range(rows), pa.int64()),
            "txt": pa.array([os.urandom(24).hex() for _ in range(rows)]),
        }
    )


@pytest.mark.parametrize(
    ("fmt", "codec"), [(f, c) for f, cs in CODECS_BY_FORMAT.items() for c in cs]
)
def test_stored_bytes_tracks_size(tmp_path: Path, fmt: str, codec: str) -> None:
    data = table(200_000)  # ~12 MB of text, random so it does not compress away
    path = tmp_path / "x"
    writer = open_writer(
        path,
        data.schema,
        fmt,
        codec,
        parquet=ParquetOptions(row_group_size=2 * 1024 * 1024),
        jsonl=JsonlOptions(),
        csv=CsvOptions(),
    )
    seen = []
    for batch in data.to_batches(max_chunksize=20_000):
        writer.write_batch(batch)
        seen.append(writer.stored_bytes)
    written = writer.close()
    if fmt != "PARQUET":  # Parquet's estimate of the pending group may step down
        assert seen == sorted(seen)
    assert seen[len(seen) // 2] > 0
    # While open, stored_bytes lags the final size by no more than the codec's buffers
    # (brotli's window is the largest); Parquet adds an estimate of the pending group.
    lag = written.stored_bytes - seen[-1]
    assert abs(lag) < 5 * 1024 * 1024
    assert written.stored_bytes == path.stat().st_size


@pytest.mark.parametrize("codec", CODECS_BY_FORMAT["CSV"])
@pytest.mark.parametrize("encoding", ["UTF-8", "ISO-8859-1"])
def test_reading_text_closes_arrows_streams_on_this_thread_and_not_the_callers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, codec: str, encoding: str
) -> None:
    """Arrow's CSV reader reads a Python file on its IO threads; a Python file still open
    when the reader is dropped can be let go of on one of them, which takes the GIL, and
    at interpreter exit that aborts the process. Every Arrow stream over a Python file is
    closed before the read returns; the stream the caller gave stays open."""
    path = tmp_path / "f.csv"
    options = CsvOptions(encoding=encoding)
    writer = open_writer(
        path,
        table(300).schema,
        "CSV",
        codec,
        parquet=ParquetOptions(),
        jsonl=JsonlOptions(),
        csv=options,
    )
    writer.write_batch(table(300).to_batches()[0])
    writer.close()
    built: list[pa.NativeFile] = []
    real = formats.decompressing

    def spy(*args: Any) -> pa.NativeFile:
        built.append(real(*args))
        return built[-1]

    monkeypatch.setattr(formats, "decompressing", spy)
    with path.open("rb") as given:
        assert formats.count_rows(given, "CSV", codec, csv=options) == 300
        assert not given.closed
    with path.open("rb") as given:
        assert formats.read_file(given, "CSV", codec, csv=options).num_rows == 300
        assert not given.closed
    assert len(built) == 2
    assert all(stream.closed for stream in built)


def test_reading_parquet_from_a_stream_lets_go_of_it_and_leaves_it_open(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "f.parquet"
    writer = open_writer(
        path, table(300).schema, "PARQUET", "SNAPPY", parquet=ParquetOptions(),
        jsonl=JsonlOptions(), csv=CsvOptions(),
    )  # fmt: skip
    writer.write_batch(table(300).to_batches()[0])
    writer.close()
    lent: list[pa.NativeFile] = []
    real = formats.lent_to_arrow

    @contextlib.contextmanager
    def spy(stream: Any) -> Iterator[pa.NativeFile]:
        with real(stream) as arrow:
            lent.append(arrow)
            yield arrow

    monkeypatch.setattr(formats, "lent_to_arrow", spy)
    with path.open("rb") as given:
        assert formats.count_rows(given, "PARQUET", "SNAPPY") == 300
        assert formats.read_file(given, "PARQUET", "SNAPPY").num_rows == 300
        assert not given.closed
    assert len(lent) == 2
    assert all(arrow.closed for arrow in lent)
