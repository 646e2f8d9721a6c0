"""INCREMENTAL with a one-column ``merge_key`` on a read-only DuckDB warehouse: a slice
whose keys do not repeat is read without the de-duplicating window (same rows, less
work); one whose keys repeat, or hold NULLs, keeps the newest row per key. Parquet is
written by DuckDB's ``COPY``, JSONL streamed through dpexport's writer. A held scheduler
writes such a slice while it counts it, and writes it again when a key repeats after all."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import duckdb
import pyarrow.parquet as pq
import pytest

from tests.e2e.cli import dpexport, warehouse_sql

CONFIG = """\
project: p
environment: prod
warehouse: {engine: duckdb, path: warehouse.duckdb}
buckets: {exports: gs://exports}
exports:
  - source: app.users
    destination: gs://exports/users/
    format: FORMAT
    compression: CODEC
    mode: INCREMENTAL
    change_column: updated_at
    merge_key: user_id
"""
SKIPPED = "no key repeats among the slice's"


def _published(base: Path, record: dict[str, Any]) -> list[tuple[Any, ...]]:
    """An export's rows as (user_id, name), sorted, read from the files its manifests list."""
    rows: list[tuple[Any, ...]] = []
    for uri in record["manifests"]:
        manifest = base / "out" / "gs" / uri.removeprefix("gs://")
        for entry in json.loads(manifest.read_text())["files"]:
            path = manifest.parent / entry["name"]
            if ".parquet" in path.name:
                table = pq.read_table(path)
                rows += zip(table["user_id"].to_pylist(), table["name"].to_pylist(), strict=True)
            else:
                found = duckdb.sql(f"SELECT user_id, name FROM read_json('{path}')")
                assert found is not None
                rows += found.fetchall()
    return sorted(rows, key=repr)


def _run(base: Path, at: str) -> tuple[dict[str, Any], list[tuple[Any, ...]], str]:
    """One export at ``at``: its record, its rows as (user_id, name) and its debug log."""
    result = dpexport(
        "--debug", "-c", base / "c.yaml", "--local-root", base / "out", "run", "--at", at, "--json"
    )
    assert result.code == 0, result.err
    [record] = json.loads(result.out)
    assert record["status"] == "SUCCESS", record
    return record, _published(base, record), result.err


@pytest.mark.parametrize(("fmt", "codec"), [("PARQUET", "SNAPPY"), ("JSONL", "GZIP")])
def test_unique_keys_skip_dedup_and_repeated_or_null_keys_keep_the_newest(
    tmp_path: Path, fmt: str, codec: str
) -> None:
    (tmp_path / "c.yaml").write_text(CONFIG.replace("FORMAT", fmt).replace("CODEC", codec))
    warehouse_sql(
        tmp_path,
        """CREATE SCHEMA app;
        CREATE TABLE app.users AS SELECT i AS user_id, 'v1' AS name,
          TIMESTAMP '2025-09-01' + to_minutes(i) AS updated_at FROM range(1000) t(i)""",
    )
    first, rows, log = _run(tmp_path, "2025-09-02T00:00:00Z")
    assert first["rows"] == 1000 and len({r[0] for r in rows}) == 1000
    assert f"{SKIPPED} 1000 row(s)" in log

    # 10 rows updated in place: their keys do not repeat in the next slice, which also
    # re-reads the watermark row (user 999, CONTRACT §6: >=)
    warehouse_sql(
        tmp_path,
        """UPDATE app.users SET name = 'v2', updated_at = TIMESTAMP '2025-09-03' +
           to_minutes(user_id) WHERE user_id % 100 = 7""",
    )
    second, rows, log = _run(tmp_path, "2025-09-04T00:00:00Z")
    assert second["rows"] == 11
    assert rows == sorted([(i, "v2") for i in range(7, 1000, 100)] + [(999, "v1")], key=repr)
    assert f"{SKIPPED} 11 row(s)" in log

    # a change log: two newer versions of users 1 and 2, and two rows without a key
    warehouse_sql(
        tmp_path,
        """INSERT INTO app.users VALUES
          (1, 'v3', TIMESTAMP '2025-09-05 01:00'), (1, 'v4', TIMESTAMP '2025-09-05 02:00'),
          (2, 'v4', TIMESTAMP '2025-09-05 04:00'), (2, 'v3', TIMESTAMP '2025-09-05 03:00'),
          (NULL, 'n1', TIMESTAMP '2025-09-05 05:00'), (NULL, 'n2', TIMESTAMP '2025-09-05 06:00'),
          (5, 'v3', TIMESTAMP '2025-09-05 07:00')""",
    )
    third, rows, log = _run(tmp_path, "2025-09-06T00:00:00Z")
    assert rows == sorted([(1, "v4"), (2, "v4"), (None, "n2"), (5, "v3"), (907, "v2")], key=repr)
    assert third["rows"] == 5
    assert SKIPPED not in log

    # the NULL keys alone, with no other repeat, also keep their de-duplication (user 5
    # is the watermark row)
    warehouse_sql(
        tmp_path,
        """INSERT INTO app.users VALUES (NULL, 'n3', TIMESTAMP '2025-09-07 01:00'),
           (NULL, 'n4', TIMESTAMP '2025-09-07 02:00'), (6, 'v3', TIMESTAMP '2025-09-07 03:00')""",
    )
    fourth, rows, log = _run(tmp_path, "2025-09-08T00:00:00Z")
    assert fourth["rows"] == 3
    assert rows == sorted([(None, "n4"), (5, "v3"), (6, "v3")], key=repr)
    assert SKIPPED not in log


HELD = (
    CONFIG.replace("FORMAT", "PARQUET").replace("CODEC", "SNAPPY")
    + """\
    schedule: "0 0 * * *"
  - source: app.empty
    destination: gs://exports/empty/
    format: PARQUET
    mode: FULL_REFRESH
    schedule: "0 0 * * *"
"""
)
OVERLAP = "the warehouse writes the slice while it is counted"
MISSED = "repeats a key: its copy is discarded"


def test_a_held_scheduler_copies_while_counting_and_redoes_a_slice_whose_keys_repeat(
    tmp_path: Path,
) -> None:
    """Under ``schedule --hold`` the engine remembers that a table's last slice had no
    repeated key, so the next slice is written without de-duplication while its keys are
    counted. When they do repeat after all, that copy is thrown away and the slice is
    written again with the newest row per key; an empty slice's copy is thrown away too."""
    (tmp_path / "c.yaml").write_text(HELD)
    warehouse_sql(
        tmp_path,
        """CREATE SCHEMA app;
        CREATE TABLE app.empty (id INTEGER);
        CREATE TABLE app.users AS SELECT i AS user_id, 'v1' AS name,
          TIMESTAMP '2025-09-01' + to_minutes(i) AS updated_at FROM range(100) t(i);
        -- before the 2nd fire time: user 1 twice (a change log), user 2 once
        INSERT INTO app.users VALUES (1, 'v2', TIMESTAMP '2025-09-02 01:00'),
          (1, 'v3', TIMESTAMP '2025-09-02 02:00'), (2, 'v2', TIMESTAMP '2025-09-02 03:00');
        -- before the 3rd and the 4th: one change each
        INSERT INTO app.users VALUES (3, 'v2', TIMESTAMP '2025-09-03 01:00'),
          (5, 'v2', TIMESTAMP '2025-09-04 01:00')""",
    )
    result = dpexport(
        "--debug",
        "-c",
        tmp_path / "c.yaml",
        "--local-root",
        tmp_path / "out",
        "schedule",
        "--hold",
        "--json",
        "--from",
        "2025-09-01T12:00:00Z",
        "--until",
        "2025-09-05T00:00:00Z",
    )
    assert result.code == 0, result.err
    records = [json.loads(line) for line in result.out.splitlines() if line.strip()]
    users = [r for r in records if r["table"] == "users"]
    assert [r["status"] for r in records] == ["SUCCESS"] * 8
    published = [_published(tmp_path, r) for r in users]
    assert [len(rows) for rows in published] == [100, 3, 2, 2]
    assert published[0] == sorted([(i, "v1") for i in range(100)], key=repr)
    # user 1's newest version only, beside user 2 and the watermark row (user 99)
    assert published[1] == [(1, "v3"), (2, "v2"), (99, "v1")]
    assert published[2] == [(2, "v2"), (3, "v2")]
    assert published[3] == [(3, "v2"), (5, "v2")]
    # 1st: nothing known yet; 2nd: tried, and redone; 3rd: a key repeated last time;
    # 4th: tried and kept. The empty table's four copies are all thrown away.
    log = result.err
    assert log.count(f"app.users: {OVERLAP}") == 2
    assert log.count(f"app.users: the slice {MISSED}") == 1
    assert log.count(f"app.empty: {OVERLAP}") == 4
    assert log.count("app.empty: the slice is empty: its copy is discarded") == 4
    assert [r["rows"] for r in records if r["table"] == "empty"] == [0] * 4
    staged = tmp_path / "out" / "gs" / "exports" / "_staging"
    assert not staged.exists() or not any(p.is_file() for p in staged.rglob("*"))
