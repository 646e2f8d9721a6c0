"""Verification of staged files before they are published.

``verify_staged`` re-reads each file the export wrote (size, rows, readable, and its
bytes: their CRC-32 against the one taken as they were written and sha256-hashed, or
their sha256 again where a writer took no CRC) before the commit. Published exports
are re-checked later by :mod:`.audit` (``verify``), every sha256 recomputed.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from dpexport.config.spec import TableSpec
from dpexport.errors import DpexportError, ExportError, Mismatch
from dpexport.formats import count_rows
from dpexport.formats.base import WrittenFile
from dpexport.formats.encodings import TextEncoding
from dpexport.formats.parallel import workers
from dpexport.formats.streams import Inflater, crc32
from dpexport.publish.commit import run_all
from dpexport.security.crypto import MAGIC, is_encrypted

if TYPE_CHECKING:
    from dpexport.transforms.pipeline import Transforms

log = logging.getLogger(__name__)

_CHUNK = 4 * 1024 * 1024

#: Below this many uncompressed bytes the ratio says nothing about the codec.
MIN_RATIO_BYTES = 8 * 1024 * 1024


def _read_into(stream: Any, digest: Any) -> int:
    """Feed ``stream`` to ``digest`` (hashlib's ``update``) to its end; the bytes read."""
    size = 0
    while chunk := stream.read(_CHUNK):
        digest.update(chunk)
        size += len(chunk)
    return size


def sha256_of(stream: Any) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = _read_into(stream, digest)
    return digest.hexdigest(), size


def sha256_of_file(path: str | Path) -> tuple[str, int]:
    """sha256 and size of a local file's bytes as stored."""
    with open(path, "rb") as fh:
        return sha256_of(fh)


class _Crc:
    """CRC-32 with hashlib's ``update``/``hexdigest`` (8 hex digits)."""

    def __init__(self, data: bytes = b"") -> None:
        self.value = crc32(data, 0)

    def update(self, data: bytes) -> None:
        self.value = crc32(data, self.value)

    def hexdigest(self) -> str:
        return f"{self.value:08x}"


def _hasher(crc: bool, data: bytes = b"") -> Any:
    return _Crc(data) if crc else hashlib.sha256(data)


def crc32_of_file(path: str | Path) -> int:
    """CRC-32 of a local file's bytes as stored."""
    crc = _Crc()
    with open(path, "rb") as fh:
        _read_into(fh, crc)
    return crc.value


def _jsonl_pass(stream: Any, gzip: bool, crc: bool) -> tuple[str, int, int]:
    """The digest (CRC-32 or sha256), size and rows of a plain JSONL file in one read
    (rows as ``count_jsonl``)."""
    digest = _hasher(crc)
    size = rows = 0
    inflater = Inflater() if gzip else None
    last = b"\n"
    while chunk := stream.read(_CHUNK):
        digest.update(chunk)
        size += len(chunk)
        text = inflater.feed(chunk) if inflater is not None else chunk
        if text:
            rows += text.count(b"\n")
            last = text[-1:]
    if inflater is not None and not inflater.complete:
        raise ValueError("truncated gzip stream")
    return digest.hexdigest(), size, rows + (0 if last == b"\n" else 1)


def compression_ratio(files: Sequence[WrittenFile]) -> float | None:
    raw = sum(f.uncompressed_bytes for f in files)
    if raw <= 0:
        return None
    return 1.0 - sum(f.stored_bytes for f in files) / raw


def _read_check(
    path: Path, jsonl_codec: str | None, crc: bool
) -> tuple[str, int, int | None, bytes | None]:
    """One read of a staged file: its digest (CRC-32 if ``crc``, else sha256), size,
    rows when the read itself can count them (plain JSONL), and the whole content when
    it fit in one chunk and is not encrypted (so a plain Parquet footer is parsed from
    the very bytes that were hashed)."""
    if jsonl_codec is not None:
        with open(path, "rb") as fh:
            if not is_encrypted(fh.read(len(MAGIC))):
                fh.seek(0)
                digest, size, rows = _jsonl_pass(fh, jsonl_codec == "GZIP", crc)
                return digest, size, rows, None
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))  # no buffered reader
    try:
        head = os.read(fd, _CHUNK)
        encrypted = is_encrypted(head[: len(MAGIC)])
        hasher = _hasher(crc, head)
        size = len(head)
        whole: bytes | None = None if encrypted else head
        while chunk := os.read(fd, _CHUNK):
            hasher.update(chunk)
            size += len(chunk)
            whole = None
    finally:
        os.close(fd)
    return hasher.hexdigest(), size, None, whole


