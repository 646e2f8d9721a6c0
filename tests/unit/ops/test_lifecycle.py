"""``lifecycle sweep`` and ``apply`` on local stores: back-dated objects (os.utime) and an
injected ``now``. Due objects are deleted; anything under a retention rule stays until
the retention ends (then it goes like the rest); live owners, commit journals and live
leases keep what they protect."""

from __future__ import annotations

import json
import os
import socket
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from dpexport.cli import cli
from dpexport.config import load_config_text
from dpexport.ops.lifecycle import apply_rules
from dpexport.ops.sweep import sweep
from dpexport.publish.commit import Owner
from dpexport.storage.local import LocalStore

NOW = datetime(2025, 9, 16, 12, 0, tzinfo=UTC)
CONFIG = """
project: diagnostic-pro-start-up
environment: prod
buckets: {exports: gs://exports-bucket}
exports:
  - source: diagnosticpro_prod.billing_transactions
    destination: gs://exports-bucket/prod/diagnosticpro_prod/financial/
    format: PARQUET
    mode: APPEND
    compliance: [PCI_DSS_compliant, SOX_compliant]
  - source: diagnosticpro_prod.feature_store
    destination: gs://exports-bucket/prod/diagnosticpro_ml/features/
    format: PARQUET
    mode: APPEND
  - source: diagnosticpro_prod.audit_logs
    destination: gs://exports-bucket/test/diagnosticpro_prod/audit_logs/
    format: PARQUET
    mode: APPEND
    compliance: [SOC2_audit_trail]
replication:
  - name: disaster-recovery
    tables: [diagnosticpro_prod.billing_transactions]
    target: s3://cross-bucket/disaster-recovery/
bucket_policies:
  exports-bucket:
    versioning: enabled
    lifecycle_rules:
      - {age: 30, action: "SetStorageClass:NEARLINE"}
lifecycle_policies:
  30_days: {action: "Transition to NEARLINE"}
  90_days: {action: "Transition to COLDLINE"}
  365_days: {action: "Transition to ARCHIVE"}
  auto_delete: {temp_exports: "7 days", failed_exports: "30 days", test_exports: "1 day"}
"""
FIN = "prod/diagnosticpro_prod/financial/"
FEAT = "prod/diagnosticpro_ml/features/"
TOK = "idempotency-tokens/"
DLQ = "dead-letter-queue/"


def _owner(alive: bool) -> bytes:
    me = Owner.me()
    owner = me if alive else Owner(socket.gethostname(), me.pid, "not-a-start-time")
    return json.dumps(asdict(owner)).encode()


def _lease(export_id: str, expires: datetime, alive: bool = True) -> bytes:
    holder = json.loads(_owner(alive))
    return json.dumps(
        {"holder": holder, "export_id": export_id, "expires": f"{expires:%Y-%m-%dT%H:%M:%SZ}"}
    ).encode()


