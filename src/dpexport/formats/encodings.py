"""Text encodings of JSONL and CSV files (spec 2.2, 2.3 ``encoding``).

The encoders build UTF-8 text (Arrow strings are UTF-8). A file in another encoding
has each encoded slice transcoded, strictly, on the encoder threads: a character the
encoding cannot hold is :class:`Unwritable` (the writer names the file, column and
row), never a ``?``. Slices are encoded independently, so a codec that starts every
call with a byte-order mark (``utf-16``, ``utf-32``, ``utf-8-sig``) has its mark
written once, first, and the slices in the byte order it names (little-endian).

Readers get UTF-8 back through :func:`as_utf8`, an incremental decoder over the
decompressed stream, so every reader and row counter works on every encoding.
"""

from __future__ import annotations

import codecs
import io
import json
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

UTF8 = "utf-8"
#: codecs whose every ``encode`` call starts with a BOM: (the BOM, the codec after it)
_BOM_CODECS = {
    "utf-16": (codecs.BOM_UTF16_LE, "utf-16-le"),
    "utf-32": (codecs.BOM_UTF32_LE, "utf-32-le"),
    "utf-8-sig": (codecs.BOM_UTF8, UTF8),
}
_READ_CHUNK = 1024 * 1024


class Unwritable(Exception):
    """A value a file cannot hold: its column, its row in the slice (0-based; ``None``
    for a column name), and why. The text writers add the file and the row's number."""

    def __init__(self, column: str, row: int | None, reason: str) -> None:
        super().__init__(f"column {column!r}, row {row}: {reason}")
        self.column = column
        self.row = row
        self.reason = reason


def _char(text: str) -> str:
    return f"{text[0]!r} (U+{ord(text[0]):04X})"


@dataclass(frozen=True)
class TextEncoding:
    """One configured encoding: ``name`` as the config writes it, ``codec`` the Python
    codec slices are encoded with, ``bom`` the bytes written once at the start."""

    name: str
    codec: str
    bom: bytes = b""

    @classmethod
    def of(cls, name: str) -> TextEncoding:
        """The encoding named ``name`` (any spelling Python knows: ``UTF-16``, ``latin1``)."""
        canonical = codecs.lookup(name).name
        bom, codec = _BOM_CODECS.get(canonical, (b"", canonical))
        return cls(name, codec, bom)

    @property
    def is_utf8(self) -> bool:
        """The encoders' own bytes are the file's: nothing to transcode."""
        return self.codec == UTF8 and not self.bom

    def encode(self, text: str) -> bytes:
        """``text`` in this encoding, without the BOM; ``UnicodeEncodeError`` if it cannot."""
        return text.encode(self.codec)

    def transcode(self, data: pa.Buffer, part: pa.RecordBatch) -> Any:
        """The UTF-8 bytes ``data`` (encoded from ``part``) in this encoding; a character
        it cannot hold is :class:`Unwritable` naming the first column and row holding one."""
        if self.is_utf8:
            return data
        text = str(memoryview(data), UTF8)
        try:
            return text.encode(self.codec)
        except UnicodeEncodeError as exc:
            raise self._locate(part, exc.object[exc.start : exc.end]) from None

    def check_names(self, names: list[str]) -> None:
        """Column names written in the file (a CSV header, JSON keys) must fit too."""
        for name in names:
            try:
                self.encode(name)
            except UnicodeEncodeError as exc:
                bad = _char(exc.object[exc.start : exc.end])
                raise Unwritable(name, None, f"its name holds {bad}, {self._not_in}") from None

    @property
    def _not_in(self) -> str:
        return f"which {self.name} cannot hold"

    def _locate(self, part: pa.RecordBatch, fallback: str) -> Unwritable:
        """The first row (then column) of ``part`` whose value holds a character this
        encoding cannot: per-value Python, on the error path only."""
        columns = [(name, part.column(i).to_pylist()) for i, name in enumerate(part.schema.names)]
        for row in range(part.num_rows):
            for name, values in columns:
                value = values[row]
                if value is None or isinstance(value, bytes | int | float | bool):
                    continue
                if not isinstance(value, str):  # nested: its JSON text
                    value = json.dumps(value, ensure_ascii=False, default=str)
                try:
                    self.encode(value)
                except UnicodeEncodeError as exc:
                    bad = _char(exc.object[exc.start : exc.end])
                    return Unwritable(name, row, f"the value holds {bad}, {self._not_in}")
        return Unwritable("?", None, f"the text holds {_char(fallback)}, {self._not_in}")


class _Utf8Reader(io.RawIOBase):
    """The bytes of a stream in ``encoding``, decoded incrementally and given as UTF-8."""

    def __init__(self, stream: Any, encoding: str) -> None:
        super().__init__()
        self._stream = stream
        self._decoder = codecs.getincrementaldecoder(encoding)(errors="strict")
        self._pending = memoryview(b"")
        self._done = False

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not self._pending and not self._done:
            chunk = self._stream.read(_READ_CHUNK)
            final = not chunk
            try:
                text = self._decoder.decode(bytes(chunk), final=final)
            except UnicodeDecodeError as exc:
                raise ValueError(f"not valid {exc.encoding}: {exc.reason}") from None
            self._pending = memoryview(text.encode(UTF8))
            self._done = final
        n = min(len(buffer), len(self._pending))
        buffer[:n] = self._pending[:n]
        self._pending = self._pending[n:]
        return n


def as_utf8(stream: Any, encoding: str) -> Any:
    """``stream`` (decompressed file bytes in ``encoding``) as an Arrow input stream of
    UTF-8; the stream itself when it already is."""
    if TextEncoding.of(encoding).is_utf8:
        return stream
    return pa.PythonFile(_Utf8Reader(stream, encoding), mode="r")
