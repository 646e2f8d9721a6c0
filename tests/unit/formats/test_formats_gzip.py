"""The GZIP writer: one member, streamed and pre-deflated chunks mixed, read by anything."""

from __future__ import annotations

import gzip
import io
import os
import zlib

from dpexport.formats.streams import GzipMemberWriter, deflate_chunk


class _Keep(io.BytesIO):
    def close(self) -> None:  # keep the bytes readable after the writer closes
        pass


def test_streamed_and_chunks_make_one_member() -> None:
    parts = [os.urandom(3000).hex().encode(), b"x" * 100_000, b"", b"tail\n"]
    out = _Keep()
    writer = GzipMemberWriter(out)
    writer.write(parts[0])
    writer.write_deflated(*deflate_chunk(parts[1]))
    writer.write_deflated(*deflate_chunk(parts[2]))
    writer.write(parts[3])
    writer.close()
    data = out.getvalue()
    expected = b"".join(parts)
    assert gzip.decompress(data) == expected
    z = zlib.decompressobj(31)
    assert z.decompress(data) == expected and z.eof and not z.unused_data  # one member


def test_empty_file_is_valid_gzip() -> None:
    out = _Keep()
    GzipMemberWriter(out).close()
    assert gzip.decompress(out.getvalue()) == b""