#: key -> (age in days, bytes or None for a small placeholder)
OBJECTS: dict[str, tuple[float, bytes | None]] = {
    # temp exports
    "_staging/exp_dead/part-00001.parquet": (8, None),
    "_staging/exp_dead/_owner.json": (8, _owner(False)),
    "_staging/exp_alive/part-00001.parquet": (8, None),
    "_staging/exp_alive/_owner.json": (8, _owner(True)),
    "_staging/exp_journal/_owner.json": (8, _owner(False)),
    "_staging/exp_journal/_commit.json": (8, b"{}"),
    "_staging/exp_young/_owner.json": (2, _owner(False)),
    # failed exports: FAILURE-only folders and DLQ entries
    FEAT + "2025/07/01/FAILURE": (31, None),
    FEAT + "2025/07/02/FAILURE": (31, None),
    FEAT + "2025/07/02/SUCCESS": (31, None),
    FEAT + "2025/09/10/FAILURE": (6, None),
    FIN + "2020/01/FAILURE": (2000, None),  # a financial table's folder: 7 years kept
    FIN + "2018/01/FAILURE": (2800, None),  # past the 7 years: due like any other
    DLQ + "failed_exports/exp_f1/export_request.json": (31, None),
    DLQ + "failed_exports/exp_f1/error_details.json": (31, None),
    DLQ + "failed_exports/exp_f2/error_details.json": (10, None),
    # the rest of the DLQ: 90 days
    DLQ + "poison_messages/exp_p1.json": (91, None),
    DLQ + "poison_messages/exp_p1.failure_reason.txt": (91, None),
    DLQ + "poison_messages/exp_p2.json": (50, None),
    DLQ + "quarantined_rows/exp_q1/feature_store.jsonl.gz": (100, None),
    DLQ + "quarantined_rows/exp_q2/billing_transactions.jsonl.gz": (100, None),
    # tokens: 7 days, never one a live lease works on
    TOK + "feature_store_20250901_1_aaaa.json": (8, b'{"status": "DONE", "export_id": "e1"}'),
    TOK + "feature_store_20250902_2_bbbb.json": (8, b'{"status": "DONE", "export_id": "e2"}'),
    TOK + "users_20250903_3_cccc.json": (3, b'{"status": "DONE", "export_id": "e3"}'),
    TOK + "_leases/diagnosticpro_prod.feature_store.json": (
        0,
        _lease("e2", NOW + timedelta(minutes=1)),
    ),
    TOK + "_leases/diagnosticpro_prod.users.json": (9, _lease("e9", NOW - timedelta(days=9))),
    # test exports: 1 day, whole folders
    "test/diagnosticpro_prod/users/2025/09/14/users_1.parquet": (2, None),
    "test/diagnosticpro_prod/users/2025/09/14/manifest_20250914_000000.json": (2, None),
    "test/diagnosticpro_prod/users/2025/09/14/SUCCESS": (2, None),
    "test/diagnosticpro_prod/users/2025/09/16/SUCCESS": (0.5, None),
    "test/diagnosticpro_prod/audit_logs/2025/09/01/SUCCESS": (15, None),  # compliance table
    "test/financial-records/2019/ledger.parquet": (2000, None),  # spec 1.4's folder
    # committed exports: no rule touches them
    FEAT + "2025/01/01/SUCCESS": (400, None),
    FEAT + "2025/01/01/f.parquet": (400, None),
}
DELETED = {
    "_staging/exp_dead/part-00001.parquet",
    "_staging/exp_dead/_owner.json",
    FEAT + "2025/07/01/FAILURE",
    FIN + "2018/01/FAILURE",
    DLQ + "failed_exports/exp_f1/export_request.json",
    DLQ + "failed_exports/exp_f1/error_details.json",
    DLQ + "poison_messages/exp_p1.json",
    DLQ + "poison_messages/exp_p1.failure_reason.txt",
    DLQ + "quarantined_rows/exp_q1/feature_store.jsonl.gz",
    TOK + "feature_store_20250901_1_aaaa.json",
    TOK + "_leases/diagnosticpro_prod.users.json",
    "test/diagnosticpro_prod/users/2025/09/14/users_1.parquet",
    "test/diagnosticpro_prod/users/2025/09/14/manifest_20250914_000000.json",
    "test/diagnosticpro_prod/users/2025/09/14/SUCCESS",
}


@pytest.fixture
def bucket(tmp_path: Path) -> tuple[Any, Path, LocalStore]:
    root = tmp_path / "root"
    store = LocalStore(root / "gs" / "exports-bucket", url="gs://exports-bucket")
    for key, (age, data) in OBJECTS.items():
        store.put_bytes(key, data if data is not None else b"x" * 10)
        when = (NOW - timedelta(days=age)).timestamp()
        os.utime(store.root / key, (when, when))
    return load_config_text(CONFIG), root, store


def _keys(store: LocalStore) -> set[str]:
    return {o.key for o in store.list("")}


def test_sweep_deletes_what_is_due_and_keeps_the_rest(bucket: Any) -> None:
    config, root, store = bucket
    items, errors = sweep(config, now=NOW, local_root=root)
    assert errors == []
    assert _keys(store) == set(OBJECTS) - DELETED
    by_what = {i.what: i for i in items}
    assert by_what["_staging/exp_alive/"].status == "kept"
    assert "alive" in str(by_what["_staging/exp_alive/"].reason)
    assert "journal" in str(by_what["_staging/exp_journal/"].reason)
    assert by_what[TOK + "feature_store_20250902_2_bbbb.json"].status == "kept"
    assert "lease" in str(by_what[TOK + "feature_store_20250902_2_bbbb.json"].reason)


