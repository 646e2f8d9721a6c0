"""``dpexport schedule``: replayed fire times, ``--once``, and the long-running loop with
its metrics endpoint, on a real DuckDB warehouse and a local bucket."""

from __future__ import annotations

import itertools
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pyarrow.parquet as pq
import pytest

from tests.e2e.cli import Result, dpexport

CONFIG = """\
project: p
environment: prod
warehouse: {engine: duckdb, path: warehouse.duckdb}
buckets: {exports: gs://b}
exports:
  - source: ds.events
    destination: gs://b/events/
    format: PARQUET
    partitioning: {field: created_at, granularity: daily}
    mode: APPEND
    schedule: "0 */6 * * *"
  - source: ds.devices
    destination: gs://b/devices/
    format: JSONL
    mode: FULL_REFRESH
"""
#: one event every 10 minutes over 2025-09-15 and 2025-09-16
EVENTS = 2 * 24 * 6


@pytest.fixture()
def base(tmp_path: Path) -> Path:
    con = duckdb.connect(str(tmp_path / "warehouse.duckdb"))
    con.execute("CREATE SCHEMA ds")
    con.execute(
        f"""CREATE TABLE ds.events AS SELECT i AS id,
        TIMESTAMP '2025-09-15 00:00:00' + to_minutes(10 * i) + INTERVAL 1 SECOND AS created_at,
        i * 0.5 AS v FROM range({EVENTS}) t(i)"""
    )
    con.execute("CREATE TABLE ds.devices AS SELECT i AS device_id FROM range(5) t(i)")
    con.close()
    (tmp_path / "dpexport.yaml").write_text(CONFIG)
    return tmp_path


def _cli(base: Path, *args: str) -> Result:
    """``dpexport -c BASE/dpexport.yaml --local-root BASE/out ARGS``."""
    return dpexport("-c", base / "dpexport.yaml", "--local-root", base / "out", *args)


def _schedule(base: Path, *args: str) -> tuple[int, list[dict[str, Any]], str]:
    result = _cli(base, "schedule", "--json", *args)
    records = [json.loads(line) for line in result.out.splitlines() if line.strip()]
    return result.code, records, result.err


def _exported_ids(base: Path, records: list[dict[str, Any]]) -> list[int]:
    ids: list[int] = []
    for record in records:
        for uri in record["manifests"]:
            manifest = base / "out" / "gs" / uri.removeprefix("gs://")
            for entry in json.loads(manifest.read_text())["files"]:
                ids += pq.read_table(manifest.parent / entry["name"]).column("id").to_pylist()
    return ids


def test_replay_runs_every_fire_time_once_and_exports_each_row_once(base: Path) -> None:
    code, records, err = _schedule(
        base, "--from", "2025-09-15T00:00:00Z", "--until", "2025-09-16T00:00:00Z"
    )
    assert code == 0, err
    # cron fire times in (from, until], in order; the unscheduled table does not run
    assert [(r["table"], r["at"], r["trigger"]) for r in records] == [
        ("events", "2025-09-15T06:00:00Z", "cron"),
        ("events", "2025-09-15T12:00:00Z", "cron"),
        ("events", "2025-09-15T18:00:00Z", "cron"),
        ("events", "2025-09-16T00:00:00Z", "cron"),
    ]
    assert all(r["status"] == "SUCCESS" for r in records)
    # each fire time is the logical time: the rows up to it, each exactly once
    assert [r["rows"] for r in records] == [36, 36, 36, 36]
    assert sorted(_exported_ids(base, records)) == list(range(144))

    # a second replay of the same range finds every export done by its token
    code, again, err = _schedule(
        base, "--from", "2025-09-15T00:00:00Z", "--until", "2025-09-16T00:00:00Z"
    )
    assert code == 0, err
    assert [r["status"] for r in again] == ["SKIPPED"] * 4
    assert [r["export_id"] for r in again] == [r["export_id"] for r in records]
    assert all("already exported" in r["reason"] for r in again)


def test_once_runs_the_latest_due_fire_time_then_exits(base: Path) -> None:
    code, records, err = _schedule(base, "--once", "--now", "2025-09-16T13:59:59Z")
    assert code == 0, err
    [record] = records
    assert (record["table"], record["at"], record["status"]) == (
        "events",
        "2025-09-16T12:00:00Z",
        "SUCCESS",
    )
    # everything up to 12:00 on the 16th, in the first export of this table
    assert sorted(_exported_ids(base, records)) == list(range(6 * 36))


