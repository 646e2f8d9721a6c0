"""The local-folder store: a directory standing in for a bucket.

Publication is a rename within one filesystem, conditional create is a hard link
(atomic, and the object appears complete), compare-and-swap holds an ``flock`` on a
per-key lock file while it checks the version. Durability is that of the page
cache: a killed process loses nothing it wrote, a power cut may (no fsync, by choice:
the local store is for laptops and tests; the cloud stores are the durable ones).
"""

from __future__ import annotations

import fcntl
import getpass
import hashlib
import os
import re
import shutil
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from functools import wraps
from pathlib import Path
from typing import Any, BinaryIO, ParamSpec, TypeVar

from dpexport.errors import (
    AlreadyExists,
    ExportError,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    PreconditionFailed,
)
from dpexport.storage import layout
from dpexport.storage.base import ObjectInfo, Store, innermost

_LOCKS = ".dpexport-locks"
#: tries to make a folder and a file in it while other threads prune empty folders
_FOLDER_RACES = 5
#: a key part that is ``.`` or ``..``
_DOT_PART = re.compile(r"(?:^|/)\.\.?(?:/|$)")


_P = ParamSpec("_P")
_R = TypeVar("_R")


def _is_hidden(name: str) -> bool:
    return name.startswith(".")


def _in_the_way(path: str) -> str:
    """The first existing ancestor of ``path`` (or itself) that is not a folder."""
    current = path
    while current and current != os.path.dirname(current):
        if os.path.lexists(current) and not os.path.isdir(current):
            return current
        current = os.path.dirname(current)
    return path


def os_error(exc: OSError, uri: str) -> ExportError:
    """The project's error for an operating-system error on a local store: the path it
    names, what went wrong, and what to do; never a bare ``PermissionError``."""
    path = str(exc.filename or uri)
    if isinstance(exc, PermissionError):
        return PermissionDenied(
            f"permission denied on {path} ({exc.strerror}): make the folder writable "
            f"by local user {_user()}",
            uri=uri,
        )
    if isinstance(exc, NotADirectoryError):
        blocker = _in_the_way(path)
        return InvalidArgument(
            f"{blocker} is a file where dpexport needs a folder: move it aside", uri=uri
        )
    if isinstance(exc, FileNotFoundError):
        if os.path.isdir(os.path.dirname(path)):  # its folder is there: the file is not
            return NotFound(f"no such file: {path}", uri=uri)
        return NotFound(f"cannot create {path}: a folder above it is missing", uri=uri)
    where = f"{path} -> {exc.filename2}" if exc.filename2 is not None else path
    return ExportError(f"{where}: {exc.strerror or exc}", uri=uri)


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return str(os.geteuid())


