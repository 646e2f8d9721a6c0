"""Cost in USD (spec 10.1, CONTRACT §12) as a user sees it: ``plan`` per table and in
total, a price overridden in ``pricing:``, and a run's cost in its manifest, its export
log (summed by ``logs query``), ``status --json`` and ``replicate``'s report."""

from __future__ import annotations

import json
import re
from decimal import Decimal
from pathlib import Path
from typing import Any

from tests.bq_emulator import BQEmulator, bq, load_demo  # noqa: F401 - the fixture
from tests.e2e.cli import dpexport, run_ok

AT = "2025-09-20T00:00:00Z"
GIB = 1024**3
MICRO = Decimal("0.000001")


def _plan(config: Path, root: Path, *args: str) -> Any:
    result = dpexport("-c", config, "--local-root", root, "plan", "--at", AT, *args)
    assert result.code == 0, result.err
    return json.loads(result.out) if "--json" in args else result.out


def _d(value: float) -> Decimal:
    return Decimal(str(value))


def test_plan_prints_a_cost_per_table_and_a_total(demo_dir: Path) -> None:
    config, root = demo_dir / "dpexport.yaml", demo_dir / "buckets"
    text = _plan(config, root)
    tables = re.findall(r"^(\S+)  (?:APPEND|FULL_REFRESH|INCREMENTAL)", text, re.MULTILINE)
    costs = re.findall(r"^  cost +\$(\d+\.\d{6}): warehouse \$", text, re.MULTILINE)
    assert len(tables) == len(costs) == 15, text
    (total,) = re.findall(r"^total cost +\$(\d+\.\d{6}) for 15 table\(s\)", text, re.MULTILINE)
    assert Decimal(total) == sum(Decimal(c) for c in costs)
    assert Decimal(total) > 0
    plans = {p["table"].split(".")[1]: p for p in _plan(config, root, "--json")}
    telemetry = plans["sensor_telemetry"]["cost_usd"]
    assert telemetry["warehouse"]["engine"] == "duckdb"
    assert telemetry["warehouse"]["usd"] == 0.0  # DuckDB bills nothing
    assert telemetry["store"] == "gs"
    assert telemetry["storage"]["by_class"]["STANDARD"]["bytes"] > 0
    # every file with its sidecar, and a manifest and a marker per top-level folder
    assert telemetry["operations"]["class_a"] >= 4 * telemetry["operations"]["class_b"] > 0
    assert [f"{p['cost_usd']['total']:.6f}" for p in plans.values()] == costs


def test_a_price_override_changes_the_estimate_by_the_exact_amount(demo_dir: Path) -> None:
    config, root = demo_dir / "dpexport.yaml", demo_dir / "buckets"
    before = {p["table"]: p["cost_usd"] for p in _plan(config, root, "--json")}
    with config.open("a", encoding="utf-8") as f:  # GCS class A: 0.005 -> 1.005 per 1,000
        f.write("\npricing:\n  operations:\n    gs: {class_a: 1.005}\n")
    after = {p["table"]: p["cost_usd"] for p in _plan(config, root, "--json")}
    assert before.keys() == after.keys()
    for table, old in before.items():
        writes = old["operations"]["class_a"]
        assert after[table]["operations"]["class_a"] == writes
        delta = _d(after[table]["total"]) - _d(old["total"])
        assert delta == Decimal(writes) / 1000, table  # writes x (1.005 - 0.005) / 1000
    assert any(c["operations"]["class_a"] for c in before.values())


def _manifest(root: Path, uri: str) -> dict[str, Any]:
    return json.loads((root / "gs" / uri.removeprefix("gs://")).read_text(encoding="utf-8"))


def test_a_run_records_its_cost_in_manifest_log_status_and_logs_query(demo_dir: Path) -> None:
    config, root = demo_dir / "dpexport.yaml", demo_dir / "buckets"
    tables = ("--table", "sensor_telemetry", "--table", "users", "--json")
    first = json.loads(run_ok(config, root, "2025-09-15T14:30:22Z", *tables).out)
    second = json.loads(run_ok(config, root, AT, "--table", "sensor_telemetry", "--json").out)
    spent: dict[str, list[dict[str, Any]]] = {}
    for result in first + second:
        assert result["status"] == "SUCCESS", result
        breakdown = result["cost_usd"]
        spent.setdefault(result["table"], []).append(breakdown)
        manifests = [_manifest(root, uri) for uri in result["manifests"]]
        for doc in manifests:
            assert doc["metadata"]["cost_usd"] == breakdown
        stored = sum(doc["statistics"]["compressed_size"] for doc in manifests)
        month = float((Decimal(stored) / GIB * Decimal("0.02")).quantize(MICRO))
        assert breakdown["storage"]["by_class"] == {
            "STANDARD": {"bytes": stored, "usd_per_month": month}
        }
        assert breakdown["operations"]["class_a"] == 2 * result["files"] + 2 * len(manifests)
        assert breakdown["total"] > 0
    logs = sorted((root / "gs" / "diagnosticpro-exports").rglob("export-logs/**/*.json"))
    records = {json.loads(p.read_text())["export_id"]: json.loads(p.read_text()) for p in logs}
    for result in first + second:
        assert records[result["export_id"]]["cost_usd"] == result["cost_usd"]
    status = dpexport("-c", config, "--local-root", root, "status", "--json")
    assert status.code == 0, status.err
    by_table = {s["table"]: s for s in json.loads(status.out)}
    assert by_table["sensor_telemetry"]["cost_usd"] == second[0]["cost_usd"]
    assert by_table["users"]["cost_usd"] == first[1]["cost_usd"]
    assert by_table["audit_logs"]["cost_usd"] is None  # never exported
    sql = (
        "SELECT table_name, FORMAT_TIMESTAMP('%Y-%m', export_timestamp) AS month, "
        "SUM(cost_usd) AS usd, COUNT(*) AS n FROM export_logs GROUP BY 1, 2 ORDER BY 1"
    )
    query = dpexport("-c", config, "--local-root", root, "logs", "query", sql, "--json")
    assert query.code == 0, query.err
    rows = json.loads(query.out)
    assert [(r["table_name"], r["n"]) for r in rows] == [("sensor_telemetry", 2), ("users", 1)]
    for row in rows:
        expected = sum(_d(b["total"]) for b in spent[row["table_name"]])
        assert _d(row["usd"]).quantize(MICRO) == expected
        assert re.fullmatch(r"\d{4}-\d{2}", row["month"])