def test_bad_arguments_exit_2_and_write_nothing(base: Path) -> None:
    result = _cli(base, "schedule", "--until", "x")
    assert result.code == 2
    assert "--until needs --from" in result.err
    result = _cli(
        base,
        "schedule",
        "--table",
        "devices",
        "--once",
    )
    assert result.code == 2
    assert "none of devices has a 'schedule'" in result.err
    result = _cli(base, "schedule", "--every", "0")
    assert result.code == 2 and "--every" in result.err
    result = _cli(base, "schedule", "--from", "2025-09-15T00:00:00Z", "--until", "tomorrow")
    assert result.code == 2
    assert "--until: 'tomorrow' is not an RFC 3339 time" in result.err
    assert not (base / "out").exists()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _metric(text: str, name: str, **labels: str) -> float:
    want = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        key, _, value = line.rpartition(" ")
        if key == (f"{name}{{{want}}}" if want else name):
            return float(value)
    raise AssertionError(f"{name} {labels} not in metrics:\n{text}")


class _Serving:
    """``dpexport schedule --every 1 --json ARGS`` running in the background, with the
    ``events`` table made ``continuous``; killed on leaving the ``with`` if still up."""

    def __init__(self, base: Path, *args: str) -> None:
        config = base / "dpexport.yaml"
        config.write_text(CONFIG.replace('schedule: "0 */6 * * *"', "schedule: continuous"))
        env = {k: v for k, v in os.environ.items() if not k.startswith("DPEXPORT_")}
        self.proc = subprocess.Popen(
            [
                *(sys.executable, "-m", "dpexport", "-c", str(config)),
                *("--local-root", str(base / "out"), "schedule", "--every", "1", "--json"),
                *args,
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )

    def __enter__(self) -> _Serving:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def next_record(self) -> dict[str, Any]:
        assert self.proc.stdout is not None and self.proc.stderr is not None
        line = self.proc.stdout.readline()
        assert line, self.proc.stderr.read()  # it exited: say why
        return dict(json.loads(line))

    def stop(self, signum: int = signal.SIGTERM) -> list[dict[str, Any]]:
        """SIGTERM, which must end it with exit code 0 (SIGINT, Ctrl-C: 130); the
        records it printed after."""
        self.proc.send_signal(signum)
        rest, err = self.proc.communicate(timeout=60)
        assert self.proc.returncode == (130 if signum == signal.SIGINT else 0), err
        return [json.loads(line) for line in rest.splitlines() if line.strip()]


def test_serve_runs_continuous_table_every_interval_and_serves_metrics(base: Path) -> None:
    port = _free_port()
    with _Serving(base, "--port", str(port)) as serving:
        records = [serving.next_record() for _ in range(3)]
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as resp:
            metrics = resp.read().decode()
        records += serving.stop()
    assert all(r["table"] == "events" and r["trigger"] == "stream" for r in records)
    assert all(r["status"] == "SUCCESS" for r in records), records
    ats = [datetime.fromisoformat(r["at"].replace("Z", "+00:00")) for r in records]
    assert all(a < b for a, b in itertools.pairwise(ats))  # one export per fire time
    assert all(a.microsecond == 0 for a in ats)  # on the whole-second grid
    assert ats[0] <= datetime.now(UTC)
    # the first tick exports the table, later ones find nothing new
    assert records[0]["rows"] == EVENTS and all(r["rows"] == 0 for r in records[1:])
    assert sorted(_exported_ids(base, records)) == list(range(EVENTS))
    assert _metric(metrics, "dpexport_rows_exported_total", table="events") == EVENTS
    assert _metric(metrics, "dpexport_exports_total", table="events", status="SUCCESS") >= 3
    assert _metric(metrics, "dpexport_next_fire_timestamp_seconds") > time.time() - 60


def test_serve_refuses_a_port_in_use(base: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        result = _cli(
            base,
            "schedule",
            "--port",
            str(port),
        )
    assert result.code == 2
    assert f"--port {port}: cannot serve metrics on 127.0.0.1" in result.err


def test_once_retries_a_failed_fire_time_from_the_dlq_when_due(base: Path) -> None:
    con = duckdb.connect(str(base / "warehouse.duckdb"))
    con.execute("ALTER TABLE ds.events RENAME TO events_loading")
    con.close()
    code, [failed], err = _schedule(base, "--once")
    assert code == 1
    assert failed["status"] == "FAILURE" and "does not exist" in failed["error"]
    listed = _cli(base, "dlq", "list")
    assert failed["export_id"] in listed.out

    con = duckdb.connect(str(base / "warehouse.duckdb"))
    con.execute("ALTER TABLE ds.events_loading RENAME TO events")
    con.close()
    # spec 7.2 auto_retry_after is 6 hours: 7 hours on, --once re-runs the failed fire
    # time first, then its own latest one, which finds nothing new
    later = (datetime.now(UTC) + timedelta(hours=7)).strftime("%Y-%m-%dT%H:%M:%SZ")
    code, [latest], err = _schedule(base, "--once", "--now", later)
    assert code == 0, err
    assert latest["status"] == "SUCCESS" and latest["rows"] == 0
    assert f"DLQ auto-retry of {failed['export_id']}: resolved" in err
    manifests = sorted((base / "out").rglob("manifest_*.json"))
    ids = []
    for manifest in manifests:
        for entry in json.loads(manifest.read_text())["files"]:
            ids += pq.read_table(manifest.parent / entry["name"]).column("id").to_pylist()
    assert sorted(ids) == list(range(EVENTS))
    listed = _cli(base, "dlq", "list", "--now", later)
    assert listed.out.strip() == "the dead-letter queue is empty"


def test_replication_items_run_on_their_schedule_after_the_exports(base: Path) -> None:
    config = base / "dpexport.yaml"
    config.write_text(
        CONFIG
        + """replication:
  - name: dr
    tables: [ds.events]
    target: s3://dr-bucket/backup/
    schedule: "0 */12 * * *"
"""
    )
    code, records, err = _schedule(
        base, "--from", "2025-09-15T00:00:00Z", "--until", "2025-09-16T00:00:00Z"
    )
    assert code == 0, err
    assert [(r.get("replication"), r["table"], r["at"]) for r in records] == [
        (None, "events", "2025-09-15T06:00:00Z"),
        (None, "events", "2025-09-15T12:00:00Z"),
        ("dr", "ds.events", "2025-09-15T12:00:00Z"),
        (None, "events", "2025-09-15T18:00:00Z"),
        (None, "events", "2025-09-16T00:00:00Z"),
        ("dr", "ds.events", "2025-09-16T00:00:00Z"),
    ]
    first, second = (r for r in records if "replication" in r)
    assert first["status"] == second["status"] == "SUCCESS"
    assert first["mismatches"] == first["errors"] == []
    # every row up to 2025-09-16T00:00 is in the 15th's folder, which grew between the two
    assert first["folders"] == second["folders"] == 1
    assert first["skipped"] == 0 and first["copied"] > 0
    assert second["skipped"] > 0 and second["copied"] > 0  # only what the target lacked
    target = base / "out" / "s3" / "dr-bucket" / "backup"
    ids = []
    for manifest in sorted(target.rglob("manifest_*.json")):
        for entry in json.loads(manifest.read_text())["files"]:
            ids += pq.read_table(manifest.parent / entry["name"]).column("id").to_pylist()
    assert sorted(ids) == list(range(144))


def test_serve_survives_a_locked_warehouse_and_exports_once_it_is_free(base: Path) -> None:
    with _Serving(base) as serving:
        records = [serving.next_record()]
        assert records[0]["status"] == "SUCCESS" and records[0]["rows"] == EVENTS
        # the warehouse's writer takes its lock (DuckDB: one writer, or many readers)
        writer = None
        while writer is None:
            try:
                writer = duckdb.connect(str(base / "warehouse.duckdb"))
            except duckdb.IOException:
                time.sleep(0.05)  # the scheduler is reading right now
        writer.execute(
            f"INSERT INTO ds.events SELECT {EVENTS} + i, TIMESTAMP '2025-09-17 00:00:00' + "
            "to_minutes(i), 0.0 FROM range(5) t(i)"
        )
        while records[-1]["status"] != "FAILURE":
            records.append(serving.next_record())
        writer.close()
        while records[-1]["status"] != "SUCCESS":
            records.append(serving.next_record())
        after = serving.stop(signal.SIGINT)
    failures = [r for r in records if r["status"] == "FAILURE"]
    assert all("cannot open the warehouse" in r["error"] for r in failures)
    assert "locked by" in failures[0]["error"] and "PID" in failures[0]["error"]
    # the rows written while the scheduler was locked out come with the next export
    assert records[-1]["rows"] == 5
    records += after
    assert sorted(_exported_ids(base, records)) == list(range(EVENTS + 5))
