"""Data file formats: Parquet, JSONL and CSV, each in its codecs, optionally encrypted.

:func:`open_writer` opens one file for writing (see :class:`FormatWriter`);
:func:`read_file` reads back anything it writes (verification, tests) and
:func:`count_rows` counts rows as cheaply as the format allows, both given the
file's JSONL or CSV options (its text encoding, layout). Representation rules are in
:mod:`dpexport.formats.text` (JSONL, CSV), text encodings in
:mod:`dpexport.formats.encodings`, and the rest in the format modules.

Each format module (and what it needs: ``pyarrow.compute``, ``pyarrow.csv``,
``pyarrow.parquet``) loads when a file of that format is first written, read or
counted, so importing this package for :class:`WrittenFile` costs no codec.
"""

from __future__ import annotations

import contextlib
import importlib
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

import pyarrow as pa

from dpexport.config.spec import CODECS_BY_FORMAT, CsvOptions, JsonlOptions, ParquetOptions
from dpexport.errors import InvalidArgument
from dpexport.formats.base import FormatWriter, WrittenFile
from dpexport.formats.encodings import as_utf8
from dpexport.formats.streams import (
    HashingSink,
    Source,
    close_all,
    decompressing,
    lent_to_arrow,
    open_source,
)

if TYPE_CHECKING:
    from dpexport.formats.csv import CsvWriter
    from dpexport.formats.jsonl import JsonlWriter
    from dpexport.formats.parquet import ParquetWriter
    from dpexport.security.crypto import Encryptor, KeyProvider

__all__ = [
    "CsvWriter",
    "FormatWriter",
    "HashingSink",
    "JsonlWriter",
    "ParquetWriter",
    "WrittenFile",
    "count_rows",
    "open_writer",
    "read_file",
]

#: writer classes re-exported here, each imported with its module on first access
_WRITERS = {
    "CsvWriter": "dpexport.formats.csv",
    "JsonlWriter": "dpexport.formats.jsonl",
    "ParquetWriter": "dpexport.formats.parquet",
}


def __getattr__(name: str) -> Any:
    module = _WRITERS.get(name)
    if module is None:
        # also how `from dpexport.formats import csv` finds the submodule
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def _check(format: str, codec: str) -> tuple[str, str]:
    fmt, cod = format.upper(), codec.upper()
    if fmt not in CODECS_BY_FORMAT:
        raise InvalidArgument(
            f"unknown format {format!r}; expected one of {list(CODECS_BY_FORMAT)}"
        )
    if cod not in CODECS_BY_FORMAT[fmt]:
        raise InvalidArgument(
            f"codec {codec!r} is not allowed for {fmt}; expected one of {CODECS_BY_FORMAT[fmt]}"
        )
    return fmt, cod


def open_writer(
    path: Path,
    schema: pa.Schema,
    format: str,
    codec: str,
    *,
    parquet: ParquetOptions,
    jsonl: JsonlOptions,
    csv: CsvOptions,
    encryptor: Encryptor | None = None,
) -> FormatWriter:
    """Open ``path`` for writing rows of ``schema`` as ``format`` in ``codec``.

    With an ``encryptor`` the stored bytes are the encrypted file (the caller names
    it ``.enc``); ``WrittenFile.encryption`` then holds the sidecar block.
    """
    fmt, cod = _check(format, codec)
    if fmt == "PARQUET":
        from dpexport.formats.parquet import ParquetWriter

        return ParquetWriter(path, schema, cod, options=parquet, encryptor=encryptor)
    if fmt == "JSONL":
        from dpexport.formats.jsonl import JsonlWriter

        return JsonlWriter(path, schema, cod, options=jsonl, encryptor=encryptor)
    from dpexport.formats.csv import CsvWriter

    return CsvWriter(path, schema, cod, options=csv, encryptor=encryptor)


