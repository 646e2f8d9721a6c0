"""``replicate``: committed exports only, publication order, checksums read back at the
target, idempotent, resumable after an interruption (local stores under --local-root)."""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from dpexport.cli import cli
from dpexport.config import load_config_text
from dpexport.config.spec import ResolvedConfig
from dpexport.errors import UsageError
from dpexport.ops.replicate import replicate
from dpexport.publish.audit import verify_uri
from dpexport.storage import layout
from dpexport.storage.base import ObjectInfo, Store
from dpexport.storage.local import LocalStore
from dpexport.storage.uri import StoreResolver

CONFIG = """
project: diagnostic-pro-start-up
environment: prod
buckets: {exports: gs://exports-bucket}
exports:
  - source: diagnosticpro_prod.billing_transactions
    destination: gs://exports-bucket/prod/diagnosticpro_prod/financial/
    format: PARQUET
    partitioning: {field: transaction_date, granularity: monthly}
    mode: APPEND
    compliance: [PCI_DSS_compliant, SOX_compliant]
  - source: diagnosticpro_prod.feature_store
    destination: gs://exports-bucket/prod/diagnosticpro_ml/features/
    format: PARQUET
    mode: APPEND
replication:
  - name: disaster-recovery
    tables: [diagnosticpro_prod.billing_transactions]
    target: s3://cross-bucket/disaster-recovery/
  - name: ml-training
    tables: [feature_store]
    target: az://diag/ml-training/
"""
SOURCE = "prod/diagnosticpro_prod/financial/"
TARGET = "disaster-recovery/diagnosticpro_prod/billing_transactions/"


def parquet(rows: int, seed: int = 0) -> bytes:
    buf = io.BytesIO()
    pq.write_table(pa.table({"id": list(range(seed, seed + rows))}), buf)
    return buf.getvalue()


def write_export(
    store: Store, folder: str, files: dict[str, bytes], stamp: str, *, commit: bool = True
) -> None:
    """A committed export as the commit protocol leaves it: data, sidecars, manifest, SUCCESS."""
    entries = []
    for rel, data in files.items():
        rows = pq.read_table(io.BytesIO(data)).num_rows
        checksum = "sha256:" + hashlib.sha256(data).hexdigest()
        entries.append({"name": rel, "rows": rows, "bytes": len(data), "checksum": checksum})
        store.put_bytes(folder + rel, data)
        sidecar = {
            **entries[-1],
            "name": rel.rsplit("/", 1)[-1],
            "export_id": f"exp_{stamp}",
            "format": "PARQUET",
            "compression": "SNAPPY",
        }
        store.put_bytes(folder + rel + layout.SIDECAR_SUFFIX, json.dumps(sidecar).encode())
    manifest = f"manifest_{stamp}.json"
    doc = {
        "export_id": f"exp_{stamp}",
        "destination": {"format": "PARQUET", "compression": "SNAPPY"},
        "statistics": {"row_count": sum(e["rows"] for e in entries)},
        "files": entries,
    }
    store.put_bytes(folder + manifest, json.dumps(doc).encode())
    if commit:
        key = folder + layout.SUCCESS
        names = json.loads(store.get(key))["manifests"] if store.head(key) else []
        marker = {"status": "SUCCESS", "manifest": manifest, "manifests": [*names, manifest]}
        store.put_bytes(key, json.dumps(marker).encode())


class Recording:
    """A store wrapper that logs writes and reads, and can fail after N uploads."""

    def __init__(self, inner: Store, fail_after: int | None = None) -> None:
        self.inner = inner
        self.fail_after = fail_after
        self.writes: list[str] = []
        self.reads: list[str] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def _write(self, key: str) -> None:
        if self.fail_after is not None and len(self.writes) >= self.fail_after:
            raise RuntimeError("killed")  # not an ExportError: the run stops here
        self.writes.append(key)

    def put_file(self, key: str, source: Path) -> ObjectInfo:
        self._write(key)
        return self.inner.put_file(key, source)

    def put_bytes(self, key: str, data: bytes) -> ObjectInfo:
        if not key.startswith(layout.REPLICATION_STATE_PREFIX):
            self._write(key)
        return self.inner.put_bytes(key, data)

    def open_read(self, key: str) -> Any:
        self.reads.append(key)
        return self.inner.open_read(key)


