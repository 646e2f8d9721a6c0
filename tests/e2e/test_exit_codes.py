"""Exit codes per CONTRACT §2 for a command asked of the wrong table (issue 18, case 13):
``compact`` on an APPEND table is a usage error, exit 2, and writes nothing."""

from __future__ import annotations

from pathlib import Path

import duckdb

from tests.e2e.cli import dpexport

CONFIG = """\
project: p
environment: test
warehouse: {engine: duckdb, path: warehouse.duckdb}
buckets: {exports: gs://b}
exports:
  - source: ds.events
    destination: gs://b/events/
    mode: APPEND
    change_column: updated_at
"""


def test_compact_of_an_append_table_is_a_usage_error(tmp_path: Path) -> None:
    con = duckdb.connect(str(tmp_path / "warehouse.duckdb"))
    con.execute("CREATE SCHEMA ds")
    con.execute(
        "CREATE TABLE ds.events AS SELECT 1 AS id, TIMESTAMP '2025-09-16 10:00:00' AS updated_at"
    )
    con.close()
    (tmp_path / "dpexport.yaml").write_text(CONFIG, encoding="utf-8")
    out = tmp_path / "out"
    result = dpexport(
        "-c", tmp_path / "dpexport.yaml", "--local-root", out, "compact", "--table", "events"
    )
    assert result.code == 2, result.out + result.err
    assert "compact folds INCREMENTAL exports by their merge key; ds.events is APPEND" in (
        result.err
    )
    assert "Traceback" not in result.err
    assert not out.exists() or not any(p.is_file() for p in out.rglob("*"))
