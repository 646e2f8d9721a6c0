"""CONTRACT §11 principals on local folders: the three spec 6.1 service accounts (the demo
config carries the spec's ``service_accounts`` block as written) each do what their roles
allow and are refused the rest, exit 2 and nothing written; an unknown principal is exit
2 naming the configured ones; every export-log record names its principal, and ``logs
query`` and ``status`` filter by it. (Real cloud credentials per principal are
``test_credentials.py``'s.)"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.e2e.cli import Result, dpexport

AT = "2025-09-16T12:00:00Z"
SA = "@diagnostic-pro-start-up.iam.gserviceaccount.com"
BQ = "bigquery-exporter" + SA
CROSS = "cross-cloud-exporter" + SA
COMPLIANCE = "compliance-exporter" + SA
EXPORTS = "local/gs/diagnosticpro-exports/"
BILLING = EXPORTS + "prod/diagnosticpro_prod/financial/"  # CMEK
FEATURES = EXPORTS + "prod/diagnosticpro_ml/features/"  # not CMEK
KMS = "roles/cloudkms.cryptoKeyEncrypter"


def _cli(base: Path, *args: str, env: dict[str, str] | None = None) -> Result:
    return dpexport("-c", base / "dpexport.yaml", "--local-root", base / "local", *args, env=env)


def _tree(base: Path) -> dict[str, bytes]:
    root = base / "local"
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def _ok(base: Path, *args: str) -> Result:
    result = _cli(base, *args)
    assert result.code == 0, result.out + result.err
    return result


def _refused(base: Path, principal: str, words: tuple[str, ...], *args: str) -> None:
    """``args --as principal`` exits 2 naming the principal and ``words`` (the action and
    the missing role), and leaves the buckets byte for byte as they were."""
    before = _tree(base)
    result = _cli(base, *args, "--as", principal)
    assert result.code == 2, result.out + result.err
    for word in (principal, *words):
        assert word in result.err, result.err
    assert _tree(base) == before


def _records(base: Path) -> list[dict[str, object]]:
    logs = (base / EXPORTS / "export-logs").rglob("*.json")
    return [json.loads(p.read_text(encoding="utf-8")) for p in logs]


def test_each_spec_principal_does_what_its_roles_allow(demo_dir: Path) -> None:
    run_features = ("run", "--at", AT, "--table", "feature_store")
    run_billing = ("run", "--at", AT, "--table", "billing_transactions")
    # bigquery-exporter: reads and writes a table, not a CMEK one; no replication
    _ok(demo_dir, *run_features, "--as", BQ)
    assert list((demo_dir / FEATURES).rglob("SUCCESS"))
    _refused(demo_dir, BQ, ("may not run", KMS, "billing_transactions"), *run_billing)
    assert not (demo_dir / BILLING).exists()
    _refused(demo_dir, BQ, ("may not replicate", "roles/storage.objectViewer"), "replicate")
    # compliance-exporter: the CMEK export
    _ok(demo_dir, *run_billing, "--as", COMPLIANCE)
    assert list((demo_dir / BILLING).rglob("*.enc"))
    _refused(demo_dir, COMPLIANCE, ("may not replicate", "custom/aws-s3-writer"), "replicate")
    # cross-cloud-exporter: reads no table, replicates to S3 and Azure
    _refused(demo_dir, CROSS, ("may not run", "roles/bigquery.dataViewer"), *run_features)
    _ok(demo_dir, "replicate", "--as", CROSS)
    assert list((demo_dir / "local/s3/diagnosticpro-cross-cloud").rglob("SUCCESS"))
    assert list((demo_dir / "local/az/diagnosticpro/ml-training").rglob("SUCCESS"))
    # compact replaces a snapshot and lifecycle deletes: the bucket writer role, which
    # no spec principal holds beside the key role a CMEK table's snapshot needs
    writer = "roles/storage.legacyBucketWriter"
    compact = ("compact", "--table", "billing_transactions", "--at", AT)
    _refused(demo_dir, COMPLIANCE, ("may not compact", writer), *compact)
    _refused(demo_dir, BQ, ("may not compact", KMS), *compact)
    _refused(demo_dir, CROSS, ("may not lifecycle sweep", writer), "lifecycle", "sweep")
    _ok(demo_dir, "lifecycle", "sweep", "--dry-run", "--as", BQ)
    principals = {(r["table_name"], r["principal"]) for r in _records(demo_dir)}
    assert principals == {("feature_store", BQ), ("billing_transactions", COMPLIANCE)}


def test_an_unknown_principal_is_exit_2_naming_the_configured_ones(demo_dir: Path) -> None:
    for env, extra in (({}, ("--as", "evil@example.com")), ({"DPEXPORT_PRINCIPAL": "evil"}, ())):
        result = _cli(demo_dir, "run", "--at", AT, "--table", "feature_store", *extra, env=env)
        assert result.code == 2, result.err
        assert "unknown principal" in result.err
        assert all(p in result.err for p in (BQ, CROSS, COMPLIANCE)), result.err
    assert not (demo_dir / "local").exists()
    # $DPEXPORT_PRINCIPAL names the principal when --as does not, and is held to its roles
    env = {"DPEXPORT_PRINCIPAL": BQ}
    result = _cli(demo_dir, "run", "--at", AT, "--table", "billing_transactions", env=env)
    assert result.code == 2 and BQ in result.err and KMS in result.err, result.err


def test_without_a_name_the_only_principal_allowed_acts(demo_dir: Path) -> None:
    _ok(demo_dir, "run", "--at", AT, "--table", "billing_transactions", "--table", "users")
    _ok(demo_dir, "replicate")  # only cross-cloud-exporter may
    assert {r["principal"] for r in _records(demo_dir)} == {COMPLIANCE}
    # a second principal with the same roles: no single one, so --as is asked for
    config = demo_dir / "dpexport.yaml"
    twin = "  twin-exporter:\n    roles: [roles/bigquery.dataViewer, roles/storage."
    twin += f"objectCreator, {KMS}]\n"
    text = config.read_text(encoding="utf-8")
    config.write_text(text.replace("service_accounts:\n", "service_accounts:\n" + twin, 1))
    before = _tree(demo_dir)
    result = _cli(demo_dir, "run", "--at", "2025-09-17T12:00:00Z", "--table", "users")
    assert result.code == 2, result.err
    assert "several principals" in result.err and "--as" in result.err
    assert "twin-exporter" in result.err and COMPLIANCE in result.err
    assert _tree(demo_dir) == before


def test_records_name_the_principal_and_logs_and_status_filter_by_it(demo_dir: Path) -> None:
    _ok(demo_dir, "run", "--at", AT, "--table", "feature_store", "--as", BQ)
    _ok(demo_dir, "run", "--at", AT, "--table", "billing_transactions")  # compliance
    sql = f"SELECT table_name, principal FROM export_logs WHERE principal = '{BQ}'"
    rows = json.loads(_ok(demo_dir, "logs", "query", sql, "--json").out)
    assert rows == [{"table_name": "feature_store", "principal": BQ}]

    def last_exports(*extra: str) -> dict[str, object]:
        docs = json.loads(_ok(demo_dir, "status", "--json", *extra).out)
        return {d["table"]: d["last_export"] for d in docs}

    everyone = last_exports()
    assert everyone["feature_store"] and everyone["billing_transactions"]
    mine = last_exports("--principal", COMPLIANCE)
    assert mine["billing_transactions"] == everyone["billing_transactions"]
    assert mine["feature_store"] is None


def test_without_service_accounts_nothing_is_enforced(demo_dir: Path) -> None:
    config = demo_dir / "dpexport.yaml"
    text = config.read_text(encoding="utf-8")
    start, end = text.index("service_accounts:"), text.index("# Spec 6.2")
    config.write_text(text[:start] + text[end:], encoding="utf-8")
    run = ("run", "--at", AT, "--table", "billing_transactions")
    _ok(demo_dir, *run, "--as", "anyone@example.com")
    _ok(demo_dir, "run", "--at", AT, "--table", "feature_store")
    principals = {(r["table_name"], r["principal"]) for r in _records(demo_dir)}
    assert principals == {
        ("billing_transactions", "anyone@example.com"),
        ("feature_store", "dpexport"),
    }


def test_the_python_api_refuses_before_any_work(demo_dir: Path) -> None:
    import dpexport as api
    from dpexport.security.principals import PermissionRefused

    config, root = demo_dir / "dpexport.yaml", demo_dir / "local"
    with pytest.raises(PermissionRefused, match=r"roles/bigquery\.dataViewer") as refused:
        api.run(config, tables="feature_store", principal=CROSS, local_root=root)
    assert refused.value.exit_code == 2
    with pytest.raises(PermissionRefused, match=r"custom/azure-blob-writer"):
        api.replicate(config, tables="feature_store", principal=BQ, local_root=root)
    with pytest.raises(PermissionRefused, match=r"lifecycle apply"):
        api.lifecycle_apply(config, principal=COMPLIANCE, local_root=root)
    assert not root.exists()


def test_dlq_retry_acts_as_a_principal_allowed_to_export_the_entry(demo_dir: Path) -> None:
    from datetime import UTC, datetime

    from dpexport.errors import NotFound
    from dpexport.reliability import dlq
    from dpexport.storage.local import LocalStore

    failed_at = datetime(2025, 9, 16, 12, tzinfo=UTC)
    request = dlq.export_request(
        table="diagnosticpro_prod.feature_store", at=failed_at, trigger="cron", export_id="e1"
    )
    error = dlq.error_details(NotFound("gone", table="feature_store"), now=failed_at)
    dlq.record_failure(LocalStore(demo_dir / EXPORTS), "e1", request, error, [])
    retry = ("dlq", "retry", "e1", "--now", "2025-09-16T13:00:00Z")
    _refused(demo_dir, CROSS, ("may not dlq retry", "roles/bigquery.dataViewer"), *retry)
    _ok(demo_dir, *retry, "--as", BQ)
    assert [(r["table_name"], r["principal"]) for r in _records(demo_dir)] == [
        ("feature_store", BQ)
    ]