@pytest.fixture
def setup(tmp_path: Path) -> tuple[ResolvedConfig, Path, LocalStore]:
    config = load_config_text(CONFIG)
    root = tmp_path / "root"
    src = LocalStore(root / "gs" / "exports-bucket", url="gs://exports-bucket")
    write_export(src, SOURCE + "2025/08/", {"a.parquet": parquet(5)}, "20250901_000000")
    write_export(src, SOURCE + "2025/09/", {"b.parquet": parquet(7, 5)}, "20250916_000000")
    files = {"shard=1/c.parquet": parquet(3, 20), "d.parquet": parquet(4, 30)}
    write_export(src, SOURCE + "2025/09/", files, "20250917_000000")
    # not committed: a folder without SUCCESS, an unlisted file, staging leftovers
    write_export(
        src, SOURCE + "2025/10/", {"e.parquet": parquet(2)}, "20251001_000000", commit=False
    )
    src.put_bytes(SOURCE + "2025/09/orphan.parquet", parquet(1))
    src.put_bytes("_staging/exp_x/part-00001.parquet", parquet(1))
    return config, root, src


def _target(root: Path) -> Path:
    return root / "s3" / "cross-bucket"


def _opener(root: Path, wrap: dict[str, Recording]) -> Any:
    resolver = StoreResolver(root)

    def resolve(uri: str) -> tuple[Store, str]:
        store, key = resolver.resolve(uri)
        return wrap.get(store.url, store), key

    return resolve


def test_copies_committed_exports_in_publication_order(setup: Any) -> None:
    config, root, _ = setup
    tgt = Recording(LocalStore(_target(root), url="s3://cross-bucket"))
    (report,) = replicate(
        config, tables=["billing_transactions"], opener=_opener(root, {tgt.url: tgt})
    )
    assert report.ok, report
    assert report.target == "s3://cross-bucket/" + TARGET
    assert (report.folders, report.copied, report.skipped) == (2, 13, 0)
    got = sorted(p.relative_to(_target(root)).as_posix() for p in _target(root).rglob("*"))
    got = [g for g in got if (_target(root) / g).is_file() and not g.startswith("_state/")]
    assert got == sorted(
        TARGET + f
        for f in [
            "2025/08/a.parquet",
            "2025/08/a.parquet.metadata.json",
            "2025/08/manifest_20250901_000000.json",
            "2025/08/SUCCESS",
            "2025/09/b.parquet",
            "2025/09/b.parquet.metadata.json",
            "2025/09/d.parquet",
            "2025/09/d.parquet.metadata.json",
            "2025/09/shard=1/c.parquet",
            "2025/09/shard=1/c.parquet.metadata.json",
            "2025/09/manifest_20250916_000000.json",
            "2025/09/manifest_20250917_000000.json",
            "2025/09/SUCCESS",
        ]
    )
    # per folder: data, then sidecars, then manifests, SUCCESS last
    sept = [k.rsplit("2025/09/", 1)[1] for k in tgt.writes if "2025/09/" in k]
    kinds = [
        3 if k == "SUCCESS" else 2 if k.startswith("manifest_") else 1 if "metadata" in k else 0
        for k in sept
    ]
    assert kinds == sorted(kinds) and kinds[-1] == 3
    # the copy verifies as an export: checksums, rows, no unlisted file
    assert verify_uri("s3://cross-bucket/" + TARGET, local_root=root).ok
    # the copy's bytes are the source's
    src_success = root / "gs/exports-bucket" / SOURCE / "2025/09/SUCCESS"
    assert (_target(root) / TARGET / "2025/09/SUCCESS").read_bytes() == src_success.read_bytes()


