"""One Parquet file from row groups whose columns are encoded on several threads.

pyarrow 26 encodes a row group on one thread, column after column: on the spec's
128MB row groups that thread was most of an export's time while the other core
scanned. A column chunk depends on its own values only (pages, dictionary,
statistics), so a row group's fields are cut into consecutive ranges of about equal
Arrow bytes, a few per encoder thread, and each range is encoded by
``pq.ParquetWriter`` as a file of its own: the first range straight into the file
(its body: no copy, no buffer), the others in memory (in pieces of 1 MiB), their
bodies appended after it in order. Each row group's columns get a dictionary where it
pays (:mod:`dpexport.formats.parquet_dictionary`). The footer is the one the same writer
writes for an empty file with every column, listing the parts' row groups with their
offsets moved to where their chunks now are. Ranges in schema order keep the chunks in
schema order, so the file is the one ``pq.ParquetWriter`` writes from the same rows,
byte for byte (``tests/unit/formats/test_parquet_splice.py``).

Footers are read and written by :mod:`dpexport.formats.thrift_compact`, every field
kept as Arrow wrote it but the offsets below. A page index or bloom filter, which
Arrow writes outside the column chunks, is never asked for (refused if present).
"""

from __future__ import annotations

import itertools
import struct
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from dpexport.formats import thrift_compact as tc
from dpexport.formats.parallel import shared_pool, workers
from dpexport.formats.parquet_dictionary import row_group_properties

MAGIC = b"PAR1"
#: writes the parts of one row group after its first into the file, waiting for them
#: (encoders run on the shared pool); one row group in flight per file
_POOL = ThreadPoolExecutor(max_workers=1, thread_name_prefix="dpexport-parquet")
#: Parts a row group is cut into, per encoder thread: the threads take them in turn,
#: so a costly column (a unique string's hashing, then its fallback to PLAIN) does not
#: leave the other thread idle. The benchmark's 600,000-row group, 320 ms of encoding
#: on two threads: 1 part a thread finished after 222 ms, 2 after 181 ms, 4 after 162
#: ms (ideal 160), but every part but the first is held until its turn (memory)
PARTS_PER_THREAD = 2
#: a part streaming into the file goes through a buffer of this size (fewer GIL hops)
_PART_BUFFER = 1024 * 1024

# field ids (parquet.thrift)
_FILE_NUM_ROWS, _FILE_ROW_GROUPS = 3, 4
_GROUP_COLUMNS, _GROUP_BYTES, _GROUP_ROWS, _GROUP_OFFSET, _GROUP_COMPRESSED = 1, 2, 3, 5, 6
_CHUNK_FILE_OFFSET, _CHUNK_META, _CHUNK_PAGE_INDEX = 2, 3, (4, 6)
_META_OFFSETS, _META_BLOOM = (9, 10, 11), 14  # data, index, dictionary page


def footer(data: Any) -> tc.Fields:
    """The FileMetaData of a whole Parquet file held in memory."""
    view = tc.as_bytes(data)
    if bytes(view[:4]) != MAGIC or bytes(view[-4:]) != MAGIC:
        raise ValueError("not a Parquet file")
    (size,) = struct.unpack("<I", view[-8:-4])
    return tc.decode(view[-8 - size : -8])


def ranges(table: pa.Table, parts: int) -> list[range]:
    """The table's fields cut into at most ``parts`` consecutive ranges of about equal
    Arrow bytes."""
    sizes = [table.column(i).nbytes for i in range(table.num_columns)]
    total = sum(sizes) or 1
    cuts, seen = [0], 0
    for index, size in enumerate(sizes[:-1]):
        seen += size
        if len(cuts) < parts and seen >= total * len(cuts) / parts:
            cuts.append(index + 1)
    cuts.append(len(sizes))
    return [range(a, b) for a, b in itertools.pairwise(cuts) if b > a]


def part_properties(props: dict[str, Any], paths: set[str]) -> dict[str, Any]:
    """The file's writer properties for a part holding the Parquet columns ``paths``:
    per-column settings (dictionary, encodings) of other columns left out, which
    pyarrow would refuse for a column the part does not have."""
    out = dict(props)
    dictionary = props.get("use_dictionary")
    if isinstance(dictionary, list):
        out["use_dictionary"] = [p for p in dictionary if p in paths]
    encodings = props.get("column_encoding")
    if encodings:
        out["column_encoding"] = {k: v for k, v in encodings.items() if k in paths} or None
    return out


class _PartSink:
    """Where ``pq.ParquetWriter`` writes a part that goes straight into the file: the
    leading magic is dropped, the body passed on to ``write``, and once
    :attr:`body` is cleared (the row group written) the footer is kept."""

    def __init__(self, write: Callable[[Any], None]) -> None:
        self._write = write
        self.position = 0
        self.body = True
        self.tail = bytearray()
        self.closed = False

    def write(self, data: Any) -> int:
        view = tc.as_bytes(data)
        skip = max(0, len(MAGIC) - self.position)
        self.position += len(view)
        if not self.body:
            self.tail += view
        elif len(view) > skip:
            self._write(view[skip:])
        return len(view)

    def tell(self) -> int:
        return self.position

    def flush(self) -> None:
        pass

    def close(self) -> None:
        self.closed = True


