"""``dpexport decrypt``: restore a client-side encrypted file, all or nothing."""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path
from typing import BinaryIO, cast

from dpexport.errors import DecryptionError, UsageError
from dpexport.security.crypto import KeyProvider, LocalKeyProvider, decrypt_stream
from dpexport.storage.uri import StoreResolver


def decrypt_to(source: str, output: str | None, *, local_root: Path | None) -> None:
    """Decrypt ``source`` (a local path or a URI) into ``output`` (or stdout).

    The plain bytes go to a temporary file first and reach ``output`` only once every
    chunk has authenticated, so a tampered file never yields partial plain text.
    """

    def open_source() -> BinaryIO:
        if "://" in source:
            store, key = StoreResolver(local_root).resolve(source)
            return store.open_read(key)
        if not Path(source).is_file():
            raise UsageError(f"{source}: no such file")
        return open(source, "rb")

    provider: KeyProvider
    if local_root is not None:
        provider = LocalKeyProvider(local_root / "kms")
    else:
        # without --local-root the data key was wrapped by a cloud KMS: its name is in
        # the file's header (Cloud KMS projects/..., AWS KMS arn:aws:kms:... / alias/...)
        from dpexport.security.crypto import read_header
        from dpexport.security.kms import key_provider_for

        with open_source() as head:
            provider = key_provider_for(read_header(head, path=source).key_name)
    src = open_source()
    target_dir = Path(output).resolve().parent if output else None
    with src, tempfile.NamedTemporaryFile(dir=target_dir, delete=False) as tmp:
        try:
            decrypt_stream(src, cast(BinaryIO, tmp), provider, path=source)
        except DecryptionError:
            tmp.close()
            os.unlink(tmp.name)
            raise
    if output:
        os.replace(tmp.name, output)
        return
    try:
        with open(tmp.name, "rb") as fh:
            while chunk := fh.read(1024 * 1024):
                sys.stdout.buffer.write(chunk)
        sys.stdout.buffer.flush()
    finally:
        os.unlink(tmp.name)
