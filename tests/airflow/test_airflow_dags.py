"""The Airflow integration in Airflow itself (issue 23): a DAG file built by
``dags_from_config`` over a small DuckDB config, run with ``airflow dags test`` in the venv
``tools/airflow_venv.py`` installs (Airflow 3, a SQLite metadata database in a temporary
``AIRFLOW_HOME``). A run exports its table at the run's logical date and pushes the result
as its XCom; a second run at the same date is a no-op; a table failing its data check
fails its task, with its FAILURE marker and DLQ entry written as ``dpexport run`` writes
them."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import duckdb
import pytest

from tests.e2e.cli import dpexport

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
LOGICAL_DATE = "2026-01-01"
CONFIG = """\
project: p
environment: test
warehouse: {engine: duckdb, path: warehouse.duckdb}
buckets: {exports: gs://b}
exports:
  - source: ds.events
    destination: gs://b/events/
    mode: APPEND
    change_column: ts
    schedule: "0 0 * * *"
  - source: ds.sessions
    destination: gs://b/sessions/
    mode: APPEND
    change_column: ts
    schedule: "CRON_TZ=Europe/Paris 0 6 * * *"
    validation: [{content_length_check: {column: note, max: 10}}]
  - source: ds.stream
    destination: gs://b/stream/
    schedule: continuous
"""
# the factory's DAGs, and the README's DAG of one's own
DAG_FILE = """\
from datetime import datetime

from airflow.sdk import DAG

from dpexport.airflow import DpexportOperator, dags_from_config

globals().update(dags_from_config({config!r}, local_root={out!r}))

with DAG("events_by_hand", schedule="0 0 * * *", start_date=datetime(2026, 1, 1)):
    DpexportOperator(task_id="events", config={config!r}, table="events", local_root={out!r})
"""
EVENTS_DAG = "dpexport_0_0_x_x_x"
SESSIONS_DAG = "dpexport_0_6_x_x_x_Europe.Paris"


@pytest.fixture(scope="module")
def airflow_bin() -> Path:
    """The Airflow venv's ``bin``: installed on first use, then found by its stamp."""
    done = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "airflow_venv.py")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return Path(done.stdout.strip()) / "bin"


@pytest.fixture
def site(tmp_path: Path, airflow_bin: Path) -> Path:
    """A warehouse (events: one row an hour from 2025-12-31 00:00 UTC for two days;
    sessions: notes longer than their check allows), its config, a DAG folder holding a
    DAG file made by the factory, and a migrated Airflow home."""
    con = duckdb.connect(str(tmp_path / "warehouse.duckdb"))
    con.execute("CREATE SCHEMA ds")
    hourly = "TIMESTAMPTZ '2025-12-31 00:00:00+00' + i * INTERVAL 1 HOUR AS ts"
    con.execute(f"CREATE TABLE ds.events AS SELECT i AS id, {hourly} FROM range(48) t(i)")
    con.execute(
        f"CREATE TABLE ds.sessions AS SELECT i AS id, {hourly}, repeat('x', 20) AS note"
        " FROM range(10) t(i)"
    )
    con.execute("CREATE TABLE ds.stream AS SELECT 1 AS id")
    con.close()
    config = tmp_path / "dpexport.yaml"
    config.write_text(CONFIG, encoding="utf-8")
    (tmp_path / "dags").mkdir()
    dag_file = DAG_FILE.format(config=str(config), out=str(tmp_path / "out"))
    (tmp_path / "dags" / "dpexport_dags.py").write_text(dag_file, encoding="utf-8")
    done = _airflow(tmp_path, airflow_bin, "db", "migrate")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return tmp_path


