"""Client-side envelope encryption of data files (spec 6.3, CONTRACT §8).

Each file gets a fresh random 256-bit data key; the key is wrapped by a named
key-encryption key (a KMS key name) through a :class:`KeyProvider`, and only the
wrapped form is stored. The plain bytes are cut into chunks, each sealed with
AES-256-GCM, so files of any size stream through in bounded memory.

File layout::

    b"DPXENC1"  version (1 byte)  header length (4 bytes, big endian)  header (JSON)
    chunk 0, chunk 1, ..., chunk N-1       each: ciphertext || 16-byte GCM tag

The header JSON holds the algorithm, key name, wrapped data key, base nonce and
chunk size. Every chunk holds ``chunk_size`` plain bytes except the last, which
holds 0..``chunk_size``. Chunk ``i`` is sealed with nonce ``base_nonce XOR i`` (in
the nonce's last 8 bytes) and with associated data ``header bytes || i || final
flag``, so editing the header, reordering, dropping, truncating or appending
chunks, or flipping any byte fails authentication with :class:`DecryptionError`
naming the chunk. Readers must read to the end to detect truncation.

Key bytes never appear in a repr, a message or a sidecar block.
"""

from __future__ import annotations

import base64
import contextlib
import io
import json
import os
import secrets
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, Protocol, cast
from urllib.parse import quote

from dpexport.errors import DecryptionError

if TYPE_CHECKING:
    from _typeshed import ReadableBuffer, WriteableBuffer
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

__all__ = [
    "ALGORITHM",
    "DEFAULT_CHUNK_SIZE",
    "MAGIC",
    "EncryptingWriter",
    "EncryptionHeader",
    "Encryptor",
    "KeyProvider",
    "LocalKeyProvider",
    "decrypt_stream",
    "is_encrypted",
    "open_decrypted",
    "read_header",
    "sidecar_block",
]

MAGIC = b"DPXENC1"
VERSION = 1
ALGORITHM = "AES-256-GCM"
DEFAULT_CHUNK_SIZE = 64 * 1024
_TAG = 16
_NONCE = 12
_PREFIX = struct.Struct(">7sBI")  # magic, version, header length
_MAX_HEADER = 64 * 1024
_MAX_CHUNK = 64 * 1024 * 1024
_KEY_BYTES = 32


# ``cryptography`` loads with the first file encrypted or decrypted, not with every
# module that names an Encryptor (verification, the writers, the run of a plain table).
def _aesgcm(key: bytes) -> AESGCM:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    return AESGCM(key)


def _invalid_tag() -> type[Exception]:
    # called only in `except` clauses, i.e. once something was raised
    from cryptography.exceptions import InvalidTag

    return InvalidTag


class KeyProvider(Protocol):
    """Wraps and unwraps data keys with a named key-encryption key (a KMS key)."""

    @property
    def name(self) -> str:
        """Short provider name for logs and sidecars (``local``, ``gcp-kms``, ...)."""
        ...

    def wrap(self, key_name: str, data_key: bytes) -> bytes:
        """Encrypt ``data_key`` with the key ``key_name`` (creating it if the provider may)."""
        ...

    def unwrap(self, key_name: str, wrapped: bytes) -> bytes:
        """Recover a data key; raise :class:`DecryptionError` if the key is missing or wrong."""
        ...


