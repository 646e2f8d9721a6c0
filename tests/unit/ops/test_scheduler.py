"""Fire times of cron and continuous schedules, and catching up when behind, through
the real runner on a real DuckDB warehouse."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import duckdb
import pytest

from dpexport.config import load_config
from dpexport.config.spec import ResolvedConfig
from dpexport.engines import open_engine
from dpexport.flow.context import RunOptions
from dpexport.flow.runner import run_exports
from dpexport.ops.scheduler import Job, Scheduler, Tick, jobs_for


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


MINUTE = timedelta(minutes=1)


def test_cron_fire_times_are_utc_and_exclusive_inclusive() -> None:
    job = Job("t", "0 */6 * * *", MINUTE)
    assert job.next_after(at("2025-09-16 06:00:00")) == at("2025-09-16 12:00:00")
    assert job.next_after(at("2025-09-16 05:59:59")) == at("2025-09-16 06:00:00")
    assert job.latest(at("2025-09-16 06:00:00")) == at("2025-09-16 06:00:00")
    assert job.latest(at("2025-09-16 06:00:00.5")) == at("2025-09-16 06:00:00")
    assert job.latest(at("2025-09-16 05:59:59")) == at("2025-09-16 00:00:00")
    assert list(job.between(at("2025-09-16 00:00:00"), at("2025-09-17 00:00:00"))) == [
        at("2025-09-16 06:00:00"),
        at("2025-09-16 12:00:00"),
        at("2025-09-16 18:00:00"),
        at("2025-09-17 00:00:00"),
    ]
    # another zone's clock reading is the same instant
    plus2 = datetime(2025, 9, 16, 8, 0, tzinfo=UTC).astimezone(timezone(timedelta(hours=2)))
    assert job.latest(plus2) == at("2025-09-16 06:00:00")
    assert job.trigger == "cron"


@pytest.mark.parametrize("schedule", ["continuous", " Continuous "])
def test_interval_schedules_fire_on_an_epoch_aligned_grid(schedule: str) -> None:
    job = Job("t", schedule, timedelta(seconds=90))
    assert job.trigger == "stream"
    # 2025-09-16 00:00:00 UTC is 1757980800 s after the epoch, a multiple of 90
    assert job.latest(at("2025-09-16 00:01:29")) == at("2025-09-16 00:00:00")
    assert job.latest(at("2025-09-16 00:01:30")) == at("2025-09-16 00:01:30")
    assert job.next_after(at("2025-09-16 00:01:30")) == at("2025-09-16 00:03:00")
    assert len(list(job.between(at("2025-09-16 00:00:00"), at("2025-09-16 01:00:00")))) == 40


def test_jobs_for_keeps_scheduled_tables_and_refuses_a_zero_interval(tmp_path: Path) -> None:
    config = _config(tmp_path)
    assert [(j.table, j.schedule) for j in jobs_for(config.tables, MINUTE)] == [
        ("events", "0 * * * *")
    ]
    with pytest.raises(ValueError, match="must be positive"):
        jobs_for(config.tables, timedelta(0))


def _config(tmp_path: Path) -> ResolvedConfig:
    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    con.execute("CREATE SCHEMA ds")
    con.execute(
        """CREATE TABLE ds.events AS SELECT i AS id,
        TIMESTAMP '2025-09-16 00:00:30' + to_minutes(i) AS created_at FROM range(600) t(i)"""
    )
    con.execute("CREATE TABLE ds.devices AS SELECT 1 AS device_id")
    con.close()
    path = tmp_path / "dpexport.yaml"
    path.write_text(
        """project: p
environment: dev
warehouse: {engine: duckdb, path: w.duckdb}
buckets: {exports: gs://b}
exports:
  - {source: ds.events, destination: gs://b/events/, mode: APPEND,
     change_column: created_at, schedule: "0 * * * *"}
  - {source: ds.devices, destination: gs://b/devices/, mode: FULL_REFRESH}
"""
    )
    return load_config(path)


def test_behind_schedule_runs_only_the_latest_fire_time_and_counts_the_rest(
    tmp_path: Path,
) -> None:
    config = _config(tmp_path)
    ticks: list[Tick] = []
    scheduler = Scheduler(
        config,
        jobs_for(config.tables, MINUTE),
        open_engine=lambda who: open_engine(config.warehouse, base_dir=tmp_path),
        run=run_exports,
        options=RunOptions(local_root=tmp_path / "out"),
        on_tick=ticks.append,
    )
    last: dict[str, datetime] = {}
    # a fresh start catches up the latest fire time only
    scheduler.run_due(at("2025-09-16 02:10:00"), last)
    assert last == {"events": at("2025-09-16 02:00:00")}
    # nothing is due again before the next fire time
    assert scheduler.run_due(at("2025-09-16 02:59:59"), last) == []
    # back after 4 more fire times: one export at the latest, three counted as skipped
    [tick] = scheduler.run_due(at("2025-09-16 06:30:00"), last)
    assert (tick.at, tick.skipped) == (at("2025-09-16 06:00:00"), 3)
    first, latest = (t.results[0] for t in ticks)
    assert (first.status, first.rows) == ("SUCCESS", 120)  # 00:00:30 .. 01:59:30
    # APPEND at the latest time covers the skipped windows: no row is lost
    assert (latest.status, latest.rows) == ("SUCCESS", 240)  # 02:00:30 .. 05:59:30
    scheduler.close()
