"""Commands as a user runs them: init, run --json, exit codes 1 and 130, decrypt."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest

from tests.e2e.cli import dpexport

REPO = Path(__file__).resolve().parents[2]
BUCKET = Path("gs/diagnosticpro-exports")

SMALL = """\
project: p
environment: prod
warehouse: {{engine: duckdb, path: warehouse.duckdb}}
buckets: {{exports: gs://diagnosticpro-exports}}
exports:
  - source: diagnosticpro_prod.{table}
    destination: gs://diagnosticpro-exports/prod/diagnosticpro_prod/{table}/
{body}
"""


def _config(base: Path, table: str, body: str) -> Path:
    path = base / f"{table}.yaml"
    path.write_text(SMALL.format(table=table, body=body), encoding="utf-8")
    return path


def test_init_writes_a_starter_once_and_the_spec_config_on_request(tmp_path: Path) -> None:
    result = dpexport("init", "--dir", tmp_path)
    assert result.code == 0, result.err
    starter = (tmp_path / "dpexport.yaml").read_text()
    assert len(starter.splitlines()) < 40 and starter.count("- source:") == 1
    assert "compression_matrix:" not in starter
    again = dpexport("init", "--dir", tmp_path)
    assert again.code == 2 and "--force" in again.err
    assert dpexport("-c", tmp_path / "dpexport.yaml", "check").code == 0
    result = dpexport("init", "--dir", tmp_path, "--example", "diagnosticpro", "--force")
    assert result.code == 0, result.err
    text = (tmp_path / "dpexport.yaml").read_text()
    for block in (
        "format_config:",
        "compression_matrix:",
        "append_only:",
        "high_volume:",
        "retry_configuration:",
        "idempotency_design:",
        "lifecycle_policies:",
    ):
        assert block in text
    assert dpexport("-c", tmp_path / "dpexport.yaml", "check").code == 0


def test_run_json_and_table_selection(demo_dir: Path) -> None:
    result = dpexport(
        "run",
        "--table",
        "diagnosticpro_prod.parts_inventory",
        "--table",
        "equipment_manufacturers",
        "--json",
        "-c",
        demo_dir / "dpexport.yaml",
        "--local-root",
        demo_dir / "out",
    )
    assert result.code == 0, result.err
    records = json.loads(result.out)
    assert [r["table"] for r in records] == ["parts_inventory", "equipment_manufacturers"]
    for record in records:
        assert set(record) == {
            "table",
            "export_id",
            "status",
            "rows",
            "files",
            "manifests",
            "error",
            "reason",
            "cost_usd",
        }
        assert record["status"] == "SUCCESS" and record["error"] is None
        assert record["cost_usd"]["operations"]["class_a"] > 0
        assert record["export_id"].startswith("exp_")
        for uri in record["manifests"]:
            assert uri.startswith("gs://diagnosticpro-exports/prod/diagnosticpro_prod/")
    row = (
        duckdb.connect(str(demo_dir / "warehouse.duckdb"), read_only=True)
        .execute("SELECT count(*) FROM diagnosticpro_prod.parts_inventory")
        .fetchone()
    )
    assert row is not None
    (inventory,) = row
    assert records[0]["rows"] == inventory
    unknown = dpexport(
        "run", "--table", "nope", "-c", demo_dir / "dpexport.yaml", "--local-root", demo_dir / "out"
    )
    assert unknown.code == 2 and "'nope'" in unknown.err


def test_failing_check_exits_1_marks_failure_and_publishes_nothing(demo_dir: Path) -> None:
    config = _config(
        demo_dir,
        "reddit_diagnostic_posts",
        """\
    format: PARQUET
    compression: SNAPPY
    partitioning: {field: created_date, granularity: daily}
    mode: APPEND
    validation:
      - content_length_check: {max: 10}
""",
    )
    result = dpexport("-c", config, "--local-root", demo_dir / "out", "run", "--json")
    assert result.code == 1
    [record] = json.loads(result.out)
    assert record["status"] == "FAILURE" and "content_length_check" in record["error"]
    folder = demo_dir / "out" / BUCKET / "prod/diagnosticpro_prod/reddit_diagnostic_posts"
    failures = list(folder.rglob("FAILURE"))
    assert failures
    marker = json.loads(failures[0].read_text())
    assert marker["status"] == "FAILURE" and "content_length_check" in marker["error"]
    assert {"timestamp", "retry_count", "next_retry"} <= set(marker)
    published = [p for p in folder.rglob("*") if p.is_file() and p.name != "FAILURE"]
    assert published == []
    staging = demo_dir / "out" / BUCKET / "_staging"
    assert not staging.exists() or not any(p.is_file() for p in staging.rglob("*"))
    logs = list((demo_dir / "out" / BUCKET / "export-logs").rglob("*.json"))
    assert [json.loads(p.read_text())["status"] for p in logs] == ["FAILURE"]
    entry = demo_dir / "out" / BUCKET / "dead-letter-queue/failed_exports" / record["export_id"]
    assert sorted(p.name for p in entry.iterdir()) == [
        "error_details.json",
        "export_request.json",
        "retry_history.json",
    ]
    request = json.loads((entry / "export_request.json").read_text())
    assert request["table"] == "diagnosticpro_prod.reddit_diagnostic_posts"
    error = json.loads((entry / "error_details.json").read_text())
    assert error["retryable"] is False and "content_length_check" in error["message"]
    assert marker["retry_count"] == 0
    from datetime import datetime as dt

    def parse(text: str) -> dt:
        return dt.fromisoformat(text.replace("Z", "+00:00"))

    # the next retry is the DLQ's auto_retry_after (spec 7.2: 6 hours)
    gap = parse(marker["next_retry"]) - parse(marker["timestamp"])
    assert abs(gap.total_seconds() - 6 * 3600) <= 5

    # a fixed rerun succeeds and clears FAILURE in the folders it writes
    fixed = _config(
        demo_dir,
        "reddit_diagnostic_posts",
        """\
    format: PARQUET
    compression: SNAPPY
    partitioning: {field: created_date, granularity: daily}
    mode: APPEND
""",
    )
    rerun = dpexport("-c", fixed, "--local-root", demo_dir / "out", "run")
    assert rerun.code == 0, rerun.err
    assert not list(folder.rglob("FAILURE"))


def test_append_without_a_cursor_fails_clearly(demo_dir: Path) -> None:
    # CONTRACT §8: a config error at the table's path, naming the candidate columns
    config = _config(demo_dir, "audit_logs", "    mode: APPEND\n")
    result = dpexport("-c", config, "--local-root", demo_dir / "out", "run")
    assert result.code == 2
    assert "exports[0]: " in result.err and "no cursor" in result.err
    assert "created_at (TIMESTAMP)" in result.err
    assert not (demo_dir / "out").exists()


@pytest.mark.slow
def test_interrupt_exits_130_and_leaves_nothing(tmp_path: Path) -> None:
    from dpexport.demo.warehouse import create_demo_warehouse

    create_demo_warehouse(tmp_path / "warehouse.duckdb", 600_000)
    config = _config(
        tmp_path,
        "sensor_telemetry",
        """\
    format: CSV
    compression: BROTLI
    mode: FULL_REFRESH
""",
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("DPEXPORT_")}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "dpexport",
            "-c",
            str(config),
            "--local-root",
            str(tmp_path / "out"),
            "run",
        ],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    staging = tmp_path / "out" / BUCKET / "_staging"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not any(staging.rglob("part-*")):
        time.sleep(0.05)
    assert proc.poll() is None, "the export finished before it could be interrupted"
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "interrupted" in err
    assert not list((tmp_path / "out").rglob("SUCCESS"))
    assert not any(p.is_file() for p in staging.rglob("*"))


def test_decrypt_round_trip_and_tamper(demo_dir: Path) -> None:
    root = demo_dir / "out"
    result = dpexport(
        "-c",
        demo_dir / "dpexport.yaml",
        "--local-root",
        root,
        "run",
        "--table",
        "billing_transactions",
    )
    assert result.code == 0, result.err
    encrypted = sorted((root / BUCKET).rglob("*.parquet.gz.enc"))[0]
    plain = demo_dir / "plain.parquet"
    ok = dpexport("--local-root", root, "decrypt", encrypted, "-o", plain)
    assert ok.code == 0, ok.err
    import pyarrow.parquet as pq

    sidecar = json.loads(encrypted.with_name(encrypted.name + ".metadata.json").read_text())
    assert pq.read_table(plain).num_rows == sidecar["rows"]
    # by URI too, to stdout
    uri = "gs://diagnosticpro-exports/" + encrypted.relative_to(root / BUCKET).as_posix()
    by_uri = subprocess.run(
        [sys.executable, "-m", "dpexport", "--local-root", str(root), "decrypt", uri],
        cwd=REPO,
        capture_output=True,
        timeout=120,
    )
    assert by_uri.returncode == 0 and by_uri.stdout == plain.read_bytes()

    raw = bytearray(encrypted.read_bytes())
    raw[len(raw) // 2] ^= 0x40
    encrypted.write_bytes(bytes(raw))
    out = demo_dir / "tampered.parquet"
    bad = dpexport("--local-root", root, "decrypt", encrypted, "-o", out)
    assert bad.code == 1 and "chunk" in bad.err
    assert not out.exists()
    key_bytes = [p.read_bytes() for p in (root / "kms").iterdir()]
    for key in key_bytes:
        assert key.hex() not in bad.err and key.hex() not in json.dumps(sidecar)


def test_plan_shows_slices_tokens_estimates_and_writes_nothing(demo_dir: Path) -> None:
    root = demo_dir / "out"
    args = ("-c", demo_dir / "dpexport.yaml", "--local-root", root)
    result = dpexport(
        *args,
        "plan",
        "--table",
        "sensor_telemetry",
        "--table",
        "parts_catalog",
        "--at",
        "2025-09-16T14:30:22Z",
        "--json",
    )
    assert result.code == 0, result.err
    assert not root.exists()
    sensor, catalog = json.loads(result.out)
    row = (
        duckdb.connect(str(demo_dir / "warehouse.duckdb"), read_only=True)
        .execute(
            "SELECT count(*) FROM diagnosticpro_prod.sensor_telemetry "
            "WHERE created_at <= TIMESTAMP '2025-09-16 14:30:22'"
        )
        .fetchone()
    )
    assert row is not None
    (rows,) = row
    assert sensor["estimated_rows"] == rows and sensor["mode"] == "APPEND"
    assert sensor["slice"] == {
        "cursor": "created_at",
        "after": None,
        "after_inclusive": False,
        "through": "2025-09-16T14:30:22.000000Z",
    }
    assert sensor["idempotency_token"].startswith("sensor_telemetry_20250916_1758033022_")
    assert sensor["token_status"] is None
    assert any("tiny files" in w for w in sensor["warnings"])
    assert catalog["mode"] == "FULL_REFRESH" and catalog["folders"] == 1
    # after a run the same plan shows the token DONE
    assert (
        dpexport(*args, "run", "--table", "parts_catalog", "--at", "2025-09-16T14:30:22Z").code == 0
    )
    again = json.loads(
        dpexport(
            *args, "plan", "--table", "parts_catalog", "--at", "2025-09-16T14:30:22Z", "--json"
        ).out
    )
    assert again[0]["token_status"] == "DONE"
    assert again[0]["idempotency_token"] == catalog["idempotency_token"]


def test_quarantine_keeps_bad_rows_out_and_in_the_dlq(demo_dir: Path) -> None:
    config = _config(
        demo_dir,
        "reddit_diagnostic_posts",
        """\
    format: PARQUET
    compression: SNAPPY
    partitioning: {field: created_date, granularity: daily}
    mode: APPEND
    validation:
      - unique_post_ids
      - content_length_check: {max: 300, on_fail: quarantine}
""",
    )
    result = dpexport("-c", config, "--local-root", demo_dir / "out", "run", "--json")
    assert result.code == 0, result.err
    [record] = json.loads(result.out)
    source = duckdb.connect(str(demo_dir / "warehouse.duckdb"), read_only=True)
    row = source.execute(
        "SELECT count(*) FROM diagnosticpro_prod.reddit_diagnostic_posts "
        "WHERE length(content) > 300 OR length(content) < 1 OR content IS NULL"
    ).fetchone()
    assert row is not None
    (long_posts,) = row
    row = source.execute(
        "SELECT count(*) FROM diagnosticpro_prod.reddit_diagnostic_posts"
    ).fetchone()
    assert row is not None
    (total,) = row
    assert long_posts > 0
    assert record["rows"] == total - long_posts
    dlq = (
        demo_dir
        / "out"
        / BUCKET
        / "dead-letter-queue/quarantined_rows"
        / record["export_id"]
        / "reddit_diagnostic_posts.jsonl.gz"
    )
    import gzip

    with gzip.open(dlq, "rt") as fh:
        lines = [json.loads(line) for line in fh]
    assert len(lines) == long_posts
    assert all("content_length_check" in r["_dpexport_reason"] for r in lines)
    manifest = json.loads(
        (demo_dir / "out" / "gs" / record["manifests"][0].removeprefix("gs://")).read_text()
    )
    checks = {c["name"]: c for c in manifest["validation"]["checks"]}
    assert checks["content_length_check"]["status"] == "passed"
    assert checks["content_length_check"]["rows_quarantined"] == long_posts
    assert checks["unique_post_ids"]["status"] == "passed"
    assert manifest["validation"]["duplicate_check"] == "passed"


_THREADS = """
import os
from dpexport.cli import main
try:
    main(["--help"])
except SystemExit:
    pass
import numpy  # pyarrow imports it
print(os.environ["OPENBLAS_NUM_THREADS"], len(os.listdir("/proc/self/task")))
"""


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="counts threads in /proc")
def test_the_cli_keeps_openblas_to_one_thread_unless_told(tmp_path: Path) -> None:
    """numpy's OpenBLAS (pyarrow imports numpy) starts a thread per core that spins for
    ~0.15 s of CPU in every dpexport process; the CLI asks for none, and a user's own
    OPENBLAS_NUM_THREADS stands."""
    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_NUM_THREADS"}
    cmd = [sys.executable, "-c", _THREADS]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
    assert done.stdout.splitlines()[-1] == "1 1"
    env["OPENBLAS_NUM_THREADS"] = "2"
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
    assert done.stdout.splitlines()[-1] == "2 2"


#: the entry point with the command line replaced by a probe of the collector
_COLLECTOR = """
import gc
import dpexport.cli
dpexport.cli.main = lambda: print(gc.isenabled(), gc.get_freeze_count())
from dpexport.__main__ import main
main()
"""


def test_the_command_runs_with_the_collector_on_and_its_start_up_frozen() -> None:
    """The entry point pauses the cyclic collector while the command line loads (no
    garbage is made then, only scans of what was loaded), freezes what it loaded, and runs
    the command with the collector on. ``import dpexport`` itself loads nothing; its
    public names load on first use."""
    done = subprocess.run(
        [sys.executable, "-c", _COLLECTOR], capture_output=True, text=True, check=True
    )
    enabled, frozen = done.stdout.split()
    assert enabled == "True"
    assert int(frozen) > 10_000  # click's and the command line's modules
    code = "import sys, dpexport; print(sorted(m for m in sys.modules if 'dpexport' in m))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "['dpexport']"
    # and each public name still resolves, from the module the package's table names
    code = "import dpexport; print([n for n in dpexport.__all__ if not hasattr(dpexport, n)])"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