def read_file(
    path_or_stream: Source,
    format: str,
    codec: str,
    *,
    csv: CsvOptions | None = None,
    schema: pa.Schema | None = None,
    decryptor: KeyProvider | None = None,
    jsonl: JsonlOptions | None = None,
) -> pa.Table:
    """Read a whole data file written by :func:`open_writer` into one table.

    With ``schema`` the columns come back as those types (JSONL/CSV text is parsed
    to them); without it the reader infers types. Encrypted files (detected by
    their magic) need ``decryptor``, the key provider; a tampered file raises
    ``DecryptionError``. ``csv``/``jsonl`` are the options the file was written with
    (default: the spec's).
    """
    fmt, cod = _check(format, codec)
    plain, owned = open_source(path_or_stream, decryptor)
    try:
        if fmt == "PARQUET":
            from dpexport.formats.parquet import read_parquet

            encrypted = len(owned) > 1 or not isinstance(path_or_stream, str | Path)
            if not encrypted:
                return read_parquet(str(path_or_stream), schema)
            with _seekable(plain) as seekable, lent_to_arrow(seekable) as arrow:
                return read_parquet(arrow, schema)
        if fmt == "JSONL":
            from dpexport.formats.jsonl import read_jsonl

            jsonl = jsonl or JsonlOptions()
            with _text(plain, cod, jsonl.encoding) as text:
                return read_jsonl(text, schema, jsonl)
        from dpexport.formats.csv import read_csv

        csv = csv or CsvOptions()
        with _text(plain, cod, csv.encoding) as text:
            return read_csv(text, csv, schema)
    finally:
        close_all(owned)


@contextlib.contextmanager
def _text(plain: BinaryIO, codec: str, encoding: str) -> Iterator[Any]:
    """``plain``'s decompressed bytes as an Arrow stream of UTF-8, closed on this thread
    when the block ends (why: :func:`~dpexport.formats.streams.lent_to_arrow`)."""
    streams = [decompressing(plain, codec)]
    try:
        streams.append(as_utf8(streams[0], encoding))
        yield streams[-1]
    finally:
        for stream in reversed(streams):
            stream.close()


def count_rows(
    path_or_stream: Source,
    format: str,
    codec: str,
    *,
    csv: CsvOptions | None = None,
    schema: pa.Schema | None = None,
    decryptor: KeyProvider | None = None,
    jsonl: JsonlOptions | None = None,
) -> int:
    """Rows in a data file: the footer for plain Parquet, a streaming scan otherwise."""
    fmt, cod = _check(format, codec)
    csv = csv or CsvOptions()
    plain, owned = open_source(path_or_stream, decryptor)
    try:
        if fmt == "PARQUET":
            from dpexport.formats.parquet import count_parquet

            if isinstance(path_or_stream, str | Path) and len(owned) == 1:
                return count_parquet(str(path_or_stream))
            with _seekable(plain) as seekable, lent_to_arrow(seekable) as arrow:
                return count_parquet(arrow)
        if fmt == "JSONL":
            from dpexport.formats.jsonl import count_jsonl

            jsonl = jsonl or JsonlOptions()
            with _text(plain, cod, jsonl.encoding) as text:
                return count_jsonl(text, jsonl)
        from dpexport.formats.csv import STRADDLES, count_csv

        try:
            with _text(plain, cod, csv.encoding) as text:
                return count_csv(text, csv, schema)
        except pa.ArrowInvalid as exc:
            if STRADDLES not in str(exc) or not isinstance(path_or_stream, str | Path):
                raise
    finally:
        close_all(owned)
    # a row longer than the counting block: count again with read_csv's larger blocks
    from dpexport.formats.csv import READ_BLOCK, count_csv

    plain, owned = open_source(path_or_stream, decryptor)
    try:
        with _text(plain, cod, csv.encoding) as text:
            return count_csv(text, csv, schema, block_size=READ_BLOCK)
    finally:
        close_all(owned)


class _seekable:
    """Spool a stream to a temporary file when it is not seekable (decrypted Parquet)."""

    def __init__(self, stream: BinaryIO) -> None:
        self._stream = stream
        self._tmp: Any = None

    def __enter__(self) -> BinaryIO:
        if self._stream.seekable():
            return self._stream
        self._tmp = tempfile.TemporaryFile()
        shutil.copyfileobj(self._stream, self._tmp, 1024 * 1024)
        self._tmp.seek(0)
        return self._tmp

    def __exit__(self, *exc: object) -> None:
        if self._tmp is not None:
            self._tmp.close()