class LocalKeyProvider:
    """KMS key names mapped to 32-byte key files under ``root`` (``--local-root``'s ``kms/``).

    A key file is created on first :meth:`wrap` with mode 0600, atomically (written
    to an exclusive temporary file, then hard-linked into place), so concurrent
    first uses agree on one key. :meth:`unwrap` never creates a key.
    """

    name = "local"
    _WRAP_AAD = b"dpexport-local-kek-v1:"

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def __repr__(self) -> str:
        return f"LocalKeyProvider(root={str(self.root)!r})"

    def key_path(self, key_name: str) -> Path:
        """The key file for ``key_name``: the name percent-encoded (no ``/``), plus ``.key``."""
        if not key_name:
            raise ValueError("empty key name")
        return self.root / (quote(key_name, safe="") + ".key")

    def wrap(self, key_name: str, data_key: bytes) -> bytes:
        """``nonce || AES-GCM(kek, data_key, aad=key name)``."""
        kek = self._load(key_name, create=True)
        nonce = os.urandom(_NONCE)
        return nonce + _aesgcm(kek).encrypt(nonce, data_key, self._WRAP_AAD + key_name.encode())

    def unwrap(self, key_name: str, wrapped: bytes) -> bytes:
        kek = self._load(key_name, create=False)
        try:
            return _aesgcm(kek).decrypt(
                wrapped[:_NONCE], wrapped[_NONCE:], self._WRAP_AAD + key_name.encode()
            )
        except (_invalid_tag(), ValueError):
            raise DecryptionError(
                f"cannot unwrap the data key with key {key_name!r}: "
                "the key file does not match or the header was modified"
            ) from None

    def _load(self, key_name: str, *, create: bool) -> bytes:
        path = self.key_path(key_name)
        try:
            return self._read(path, key_name)
        except FileNotFoundError:
            if not create:
                raise DecryptionError(
                    f"key {key_name!r} not found (expected key file {path})"
                ) from None
        self._create(path)
        return self._read(path, key_name)

    @staticmethod
    def _read(path: Path, key_name: str) -> bytes:
        data = path.read_bytes()
        if len(data) != _KEY_BYTES:
            raise DecryptionError(
                f"key file for {key_name!r} is corrupt: expected {_KEY_BYTES} bytes ({path})"
            )
        return data

    def _create(self, path: Path) -> None:
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            try:
                os.write(fd, os.urandom(_KEY_BYTES))
                os.fsync(fd)
            finally:
                os.close(fd)
            # Atomic publish: fails if another process won the race, and its key stays.
            with contextlib.suppress(FileExistsError):
                os.link(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)


@dataclass(frozen=True)
class EncryptionHeader:
    """The parsed header of an encrypted file. ``raw`` is its exact bytes (bound into
    every chunk's associated data)."""

    key_name: str
    wrapped_key: bytes = field(repr=False)
    nonce: bytes
    chunk_size: int
    raw: bytes = field(repr=False)
    algorithm: str = ALGORITHM

    @classmethod
    def build(
        cls, key_name: str, wrapped_key: bytes, nonce: bytes, chunk_size: int
    ) -> EncryptionHeader:
        body = json.dumps(
            {
                "algorithm": ALGORITHM,
                "key_name": key_name,
                "wrapped_key": base64.b64encode(wrapped_key).decode(),
                "nonce": base64.b64encode(nonce).decode(),
                "chunk_size": chunk_size,
            },
            separators=(",", ":"),
            sort_keys=True,
        ).encode()
        raw = _PREFIX.pack(MAGIC, VERSION, len(body)) + body
        return cls(key_name, wrapped_key, nonce, chunk_size, raw)

    def sidecar_block(self) -> dict[str, Any]:
        """The sidecar/manifest ``encryption`` block: how to decrypt, never the data key."""
        return {
            "algorithm": self.algorithm,
            "key_name": self.key_name,
            "wrapped_key": base64.b64encode(self.wrapped_key).decode(),
            "nonce": base64.b64encode(self.nonce).decode(),
            "chunk_size": self.chunk_size,
        }


def is_encrypted(head: bytes) -> bool:
    """True if ``head`` (the first bytes of a file) starts with our magic."""
    return head[: len(MAGIC)] == MAGIC