def _encode(
    table: pa.Table,
    props: dict[str, Any],
    write: Callable[[Any], None] | None,
    paths: list[list[str]],
) -> tuple[tc.Fields, int, list[pa.Buffer]]:
    """``table`` as a Parquet file of one row group whose body goes to ``write`` as it
    is encoded, or is kept (``write`` None: in pieces of up to 1 MiB, which need no
    copy to grow as one buffer would): its footer, body size and kept pieces.
    ``paths[i]`` are field ``i``'s Parquet columns; the dictionary is left out where it
    does not pay (judged here, on the encoder's thread)."""
    props = row_group_properties(props, table, paths)
    pieces: list[pa.Buffer] = []

    def keep(view: memoryview) -> None:  # in Arrow's memory pool, like the encoder's
        piece = pa.allocate_buffer(len(view))
        tc.as_bytes(piece)[:] = view
        pieces.append(piece)

    sink = _PartSink(write or keep)
    stream = pa.BufferedOutputStream(pa.PythonFile(sink, mode="w"), buffer_size=_PART_BUFFER)
    writer = pq.ParquetWriter(stream, table.schema, **props)
    try:
        writer.write_table(table, row_group_size=max(1, table.num_rows))
        stream.flush()
    finally:
        sink.body = False
        writer.close()
        stream.close()
    body = sink.position - len(sink.tail) - len(MAGIC)
    return footer(MAGIC + bytes(sink.tail)), body, pieces


def _move(chunk: tc.Fields, delta: int) -> None:
    """Move a column chunk's offsets by ``delta`` bytes (0 is unset: Arrow writes the
    deprecated ``ColumnChunk.file_offset`` as 0)."""
    meta = tc.get(chunk, _CHUNK_META)
    if any(tc.find(chunk, f) for f in _CHUNK_PAGE_INDEX) or tc.find(meta, _META_BLOOM):
        raise ValueError("a part with a page index or bloom filter cannot be spliced")
    for fields, fid in ((chunk, _CHUNK_FILE_OFFSET), *((meta, f) for f in _META_OFFSETS)):
        field = tc.find(fields, fid)
        if field is not None and field[2] > 0:
            field[2] += delta


class Splicer:
    """Writes one Parquet file through ``write`` (see module doc): :meth:`start` each
    row group, then :meth:`finish`. ``schema`` and ``props`` are the file's, as
    ``pq.ParquetWriter`` takes them; ``paths[i]`` the Parquet column paths of field
    ``i``; ``call(fn, *args)`` runs an encoding (translating its errors)."""

    def __init__(
        self,
        schema: pa.Schema,
        props: dict[str, Any],
        paths: list[list[str]],
        write: Callable[[Any], None],
        call: Callable[..., Any],
    ) -> None:
        empty = pa.BufferOutputStream()
        pq.ParquetWriter(empty, schema, **props).close()
        self._meta = footer(empty.getvalue())
        self._props = props
        self._paths = paths
        self._write = write
        self._call = call
        self._groups: list[tc.Fields] = []
        self._rows = 0
        self.position = len(MAGIC)
        write(MAGIC)

    def start(self, table: pa.Table) -> Future[None]:
        """Encode ``table`` as the next row group; done when it is in the file. Call it
        again only once the previous row group is done."""
        pool, call, parts = shared_pool(), self._call, []
        for number, fields in enumerate(ranges(table, PARTS_PER_THREAD * workers())):
            paths = [self._paths[i] for i in fields]
            own = part_properties(self._props, {p for leaves in paths for p in leaves})
            write = self._write if number == 0 else None
            part = table.select(list(fields))
            parts.append(pool.submit(call, _encode, part, own, write, paths))
        return _POOL.submit(self._append, parts)

    def _append(self, parts: list[Future[Any]]) -> None:
        """Write the parts after the first (already in the file) and list the row group."""
        group: tc.Fields = []
        columns: list[tc.Fields] = []
        total_bytes = compressed = 0
        for part in parts:
            meta, body, pieces = part.result()
            for piece in pieces:  # the first part's body is in the file already
                self._write(piece)
            own = tc.get(meta, _FILE_ROW_GROUPS)[1][0]
            group = group or own
            for chunk in tc.get(own, _GROUP_COLUMNS)[1]:
                _move(chunk, self.position - len(MAGIC))
                columns.append(chunk)
            total_bytes += tc.get(own, _GROUP_BYTES)
            compressed += tc.get(own, _GROUP_COMPRESSED)
            self.position += body
        tc.put(group, _GROUP_COLUMNS, tc.LIST, (tc.STRUCT, columns))
        tc.put(group, _GROUP_BYTES, tc.I64, total_bytes)
        tc.put(group, _GROUP_COMPRESSED, tc.I64, compressed)
        # the row group starts at its first column's dictionary page, or data page
        first = tc.get(columns[0], _CHUNK_META)
        dictionary = tc.find(first, _META_OFFSETS[2])
        start = tc.get(first, _META_OFFSETS[0])
        if dictionary is not None and dictionary[2] > 0:
            start = dictionary[2]
        tc.put(group, _GROUP_OFFSET, tc.I64, start)
        self._groups.append(group)
        self._rows += tc.get(group, _GROUP_ROWS)

    def finish(self) -> None:
        """Write the footer (the file is complete after it)."""
        tc.put(self._meta, _FILE_NUM_ROWS, tc.I64, self._rows)
        tc.put(self._meta, _FILE_ROW_GROUPS, tc.LIST, (tc.STRUCT, self._groups))
        data = tc.encode(self._meta)
        self._write(data + struct.pack("<I", len(data)) + MAGIC)
        self.position += len(data) + 8