def _airflow(site: Path, airflow_bin: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "DPEXPORT_"))}
    env.update(
        AIRFLOW_HOME=str(site / "airflow"),
        AIRFLOW__CORE__DAGS_FOLDER=str(site / "dags"),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        PATH=f"{airflow_bin}{os.pathsep}{env.get('PATH', '')}",
    )
    return subprocess.run(
        [str(airflow_bin / "airflow"), *args],
        cwd=site,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def _dags_test(site: Path, airflow_bin: Path, dag_id: str) -> subprocess.CompletedProcess[str]:
    return _airflow(site, airflow_bin, "dags", "test", dag_id, LOGICAL_DATE)


def _task(site: Path, dag_id: str, task_id: str) -> tuple[str, dict[str, Any] | None]:
    """The task's state in the newest run of ``dag_id`` and its XCom return value, read
    from Airflow's metadata database."""
    with sqlite3.connect(site / "airflow" / "airflow.db") as db:
        run_id, state = db.execute(
            "SELECT run_id, state FROM task_instance WHERE dag_id = ? AND task_id = ?"
            " ORDER BY start_date DESC LIMIT 1",
            (dag_id, task_id),
        ).fetchone()
        row = db.execute(
            "SELECT value FROM xcom WHERE dag_id = ? AND task_id = ? AND run_id = ?"
            " AND key = 'return_value'",
            (dag_id, task_id, run_id),
        ).fetchone()
    value = json.loads(row[0]) if row else None
    return str(state), value if isinstance(value, dict) else None


def _files(site: Path) -> set[str]:
    """Every file dpexport wrote, less its lock files (a lock is taken and freed per run)."""
    out = site / "out"
    files = (p for p in out.rglob("*") if p.is_file())
    return {str(p.relative_to(out)) for p in files if ".dpexport-locks" not in p.parts}


def test_a_dag_run_exports_its_table_at_its_logical_date_once(
    site: Path, airflow_bin: Path
) -> None:
    first = _dags_test(site, airflow_bin, EVENTS_DAG)
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    folder = site / "out" / "gs" / "b" / "events" / "2026" / "01" / "01"
    assert (folder / "SUCCESS").is_file()
    [manifest_path] = folder.glob("manifest_*.json")
    manifest = json.loads(manifest_path.read_text())
    # the logical date is the export's logical time: rows up to 2026-01-01 00:00 UTC,
    # the 25 hours from 2025-12-31 00:00 inclusive, not the 48 the table holds
    assert manifest["logical_time"] == "2026-01-01T00:00:00Z"
    assert manifest["statistics"]["row_count"] == 25
    assert manifest["metadata"]["export_trigger"] == "cron"
    state, pushed = _task(site, EVENTS_DAG, "events")
    assert state == "success"
    assert pushed is not None
    assert pushed["status"] == "SUCCESS"
    assert pushed["export_id"] == manifest["export_id"]
    assert (pushed["rows"], pushed["files"]) == (25, 1)
    assert pushed["manifests"] == [f"gs://b/events/2026/01/01/{manifest_path.name}"]
    assert pushed["logical_time"] == "2026-01-01T00:00:00+00:00"
    written = _files(site)

    again = _dags_test(site, airflow_bin, EVENTS_DAG)

    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    state, pushed = _task(site, EVENTS_DAG, "events")
    assert state == "success"
    assert pushed is not None
    assert pushed["status"] == "SKIPPED"
    assert pushed["export_id"] == manifest["export_id"]
    assert _files(site) == written
    # a DAG of one's own exporting the table at the same logical date: the same token
    by_hand = _dags_test(site, airflow_bin, "events_by_hand")
    assert by_hand.returncode == 0, by_hand.stdout[-3000:] + by_hand.stderr[-3000:]
    assert _task(site, "events_by_hand", "events")[1] == pushed
    assert _files(site) == written


def test_a_table_failing_its_data_check_fails_its_task(site: Path, airflow_bin: Path) -> None:
    done = _dags_test(site, airflow_bin, SESSIONS_DAG)

    output = done.stdout + done.stderr
    assert done.returncode != 0, output[-3000:]
    state, pushed = _task(site, SESSIONS_DAG, "sessions")
    assert state == "failed"
    assert pushed is None
    assert "content_length_check (10 of 10 rows" in output
    folder = site / "out" / "gs" / "b" / "sessions" / "2026" / "01" / "01"
    assert (folder / "FAILURE").is_file()
    assert not (folder / "SUCCESS").exists()
    listed = dpexport(
        "-c", site / "dpexport.yaml", "--local-root", site / "out", "dlq", "list", "--json"
    )
    assert listed.code == 0, listed.err
    [entry] = [e for e in json.loads(listed.out) if e["state"] == "open"]
    assert (entry["table"], entry["at"], entry["trigger"]) == (
        "ds.sessions",
        "2026-01-01T00:00:00Z",
        "cron",
    )
    assert entry["error"].startswith("data checks failed: content_length_check")