def _translated(method: Callable[_P, _R]) -> Callable[_P, _R]:
    """Raise an ``OSError`` of a store method as the project's error (``os_error``)."""

    @wraps(method)
    def call(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        try:
            return method(*args, **kwargs)
        except OSError as exc:
            store = args[0]
            key = args[1] if len(args) > 1 else ""
            assert isinstance(store, LocalStore)
            raise os_error(exc, store.uri(str(key))) from exc

    return call


class LocalStore:
    """A folder as a bucket. ``url`` is what users see (``gs://bucket`` under
    ``--local-root``, or the folder path)."""

    def __init__(self, root: Path, url: str | None = None) -> None:
        self.root = Path(root)
        self.url = url or str(self.root)
        text = str(self.root)
        #: what ``str(self.root / key)`` puts before a plain key
        self._prefix = "" if text == "." else text if text.endswith("/") else text + "/"

    # -- paths -------------------------------------------------------------------------
    def _path(self, key: str) -> Path:
        parts = key.split("/")
        if key.startswith("/") or any(p in ("..", ".") for p in parts) or "\x00" in key:
            raise InvalidArgument(f"object key {key!r} would escape the store", uri=self.url)
        return self.root / key

    def _os_path(self, key: str) -> str:
        """``str(self._path(key))`` without building a Path: commits move each data file
        and sidecar, and path objects were a third of a local move's cost."""
        if "//" in key or key.endswith("/") or not key:
            return str(self._path(key))  # a path needing normalising: the general way
        if key.startswith("/") or "\x00" in key or ("." in key and _DOT_PART.search(key)):
            raise InvalidArgument(f"object key {key!r} would escape the store", uri=self.url)
        return self._prefix + key

    def uri(self, key: str) -> str:
        return f"{self.url.rstrip('/')}/{key}" if key else self.url

    def _info(self, key: str, path: Path | str) -> ObjectInfo:
        st = os.stat(path)
        return ObjectInfo(
            key=key,
            size=st.st_size,
            version=f"{st.st_mtime_ns}-{st.st_ino}-{st.st_size}",
            updated=datetime.fromtimestamp(st.st_mtime, UTC),
        )

    def _temp_beside(self, path: Path) -> Path:
        """A new empty file beside ``path``, its folder made first, to be written and
        renamed to ``path``. Once it exists its folder is not empty, so no prune removes
        it; a prune on another thread (a delete or move that left the folder empty, in
        an export running beside this one) may remove it between the two: tried again."""
        tmp = path.parent / f".{path.name}.tmp-{uuid.uuid4().hex[:12]}"
        for attempt in range(_FOLDER_RACES):
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                os.close(os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666))
                return tmp
            except (FileNotFoundError, FileExistsError):
                if attempt == _FOLDER_RACES - 1:
                    raise
        raise AssertionError("unreachable")

    # -- writes ------------------------------------------------------------------------
    @_translated
    def put_file(self, key: str, source: Path) -> ObjectInfo:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.replace(source, path)
        except OSError:  # another filesystem: copy beside, then rename
            tmp = self._temp_beside(path)
            shutil.copyfile(source, tmp)
            os.replace(tmp, path)
            os.unlink(source)
        return self._info(key, path)

    @_translated
    def put_bytes(self, key: str, data: bytes) -> ObjectInfo:
        path = self._path(key)
        tmp = self._temp_beside(path)
        tmp.write_bytes(data)
        os.replace(tmp, path)
        return self._info(key, path)

    @_translated
    def put_if_absent(self, key: str, data: bytes) -> ObjectInfo:
        path = self._path(key)
        tmp = self._temp_beside(path)
        tmp.write_bytes(data)
        try:
            os.link(tmp, path)  # fails if the name exists; the object appears whole
        except FileExistsError:
            raise AlreadyExists(f"object already exists: {key}", uri=self.uri(key)) from None
        finally:
            tmp.unlink(missing_ok=True)
        return self._info(key, path)

    @contextmanager
    def _locked(self, key: str) -> Iterator[None]:
        lock_dir = self.root / _LOCKS
        lock_dir.mkdir(parents=True, exist_ok=True)
        lock_path = lock_dir / hashlib.sha256(key.encode()).hexdigest()[:32]
        fd = os.open(lock_path, os.O_CREAT | os.O_RDWR, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    @_translated
    def replace_if_match(self, key: str, data: bytes, version: str | None) -> ObjectInfo:
        self._path(key)  # validates the key before taking the lock
        with self._locked(key):
            current = self.head(key)
            current_version = current.version if current else None
            if current_version != version:
                raise PreconditionFailed(
                    f"object changed since it was read (expected version {version}, "
                    f"found {current_version})",
                    uri=self.uri(key),
                )
            return self.put_bytes(key, data)

    # -- reads -------------------------------------------------------------------------
    @_translated
    def get(self, key: str) -> bytes:
        try:
            return self._path(key).read_bytes()
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            raise NotFound(f"no such object: {key}", uri=self.uri(key)) from None

    @_translated
    def open_read(self, key: str) -> BinaryIO:
        try:
            return open(self._path(key), "rb")
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            raise NotFound(f"no such object: {key}", uri=self.uri(key)) from None

    @_translated
    def head(self, key: str) -> ObjectInfo | None:
        path = self._path(key)
        try:
            if not path.is_file():
                return None
            return self._info(key, path)
        except FileNotFoundError:
            return None

    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        """Objects under ``prefix`` (a key prefix, not only a folder), in key order."""
        base_dir = prefix.rsplit("/", 1)[0] if "/" in prefix else ""
        start = self.root / base_dir if base_dir else self.root
        if not start.is_dir():
            return
        for dirpath, dirnames, filenames in os.walk(start):
            dirnames[:] = sorted(d for d in dirnames if not _is_hidden(d))
            rel_dir = os.path.relpath(dirpath, self.root)
            for name in sorted(filenames):
                if _is_hidden(name):
                    continue
                key = name if rel_dir == "." else f"{rel_dir}/{name}"
                if key.startswith(prefix):
                    try:
                        yield self._info(key, Path(dirpath) / name)
                    except FileNotFoundError:
                        continue

    # -- removal and copies ------------------------------------------------------------
    @_translated
    def delete(self, key: str) -> None:
        path = self._path(key)
        try:
            path.unlink()
        except FileNotFoundError:
            return
        self._prune(path.parent)

    def _prune(self, folder: Path | str) -> None:
        """Remove folders left empty, up to the root, so rolled-back folders vanish.

        ``folder`` is always ``root / key``'s parent (keys are validated), so walking up
        by string is exact; resolving paths here cost seconds per 50k moves."""
        root = str(self.root)
        current = str(folder)
        while current.startswith(root + os.sep):
            try:
                os.rmdir(current)
            except OSError:
                return
            current = os.path.dirname(current)

    @_translated
    def copy(self, source_key: str, dest_key: str) -> ObjectInfo:
        src, dst = self._path(source_key), self._path(dest_key)
        if not src.is_file():
            raise NotFound(f"no such object: {source_key}", uri=self.uri(source_key))
        tmp = self._temp_beside(dst)
        shutil.copyfile(src, tmp)
        os.replace(tmp, dst)
        return self._info(dest_key, dst)

    @_translated
    def move(self, source_key: str, dest_key: str) -> ObjectInfo:
        src, dst = self._os_path(source_key), self._os_path(dest_key)
        try:
            os.replace(src, dst)
        except FileNotFoundError:
            # the destination folder is missing (checked only now: a commit moves tens
            # of thousands of files, most into folders that exist), or the source is
            for attempt in range(3):
                if not os.path.lexists(src):
                    raise NotFound(
                        f"no such object: {source_key}", uri=self.uri(source_key)
                    ) from None
                os.makedirs(os.path.dirname(dst), exist_ok=True)
                try:
                    os.replace(src, dst)
                    break
                except FileNotFoundError:
                    # the folder was pruned between the two calls, by a delete or move
                    # on another thread that left it empty: make it again
                    if attempt == 2:
                        raise NotFound(
                            f"no such object: {source_key}", uri=self.uri(source_key)
                        ) from None
        self._prune(os.path.dirname(src))
        return self._info(dest_key, dst)

    def staging_dir(self) -> Path | None:
        return self.root / layout.STAGING_PREFIX.rstrip("/")  # keys under _staging/ are its files


_CREATE = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_CLOEXEC", 0)


def write_new_file(path: Path | str, data: Any) -> None:
    """Write ``data`` (bytes or an Arrow buffer) as the whole content of ``path``: three
    system calls, where ``open()`` adds a buffered writer and fstat/ioctl/lseek calls
    (a third of a small file's cost on a VM, measured)."""
    fd = os.open(path, _CREATE, 0o666)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
    finally:
        os.close(fd)


def local_copy(store: Store, key: str, scratch: Path) -> tuple[Path, bool]:
    """A local file holding the object's bytes, and whether it is a download: the file
    itself on a local store, else one read of the object into ``scratch``. Readers that
    need several passes (a hash, a Parquet footer) then read the network once."""
    base = innermost(store)
    if isinstance(base, LocalStore):
        return base.root / key, False
    target = scratch / key
    target.parent.mkdir(parents=True, exist_ok=True)
    with store.open_read(key) as src, open(target, "wb") as dst:
        shutil.copyfileobj(src, dst, 4 * 1024 * 1024)
    return target, True
