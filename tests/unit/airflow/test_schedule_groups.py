"""The DAG factory's reading of a config's schedules, which needs no Airflow: one DAG per
cron and zone, the tables left out with why, and a schedule held to the off-peak window as
the cron that fires at its held times (``dpexport schedule``'s logical times)."""

from __future__ import annotations

import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

import dpexport
from dpexport.airflow.dags import dag_id, schedule_groups
from dpexport.airflow.offpeak import held_cron
from dpexport.config import schedules

PACIFIC = "America/Los_Angeles"


CONFIG = """\
project: p
environment: test
warehouse: {engine: duckdb, path: warehouse.duckdb}
buckets: {exports: gs://b}
full_refresh:
  parts: {export_mode: OVERWRITE, frequency: daily}
  makers: {export_mode: OVERWRITE, frequency: weekly}
  settings: {export_mode: OVERWRITE, frequency: on_change}
optimization_strategies:
  scheduling: {off_peak_exports: "2 AM - 6 AM PST"}
exports:
  - {source: ds.parts, destination: "gs://b/parts/"}
  - {source: ds.makers, destination: "gs://b/makers/"}
  - {source: ds.settings, destination: "gs://b/settings/"}
  - {source: ds.a, destination: "gs://b/a/", schedule: "0 2 * * *"}
  - {source: ds.b, destination: "gs://b/b/", schedule: "CRON_TZ=Europe/Paris 0 2 * * *"}
  - {source: ds.c, destination: "gs://b/c/", schedule: "0 2 * * *", timezone: Europe/Paris}
  - {source: ds.d, destination: "gs://b/d/", schedule: continuous}
  - {source: ds.e, destination: "gs://b/e/"}
"""


def test_a_dag_per_cron_and_zone_and_the_tables_left_out(tmp_path: Path) -> None:
    config = tmp_path / "dpexport.yaml"
    config.write_text(CONFIG, encoding="utf-8")

    groups, skipped = schedule_groups(dpexport.load_config(config))

    by_dag = {g.dag_id: (g.cron, g.zone, [t for t, _ in g.tables]) for g in groups}
    assert by_dag == {
        # spec 4.2's daily and weekly, held to "2 AM - 6 AM PST": 2 AM on Pacific clocks
        "dpexport_0_2_x_x_x_America.Los_Angeles": ("0 2 * * *", PACIFIC, ["parts"]),
        "dpexport_0_2_x_x_0_America.Los_Angeles": ("0 2 * * 0", PACIFIC, ["makers"]),
        "dpexport_0_2_x_x_x": ("0 2 * * *", "UTC", ["a"]),
        "dpexport_0_2_x_x_x_Europe.Paris": ("0 2 * * *", "Europe/Paris", ["b", "c"]),
    }
    assert [g.tables for g in groups if g.zone == "Europe/Paris"] == [
        (("b", "ds.b"), ("c", "ds.c"))
    ]
    assert skipped == {
        "settings": "on_change: `dpexport schedule` polls its change marker",
        "d": "continuous: `dpexport schedule` runs it, not a DAG run per interval",
        "e": "no schedule: it runs on demand",
    }
    assert "airflow" not in sys.modules  # grouping needs no Airflow


@pytest.mark.parametrize(
    ("cron", "window", "want"),
    [
        ("0 0 * * *", "2 AM - 6 AM PST", ("0 2 * * *", PACIFIC)),
        ("0 * * * *", "2 AM - 6 AM PST", ("0 2,3,4,5 * * *", PACIFIC)),
        # midnight UTC on Sunday is 9 AM in Tokyo: the next window opens on Monday
        ("0 0 * * 0", "2 AM - 6 AM Asia/Tokyo", ("0 2 * * 1", "Asia/Tokyo")),
        ("0 0 1 * *", "2 AM - 6 AM Asia/Tokyo", ("0 2 2 * *", "Asia/Tokyo")),
        ("0 0 * * *", "11 PM - 1 AM UTC", ("0 0 * * *", "UTC")),
    ],
)
def test_a_held_schedule_is_the_cron_of_its_held_times(
    cron: str, window: str, want: tuple[str, str]
) -> None:
    held = schedules.parse(cron, off_peak=window)

    found = held_cron(held)

    assert found == want
    # the same fire times as the scheduler's, across the spring-forward and the fall-back
    start, end = datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 11, 30, tzinfo=UTC)
    again = schedules.parse(f"CRON_TZ={found[1]} {found[0]}")
    assert list(again.between(start, end)) == list(held.between(start, end))


def test_a_schedule_no_cron_states_has_none() -> None:
    # every 70 minutes held to a window: its times fall on other minutes every day
    held = schedules.parse("continuous", every=timedelta(minutes=70), off_peak="2 AM - 6 AM UTC")
    assert held_cron(held) is None
    assert held_cron(schedules.parse("0 0 * * *")) is None  # no window, nothing to hold


def test_dag_ids_hold_only_the_characters_airflow_takes() -> None:
    assert dag_id("dpexport", "*/15 1,13 * * 1-5", "UTC") == "dpexport_xevery15_1.13_x_x_1-5"
    assert dag_id("p", "@daily", "Europe/Paris") == "p_daily_Europe.Paris"
