"""The page headers of a Parquet column chunk, for tests that check page sizes.

Read with dpexport's Thrift compact decoder (:mod:`dpexport.formats.thrift_compact`,
tested against pyarrow's own footers in ``tests/unit/formats/test_parquet_splice.py``).
PageHeader fields: 1 type (0 DATA_PAGE, 2 DICTIONARY_PAGE, 3 DATA_PAGE_V2), 2
uncompressed size, 3 compressed size.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from dpexport.formats import thrift_compact

#: page types of data pages (v1, v2)
DATA_PAGES = (0, 3)


def pages(path: Path, chunk: Any) -> list[tuple[int, int]]:
    """(type, uncompressed size) of each page of ``chunk`` (pyarrow's
    ``ColumnChunkMetaData``) of the file at ``path``, in file order."""
    start = chunk.data_page_offset
    if chunk.has_dictionary_page and chunk.dictionary_page_offset:
        start = min(start, chunk.dictionary_page_offset)
    with path.open("rb") as f:
        f.seek(start)
        data = f.read(chunk.total_compressed_size)
    out, pos = [], 0
    while pos < len(data):
        header, pos = thrift_compact.decode_at(data, pos)
        fields = {fid: value for fid, _, value in header}
        out.append((fields[1], fields[2]))
        pos += fields[3]
    return out
