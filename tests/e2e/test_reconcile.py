"""Late rows: inserted under a cursor the watermark has passed, found by ``reconcile`` and
exported into their own day's folder exactly once (issue 18)."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import duckdb
import pytest

from tests.e2e.cli import dpexport, warehouse_sql

T1 = "2025-09-16T14:30:22Z"
T2 = "2025-09-17T14:30:22Z"
MINUTE = timedelta(minutes=1)
AUDIT = Path("gs/diagnosticpro-exports/prod/diagnosticpro_prod/audit_logs")
DAY = "2025/09/12"

CONFIG = """\
project: p
environment: prod
warehouse: {{engine: duckdb, path: warehouse.duckdb}}
buckets: {{exports: gs://diagnosticpro-exports}}
exports:
  - source: diagnosticpro_prod.audit_logs
    destination: gs://diagnosticpro-exports/prod/diagnosticpro_prod/audit_logs/
    format: {fmt}
    compression: {codec}
    partitioning: {{field: created_at, granularity: daily}}
    mode: {mode}
{extra}"""

LATE = """
INSERT INTO diagnosticpro_prod.audit_logs
SELECT * REPLACE ('late-' || event_id AS event_id,
                  created_at - INTERVAL 4 DAY + INTERVAL 1 SECOND AS created_at)
FROM diagnosticpro_prod.audit_logs WHERE created_at::DATE = DATE '2025-09-16' LIMIT 3
"""


def _setup(
    base: Path, extra: str = "", fmt: str = "PARQUET", codec: str = "SNAPPY", mode: str = "APPEND"
) -> Path:
    """The audit log exported once at T1: every row it holds then."""
    config = base / "late.yaml"
    text = CONFIG.format(extra=extra, fmt=fmt, codec=codec, mode=mode)
    config.write_text(text, encoding="utf-8")
    result = dpexport("-c", config, "--local-root", base / "out", "run", "--at", T1)
    assert result.code == 0, result.err
    return config


def _reconcile(base: Path, config: Path, *args: str) -> list[dict[str, Any]]:
    result = dpexport(
        "-c", config, "--local-root", base / "out", "reconcile", "--at", T2, "--json", *args
    )
    assert result.code == 0, result.out + result.err
    assert result.out.endswith("\n")
    return list(json.loads(result.out))


def _published(base: Path, folder: str = "") -> list[tuple[Any, ...]]:
    """Every row the table's committed files hold (under ``folder``), as a reader that
    trusts SUCCESS markers and manifests gets them: sorted by event_id."""
    root = base / "out" / AUDIT / folder
    rows: list[tuple[Any, ...]] = []
    for success in sorted(root.rglob("SUCCESS")):
        for name in json.loads(success.read_text())["manifests"]:
            manifest = json.loads((success.parent / name).read_text())
            for f in manifest["files"]:
                path = str(success.parent / f["name"])
                rows += _query(f"SELECT event_id, created_at FROM read_parquet('{path}')")
    return sorted(rows)


def _source(base: Path, day: str | None = None) -> list[tuple[Any, ...]]:
    where = f"WHERE created_at::DATE = DATE '{day}'" if day else ""
    return sorted(
        warehouse_sql(
            base, f"SELECT event_id, created_at FROM diagnosticpro_prod.audit_logs {where}"
        )
    )


def _query(sql: str) -> list[tuple[Any, ...]]:
    return duckdb.connect().execute(sql).fetchall()


def _export_logs(base: Path) -> list[dict[str, Any]]:
    logs = base / "out" / "gs" / "diagnosticpro-exports" / "export-logs"
    return [json.loads(p.read_text()) for p in sorted(logs.rglob("*.json"))]


def test_late_rows_without_a_key_republish_their_folder_once(demo_dir: Path) -> None:
    config = _setup(demo_dir)
    warehouse_sql(demo_dir, LATE)
    # the regular run after the late insert does not see them: their cursor is old
    again = dpexport("-c", config, "--local-root", demo_dir / "out", "run", "--at", T2, "--json")
    assert json.loads(again.out)[0]["rows"] == 0
    assert len(_published(demo_dir)) == len(_source(demo_dir)) - 3

    [report] = _reconcile(demo_dir, config)
    [folder] = report["folders"]
    assert folder["folder"] == DAY and folder["status"] == "repaired"
    assert folder["late_rows"] == 3
    assert folder["exported_rows"] == folder["source_rows"] == len(_source(demo_dir, "2025-09-12"))
    assert _published(demo_dir) == _source(demo_dir)  # every row, none twice
    day = demo_dir / "out" / AUDIT / DAY
    assert len(list(day.glob("*.parquet.snappy"))) == 1  # the old file was replaced
    assert len(json.loads((day / "SUCCESS").read_text())["manifests"]) == 1
    [log] = [r for r in _export_logs(demo_dir) if r.get("trigger") == "reconcile"]
    assert (log["late_rows"], log["reconciled_folder"]) == (folder["source_rows"], DAY)

    # the same pass again finds nothing; verify holds
    [report] = _reconcile(demo_dir, config)
    assert report["folders"] == [] and report["late_rows"] == 0
    verify = dpexport("--local-root", demo_dir / "out", "verify", f"gs://{AUDIT.relative_to('gs')}")
    assert verify.code == 0, verify.out + verify.err


def test_late_rows_with_a_key_are_added_beside_the_folder_files(demo_dir: Path) -> None:
    config = _setup(demo_dir, '    deduplication: "by event_id"\n', "JSONL", "GZIP")
    day = demo_dir / "out" / AUDIT / DAY
    before = {p.name: p.read_bytes() for p in day.iterdir()}
    warehouse_sql(demo_dir, LATE)

    [report] = _reconcile(demo_dir, config)
    [folder] = report["folders"]
    assert (folder["status"], folder["late_rows"], folder["exported_rows"]) == ("repaired", 3, 3)
    after = {p.name: p.read_bytes() for p in day.iterdir()}
    # the files published before are untouched; one data file, sidecar and manifest added
    assert {k: v for k, v in after.items() if k in before and k != "SUCCESS"} == {
        k: v for k, v in before.items() if k != "SUCCESS"
    }
    added = sorted(set(after) - set(before))
    assert len(added) == 3 and sum(n.endswith(".jsonl.gz") for n in added) == 1
    assert len(json.loads(after["SUCCESS"])["manifests"]) == 2
    [jsonl] = [n for n in added if n.endswith(".jsonl.gz")]
    late = _query(f"SELECT event_id::VARCHAR FROM read_json('{day / jsonl}')")
    assert sorted(r[0] for r in late) == sorted(
        r[0] for r in _source(demo_dir, "2025-09-12") if r[0].startswith("late-")
    )
    assert [r[0] for r in _published_jsonl(day)] == sorted(
        r[0] for r in _source(demo_dir, "2025-09-12")
    )
    [report] = _reconcile(demo_dir, config)
    assert report["folders"] == []


def _published_jsonl(day: Path) -> list[tuple[Any, ...]]:
    rows: list[tuple[Any, ...]] = []
    for name in json.loads((day / "SUCCESS").read_text())["manifests"]:
        for f in json.loads((day / name).read_text())["files"]:
            rows += _query(f"SELECT event_id::VARCHAR FROM read_json('{day / f['name']}')")
    return sorted(rows)


def test_dry_run_reports_and_writes_nothing(demo_dir: Path) -> None:
    config = _setup(demo_dir)
    warehouse_sql(demo_dir, LATE)
    listing = sorted(p for p in (demo_dir / "out").rglob("*"))
    [report] = _reconcile(demo_dir, config, "--dry-run")
    [folder] = report["folders"]
    assert (folder["folder"], folder["status"], folder["late_rows"]) == (DAY, "late", 3)
    assert sorted(p for p in (demo_dir / "out").rglob("*")) == listing

    text = dpexport(
        "-c", config, "--local-root", demo_dir / "out", "reconcile", "--at", T2, "--dry-run"
    )
    assert text.code == 0
    assert "2025/09/12" in text.out and "3 late row(s) (dry run)" in text.out


def test_rows_deleted_at_the_source_are_reported_not_deleted(demo_dir: Path) -> None:
    config = _setup(demo_dir)
    published = _published(demo_dir)
    warehouse_sql(
        demo_dir,
        "DELETE FROM diagnosticpro_prod.audit_logs WHERE event_id IN (SELECT event_id FROM "
        "diagnosticpro_prod.audit_logs WHERE created_at::DATE = DATE '2025-09-12' LIMIT 2)",
    )
    [report] = _reconcile(demo_dir, config)
    [folder] = report["folders"]
    assert folder["status"] == "fewer"
    assert folder["published_rows"] - folder["source_rows"] == 2
    assert _published(demo_dir) == published


def test_a_window_of_days_before_the_late_day_finds_nothing(demo_dir: Path) -> None:
    config = _setup(demo_dir)
    warehouse_sql(demo_dir, LATE)
    [report] = _reconcile(demo_dir, config, "--days", "3", "--dry-run")
    assert report["folders"] == [] and report["folders_compared"] == 3
    assert report["window"]["from"].startswith("2025-09-14T14:30:22")


def test_tables_that_cannot_have_late_rows_are_skipped_with_a_reason(demo_dir: Path) -> None:
    result = dpexport(
        "-c",
        demo_dir / "dpexport.yaml",
        "--local-root",
        demo_dir / "out",
        "reconcile",
        "--table",
        "users",
        "--table",
        "parts_inventory",
        "--json",
    )
    assert result.code == 0, result.err
    reasons = {r["table"]: r["skipped"] for r in json.loads(result.out)}
    assert "FULL_REFRESH" in reasons["diagnosticpro_prod.users"]
    assert "no time partition" in reasons["diagnosticpro_prod.parts_inventory"]


def test_incremental_late_rows_are_exported_by_merge_key(demo_dir: Path) -> None:
    extra = "    change_column: created_at\n    merge_key: event_id\n"
    config = _setup(demo_dir, extra, mode="INCREMENTAL")
    warehouse_sql(demo_dir, LATE)
    [report] = _reconcile(demo_dir, config)
    [folder] = report["folders"]
    assert (folder["folder"], folder["late_rows"], folder["exported_rows"]) == (DAY, 3, 3)
    assert _published(demo_dir) == _source(demo_dir)


def test_a_late_row_inside_the_lookback_is_left_to_the_next_run(demo_dir: Path) -> None:
    config = _setup(demo_dir, '    deduplication: "by event_id"\n    lookback_window: 2 days\n')
    warehouse_sql(demo_dir, LATE)  # 2025-09-12: before the lookback
    warehouse_sql(  # 2025-09-15: inside it (watermark 2025-09-16 14:29)
        demo_dir, LATE.replace("late-", "lookback-").replace("INTERVAL 4 DAY", "INTERVAL 1 DAY")
    )
    [report] = _reconcile(demo_dir, config)
    assert [(f["folder"], f["exported_rows"]) for f in report["folders"]] == [(DAY, 3)]
    assert report["window"]["through"].startswith("2025-09-14T14:29")
    run = dpexport("-c", config, "--local-root", demo_dir / "out", "run", "--at", T2, "--json")
    assert json.loads(run.out)[0]["rows"] == 3  # the lookback rows, by the regular run
    assert _published(demo_dir) == _source(demo_dir)  # every row exactly once


def test_reconcile_setting_sets_the_window(demo_dir: Path) -> None:
    config = _setup(demo_dir, "    reconcile: 2 days\n")
    warehouse_sql(demo_dir, LATE)
    [report] = _reconcile(demo_dir, config, "--dry-run")
    assert report["folders"] == [] and report["folders_compared"] == 2
    config.write_text(config.read_text().replace("2 days", "0 days"), encoding="utf-8")
    [report] = _reconcile(demo_dir, config, "--dry-run")
    assert report["skipped"] == "reconcile: 0 days"


def test_the_schedulers_daily_pass_exports_late_rows_and_counts_them(demo_dir: Path) -> None:
    from datetime import UTC, datetime

    from dpexport.config import load_config
    from dpexport.engines import open_engine
    from dpexport.flow.context import RunOptions
    from dpexport.flow.runner import run_exports
    from dpexport.ops.metrics import SchedulerMetrics
    from dpexport.ops.scheduler import Scheduler, Tick, jobs_for

    path = demo_dir / "late.yaml"
    path.write_text(
        CONFIG.format(
            extra='    schedule: "0 * * * *"\n', fmt="PARQUET", codec="SNAPPY", mode="APPEND"
        )
    )
    config = load_config(path)
    jobs = jobs_for(config.tables, MINUTE)
    ticks: list[Tick] = []
    metrics = SchedulerMetrics()
    scheduler = Scheduler(
        config,
        jobs,
        open_engine=lambda who: open_engine(config.warehouse, base_dir=demo_dir),
        run=run_exports,
        options=RunOptions(local_root=demo_dir / "out"),
        on_tick=ticks.append,
    )
    last: dict[str, datetime] = {}
    scheduler.run_due(datetime(2025, 9, 16, 15, 10, tzinfo=UTC), last)
    warehouse_sql(demo_dir, LATE)
    scheduler.run_due(datetime(2025, 9, 17, 0, 40, tzinfo=UTC), last)
    scheduler.close()
    [daily] = [t for t in ticks if t.reconciled and t.at.day == 17]
    assert daily.at == datetime(2025, 9, 17, 0, 0, tzinfo=UTC)  # the day's first fire time
    metrics.observe(daily)
    [report] = daily.reconciled
    late = [(f.folder, f.late_rows, f.status) for f in report.folders if f.status != "ok"]
    assert late == [(DAY, 3, "repaired")]
    assert _published(demo_dir) == _source(demo_dir)
    sample = metrics.registry.get_sample_value(
        "dpexport_late_rows_total",
        {"table": "diagnosticpro_prod.audit_logs", "outcome": "repaired"},
    )
    assert sample == 3
    assert any(r.get("reconcile") and r["late_rows"] == 3 for r in daily.records())


def test_a_table_that_cannot_be_compared_fails_alone(demo_dir: Path) -> None:
    config = _setup(demo_dir)
    text = config.read_text()
    other = text.split("exports:\n")[1].replace("audit_logs", "api_access_log")
    config.write_text(text + other.replace("created_at", "requested_at"), encoding="utf-8")
    warehouse_sql(demo_dir, "ALTER TABLE diagnosticpro_prod.audit_logs RENAME TO audit_old")
    result = dpexport(
        "-c", config, "--local-root", demo_dir / "out", "reconcile", "--at", T2, "--json"
    )
    assert result.code == 1
    audit, api = json.loads(result.out)
    assert "does not exist" in audit["error"] and api["error"] is None
    assert "Traceback" not in result.err


#: (commit step, occurrence) to kill a repair at: before staging ends, at the journal (the
#: commit point), after one move, after the first retirement (the folder's old files)
KILLS = [("batch", 1), ("journal", 1), ("move", 1), ("retire", 1)]


BY_KEY = '    deduplication: "by event_id"\n'
#: a repair by key adds files beside the folder's: it retires none
CASES = [("", s, n) for s, n in KILLS] + [(BY_KEY, s, n) for s, n in KILLS if s != "retire"]


@pytest.mark.parametrize(("key", "step", "nth"), CASES)
def test_a_repair_killed_at_any_step_is_finished_by_the_next_pass(
    demo_dir: Path, key: str, step: str, nth: int
) -> None:
    config = _setup(demo_dir, key)
    warehouse_sql(demo_dir, LATE)
    repo = Path(__file__).resolve().parents[2]
    child = [sys.executable, "-m", "tests.e2e.reconcile_crash_child", str(config)]
    proc = subprocess.run(
        [*child, str(demo_dir / "out"), T2, step, str(nth)],
        cwd=repo,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == -9, (proc.stdout, proc.stderr)
    [report] = _reconcile(demo_dir, config)
    assert [f["status"] for f in report["folders"]] in (["repaired"], [])
    assert _published(demo_dir) == _source(demo_dir)  # every row, exactly once
    [report] = _reconcile(demo_dir, config)
    assert report["folders"] == []
    verify = dpexport("--local-root", demo_dir / "out", "verify", f"gs://{AUDIT.relative_to('gs')}")
    assert verify.code == 0, verify.out + verify.err


def test_the_python_call_is_the_command(demo_dir: Path) -> None:
    from datetime import UTC, datetime

    import dpexport as api
    from dpexport.errors import UsageError

    config = _setup(demo_dir)
    warehouse_sql(demo_dir, LATE)
    at = datetime(2025, 9, 17, 14, 30, 22, tzinfo=UTC)
    [report] = api.reconcile(config, at=at, dry_run=True, local_root=demo_dir / "out")
    assert [(f.folder, f.late_rows) for f in report.folders if f.status == "late"] == [(DAY, 3)]
    with pytest.raises(UsageError, match="--days -1"):
        api.reconcile(config, at=at, days=-1, local_root=demo_dir / "out")


def test_a_failed_repair_goes_to_the_dlq_and_dlq_retry_repairs_it(demo_dir: Path) -> None:
    config = _setup(demo_dir, BY_KEY, "JSONL", "GZIP")
    warehouse_sql(demo_dir, LATE)
    [published] = (demo_dir / "out" / AUDIT / DAY).glob("*.jsonl.gz")
    good = published.read_bytes()
    published.write_bytes(b"not gzip")  # the folder's keys cannot be read: the repair fails
    result = dpexport(
        "-c", config, "--local-root", demo_dir / "out", "reconcile", "--at", T2, "--json"
    )
    assert result.code == 1, result.err
    [folder] = json.loads(result.out)[0]["folders"]
    assert folder["status"] == "failed" and published.name in folder["error"]
    common = ("-c", config, "--local-root", demo_dir / "out", "dlq")
    [entry] = json.loads(dpexport(*common, "list", "--json").out)
    assert (demo_dir / "out" / AUDIT / DAY / "FAILURE").exists()
    published.write_bytes(good)  # restored from the bucket's versions, say
    retried = dpexport(*common, "retry", "--json")
    assert retried.code == 0, retried.out + retried.err
    assert [o["outcome"] for o in json.loads(retried.out)] == ["resolved"], entry
    assert _published_jsonl(demo_dir / "out" / AUDIT / DAY) == sorted(
        (r[0],) for r in _source(demo_dir, "2025-09-12")
    )
    assert not (demo_dir / "out" / AUDIT / DAY / "FAILURE").exists()