def test_second_run_copies_nothing_and_reads_nothing_back(setup: Any) -> None:
    config, root, _ = setup
    replicate(config, local_root=root)
    tgt = Recording(LocalStore(_target(root), url="s3://cross-bucket"))
    reports = replicate(config, opener=_opener(root, {tgt.url: tgt}))
    billing = next(r for r in reports if r.table.endswith("billing_transactions"))
    assert (billing.copied, billing.skipped, billing.bytes) == (0, 13, 0)
    assert tgt.writes == [] and tgt.reads == []  # the state vouches for the checksums


def test_interrupted_run_resumes(setup: Any) -> None:
    config, root, _ = setup
    tgt = Recording(LocalStore(_target(root), url="s3://cross-bucket"), fail_after=7)
    with pytest.raises(RuntimeError, match="killed"):
        replicate(config, tables=["billing_transactions"], opener=_opener(root, {tgt.url: tgt}))
    # 2025/08 finished (4 objects), 2025/09 has 3 data files and no SUCCESS yet
    assert (_target(root) / TARGET / "2025/08/SUCCESS").exists()
    assert not (_target(root) / TARGET / "2025/09/SUCCESS").exists()
    (report,) = replicate(config, tables=["billing_transactions"], local_root=root)
    assert report.ok
    assert (report.copied, report.skipped) == (13 - 7, 7)
    assert verify_uri("s3://cross-bucket/" + TARGET, local_root=root).ok


def test_damaged_target_object_is_copied_again(setup: Any) -> None:
    config, root, _ = setup
    replicate(config, tables=["billing_transactions"], local_root=root)
    copy = _target(root) / TARGET / "2025/09/b.parquet"
    data = bytearray(copy.read_bytes())
    data[10] ^= 0xFF  # same size, other bytes
    copy.write_bytes(bytes(data))
    (report,) = replicate(config, tables=["billing_transactions"], local_root=root)
    assert report.ok and (report.copied, report.skipped) == (1, 12)
    assert verify_uri("s3://cross-bucket/" + TARGET, local_root=root).ok


def test_source_that_fails_its_manifest_is_a_mismatch(setup: Any) -> None:
    config, root, _ = setup
    bad = root / "gs/exports-bucket" / SOURCE / "2025/09/d.parquet"
    data = bytearray(bad.read_bytes())
    data[10] ^= 0xFF
    bad.write_bytes(bytes(data))
    (report,) = replicate(config, tables=["billing_transactions"], local_root=root)
    assert not report.ok and len(report.mismatches) == 1
    assert "d.parquet" in report.mismatches[0]
    # the folder is not committed at the target; the healthy one is
    assert not (_target(root) / TARGET / "2025/09/SUCCESS").exists()
    assert (_target(root) / TARGET / "2025/08/SUCCESS").exists()


def test_cli_replicate(setup: Any, tmp_path: Path) -> None:
    _, root, _ = setup
    (tmp_path / "dpexport.yaml").write_text(CONFIG, encoding="utf-8")
    args = ["-c", str(tmp_path / "dpexport.yaml"), "--local-root", str(root), "replicate"]
    result = CliRunner().invoke(cli, [*args, "--json"])
    assert result.exit_code == 0, result.output
    docs = {d["table"]: d for d in json.loads(result.output)}
    billing = docs["diagnosticpro_prod.billing_transactions"]
    assert (billing["copied"], billing["mismatches"]) == (13, [])
    # feature_store has no export yet: nothing to copy, not an error
    assert docs["diagnosticpro_prod.feature_store"]["folders"] == 0
    again = CliRunner().invoke(cli, [*args, "--table", "billing_transactions"])
    assert again.exit_code == 0 and "copied 0 (0 bytes), skipped 13" in again.output
    unknown = CliRunner().invoke(cli, [*args, "--table", "nope"])
    assert isinstance(unknown.exception, UsageError)  # main() turns it into exit 2