def _expected_digest(wf: WrittenFile) -> tuple[str, str]:
    """What a staged file's re-read must find: the CRC-32 taken as its bytes were
    written and hashed, or, from a writer that took none, the sha256 again."""
    if wf.crc32 is None:
        return "sha256", wf.sha256
    return "CRC-32", f"{wf.crc32:08x}"


def _one_pass(spec: TableSpec) -> tuple[str | None, int]:
    """The codec of JSONL files whose rows one read counts with their hash (GZIP or
    NONE, in UTF-8: a UTF-16 newline is two bytes), and their lines that are not rows;
    ``(None, 0)`` for other files."""
    if spec.format != "JSONL" or spec.compression not in ("GZIP", "NONE"):
        return None, 0
    if not TextEncoding.of(spec.jsonl.encoding).is_utf8:
        return None, 0
    from dpexport.formats.jsonl import extra_lines

    return spec.compression, extra_lines(spec.jsonl)


#: files one verification task checks: enough that handing a task to a thread costs
#: little beside ~60 µs a small file, few enough that the tasks spread over the threads
_TASK_FILES = 64


def verify_staged(files: Sequence[WrittenFile], spec: TableSpec, transforms: Transforms) -> None:
    """Re-read every staged file; raise if one does not match what its writer reported.

    Files are checked on ``parallel.workers()`` threads, in tasks of consecutive files;
    the problems are listed in the files' order, as one thread would list them. Reads,
    hashing and footer parsing release the GIL: measured on two cores, 8 files of 40 MB
    verify in 0.18-0.22 s on two threads against 0.26-0.27 s on one; for 57,600 files of
    8 KB the Python around each file holds the GIL and two threads take as long as one."""
    provider = transforms.key_provider
    jsonl_codec, extra = _one_pass(spec)
    parquet = spec.format == "PARQUET"
    if parquet:
        from dpexport.formats.parquet import count_parquet

    def check(wf: WrittenFile, problems: list[Mismatch]) -> None:
        kind, expected = _expected_digest(wf)
        try:
            digest, size, rows, whole = _read_check(wf.path, jsonl_codec, wf.crc32 is not None)
            rows = None if rows is None else rows - extra
        except (OSError, ValueError) as exc:
            problems.append(Mismatch(wf.path.name, f"unreadable: {exc}"))
            return
        if size != wf.stored_bytes:
            problems.append(Mismatch(wf.path.name, f"size {size} != written {wf.stored_bytes}"))
        if digest != expected:
            problems.append(Mismatch(wf.path.name, f"{kind} differs from the bytes written"))
        if rows is None:
            try:
                if parquet and whole is not None:
                    rows = count_parquet(pa.BufferReader(whole))
                else:
                    rows = count_rows(
                        wf.path,
                        spec.format,
                        spec.compression,
                        csv=spec.csv,
                        jsonl=spec.jsonl,
                        decryptor=provider,
                    )
            except (DpexportError, OSError, ValueError) as exc:
                problems.append(Mismatch(wf.path.name, f"unreadable: {exc}"))
                return
        if rows != wf.rows:
            problems.append(Mismatch(wf.path.name, f"{rows} rows read back, {wf.rows} written"))

    def check_all(task: Sequence[WrittenFile]) -> list[Mismatch]:
        problems: list[Mismatch] = []
        for wf in task:
            check(wf, problems)
        return problems

    threads = workers()
    # one file a task while there are few: large files then spread over the threads too
    per_task = max(1, min(_TASK_FILES, len(files) // (threads * 4)))
    tasks = [files[i : i + per_task] for i in range(0, len(files), per_task)]
    found = run_all(tasks, check_all, workers=threads if len(tasks) > 1 else 1)
    problems = [p for task_problems in found for p in task_problems]
    if problems:
        detail = "; ".join(f"{m.file}: {m.problem}" for m in problems)
        raise ExportError(
            f"staged files failed verification: {detail}",
            table=spec.qualified_name,
            code="INTERNAL_ERROR",
        )
    ratio = compression_ratio(files)
    # the config's spec 2.4 band for the codec; outside it is a warning, never a failure:
    # the ratio depends on the data
    band = spec.ratio_band
    raw = sum(f.uncompressed_bytes for f in files)
    # Below a few MB, file overhead (footers, dictionaries) dominates: no verdict.
    if ratio is not None and band and raw >= MIN_RATIO_BYTES and not band[0] <= ratio <= band[1]:
        log.warning(
            "%s: compression ratio %.0f%% is outside %s's expected %d-%d%%",
            spec.qualified_name,
            ratio * 100,
            spec.compression,
            band[0] * 100,
            band[1] * 100,
        )