def read_header(src: BinaryIO, *, path: str | None = None) -> EncryptionHeader:
    """Read and parse the header at the current position of ``src``."""
    prefix = _read_exact(src, _PREFIX.size)
    if len(prefix) < _PREFIX.size or not is_encrypted(prefix):
        raise DecryptionError("not a dpexport encrypted file (bad magic)", path=path)
    _, version, length = _PREFIX.unpack(prefix)
    if version != VERSION:
        raise DecryptionError(f"unsupported encryption format version {version}", path=path)
    if length > _MAX_HEADER:
        raise DecryptionError("encryption header too large", path=path)
    body = _read_exact(src, length)
    if len(body) != length:
        raise DecryptionError("file truncated inside the encryption header", path=path)
    try:
        doc = json.loads(body)
        header = EncryptionHeader(
            key_name=str(doc["key_name"]),
            wrapped_key=base64.b64decode(doc["wrapped_key"], validate=True),
            nonce=base64.b64decode(doc["nonce"], validate=True),
            chunk_size=int(doc["chunk_size"]),
            raw=prefix + body,
            algorithm=str(doc["algorithm"]),
        )
    except (ValueError, KeyError, TypeError):
        raise DecryptionError("malformed encryption header", path=path) from None
    if header.algorithm != ALGORITHM or len(header.nonce) != _NONCE:
        raise DecryptionError("unsupported algorithm or nonce in header", path=path)
    if not 0 < header.chunk_size <= _MAX_CHUNK:
        raise DecryptionError("invalid chunk size in header", path=path)
    return header


def sidecar_block(src: BinaryIO | Path) -> dict[str, Any]:
    """The ``encryption`` block for an existing encrypted file (reads only its header)."""
    if isinstance(src, Path):
        with src.open("rb") as f:
            return read_header(f, path=str(src)).sidecar_block()
    return read_header(src).sidecar_block()


def _chunk_nonce(base: bytes, index: int) -> bytes:
    tail = int.from_bytes(base[4:], "big") ^ index
    return base[:4] + tail.to_bytes(8, "big")


def _chunk_aad(header: bytes, index: int, final: bool) -> bytes:
    return header + struct.pack(">QB", index, 1 if final else 0)


def _read_exact(src: BinaryIO, n: int) -> bytes:
    parts: list[bytes] = []
    while n > 0:
        data = src.read(n)
        if not data:
            break
        parts.append(data)
        n -= len(data)
    return b"".join(parts)


class Encryptor:
    """Opens encrypting streams with ``key_name``; each :meth:`open` uses a new data key."""

    def __init__(
        self, provider: KeyProvider, key_name: str, *, chunk_size: int = DEFAULT_CHUNK_SIZE
    ) -> None:
        if not 0 < chunk_size <= _MAX_CHUNK:
            raise ValueError(f"chunk_size must be in 1..{_MAX_CHUNK}")
        self.provider = provider
        self.key_name = key_name
        self.chunk_size = chunk_size

    def __repr__(self) -> str:
        return f"Encryptor(provider={self.provider!r}, key_name={self.key_name!r})"

    def open(self, dst: BinaryIO, *, close_dst: bool = True) -> EncryptingWriter:
        """A writable stream that encrypts into ``dst`` (the header is written at once)."""
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        data_key = AESGCM.generate_key(bit_length=256)
        wrapped = self.provider.wrap(self.key_name, data_key)
        header = EncryptionHeader.build(self.key_name, wrapped, os.urandom(_NONCE), self.chunk_size)
        return EncryptingWriter(dst, header, data_key, close_dst=close_dst)


