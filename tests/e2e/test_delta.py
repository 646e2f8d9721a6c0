"""``table_format: DELTA`` (CONTRACT §13): a Delta reader (deltalake, polars, pyarrow
through deltalake's dataset, DuckDB over that dataset) returns exactly the source rows
after a first export, a FULL_REFRESH, INCREMENTAL runs and ``compact``, and a crash
anywhere in the commit that the next run recovers; and a glob over a compacted
destination reads each row once.

DuckDB's own ``delta`` extension is not used: it is downloaded at ``INSTALL`` time and
no copy of it for DuckDB 2.0 is available offline.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import duckdb
import polars as pl
import pyarrow as pa
import pytest
from deltalake import DeltaTable

from tests.conformance.servers import server_env, unique_bucket
from tests.e2e.cli import dpexport, kill_at_step, run_ok, warehouse_sql

PROD = Path("gs/diagnosticpro-exports/prod/diagnosticpro_prod")
T1 = "2025-09-16T14:30:22Z"
T2 = "2025-09-17T14:30:22Z"
T3 = "2025-09-18T14:30:22Z"

HEAD = """\
project: p
environment: prod
warehouse: {engine: duckdb, path: warehouse.duckdb}
buckets: {exports: gs://diagnosticpro-exports}
"""
SESSIONS = """\
  - source: diagnosticpro_prod.diagnostic_sessions
    partitioning: {field: session_start, granularity: daily}
    mode: APPEND
"""
CATALOG = """\
  - source: diagnosticpro_prod.parts_catalog
    compression: ZSTD
    mode: FULL_REFRESH
"""
INVENTORY = """\
  - source: diagnosticpro_prod.parts_inventory
    mode: INCREMENTAL
    change_column: inventory_updated_at
    lookback_window: 4 hours
    merge_key: [part_id, location_id]
"""
VIDEOS = """\
  - source: diagnosticpro_prod.youtube_repair_videos
    format: JSONL
    compression: GZIP
"""
#: what each table's rows are in the source at a logical time
SOURCE = {
    "diagnostic_sessions": "SELECT * FROM diagnosticpro_prod.diagnostic_sessions "
    "WHERE session_start <= TIMESTAMP '{at}'",
    "parts_catalog": "SELECT * FROM diagnosticpro_prod.parts_catalog",
    "parts_inventory": "SELECT * FROM diagnosticpro_prod.parts_inventory "
    "WHERE inventory_updated_at <= TIMESTAMP '{at}' QUALIFY row_number() OVER "
    "(PARTITION BY part_id, location_id ORDER BY inventory_updated_at DESC) = 1",
}


def _config(base: Path, body: str, top: str = "table_format: DELTA\n") -> Path:
    path = base / "delta.yaml"
    path.write_text(HEAD + top + "exports:\n" + body, encoding="utf-8")
    return path


def _table(base: Path, name: str) -> Path:
    return base / "out" / PROD / name


def _rows(table: pa.Table, columns: list[str]) -> list[tuple[Any, ...]]:
    rows = [tuple(r[c] for c in columns) for r in table.select(columns).to_pylist()]
    return sorted(rows, key=repr)


def _source(base: Path, table: str, at: str) -> tuple[list[str], list[tuple[Any, ...]]]:
    con = duckdb.connect(str(base / "warehouse.duckdb"), read_only=True)
    try:
        found = con.sql(SOURCE[table].format(at=at.rstrip("Z").replace("T", " "))).to_arrow_table()
    finally:
        con.close()
    return found.column_names, _rows(found, found.column_names)


def _readers(
    path: Path | str, columns: list[str], options: dict[str, str] | None = None
) -> dict[str, list[tuple[Any, ...]]]:
    """The table's rows as each Delta reader returns them."""
    dt = DeltaTable(str(path), storage_options=options)
    dataset = dt.to_pyarrow_dataset()
    scanned = pl.scan_delta(str(path), storage_options=options).collect()
    return {
        "deltalake": _rows(dt.to_pyarrow_table(), columns),
        "polars.scan_delta": _rows(scanned.to_arrow(), columns),
        "polars.read_delta": _rows(
            pl.read_delta(str(path), storage_options=options).to_arrow(), columns
        ),
        "pyarrow": _rows(dataset.to_table(), columns),
        "duckdb": _rows(
            _duckdb("SELECT * FROM dataset", dataset=dataset).to_arrow_table(), columns
        ),
    }


def _duckdb(sql: str, **tables: Any) -> duckdb.DuckDBPyRelation:
    """A DuckDB query over the Arrow objects named in ``tables``."""
    con = duckdb.connect()
    for name, table in tables.items():
        con.register(name, table)
    return con.sql(sql)


def assert_readers_see_the_source(base: Path, table: str, at: str, where: str = "") -> None:
    columns, expected = _source(base, table, at)
    assert expected
    for reader, rows in _readers(_table(base, where or table), columns).items():
        assert rows == expected, reader


def _committed(path: Path) -> set[str]:
    """The data files the table's SUCCESS markers vouch for, relative to it."""
    files: set[str] = set()
    for success in path.rglob("SUCCESS"):
        for name in json.loads(success.read_text())["manifests"]:
            manifest = json.loads((success.parent / name).read_text())
            rel = success.parent.relative_to(path)
            files |= {(rel / f["name"]).as_posix() for f in manifest["files"]}
    return files


def assert_log_matches_markers(path: Path) -> None:
    """The log's live files are exactly the committed ones, and no export added any
    file twice (one commit per export, by its app transaction)."""
    dt = DeltaTable(str(path))
    live = set(dt.get_add_actions(flatten=True).column("path").to_pylist())
    assert live == _committed(path)
    added: list[str] = []
    apps: list[str] = []
    for commit in sorted((path / "_delta_log").glob("*.json")):
        actions = [json.loads(line) for line in commit.read_text().splitlines()]
        added += [a["add"]["path"] for a in actions if "add" in a]
        txns = [a["txn"]["appId"] for a in actions if "txn" in a]
        files = [a for a in actions if "add" in a or "remove" in a]
        assert len(txns) == (1 if files else 0), commit  # one export, one commit
        apps += txns
    assert len(added) == len(set(added))
    assert len(apps) == len(set(apps))


def test_every_reader_returns_the_source_rows_after_a_first_export(demo_dir: Path) -> None:
    """Top-level ``table_format: DELTA`` covers every Parquet table: one Delta commit
    each, naming its export; the JSONL table stays plain files."""
    config = _config(demo_dir, SESSIONS + CATALOG + VIDEOS)
    result = run_ok(config, demo_dir / "out", T1, "--json")
    for table in ("diagnostic_sessions", "parts_catalog"):
        assert_readers_see_the_source(demo_dir, table, T1)
        assert_log_matches_markers(_table(demo_dir, table))
        assert DeltaTable(str(_table(demo_dir, table))).version() == 0
    ids = {r["table"].split(".")[-1]: r["export_id"] for r in json.loads(result.out)}
    log = _table(demo_dir, "parts_catalog") / "_delta_log" / "00000000000000000000.json"
    assert {"txn": {"appId": f"dpexport-{ids['parts_catalog']}", "version": 1}} in [
        json.loads(line) for line in log.read_text().splitlines()
    ]
    assert not (_table(demo_dir, "youtube_repair_videos") / "_delta_log").exists()


def test_full_refresh_removes_the_files_it_replaces_in_the_same_commit(demo_dir: Path) -> None:
    """An item's ``table_format: DELTA``: the second snapshot's one Delta commit adds
    its files and removes the first's, which are gone from the store too."""
    config = _config(demo_dir, CATALOG.replace("mode:", "table_format: DELTA\n    mode:"), "")
    run_ok(config, demo_dir / "out", T1)
    path = _table(demo_dir, "parts_catalog")
    first = _committed(path)
    warehouse_sql(
        demo_dir,
        "DELETE FROM diagnosticpro_prod.parts_catalog WHERE part_id % 3 = 0;"
        "UPDATE diagnosticpro_prod.parts_catalog SET price = price + 1 WHERE part_id % 5 = 0",
    )
    run_ok(config, demo_dir / "out", T2)
    assert_readers_see_the_source(demo_dir, "parts_catalog", T2)
    assert_log_matches_markers(path)
    dt = DeltaTable(str(path))
    assert dt.version() == 1
    actions = [
        json.loads(line)
        for line in (path / "_delta_log" / "00000000000000000001.json").read_text().splitlines()
    ]
    assert {a["remove"]["path"] for a in actions if "remove" in a} == first
    assert {a["add"]["path"] for a in actions if "add" in a} == _committed(path)
    assert not any((path / f).exists() for f in first)


def test_a_partition_overwrite_removes_the_files_of_the_folders_it_replaces(
    demo_dir: Path,
) -> None:
    """``overwrite: partitions``: the Delta commit removes exactly the replaced folders'
    files (an append with remove actions, not a whole-table overwrite)."""
    body = CATALOG.replace(
        "mode:",
        "partitioning: {field: updated_at, granularity: daily}\n"
        "    overwrite: partitions\n    mode:",
    )
    config = _config(demo_dir, body)
    run_ok(config, demo_dir / "out", T1)
    path = _table(demo_dir, "parts_catalog")
    first = _committed(path)
    warehouse_sql(demo_dir, "UPDATE diagnosticpro_prod.parts_catalog SET price = price * 2")
    run_ok(config, demo_dir / "out", T2)
    assert_readers_see_the_source(demo_dir, "parts_catalog", T2)
    assert_log_matches_markers(path)
    log = (path / "_delta_log" / "00000000000000000001.json").read_text().splitlines()
    actions = [json.loads(line) for line in log]
    assert {a["remove"]["path"] for a in actions if "remove" in a} == first
    assert actions[0]["commitInfo"]["operationParameters"]["mode"] == "Append"


def test_incremental_runs_and_compact_read_as_the_newest_row_per_key(demo_dir: Path) -> None:
    config = _config(demo_dir, INVENTORY)
    run_ok(config, demo_dir / "out", T1)
    warehouse_sql(
        demo_dir,
        """INSERT INTO diagnosticpro_prod.parts_inventory
        SELECT * REPLACE (quantity + 1000 AS quantity,
                          TIMESTAMP '2025-09-17 01:00:00' AS inventory_updated_at)
        FROM diagnosticpro_prod.parts_inventory ORDER BY part_id, location_id LIMIT 5""",
    )
    run_ok(config, demo_dir / "out", T2)
    increments = _table(demo_dir, "parts_inventory")
    assert_log_matches_markers(increments)
    assert DeltaTable(str(increments)).version() == 1
    for at in (T2, T3):  # the second compact replaces the first's snapshot
        args = ("-c", config, "--local-root", demo_dir / "out", "compact")
        result = dpexport(*args, "--table", "parts_inventory", "--at", at)
        assert result.code == 0, result.out + result.err
    snapshot = _table(demo_dir, "parts_inventory__snapshot")
    assert_readers_see_the_source(demo_dir, "parts_inventory", T2, "parts_inventory__snapshot")
    assert_log_matches_markers(snapshot)
    assert DeltaTable(str(snapshot)).version() == 1


def test_a_glob_over_a_compacted_destination_reads_each_key_once(demo_dir: Path) -> None:
    """The snapshot is the destination's sibling (``parts_inventory__snapshot/``), not
    a folder inside it that the glob would also match."""
    config = _config(demo_dir, INVENTORY, "")
    run_ok(config, demo_dir / "out", T1)
    args = ("-c", config, "--local-root", demo_dir / "out", "compact")
    result = dpexport(*args, "--table", "parts_inventory", "--at", T2)
    assert result.code == 0, result.out + result.err
    (source,) = warehouse_sql(demo_dir, "SELECT count(*) FROM diagnosticpro_prod.parts_inventory")
    for folder in ("parts_inventory/", "parts_inventory__snapshot/"):
        glob = str(demo_dir / "out" / PROD / folder) + "/**/*.parquet.snappy"
        keys = _duckdb(
            f"SELECT part_id, location_id, count(*) AS n FROM read_parquet('{glob}') GROUP BY ALL"
        ).fetchall()
        assert len(keys) == source[0]
        assert {n for *_, n in keys} == {1}


KILLS = [
    ("parts_catalog", "journal"),
    ("parts_catalog", "move"),
    ("parts_catalog", "delta"),
    ("parts_catalog", "marker"),
    ("parts_catalog", "retire"),
    ("diagnostic_sessions", "delta"),
    ("diagnostic_sessions", "marker"),
]


#: the second export's rows: a changed catalog, sessions of the next day
CHANGES = """
UPDATE diagnosticpro_prod.parts_catalog SET name = name || ' v2' WHERE part_id % 2 = 0;
INSERT INTO diagnosticpro_prod.diagnostic_sessions
SELECT * REPLACE ('next-' || session_id AS session_id,
                  TIMESTAMP '2025-09-17 08:00:00' AS session_start)
FROM diagnosticpro_prod.diagnostic_sessions LIMIT 9
"""


@pytest.mark.slow
@pytest.mark.parametrize(("table", "step"), KILLS)
def test_a_crash_mid_commit_is_rolled_forward_once(demo_dir: Path, table: str, step: str) -> None:
    """SIGKILL at a step of the second export's commit; the next run recovers it: the
    readers see exactly the source, and the log has each file and export once."""
    config = _config(demo_dir, SESSIONS + CATALOG)
    out = demo_dir / "out"
    run_ok(config, out, T1, "--table", table)
    warehouse_sql(demo_dir, CHANGES)
    kill_at_step(config, out, table, T2, step, 1)
    rerun = run_ok(config, out, T2, "--table", table)
    assert "rolled forward" in rerun.err or step == "journal", rerun.err
    assert_readers_see_the_source(demo_dir, table, T2)
    assert_log_matches_markers(_table(demo_dir, table))


def test_an_added_column_becomes_part_of_the_delta_schema(demo_dir: Path) -> None:
    config = _config(demo_dir, SESSIONS)
    run_ok(config, demo_dir / "out", T1)
    warehouse_sql(
        demo_dir,
        """ALTER TABLE diagnosticpro_prod.diagnostic_sessions ADD COLUMN note VARCHAR;
        INSERT INTO diagnosticpro_prod.diagnostic_sessions
        SELECT * REPLACE ('late-' || session_id AS session_id, 'new' AS note,
                          TIMESTAMP '2025-09-17 08:00:00' AS session_start)
        FROM diagnosticpro_prod.diagnostic_sessions LIMIT 4""",
    )
    run_ok(config, demo_dir / "out", T2)
    path = _table(demo_dir, "diagnostic_sessions")
    assert "note" in [f.name for f in DeltaTable(str(path)).schema().fields]
    assert_readers_see_the_source(demo_dir, "diagnostic_sessions", T2)
    assert_log_matches_markers(path)


def test_check_refuses_delta_where_no_reader_could_read_it(demo_dir: Path) -> None:
    body = VIDEOS.replace(
        "format: JSONL", "format: JSONL\n    table_format: DELTA"
    ) + CATALOG.replace(
        "mode:", "encryption: CMEK\n    kms_key: k\n    client_side: true\n    mode:"
    )
    config = _config(demo_dir, body)
    archived = "append_only:\n  diagnostic_sessions: {archive_after: 90 days}\n"
    config.write_text(config.read_text() + archived, encoding="utf-8")
    result = dpexport("-c", config, "--local-root", demo_dir / "out", "check")
    assert result.code == 2, result.out + result.err
    assert "exports[0].table_format" in result.err
    assert "holds Parquet files; this table is written as JSONL" in result.err
    assert "exports[1].client_side" in result.err
    assert "cannot be read by any Delta reader" in result.err
    assert "append_only.diagnostic_sessions.archive_after" in result.err
    assert not (demo_dir / "out").exists()


def test_check_refuses_delta_on_a_store_without_delta_support(demo_dir: Path) -> None:
    """Without ``--local-root`` a gs:// destination is GCS, where dpexport writes no
    Delta log: refused at the table's ``table_format``."""
    config = _config(demo_dir, CATALOG.replace("mode:", "table_format: DELTA\n    mode:"), "")
    result = dpexport("-c", config, "check")
    assert result.code == 2, result.out + result.err
    assert "exports[0].table_format" in result.err
    assert "a Delta log is written to a local folder or S3" in result.err


def test_a_delta_table_on_s3_reads_as_the_source(demo_dir: Path) -> None:
    """On S3 (the moto server) the log is written with the store's endpoint and
    credentials: the readers see the first snapshot, then the second alone."""
    endpoint = server_env("AWS_ENDPOINT_URL", "the S3 server (moto)")
    import boto3

    bucket = unique_bucket()
    boto3.session.Session().client("s3").create_bucket(Bucket=bucket)
    body = CATALOG.replace("mode:", f"destination: s3://{bucket}/prod/catalog/\n    mode:")
    config = _config(demo_dir, body)
    options = {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ALLOW_HTTP": "true",
        "AWS_REGION": os.environ.get("AWS_DEFAULT_REGION", "us-east-1"),
    }
    for at in (T1, T2):
        result = dpexport("-c", config, "run", "--at", at)
        assert result.code == 0, result.out + result.err
        columns, expected = _source(demo_dir, "parts_catalog", at)
        for reader, rows in _readers(f"s3://{bucket}/prod/catalog/", columns, options).items():
            assert rows == expected, reader
        warehouse_sql(
            demo_dir, "DELETE FROM diagnosticpro_prod.parts_catalog WHERE part_id % 4 = 0"
        )
    dt = DeltaTable(f"s3://{bucket}/prod/catalog/", storage_options=options)
    assert dt.version() == 1
    assert len(dt.file_uris()) == 1
