"""Envelope encryption: round trips, tamper detection, key files, no key bytes leaked."""

from __future__ import annotations

import base64
import io
import json
import os
import stat
import threading
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from dpexport.config.spec import CsvOptions, JsonlOptions, ParquetOptions
from dpexport.errors import DecryptionError
from dpexport.formats import count_rows, open_writer, read_file
from dpexport.security import crypto
from dpexport.security.crypto import (
    Encryptor,
    LocalKeyProvider,
    decrypt_stream,
    open_decrypted,
    sidecar_block,
)

KEY = "projects/p/locations/l/keyRings/r/cryptoKeys/k"


class _Keep(io.BytesIO):
    def close(self) -> None:  # keep the value readable after the writer closes it
        pass


def encrypt(provider: LocalKeyProvider, data: bytes, chunk_size: int = 16) -> bytes:
    out = _Keep()
    writer = Encryptor(provider, KEY, chunk_size=chunk_size).open(out)
    for i in range(0, len(data), 7):
        writer.write(data[i : i + 7])
    writer.close()
    return out.getvalue()


def decrypt(provider: LocalKeyProvider, blob: bytes) -> bytes:
    out = io.BytesIO()
    decrypt_stream(io.BytesIO(blob), out, provider)
    return out.getvalue()


@pytest.fixture
def provider(tmp_path: Path) -> LocalKeyProvider:
    return LocalKeyProvider(tmp_path / "kms")


@pytest.mark.parametrize("size", [0, 1, 15, 16, 17, 32, 33, 1000])
def test_roundtrip(provider: LocalKeyProvider, size: int) -> None:
    data = os.urandom(size)
    blob = encrypt(provider, data)
    assert decrypt(provider, blob) == data
    assert open_decrypted(io.BytesIO(blob), provider).read() == data


def test_large_stream_default_chunks(provider: LocalKeyProvider) -> None:
    data = os.urandom(3 * crypto.DEFAULT_CHUNK_SIZE + 5)
    blob = encrypt(provider, data, crypto.DEFAULT_CHUNK_SIZE)
    reader = open_decrypted(io.BytesIO(blob), provider)
    assert b"".join(iter(lambda: reader.read(1000), b"")) == data


def test_every_flipped_byte_fails(provider: LocalKeyProvider) -> None:
    blob = encrypt(provider, os.urandom(50))
    for i in range(len(blob)):
        bad = bytearray(blob)
        bad[i] ^= 0x01
        with pytest.raises(DecryptionError):
            decrypt(provider, bytes(bad))


def test_truncation_and_append_fail(provider: LocalKeyProvider) -> None:
    blob = encrypt(provider, os.urandom(40))
    for n in range(len(blob)):
        with pytest.raises(DecryptionError):
            decrypt(provider, blob[:n])
    for extra in (b"\x00", blob[-16:]):
        with pytest.raises(DecryptionError):
            decrypt(provider, blob + extra)


def test_chunk_swap_and_drop_fail(provider: LocalKeyProvider) -> None:
    data = os.urandom(16 * 3 + 4)
    blob = encrypt(provider, data)
    head = len(blob) - (3 * 32 + 20)
    c = [blob[head + i * 32 : head + (i + 1) * 32] for i in range(3)]
    last = blob[head + 96 :]
    swapped = blob[:head] + c[1] + c[0] + c[2] + last
    with pytest.raises(DecryptionError, match="chunk 0"):
        decrypt(provider, swapped)
    dropped = blob[:head] + c[0] + c[2] + last
    with pytest.raises(DecryptionError, match="chunk 1"):
        decrypt(provider, dropped)
    no_final = blob[:head] + c[0] + c[1] + c[2]
    with pytest.raises(DecryptionError, match="chunk 2"):
        decrypt(provider, no_final)


def test_key_file_mode_and_reuse(provider: LocalKeyProvider) -> None:
    blob1 = encrypt(provider, b"one")
    blob2 = encrypt(provider, b"two")
    files = list(provider.root.iterdir())
    assert [f.name for f in files] == [provider.key_path(KEY).name]
    assert "/" not in files[0].name
    assert stat.S_IMODE(files[0].stat().st_mode) == 0o600
    assert decrypt(provider, blob1) == b"one" and decrypt(provider, blob2) == b"two"


