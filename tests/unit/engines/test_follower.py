"""``duckdb_copy.Follower`` hashes files while another writer appends to them: the
digest is that of the whole file as stored, files that appear late are found, a file
whose first bytes are written last (as DuckDB's writer may) is hashed as it ends up,
and a file shorter than the bytes read (changed behind the reader's back) is an error."""

from __future__ import annotations

import hashlib
import os
import threading
import time
from pathlib import Path

import pytest

from dpexport.engines.duckdb_copy import Follower
from dpexport.publish.verification import sha256_of_file


def _append_slowly(path: Path, parts: list[bytes], gate: threading.Event) -> None:
    with open(path, "ab", buffering=0) as fh:
        for part in parts:
            fh.write(part)
            gate.wait(0.01)


def test_hashes_growing_and_late_files_exactly(tmp_path: Path) -> None:
    folder = tmp_path / "files"
    follower = Follower(folder)  # the folder does not exist yet: DuckDB makes it
    folder.mkdir()
    parts = [os.urandom(1 + i * 37_001) for i in range(40)]
    gate = threading.Event()
    writers = [
        threading.Thread(target=_append_slowly, args=(folder / f"data_{n}.parquet", parts, gate))
        for n in range(2)
    ]
    for w in writers:
        w.start()
    (folder / "ignored.txt").write_bytes(b"not a data file")
    for w in writers:
        w.join()
    (folder / "data_2.parquet").write_bytes(b"written after the others")
    hashed = follower.finish()
    whole = b"".join(parts)
    expect = (hashlib.sha256(whole).hexdigest(), len(whole))
    assert hashed[folder / "data_0.parquet"] == expect
    assert hashed[folder / "data_1.parquet"] == expect
    assert hashed[folder / "data_2.parquet"] == sha256_of_file(folder / "data_2.parquet")
    assert sorted(p.name for p in hashed) == ["data_0.parquet", "data_1.parquet", "data_2.parquet"]


def test_a_file_shorter_than_what_was_read_is_an_error(tmp_path: Path) -> None:
    folder = tmp_path / "files"
    folder.mkdir()
    path = folder / "data_0.parquet"
    path.write_bytes(b"x" * 100_000)
    follower = Follower(folder)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not follower._files:  # let it read the file
        time.sleep(0.01)
    time.sleep(0.1)
    os.truncate(path, 10)
    with pytest.raises(OSError, match="changed while it was read back"):
        follower.finish()


def test_bytes_written_after_later_ones_are_hashed_as_they_end_up(tmp_path: Path) -> None:
    """DuckDB 2.0.1 may write a file's magic and first page header after the pages that
    follow (under load, ~1 copy in 250 in a stress loop): the follower read zeros there,
    and the manifest got the sha256 of bytes the file never held. The CRC-32 of the file
    read again after the copy catches it, and the file is hashed again."""
    folder = tmp_path / "files"
    folder.mkdir()
    path = folder / "data_1.parquet"
    head, body = b"PAR1" + os.urandom(73), os.urandom(1_200_000)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT)
    os.pwrite(fd, body, len(head))  # a hole where the head goes
    follower = Follower(folder)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and (
        not follower._files or follower._files[path][2][0] < len(head) + len(body)
    ):  # until it has read the hole as zeros
        time.sleep(0.01)
    os.pwrite(fd, head, 0)
    os.close(fd)
    hashed = follower.finish()
    assert hashed[path] == (hashlib.sha256(head + body).hexdigest(), len(head + body))
