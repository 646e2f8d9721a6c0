"""``dpexport decrypt``: restore a client-side encrypted file, all or nothing."""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path
from typing import BinaryIO, cast

from dpexport.errors import DecryptionError, UsageError
from dpexport.security.crypto import LocalKeyProvider, decrypt_stream
from dpexport.storage.uri import StoreResolver


def decrypt_to(source: str, output: str | None, *, local_root: Path | None) -> None:
    """Decrypt ``source`` (a local path or a URI) into ``output`` (or stdout).

    The plain bytes go to a temporary file first and reach ``output`` only once every
    chunk has authenticated, so a tampered file never yields partial plain text.
    """
    if local_root is None:
        raise UsageError("decrypt needs --local-root DIR: the local key files live in DIR/kms/")
    provider = LocalKeyProvider(local_root / "kms")
    if "://" in source:
        store, key = StoreResolver(local_root).resolve(source)
        src = store.open_read(key)
    else:
        if not Path(source).is_file():
            raise UsageError(f"{source}: no such file")
        src = open(source, "rb")  # noqa: SIM115 - closed below
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
