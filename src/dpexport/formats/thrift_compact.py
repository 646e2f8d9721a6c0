"""Thrift's compact protocol, as Parquet footers use it, without a schema.

:func:`decode` reads a struct as its fields, each ``[field id, type, value]`` in the
order written; :func:`encode` writes them back byte for byte, so a footer read,
changed in a few fields and written again keeps every other field (statistics,
logical types, the stored Arrow schema) as it was. Values: integers for the integer
types and bools, ``bytes`` for binary and (raw, 8 bytes) doubles, ``(item type,
items)`` for lists and sets, ``(key type, value type, pairs)`` for maps, fields for
structs.
"""

from __future__ import annotations

from typing import Any

# Thrift compact-protocol types
TRUE, FALSE, BYTE, I16, I32, I64, DOUBLE, BINARY = 1, 2, 3, 4, 5, 6, 7, 8
LIST, SET, MAP, STRUCT = 9, 10, 11, 12

#: a struct: its fields in order, each [field id, type, value]
Fields = list[list[Any]]


def _varint(buf: memoryview, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7


def _zigzag(buf: memoryview, pos: int) -> tuple[int, int]:
    raw, pos = _varint(buf, pos)
    return (raw >> 1) ^ -(raw & 1), pos


def _value(buf: memoryview, pos: int, kind: int) -> tuple[Any, int]:
    if kind in (I16, I32, I64):
        return _zigzag(buf, pos)
    if kind == BINARY:
        size, pos = _varint(buf, pos)
        return bytes(buf[pos : pos + size]), pos + size
    if kind == STRUCT:
        return _struct(buf, pos)
    if kind in (LIST, SET):
        head, pos = buf[pos], pos + 1
        size, item = head >> 4, head & 0x0F
        if size == 15:
            size, pos = _varint(buf, pos)
        items = []
        for _ in range(size):
            if item in (TRUE, FALSE):  # a bool in a list is a byte of its own
                value, pos = buf[pos], pos + 1
            else:
                value, pos = _value(buf, pos, item)
            items.append(value)
        return (item, items), pos
    if kind == BYTE:
        return buf[pos], pos + 1
    if kind == DOUBLE:
        return bytes(buf[pos : pos + 8]), pos + 8
    if kind == MAP:
        size, pos = _varint(buf, pos)
        if not size:
            return (0, 0, []), pos
        head, pos = buf[pos], pos + 1
        pairs = []
        for _ in range(size):
            key, pos = _value(buf, pos, head >> 4)
            value, pos = _value(buf, pos, head & 0x0F)
            pairs.append((key, value))
        return (head >> 4, head & 0x0F, pairs), pos
    raise ValueError(f"unexpected Thrift type {kind} in a Parquet footer")


def _struct(buf: memoryview, pos: int) -> tuple[Fields, int]:
    fields: Fields = []
    last = 0
    while True:
        head, pos = buf[pos], pos + 1
        if head == 0:
            return fields, pos
        kind, delta = head & 0x0F, head >> 4
        if delta:
            last += delta
        else:
            last, pos = _zigzag(buf, pos)
        if kind in (TRUE, FALSE):
            fields.append([last, kind, kind == TRUE])
        else:
            value, pos = _value(buf, pos, kind)
            fields.append([last, kind, value])


def as_bytes(data: Any) -> memoryview:
    """A byte view of ``data`` (a pyarrow Buffer's view has signed items)."""
    view = memoryview(data)
    return view if view.format == "B" else view.cast("B")


def decode(data: bytes | memoryview) -> Fields:
    """A compact-protocol struct (a Parquet footer) as its fields."""
    return decode_at(data, 0)[0]


def decode_at(data: bytes | memoryview, pos: int) -> tuple[Fields, int]:
    """The struct at ``pos`` (a Parquet page header) and where it ends."""
    return _struct(as_bytes(data), pos)


def _put_varint(out: bytearray, value: int) -> None:
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)


def _put_zigzag(out: bytearray, value: int) -> None:
    _put_varint(out, (value << 1) ^ (value >> 63))


def _put_value(out: bytearray, kind: int, value: Any) -> None:
    if kind in (I16, I32, I64):
        _put_zigzag(out, value)
    elif kind == BINARY:
        _put_varint(out, len(value))
        out += value
    elif kind == STRUCT:
        _put_struct(out, value)
    elif kind in (LIST, SET):
        item, items = value
        if len(items) < 15:
            out.append(len(items) << 4 | item)
        else:
            out.append(0xF0 | item)
            _put_varint(out, len(items))
        for element in items:
            if item in (TRUE, FALSE):
                out.append(element)
            else:
                _put_value(out, item, element)
    elif kind == BYTE:
        out.append(value)
    elif kind == DOUBLE:
        out += value
    elif kind == MAP:
        key_kind, value_kind, pairs = value
        _put_varint(out, len(pairs))
        if pairs:
            out.append(key_kind << 4 | value_kind)
            for key, element in pairs:
                _put_value(out, key_kind, key)
                _put_value(out, value_kind, element)
    else:
        raise ValueError(f"unexpected Thrift type {kind}")


def _put_struct(out: bytearray, fields: Fields) -> None:
    last = 0
    for fid, kind, value in fields:
        if kind in (TRUE, FALSE):
            kind = TRUE if value else FALSE
        if 0 < fid - last <= 15:
            out.append((fid - last) << 4 | kind)
        else:
            out.append(kind)
            _put_zigzag(out, fid)
        last = fid
        if kind not in (TRUE, FALSE):
            _put_value(out, kind, value)
    out.append(0)


def encode(fields: Fields) -> bytes:
    """The compact-protocol bytes of a struct :func:`decode` read."""
    out = bytearray()
    _put_struct(out, fields)
    return bytes(out)


def find(fields: Fields, fid: int) -> list[Any] | None:
    """Field ``fid`` of a struct (its ``[id, type, value]``, changed in place), if set."""
    for field in fields:
        if field[0] == fid:
            return field
    return None


def get(fields: Fields, fid: int) -> Any:
    """The value of field ``fid``, which must be set."""
    field = find(fields, fid)
    if field is None:
        raise ValueError(f"Parquet footer struct without field {fid}")
    return field[2]


def put(fields: Fields, fid: int, kind: int, value: Any) -> None:
    """Set field ``fid`` (of type ``kind``) to ``value``, keeping the fields in id order."""
    field = find(fields, fid)
    if field is None:
        fields.append([fid, kind, value])
        fields.sort(key=lambda f: f[0])
    else:
        field[2] = value