def test_replicate_reports_the_egress_between_clouds(demo_dir: Path) -> None:
    config, root = demo_dir / "dpexport.yaml", demo_dir / "buckets"
    run_ok(config, root, AT, "--table", "billing_transactions")
    with config.open("a", encoding="utf-8") as f:  # GCS -> S3 egress: 0.12 -> 1024 per GiB
        f.write("\npricing:\n  egress:\n    gs: {s3: 1024}\n")
    args = ("-c", config, "--local-root", root, "replicate", "--json")
    result = dpexport(*args, "--table", "billing_transactions")
    assert result.code == 0, result.err
    (report,) = json.loads(result.out)
    copied = report["bytes"]
    assert copied > 0
    spent = report["cost_usd"]
    assert spent["egress"]["bytes"] == copied
    exact = (Decimal(copied) / GIB * 1024).quantize(MICRO)
    assert _d(spent["egress"]["usd"]) == exact
    assert (spent["store"], spent["operations"]["class_a"]) == ("s3", report["copied"])


BIGQUERY = """\
project: test
warehouse:
  engine: bigquery
  project: {project}
  location: US
  api_endpoint: {rest}
  storage_api_endpoint: {grpc}
buckets: {{exports: gs://{bucket}}}
exports:
  - source: diagnosticpro_prod.dtc_code_definitions
    destination: gs://{bucket}/prod/diagnosticpro_prod/dtc_code_definitions/
    format: PARQUET
    compression: SNAPPY
    mode: FULL_REFRESH
pricing:
  warehouse: {{bigquery: {{per_tib: 5}}}}
"""


def test_a_bigquery_export_records_its_jobs_bytes_in_its_cost(
    bq: BQEmulator,  # noqa: F811
    demo_warehouse: Path,
    tmp_path: Path,
) -> None:
    """bqemulator reports ``totalBytesProcessed`` 0 and no ``totalBytesBilled`` for
    every job (a dry run too): the cost carries exactly what its jobs reported, and
    how many jobs it metered (the EXPORT DATA jobs the manifest names among them)."""
    import os

    load_demo(bq, demo_warehouse, ["dtc_code_definitions"])
    root = Path(os.environ["DPEXPORT_TEST_BQ_LOCAL_ROOT"])
    bucket = f"bq-cost-{bq.project}"
    config = tmp_path / "dpexport.yaml"
    config.write_text(
        BIGQUERY.format(project=bq.project, rest=bq.rest, grpc=bq.grpc, bucket=bucket)
    )
    (planned,) = _plan(config, root, "--json")
    assert planned["cost_usd"]["warehouse"] == {
        "engine": "bigquery", "bytes": 0, "jobs": 1, "usd": 0.0
    }  # fmt: skip
    at = ("--at", "2025-09-16T14:30:22Z")
    result = dpexport("-c", config, "--local-root", root, "run", *at, "--json")
    assert result.code == 0, result.err
    (exported,) = json.loads(result.out)
    warehouse = exported["cost_usd"]["warehouse"]
    manifest = _manifest(root, exported["manifests"][0])
    assert manifest["metadata"]["cost_usd"] == exported["cost_usd"]
    job_ids = manifest["metadata"]["bigquery_job_id"].split(",")
    client = bq.client()
    try:
        jobs = [client.get_job(j, location="US") for j in job_ids]
    finally:
        client.close()
    reported = sum(j.total_bytes_billed or j.total_bytes_processed or 0 for j in jobs)
    # the EXPORT DATA jobs, and the slice's counting query before them
    assert warehouse["jobs"] > len(job_ids) >= 1
    assert (warehouse["engine"], warehouse["bytes"]) == ("bigquery", reported)
    assert _d(warehouse["usd"]) == (Decimal(reported) / 1024**4 * 5).quantize(MICRO)
