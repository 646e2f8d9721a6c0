"""``logs query`` reads the export logs and nothing else: no file is read, written or
attached, whatever SQL a user passes (issue 15)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dpexport.publish.manifest import dumps
from dpexport.storage.local import LocalStore
from tests.e2e.cli import Result, dpexport
from tests.unit.ops.log_records import NOW, records

NOW_TEXT = NOW.isoformat().replace("+00:00", "Z")
SECRET = "s3cr3t-7f1e0c9a-only-in-this-file"


@pytest.fixture
def site(tmp_path: Path) -> tuple[Path, Path]:
    """A config whose bucket holds the crafted export logs, and its local root."""
    config = tmp_path / "dpexport.yaml"
    config.write_text(
        "project: p\nenvironment: prod\n"
        "warehouse: {engine: duckdb, path: warehouse.duckdb}\n"
        "buckets: {exports: gs://diagnosticpro-exports}\n"
        "exports:\n"
        "  - source: diagnosticpro_prod.users\n"
        "    destination: gs://diagnosticpro-exports/prod/diagnosticpro_prod/users/\n"
        "    format: JSONL\n"
        "    mode: FULL_REFRESH\n",
        encoding="utf-8",
    )
    root = tmp_path / "out"
    store = LocalStore(root / "gs" / "diagnosticpro-exports", url="gs://diagnosticpro-exports")
    for r in records():
        day = r["export_timestamp"][:10].replace("-", "/")
        store.put_bytes(f"export-logs/{day}/{r['export_id']}.json", dumps(r))
    return config, root


def _query(site: tuple[Path, Path], sql: str, *args: str) -> Result:
    config, root = site
    return dpexport(
        "-c", config, "--local-root", root, "logs", "query", sql, "--now", NOW_TEXT, *args
    )


def _refused(result: Result, *names: str) -> None:
    """Exit 2 with one line on stderr that says what was refused."""
    assert result.code == 2, (result.code, result.out, result.err)
    lines = result.err.strip().splitlines()
    assert len(lines) == 1, result.err
    assert "refused" in lines[0], lines[0]
    for name in names:
        assert name in lines[0], lines[0]


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT * FROM read_text('{path}')",
        "SELECT content FROM read_blob('{path}')",
        "SELECT COUNT(*) AS n FROM export_logs "
        "WHERE export_id IN (SELECT content FROM read_text('{path}'))",
        "SELECT * FROM `{path}`",
    ],
)
def test_a_file_is_not_read(site: tuple[Path, Path], tmp_path: Path, sql: str) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text(SECRET, encoding="utf-8")
    result = _query(site, sql.format(path=secret))
    _refused(result)
    assert SECRET not in result.out + result.err


def test_read_text_is_refused_by_name(site: tuple[Path, Path], tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text(SECRET, encoding="utf-8")
    result = _query(site, f"SELECT * FROM read_text('{secret}')", "--json")
    _refused(result, "read_text")
    assert SECRET not in result.out + result.err


@pytest.mark.parametrize(
    ("function", "data"),
    [
        ("read_csv", "a,b\n1,2\n"),
        ("read_csv_auto", "a,b\n1,2\n"),
        ("read_json", '{"a": 1}\n'),
        ("read_parquet", None),
        ("glob", "x"),
    ],
)
def test_file_table_functions_are_refused(
    site: tuple[Path, Path], tmp_path: Path, function: str, data: str | None
) -> None:
    path = tmp_path / f"data.{function}"
    if data is None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        pq.write_table(pa.table({"a": [SECRET]}), path)
    else:
        path.write_text(data.replace("1", SECRET), encoding="utf-8")
    result = _query(site, f"SELECT * FROM {function}('{path}')")
    _refused(result, function)
    assert SECRET not in result.out + result.err
    assert str(path) not in result.out


@pytest.mark.parametrize(
    "sql",
    [
        "COPY (SELECT 'x' AS a) TO '{path}'",
        "COPY export_logs TO '{path}' (FORMAT CSV)",
        "EXPORT DATA OPTIONS (uri = '{path}', format = 'CSV') AS SELECT * FROM export_logs",
    ],
)
def test_nothing_is_written(site: tuple[Path, Path], tmp_path: Path, sql: str) -> None:
    target = tmp_path / "leak.csv"
    result = _query(site, sql.format(path=target))
    _refused(result)
    assert not target.exists()


def test_copy_is_refused_by_name(site: tuple[Path, Path], tmp_path: Path) -> None:
    target = tmp_path / "leak.csv"
    result = _query(site, f"SELECT 1 AS a; COPY (SELECT 'x' AS a) TO '{target}'")
    _refused(result, "COPY")
    assert not target.exists()
    assert result.out == ""


def test_attach_is_refused(site: tuple[Path, Path], tmp_path: Path) -> None:
    target = tmp_path / "other.duckdb"
    result = _query(site, f"attach '{target}' AS other")
    _refused(result, "ATTACH")
    assert not target.exists()


@pytest.mark.parametrize(
    ("sql", "name"),
    [
        ("SET enable_external_access = true", "SET"),
        ("SET lock_configuration = false", "SET"),
        ("INSTALL httpfs", "INSTALL"),
        ("LOAD httpfs", "LOAD"),
        ("PRAGMA database_list", "PRAGMA"),
        ("CREATE TABLE t AS SELECT 1 AS a", "CREATE"),
        ("DELETE FROM export_logs WHERE TRUE", "DELETE"),
        ("SELECT * FROM duckdb_settings()", "duckdb_settings"),
        ("SELECT * FROM query('SELECT 1')", "query"),
        ("SELECT * FROM information_schema.tables", "tables"),
    ],
)
def test_anything_but_a_query_over_export_logs_is_refused(
    site: tuple[Path, Path], sql: str, name: str
) -> None:
    _refused(_query(site, sql), name)


def test_an_aggregate_over_export_logs_still_runs(site: tuple[Path, Path]) -> None:
    sql = """\
-- rows per table, last seven days
WITH recent AS (
  SELECT * FROM `diagnostic-pro-start-up.ops.export_logs`
  WHERE export_timestamp >= TIMESTAMP_SUB(CURRENT_TIMESTAMP(), INTERVAL 7 DAY)
)
SELECT table_name, COUNT(*) AS exports, SUM(`rows`) AS total_rows
FROM recent
GROUP BY table_name
ORDER BY table_name
"""
    result = _query(site, sql, "--json")
    assert result.code == 0, result.err
    assert json.loads(result.out) == [
        {"table_name": "reddit_diagnostic_posts", "exports": 4, "total_rows": 4200},
        {"table_name": "sensor_telemetry", "exports": 2, "total_rows": 20000},
        {"table_name": "youtube_repair_videos", "exports": 2, "total_rows": 80},
    ]
