"""``dpexport verify`` (CONTRACT §2): published exports re-checked against the store.

For each manifest verified: its fields have their shape (:mod:`.audit_docs`), every file
it lists is there with its size, sha256 and row count, and every file's sidecar is there
and agrees with the manifest. For each committed folder (one holding a manifest or a
SUCCESS marker): SUCCESS is there when manifests are, readable, naming only manifests
that exist and every manifest of the folder; no data file lies there that no manifest
lists. A published data file (one with its sidecar) in a folder with neither manifest
nor SUCCESS is reported too. Every problem names the object and what is wrong.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from dpexport.errors import DpexportError, Mismatch, NotFound
from dpexport.formats import count_rows
from dpexport.publish.audit_docs import Entry, Manifest, parse_manifest, sidecar_problems
from dpexport.publish.audit_folders import check_folders
from dpexport.publish.verification import sha256_of_file
from dpexport.storage import layout
from dpexport.storage.base import ObjectInfo, Store
from dpexport.storage.local import local_copy
from dpexport.storage.uri import StoreResolver

if TYPE_CHECKING:
    from dpexport.security.crypto import KeyProvider


@dataclass
class Report:
    """What ``verify`` found: manifests checked and every mismatch."""

    uri: str
    manifests: list[str] = field(default_factory=list)
    files: int = 0
    rows: int = 0
    problems: list[Mismatch] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return bool(self.manifests) and not self.problems

    def add(self, key: str, problem: str) -> None:
        self.problems.append(Mismatch(key, problem))

    def lines(self) -> Iterable[str]:
        for p in self.problems:
            yield f"FAIL {p.file}: {p.problem}"
        if not self.manifests:
            yield f"FAIL {self.uri}: no manifest found"
        status = "OK" if self.ok else "FAILED"
        yield (
            f"{status} {self.uri}: {len(self.manifests)} manifest(s), {self.files} file(s), "
            f"{self.rows} row(s), {len(self.problems)} problem(s)"
        )


def _key_provider(local_root: Path | None) -> KeyProvider | None:
    if local_root is None:
        return None
    from dpexport.security.crypto import LocalKeyProvider

    return LocalKeyProvider(local_root / "kms")


def _reserved(key: str) -> bool:
    return key.startswith(layout.RESERVED_PREFIXES)


def verify_uri(uri: str, *, local_root: Path | None = None) -> Report:
    """Verify a manifest (its folder's markers and strays too), or every manifest under
    a folder (recursively)."""
    path = Path(uri)
    only: str | None = None
    if "://" not in uri and path.is_file():
        uri, only = str(path.parent), path.name
    store, key = StoreResolver(local_root).resolve(uri)
    if only is not None:
        key = (key if not key or key.endswith("/") else key + "/") + only
    report = Report(uri)
    if key and not key.endswith("/") and layout.is_manifest(layout.key_name(key)):
        objects = {o.key: o for o in store.list(layout.key_folder(key))}
        targets = [key]
        if key not in objects:
            report.add(key, "manifest not found")
            return report
    else:
        prefix = key if not key or key.endswith("/") else key + "/"
        objects = {o.key: o for o in store.list(prefix) if not _reserved(o.key)}
        targets = [k for k in objects if layout.is_manifest(layout.key_name(k))]
    manifests = _read_manifests(store, objects, report)
    provider = _key_provider(local_root)
    with tempfile.TemporaryDirectory(prefix="dpexport-verify-") as scratch:
        for mkey in targets:
            _verify_manifest(store, manifests[mkey], objects, report, provider, Path(scratch))
    check_folders(store, objects, manifests, report.add)
    return report


def _read_manifests(
    store: Store, objects: dict[str, ObjectInfo], report: Report
) -> dict[str, Manifest]:
    found = {}
    for key in objects:
        if layout.is_manifest(layout.key_name(key)):
            try:
                raw = store.get(key)
            except NotFound:
                raw = b""  # removed since the listing: unreadable, as it is
                report.add(key, "manifest removed while it was verified")
            found[key] = parse_manifest(key, raw)
    return found


def _verify_manifest(
    store: Store,
    manifest: Manifest,
    objects: dict[str, ObjectInfo],
    report: Report,
    provider: KeyProvider | None,
    scratch: Path,
) -> None:
    """Check one manifest: its shape, then each file it lists and the file's sidecar."""
    report.manifests.append(manifest.key)
    for problem in manifest.problems:
        report.add(manifest.key, problem)
    if manifest.problems:
        return
    enc = manifest.encryption
    if provider is None and enc.get("client_side") and enc.get("kms_key"):
        # client-side files on a cloud store: their data keys are wrapped by its KMS
        from dpexport.security.kms import key_provider_for

        try:
            provider = key_provider_for(enc["kms_key"])
        except DpexportError as exc:
            report.add(manifest.key, f"encryption.kms_key {enc['kms_key']!r} unusable: {exc}")
            return
    for entry in manifest.entries:
        fkey = manifest.folder + entry.name
        info = objects.get(fkey)
        if info is None:
            report.add(fkey, f"missing (listed in {manifest.key})")
            continue
        report.files += 1
        rows = _check_file(store, info, entry, manifest, report, provider, scratch)
        if rows is not None:
            report.rows += rows
        _check_sidecar(store, entry, manifest, objects, report)


def _check_file(
    store: Store,
    info: ObjectInfo,
    entry: Entry,
    manifest: Manifest,
    report: Report,
    provider: KeyProvider | None,
    scratch: Path,
) -> int | None:
    """Size, sha256 and rows of one listed file against its entry; the rows read."""
    fkey, fmt, codec = info.key, manifest.format, manifest.compression
    if info.size != entry.bytes:
        report.add(fkey, f"size {info.size} != manifest {entry.bytes} (truncated or replaced)")
    try:
        path, downloaded = local_copy(store, fkey, scratch)  # one read of the object
    except (NotFound, OSError) as exc:
        report.add(fkey, f"unreadable: {exc}")
        return None
    try:
        digest, _ = sha256_of_file(path)
        if "sha256:" + digest != entry.checksum:
            report.add(fkey, "sha256 does not match the manifest")
            return None
        rows = count_rows(
            path, fmt, codec, csv=manifest.csv, jsonl=manifest.jsonl, decryptor=provider
        )
    except (DpexportError, OSError, ValueError, TypeError, LookupError) as exc:
        # TypeError, LookupError: a manifest's text settings of the wrong kind
        report.add(fkey, f"unreadable as {fmt}/{codec}: {exc}")
        return None
    finally:
        if downloaded:
            path.unlink(missing_ok=True)
    if rows != entry.rows:
        report.add(fkey, f"{rows} rows, manifest says {entry.rows}")
    return rows


def _check_sidecar(
    store: Store,
    entry: Entry,
    manifest: Manifest,
    objects: dict[str, ObjectInfo],
    report: Report,
) -> None:
    fkey = manifest.folder + entry.name
    skey = manifest.names.sidecar_of(fkey)
    if skey not in objects:
        report.add(skey, f"missing: the sidecar of {layout.key_name(fkey)} ({manifest.key})")
        return
    try:
        raw = store.get(skey)
    except NotFound:
        report.add(skey, f"missing: the sidecar of {layout.key_name(fkey)} ({manifest.key})")
        return
    for problem in sidecar_problems(raw, entry, manifest):
        report.add(skey, problem)