class EncryptingWriter(io.RawIOBase):
    """A writable binary stream sealing ``chunk_size`` chunks into ``dst``.

    :meth:`close` seals the final chunk (possibly empty) and closes ``dst`` unless
    ``close_dst`` is false. Created by :meth:`Encryptor.open`.
    """

    def __init__(
        self, dst: BinaryIO, header: EncryptionHeader, data_key: bytes, *, close_dst: bool
    ) -> None:
        super().__init__()
        self._dst = dst
        self.header = header
        self._aead = _aesgcm(data_key)
        self._buf = bytearray()
        self._index = 0
        self._close_dst = close_dst
        dst.write(header.raw)

    def __repr__(self) -> str:
        return f"EncryptingWriter(key_name={self.header.key_name!r}, chunks={self._index})"

    def writable(self) -> bool:
        return True

    def write(self, data: ReadableBuffer) -> int:
        if self.closed:
            raise ValueError("write to closed EncryptingWriter")
        view = memoryview(data).cast("B")
        size = self.header.chunk_size
        self._buf += view
        # Keep at least one byte buffered: only close() knows which chunk is final.
        if len(self._buf) > size:
            full = (len(self._buf) - 1) // size * size
            for start in range(0, full, size):
                self._seal(bytes(self._buf[start : start + size]), final=False)
            del self._buf[:full]
        return view.nbytes

    def _seal(self, plain: bytes, *, final: bool) -> None:
        h = self.header
        aad = _chunk_aad(h.raw, self._index, final)
        self._dst.write(self._aead.encrypt(_chunk_nonce(h.nonce, self._index), plain, aad))
        self._index += 1

    def sidecar_block(self) -> dict[str, Any]:
        """The ``encryption`` block for this file."""
        return self.header.sidecar_block()

    def close(self) -> None:
        if self.closed:
            return
        try:
            self._seal(bytes(self._buf), final=True)
            self._buf.clear()
            if self._close_dst:
                self._dst.close()
        finally:
            super().close()


class DecryptingReader(io.RawIOBase):
    """A readable stream of the plain bytes of an encrypted source (see :func:`open_decrypted`)."""

    def __init__(self, src: BinaryIO, provider: KeyProvider, *, path: str | None = None) -> None:
        super().__init__()
        self._src = src
        self._path = path
        self.header = read_header(src, path=path)
        data_key = provider.unwrap(self.header.key_name, self.header.wrapped_key)
        self._aead = _aesgcm(data_key)
        self._sealed = self.header.chunk_size + _TAG
        self._next = _read_exact(src, self._sealed)
        self._index = 0
        self._done = False
        self._out = b""
        self._pos = 0

    def __repr__(self) -> str:
        return f"DecryptingReader(key_name={self.header.key_name!r}, chunk={self._index})"

    def readable(self) -> bool:
        return True

    def _advance(self) -> None:
        cur = self._next
        if len(cur) == self._sealed:
            self._next = _read_exact(self._src, self._sealed)
            final = not self._next
        else:
            self._next = b""
            final = True
        if len(cur) < _TAG:
            raise DecryptionError(
                f"chunk {self._index} is truncated: the file ends early", path=self._path
            )
        nonce = _chunk_nonce(self.header.nonce, self._index)
        try:
            self._out = self._aead.decrypt(
                nonce, cur, _chunk_aad(self.header.raw, self._index, final)
            )
        except _invalid_tag():
            raise DecryptionError(
                f"chunk {self._index} failed authentication: the file was modified, "
                "truncated, reordered or extended, or was sealed with another key",
                path=self._path,
            ) from None
        self._pos = 0
        self._index += 1
        self._done = final

    def readinto(self, b: WriteableBuffer) -> int:
        view = memoryview(b).cast("B")
        while self._pos >= len(self._out):
            if self._done:
                return 0
            self._advance()
        n = min(view.nbytes, len(self._out) - self._pos)
        view[:n] = self._out[self._pos : self._pos + n]
        self._pos += n
        return n


def open_decrypted(src: BinaryIO, provider: KeyProvider, *, path: str | None = None) -> BinaryIO:
    """A buffered readable stream of the plain bytes of ``src``.

    Each chunk is authenticated before its bytes are returned; truncation is only
    detected at the end, so consumers must read to EOF before trusting the data.
    """
    reader = DecryptingReader(src, provider, path=path)
    return cast(BinaryIO, io.BufferedReader(reader, buffer_size=reader.header.chunk_size))


def decrypt_stream(
    src: BinaryIO, dst: BinaryIO, provider: KeyProvider, *, path: str | None = None
) -> None:
    """Decrypt all of ``src`` into ``dst``; raises :class:`DecryptionError` on any tampering.

    On error ``dst`` may hold a prefix of the plain bytes: write to a temporary
    file and discard it on failure.
    """
    reader = DecryptingReader(src, provider, path=path)
    while True:
        reader._advance()
        dst.write(reader._out)
        if reader._done:
            break