def test_retention_holds_until_it_ends(bucket: Any) -> None:
    config, root, store = bucket
    items, _ = sweep(config, now=NOW, local_root=root)
    retained = {
        i.what: i.reason
        for i in items
        if i.status == "kept" and str(i.reason).startswith("retention until ")
    }
    assert set(retained) == {
        FIN + "2020/01/",  # FAILURE-only, 5.5 years old, but billing is SOX/PCI
        DLQ + "quarantined_rows/exp_q2/",  # billing rows
        "test/diagnosticpro_prod/audit_logs/2025/09/01/",  # a compliance table
        "test/financial-records/2019/",
    }
    # written 2000 days before NOW, kept 7 years (2557 days): 557 days after NOW
    until = NOW - timedelta(days=2000) + timedelta(days=2557)
    assert retained[FIN + "2020/01/"] == (
        f"retention until {until:%Y-%m-%d} (retention 2557 days of "
        "diagnosticpro_prod.billing_transactions; financial 7 years: PCI_DSS_compliant, "
        "SOX_compliant)"
    )
    assert "compliance 10 years" in str(retained["test/diagnosticpro_prod/audit_logs/2025/09/01/"])
    assert "financial retention 7 years, financial-records/" in str(
        retained["test/financial-records/2019/"]
    )
    for what in retained:
        assert any(k.startswith(what) for k in _keys(store))


def test_dry_run_deletes_nothing(bucket: Any) -> None:
    config, root, store = bucket
    items, _ = sweep(config, now=NOW, local_root=root, dry_run=True)
    assert _keys(store) == set(OBJECTS)
    listed = {k for i in items if i.status == "would delete" for k in i.keys}
    assert listed == DELETED


def test_sweep_is_idempotent(bucket: Any) -> None:
    config, root, _ = bucket
    sweep(config, now=NOW, local_root=root)
    items, _ = sweep(config, now=NOW, local_root=root)
    assert not [i for i in items if i.status == "deleted"]


def test_missing_auto_delete_rule_deletes_nothing_of_its_kind(bucket: Any) -> None:
    _, root, store = bucket
    config = load_config_text(CONFIG.replace('test_exports: "1 day"', ""))
    sweep(config, now=NOW, local_root=root)
    assert "test/diagnosticpro_prod/users/2025/09/14/SUCCESS" in _keys(store)


def test_apply_on_local_folders_says_nothing_applies(bucket: Any) -> None:
    config, root, _ = bucket
    results = apply_rules(config, local_root=root)
    assert [r.store for r in results] == ["gs://exports-bucket", "s3://cross-bucket"]
    for r in results:
        assert r.applied == [] and r.error is None
        assert "local folder" in r.not_applied[0] and "sweep" in r.not_applied[0]


def test_cli_sweep(bucket: Any, tmp_path: Path) -> None:
    _, root, store = bucket
    (tmp_path / "dpexport.yaml").write_text(CONFIG, encoding="utf-8")
    base = ["-c", str(tmp_path / "dpexport.yaml"), "--local-root", str(root), "lifecycle"]
    now = ["--now", "2025-09-16T12:00:00Z"]
    dry = CliRunner().invoke(cli, [*base, "sweep", "--dry-run", *now])
    assert dry.exit_code == 0, dry.output
    assert f"would delete {len(DELETED)} object(s)" in dry.output
    assert _keys(store) == set(OBJECTS)
    done = CliRunner().invoke(cli, [*base, "sweep", "--json"], env={"DPEXPORT_NOW": now[1]})
    assert done.exit_code == 0, done.output
    assert {k for d in json.loads(done.output) if d["status"] == "deleted" for k in d["keys"]} == (
        DELETED
    )
    applied = CliRunner().invoke(cli, [*base, "apply"])
    assert applied.exit_code == 0 and "not applied: local folder" in applied.output
