"""Failures of the places an export writes to and reads from end cleanly (issue 18, cases
8 and 13): exit 1, `run --json` naming what is wrong and where, a FAILURE marker and a
DLQ entry where they can be written (the error says when they cannot), the token never
left IN_PROGRESS, the other tables exported, never a traceback. A successful rerun
resolves the DLQ entries of its table and logical time.

Denied writes: a test run as root is not stopped by file modes, so there the folder is
made immutable (``chattr +i``); where neither works, those tests skip. Every other case
puts a file where dpexport needs a folder, which stops root too."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import duckdb
import pytest

from tests.e2e.cli import Result, dpexport

AT = "2025-09-17T00:00:00Z"
CONFIG = """\
project: p
environment: test
warehouse: {engine: duckdb, path: warehouse.duckdb}
buckets: {exports: gs://b}
exports:
  - source: ds.events
    destination: gs://b/events/
    mode: FULL_REFRESH
  - source: ds.other
    destination: gs://b/other/
    mode: FULL_REFRESH
"""


@pytest.fixture
def site(tmp_path: Path) -> Path:
    """A warehouse of two one-row tables and a config exporting each to gs://b."""
    con = duckdb.connect(str(tmp_path / "warehouse.duckdb"))
    con.execute("CREATE SCHEMA ds")
    con.execute("CREATE TABLE ds.events AS SELECT 1 AS id, 'a' AS name")
    con.execute("CREATE TABLE ds.other AS SELECT 2 AS id, 'b' AS name")
    con.close()
    (tmp_path / "dpexport.yaml").write_text(CONFIG, encoding="utf-8")
    return tmp_path


def _sql(site: Path, statement: str) -> None:
    con = duckdb.connect(str(site / "warehouse.duckdb"))
    con.execute(statement)
    con.close()


def _bucket(site: Path) -> Path:
    return site / "out" / "gs" / "b"


def _run(site: Path, at: str = AT) -> tuple[Result, dict[str, dict[str, Any]]]:
    result = dpexport(
        "-c", site / "dpexport.yaml", "--local-root", site / "out", "run", "--at", at, "--json"
    )
    assert "Traceback" not in result.err, result.err
    by_table = {r["table"]: r for r in json.loads(result.out)} if result.out.strip() else {}
    return result, by_table


def _open_dlq(site: Path) -> list[dict[str, Any]]:
    result = dpexport(
        "-c", site / "dpexport.yaml", "--local-root", site / "out", "dlq", "list", "--json"
    )
    assert result.code == 0, result.err
    return [e for e in json.loads(result.out) if e["state"] == "open"]


def _token_status(site: Path, table: str) -> str:
    (path,) = (_bucket(site) / "idempotency-tokens").glob(f"{table}_*.json")
    return str(json.loads(path.read_text())["status"])


@pytest.fixture
def deny_writes() -> Iterator[Callable[[Path], None]]:
    """Makes a folder refuse new entries: mode 0555, or ``chattr +i`` for root."""
    denied: list[tuple[Path, bool]] = []

    def deny(folder: Path) -> None:
        if os.geteuid() != 0:
            folder.chmod(0o555)
            denied.append((folder, False))
            return
        done = subprocess.run(["chattr", "+i", str(folder)], capture_output=True, check=False)
        if done.returncode != 0:
            pytest.skip(f"root, and chattr +i is refused here: {done.stderr!r}")
        denied.append((folder, True))

    yield deny
    for folder, immutable in denied:
        if immutable:
            subprocess.run(["chattr", "-i", str(folder)], check=True)
        else:
            folder.chmod(0o755)


def test_a_destination_that_cannot_be_written_fails_its_export_cleanly(
    site: Path, deny_writes: Callable[[Path], None]
) -> None:
    (_bucket(site) / "events").mkdir(parents=True)
    deny_writes(_bucket(site) / "events")

    result, by_table = _run(site)

    assert result.code == 1, result.err
    events = by_table["events"]
    assert events["status"] == "FAILURE"
    assert "permission denied on " + str(_bucket(site) / "events") in events["error"]
    assert by_table["other"]["status"] == "SUCCESS"
    assert _token_status(site, "events") == "FAILED"
    assert [e["table"] for e in _open_dlq(site)] == ["ds.events"]

    # writable again: the rerun publishes, and its DLQ entry is resolved
    _allow_writes(_bucket(site) / "events")
    result, by_table = _run(site)
    assert result.code == 0, result.err
    assert by_table["events"]["status"] == "SUCCESS"
    assert list((_bucket(site) / "events").rglob("SUCCESS"))
    assert _open_dlq(site) == []


def _allow_writes(folder: Path) -> None:
    if os.geteuid() == 0:
        subprocess.run(["chattr", "-i", str(folder)], check=True)
    else:
        folder.chmod(0o755)


def test_a_file_where_the_destination_folder_belongs_is_named(site: Path) -> None:
    _bucket(site).mkdir(parents=True)
    (_bucket(site) / "events").write_text("in the way")

    result, by_table = _run(site)

    assert result.code == 1, result.err
    error = by_table["events"]["error"]
    assert f"{_bucket(site) / 'events'} is a file where dpexport needs a folder" in error
    assert "NotADirectoryError" not in error
    assert by_table["other"]["status"] == "SUCCESS"
    assert _token_status(site, "events") == "FAILED"
    assert [e["table"] for e in _open_dlq(site)] == ["ds.events"]


def test_a_failure_marker_that_cannot_be_written_does_not_stop_the_run(site: Path) -> None:
    """The export fails (its source is gone) and its FAILURE marker cannot be written:
    the failure is still reported, queued and recorded in the token."""
    _sql(site, "ALTER TABLE ds.events RENAME TO events_gone")
    _bucket(site).mkdir(parents=True)
    (_bucket(site) / "events").write_text("in the way")

    result, by_table = _run(site)

    assert result.code == 1, result.err
    assert by_table["events"]["status"] == "FAILURE"
    assert "does not exist" in by_table["events"]["error"]
    assert by_table["other"]["status"] == "SUCCESS"
    assert "could not write events/" in result.err
    assert "is a file where dpexport needs a folder" in result.err
    assert _token_status(site, "events") == "FAILED"
    assert [e["table"] for e in _open_dlq(site)] == ["ds.events"]


def test_a_file_named_idempotency_tokens_fails_each_export_naming_it(site: Path) -> None:
    """Exit 1, table by table, not 2: the config is right, the bucket's state is in the
    way (CONTRACT §2: 2 is bad config or arguments, with nothing written); each export
    says what to do, leaves its FAILURE marker and DLQ entry, and a table whose tokens
    live elsewhere would go on."""
    _bucket(site).mkdir(parents=True)
    blocker = _bucket(site) / "idempotency-tokens"
    blocker.write_text("in the way")

    result, by_table = _run(site)

    assert result.code == 1, result.err
    assert set(by_table) == {"events", "other"}
    for row in by_table.values():
        assert row["status"] == "FAILURE"
        assert f"{blocker} is a file where dpexport needs a folder: move it aside" in (row["error"])
    assert sorted(e["table"] for e in _open_dlq(site)) == ["ds.events", "ds.other"]
    assert (_bucket(site) / "events" / "2025" / "09" / "17" / "FAILURE").is_file()


def test_an_unwritable_bucket_says_so_and_where_the_dlq_entry_went(
    site: Path, deny_writes: Callable[[Path], None]
) -> None:
    _bucket(site).mkdir(parents=True)
    deny_writes(_bucket(site))

    result, by_table = _run(site)

    assert result.code == 1, result.err
    for row in by_table.values():
        assert row["status"] == "FAILURE"
        assert f"permission denied on {_bucket(site) / 'idempotency-tokens'}" in row["error"]
        assert "its DLQ entry could not be written: permission denied" in row["error"]
    assert "could not record the DLQ entry" in result.err
    assert not any(p.is_file() for p in _bucket(site).rglob("*"))


def test_a_warehouse_locked_by_another_writer_fails_every_export_as_unavailable(
    site: Path,
) -> None:
    """The warehouse is unavailable for now (spec 7.1 SERVICE_UNAVAILABLE): each selected
    table's export fails like any failed export, FAILURE marker and DLQ entry included
    (CONTRACT §2's exit 1), so `dlq retry` or the next run catches up once it opens."""
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import duckdb, sys, time\n"
            "con = duckdb.connect(sys.argv[1])\n"
            "print('ready', flush=True)\n"
            "time.sleep(600)\n",
            str(site / "warehouse.duckdb"),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "ready"
        result, by_table = _run(site)
    finally:
        holder.kill()
        holder.communicate()

    assert result.code == 1, result.err
    assert set(by_table) == {"events", "other"}
    for row in by_table.values():
        assert row["status"] == "FAILURE"
        assert f"cannot open DuckDB database {site / 'warehouse.duckdb'}" in row["error"]
        assert "locked by python" in row["error"]
        assert f"(PID {holder.pid})" in row["error"]
    assert sorted(e["table"] for e in _open_dlq(site)) == ["ds.events", "ds.other"]
    assert all(e["code"] == "SERVICE_UNAVAILABLE" for e in _open_dlq(site))
    assert (_bucket(site) / "other" / "2025" / "09" / "17" / "FAILURE").is_file()

    result, by_table = _run(site)  # the lock is gone: the run catches up
    assert result.code == 0, result.err
    assert _open_dlq(site) == []


def test_a_successful_rerun_resolves_the_dlq_entry_of_its_table_and_time(site: Path) -> None:
    _sql(site, "ALTER TABLE ds.events RENAME TO events_gone")
    result, _ = _run(site, "2025-09-16T00:00:00Z")
    assert result.code == 1
    result, _ = _run(site)
    assert result.code == 1
    assert sorted((e["table"], e["at"]) for e in _open_dlq(site)) == [  # ids order them
        ("ds.events", "2025-09-16T00:00:00Z"),
        ("ds.events", AT),
    ]

    _sql(site, "ALTER TABLE ds.events_gone RENAME TO events")
    result, by_table = _run(site)

    assert result.code == 0, result.err
    assert by_table["events"]["status"] == "SUCCESS"
    assert "DLQ entry" in result.err and "resolved" in result.err
    # the other logical time is still owed
    assert [(e["table"], e["at"]) for e in _open_dlq(site)] == [
        ("ds.events", "2025-09-16T00:00:00Z")
    ]
