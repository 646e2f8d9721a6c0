"""``dpexport schedule`` with time zones, ``on_change`` and the off-peak window, through
the CLI on a real DuckDB warehouse and a local bucket: the exact UTC fire times a replay
(``--from .. --until``) runs, and ``check`` refusing what the scheduler could not read."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import duckdb
import pytest

from tests.e2e.cli import Result, dpexport

LA = "America/Los_Angeles"
HEAD = """\
project: p
environment: prod
warehouse: {engine: duckdb, path: warehouse.duckdb, dataset: ds}
buckets: {exports: gs://b}
"""


@pytest.fixture()
def base(tmp_path: Path) -> Path:
    con = duckdb.connect(str(tmp_path / "warehouse.duckdb"))
    con.execute("CREATE SCHEMA ds")
    con.execute("CREATE TABLE ds.devices AS SELECT i AS device_id FROM range(5) t(i)")
    con.execute("CREATE TABLE ds.parts_catalog AS SELECT i AS part_id FROM range(3) t(i)")
    con.execute(
        "CREATE TABLE ds.configuration_settings AS "
        "SELECT 'retries' AS key, '3' AS value UNION ALL SELECT 'region', 'us'"
    )
    con.close()
    return tmp_path


def _write(base: Path, body: str) -> None:
    (base / "dpexport.yaml").write_text(HEAD + body)


def _cli(base: Path, *args: str) -> Result:
    return dpexport("-c", base / "dpexport.yaml", "--local-root", base / "out", *args)


def _replay(base: Path, start: str, end: str, *args: str) -> list[dict[str, Any]]:
    result = _cli(base, "schedule", "--json", "--from", start, "--until", end, *args)
    assert result.code == 0, result.err
    return [json.loads(line) for line in result.out.splitlines() if line.strip()]


def _fires(records: list[dict[str, Any]], table: str) -> list[str]:
    assert all(r["status"] == "SUCCESS" for r in records), records
    return [r["at"] for r in records if r["table"] == table]


# -- cron time zones across DST ---------------------------------------------------------------


@pytest.mark.parametrize(
    "item",
    [
        f'schedule: "CRON_TZ={LA} 30 2 * * *"',
        f'schedule: "30 2 * * *", timezone: {LA}',
    ],
)
def test_cron_in_a_zone_fires_at_exact_utc_times_across_dst(base: Path, item: str) -> None:
    _write(base, f"exports:\n  - {{source: ds.devices, mode: FULL_REFRESH, {item}}}\n")
    # spring forward, 2025-03-09: 02:30 does not exist; it fires at the change, 03:00 PDT
    spring = _replay(base, "2025-03-07T00:00:00Z", "2025-03-11T00:00:00Z")
    assert _fires(spring, "devices") == [
        "2025-03-07T10:30:00Z",  # 02:30 PST (UTC-8)
        "2025-03-08T10:30:00Z",
        "2025-03-09T10:00:00Z",  # 03:00 PDT
        "2025-03-10T09:30:00Z",  # 02:30 PDT (UTC-7)
    ]
    assert all(r["trigger"] == "cron" and r["rows"] == 5 for r in spring)
    # fall back, 2025-11-02: 01:00-02:00 repeats; 02:30 comes once, in PST
    fall = _replay(base, "2025-10-31T00:00:00Z", "2025-11-04T00:00:00Z")
    assert _fires(fall, "devices") == [
        "2025-10-31T09:30:00Z",  # 02:30 PDT
        "2025-11-01T09:30:00Z",
        "2025-11-02T10:30:00Z",  # 02:30 PST
        "2025-11-03T10:30:00Z",
    ]


def test_a_frequency_word_reads_its_entrys_zone(base: Path) -> None:
    _write(base, "full_refresh:\n  parts_catalog: {frequency: daily, timezone: Asia/Tokyo}\n")
    records = _replay(base, "2025-09-15T00:00:00Z", "2025-09-17T00:00:00Z")
    # daily is midnight in Tokyo (UTC+9, no DST): 15:00 UTC the day before
    assert _fires(records, "parts_catalog") == ["2025-09-15T15:00:00Z", "2025-09-16T15:00:00Z"]


# -- on_change --------------------------------------------------------------------------------


def test_on_change_exports_after_a_change_and_not_again_without_one(base: Path) -> None:
    _write(base, "full_refresh:\n  configuration_settings: {frequency: on_change}\n")
    # polled every 5 minutes by default; the first poll finds no export yet: it exports
    first = _replay(base, "2025-09-16T00:00:00Z", "2025-09-16T01:00:00Z")
    assert [(r["table"], r["at"], r["rows"]) for r in first] == [
        ("configuration_settings", "2025-09-16T00:05:00Z", 2)
    ]
    assert first[0]["trigger"] == "cron"
    marker = base / "out/gs/b/_state/exports/prod/ds/configuration_settings/"
    marker /= "ds.configuration_settings/change_marker.json"
    assert json.loads(marker.read_text())["export_id"] == first[0]["export_id"]

    # twelve more polls, nothing changed: nothing exported
    assert _replay(base, "2025-09-16T01:00:00Z", "2025-09-16T02:00:00Z") == []

    con = duckdb.connect(str(base / "warehouse.duckdb"))
    con.execute("UPDATE ds.configuration_settings SET value = '5' WHERE key = 'retries'")
    con.close()
    # the first poll after the change exports it, once
    changed = _replay(base, "2025-09-16T02:00:00Z", "2025-09-16T03:00:00Z")
    assert [(r["at"], r["status"], r["rows"]) for r in changed] == [
        ("2025-09-16T02:05:00Z", "SUCCESS", 2)
    ]
    assert json.loads(marker.read_text())["export_id"] == changed[0]["export_id"]
    assert _replay(base, "2025-09-16T03:00:00Z", "2025-09-16T04:00:00Z") == []

    # --poll-every sets the poll: every 30 minutes, the change is exported at :30
    con = duckdb.connect(str(base / "warehouse.duckdb"))
    con.execute("INSERT INTO ds.configuration_settings VALUES ('zone', 'eu')")
    con.close()
    polled = _replay(base, "2025-09-16T04:10:00Z", "2025-09-16T06:00:00Z", "--poll-every", "1800")
    assert [(r["at"], r["rows"]) for r in polled] == [("2025-09-16T04:30:00Z", 3)]


def test_on_change_table_is_scheduled(base: Path) -> None:
    _write(base, "full_refresh:\n  configuration_settings: {frequency: on_change}\n")
    result = _cli(
        base, "schedule", "--json", "--table", "configuration_settings", "--once",
        "--now", "2025-09-16T00:07:00Z",
    )  # fmt: skip
    assert result.code == 0, result.err
    [record] = [json.loads(line) for line in result.out.splitlines()]
    assert (record["at"], record["status"]) == ("2025-09-16T00:05:00Z", "SUCCESS")


# -- the off-peak window ----------------------------------------------------------------------


OFF_PEAK = """\
full_refresh:
  parts_catalog: {frequency: hourly}
exports:
  - {source: ds.devices, mode: FULL_REFRESH, schedule: "0 */6 * * *"}
optimization_strategies:
  scheduling: {off_peak_exports: "2 AM - 6 AM PST", cost_savings: "30% lower egress"}
"""


def test_off_peak_window_holds_frequency_schedules_inside_it(base: Path) -> None:
    _write(base, OFF_PEAK)
    winter = _replay(base, "2025-01-15T00:00:00Z", "2025-01-16T00:00:00Z")
    # 2 AM - 6 AM PST is 10:00-14:00 UTC: the hourly table fires inside it only, the
    # hours before it held to its opening (one export), those after it to the next day
    assert _fires(winter, "parts_catalog") == [
        "2025-01-15T10:00:00Z",
        "2025-01-15T11:00:00Z",
        "2025-01-15T12:00:00Z",
        "2025-01-15T13:00:00Z",
    ]
    # an explicit cron says when: kept
    assert _fires(winter, "devices") == [
        "2025-01-15T06:00:00Z",
        "2025-01-15T12:00:00Z",
        "2025-01-15T18:00:00Z",
        "2025-01-16T00:00:00Z",
    ]
    # in summer the window is the Pacific wall clock, PDT: 09:00-13:00 UTC
    summer = _replay(
        base, "2025-07-15T00:00:00Z", "2025-07-16T00:00:00Z", "--table", "parts_catalog"
    )
    assert _fires(summer, "parts_catalog") == [
        "2025-07-15T09:00:00Z",
        "2025-07-15T10:00:00Z",
        "2025-07-15T11:00:00Z",
        "2025-07-15T12:00:00Z",
    ]


def test_off_peak_window_holds_on_change_polls(base: Path) -> None:
    _write(
        base,
        "full_refresh:\n  configuration_settings: {frequency: on_change}\n"
        "optimization_strategies:\n  scheduling: {off_peak_exports: '2 AM - 6 AM PST'}\n",
    )
    # polls before 10:00 UTC wait for the window; the change is exported as it opens
    records = _replay(base, "2025-01-15T00:00:00Z", "2025-01-16T00:00:00Z")
    assert [r["at"] for r in records] == ["2025-01-15T10:00:00Z"]


# -- check ------------------------------------------------------------------------------------


def test_check_refuses_bad_zones_windows_and_a_seven_field_cron_at_their_paths(
    base: Path,
) -> None:
    _write(
        base,
        """\
exports:
  - {source: ds.devices, mode: FULL_REFRESH, schedule: "30 2 * * *", timezone: America/Los_Angles}
  - {source: ds.parts_catalog, mode: FULL_REFRESH, schedule: "CRON_TZ=Europe/Pariss 0 3 * * *"}
  - {source: ds.configuration_settings, mode: FULL_REFRESH, schedule: "0 0 2 * * * *"}
optimization_strategies:
  scheduling: {off_peak_exports: "2 AM - 6 AM PSTT"}
""",
    )
    result = _cli(base, "check")
    assert result.code == 2
    lines = [line for line in result.err.splitlines() if line.lstrip().startswith("- ")]
    assert len(lines) == 4, result.err
    assert (
        "exports[0].timezone: unknown time zone (got 'America/Los_Angles')" in lines[0]
        and "did you mean 'America/Los_Angeles'?" in lines[0]
    )
    assert "exports[1].schedule: unknown time zone 'Europe/Pariss'" in lines[1]
    assert "did you mean 'CRON_TZ=Europe/Paris 0 3 * * *'?" in lines[1]
    assert "exports[2].schedule: 7 cron fields" in lines[2]  # reported once
    assert "optimization_strategies.scheduling.off_peak_exports: unknown time zone" in lines[3]
    assert "did you mean '2 AM - 6 AM PST'?" in lines[3]
    assert not (base / "out").exists()

    _write(base, OFF_PEAK.replace("hourly", "hourly, timezone: Asia/Tokyo"))
    assert _cli(base, "check").code == 0