def test_concurrent_first_use_agrees(tmp_path: Path) -> None:
    providers = [LocalKeyProvider(tmp_path / "kms") for _ in range(8)]
    blobs: list[bytes] = []
    threads = [
        threading.Thread(target=lambda p=p: blobs.append(encrypt(p, b"x"))) for p in providers
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(decrypt(providers[0], b) == b"x" for b in blobs)
    assert len([p for p in (tmp_path / "kms").iterdir() if not p.name.startswith(".")]) == 1


def test_missing_and_wrong_key(tmp_path: Path, provider: LocalKeyProvider) -> None:
    blob = encrypt(provider, b"secret rows")
    with pytest.raises(DecryptionError, match="not found") as info:
        decrypt(LocalKeyProvider(tmp_path / "elsewhere"), blob)
    assert KEY in str(info.value)
    other = LocalKeyProvider(tmp_path / "other")
    encrypt(other, b"creates a different key under the same name")
    with pytest.raises(DecryptionError, match="cannot unwrap"):
        decrypt(other, blob)
    assert not (tmp_path / "elsewhere").exists()  # unwrap never creates keys


def test_no_key_bytes_leak(provider: LocalKeyProvider, monkeypatch: pytest.MonkeyPatch) -> None:
    data_key = bytes(range(32))
    monkeypatch.setattr(AESGCM, "generate_key", staticmethod(lambda bit_length: data_key))
    out = _Keep()
    writer = Encryptor(provider, KEY, chunk_size=16).open(out)
    writer.write(b"payload")
    writer.close()
    kek = provider.key_path(KEY).read_bytes()
    block = writer.sidecar_block()
    assert set(block) == {"algorithm", "key_name", "wrapped_key", "nonce", "chunk_size"}
    assert block["algorithm"] == "AES-256-GCM" and block["key_name"] == KEY
    bad = bytearray(out.getvalue())
    bad[-1] ^= 1
    with pytest.raises(DecryptionError) as info:
        decrypt(provider, bytes(bad))
    texts = [json.dumps(block), str(info.value), repr(writer), repr(provider)]
    texts.append(repr(Encryptor(provider, KEY)))
    texts.append(repr(crypto.read_header(io.BytesIO(out.getvalue()))))
    for secret in (data_key, kek):
        for form in (secret.hex(), base64.b64encode(secret).decode(), repr(secret)):
            assert all(form not in t for t in texts)
    assert sidecar_block(io.BytesIO(out.getvalue())) == block


def _write(path: Path, table: pa.Table, fmt: str, codec: str, enc: Encryptor | None) -> Any:
    writer = open_writer(
        path,
        table.schema,
        fmt,
        codec,
        parquet=ParquetOptions(),
        jsonl=JsonlOptions(),
        csv=CsvOptions(),
        encryptor=enc,
    )
    for batch in table.to_batches(max_chunksize=100):
        writer.write_batch(batch)
    return writer.close()


@pytest.mark.parametrize(
    ("fmt", "codec"), [("PARQUET", "SNAPPY"), ("JSONL", "GZIP"), ("CSV", "ZSTD"), ("CSV", "NONE")]
)
def test_format_writers_encrypt(
    tmp_path: Path, provider: LocalKeyProvider, fmt: str, codec: str
) -> None:
    table = pa.table({"id": list(range(1000)), "s": [f"row,{i}\n" for i in range(1000)]})
    plain = _write(tmp_path / "plain", table, fmt, codec, None)
    enc = _write(tmp_path / "enc", table, fmt, codec, Encryptor(provider, KEY, chunk_size=4096))
    stored = (tmp_path / "enc").read_bytes()
    assert stored.startswith(crypto.MAGIC)
    assert enc.stored_bytes == len(stored)
    assert enc.encryption == sidecar_block(tmp_path / "enc")
    # Decrypting gives exactly the bytes of the unencrypted file.
    assert decrypt(provider, stored) == (tmp_path / "plain").read_bytes()
    assert plain.sha256 != enc.sha256
    back = read_file(
        tmp_path / "enc", fmt, codec, csv=CsvOptions(), schema=table.schema, decryptor=provider
    )
    assert back.equals(table)
    assert count_rows(tmp_path / "enc", fmt, codec, decryptor=provider) == 1000
    with pytest.raises(DecryptionError, match="no key provider"):
        read_file(tmp_path / "enc", fmt, codec)
