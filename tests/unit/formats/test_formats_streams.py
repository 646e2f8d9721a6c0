"""The hashing sink and how current stored_bytes stays while a file is written."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pyarrow as pa
import pytest

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
