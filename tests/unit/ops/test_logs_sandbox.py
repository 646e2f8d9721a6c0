"""``logs query`` runs only read-only queries over ``export_logs``: the SQL check names
what it refuses, and the DuckDB connection behind it reaches no file even when asked
directly (issue 15)."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from dpexport.errors import UsageError
from dpexport.ops.logs import connect, query, transpile
from tests.unit.ops.log_records import NOW, records


@pytest.mark.parametrize(
    ("sql", "message"),
    [
        ("SELECT * FROM read_text('/etc/hostname')", "refused function read_text"),
        ("SELECT * FROM glob('/etc/*')", "refused function glob"),
        ("SELECT * FROM `read_parquet`('x.parquet')", "refused function read_parquet"),
        ("attach 'x.duckdb' AS x", "refused ATTACH statement"),
        ("SELECT 1; DETACH x", "refused DETACH statement"),
        ("COPY export_logs TO 'x.csv'", "refused COPY statement"),
        ("SET enable_external_access = true", "refused SET statement"),
        ("INSTALL httpfs", "refused INSTALL statement"),
        ("LOAD httpfs", "refused LOAD statement"),
        ("INSERT INTO export_logs (export_id) VALUES ('x')", "refused INSERT statement"),
        ("SELECT * FROM `some.other_table`", "refused table some.other_table"),
        ("SELECT * FROM `x.csv`", "refused table x.csv"),
        ("SELECT * FROM UNNEST([1]) AS x, RANGE(3)", "refused table function RANGE"),
    ],
)
def test_what_is_refused_is_named(sql: str, message: str) -> None:
    with pytest.raises(UsageError) as caught:
        transpile(sql, NOW)
    text = str(caught.value)
    assert text.startswith(message + ":"), text
    assert "\n" not in text


@pytest.mark.parametrize(
    "sql",
    [
        "(SELECT COUNT(*) AS n FROM export_logs)",
        "SELECT COUNT(*) AS n FROM export_logs UNION ALL SELECT 0",
        "WITH ok AS (SELECT * FROM export_logs WHERE status = 'SUCCESS') "
        "SELECT COUNT(*) AS n FROM ok, UNNEST([1]) AS one",
        "SELECT REPEAT('x', 2) AS n FROM `p.d.export_logs` LIMIT 1",
    ],
)
def test_queries_over_export_logs_run(sql: str) -> None:
    _, rows = query(records(), sql, now=NOW)
    assert rows and rows[0][0] in (7, 11, "xx")


def test_the_connection_reaches_no_file_and_stays_locked(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("s3cr3t", encoding="utf-8")
    con = connect(records())
    try:
        assert con.execute("SELECT COUNT(*) FROM export_logs").fetchall() == [(11,)]
        with pytest.raises(duckdb.PermissionException):
            con.execute(f"SELECT content FROM read_text('{secret}')")
        with pytest.raises(duckdb.PermissionException):
            con.execute(f"COPY (SELECT 1) TO '{tmp_path / 'out.csv'}'")
        with pytest.raises(duckdb.Error, match="locked"):
            con.execute("SET lock_configuration = false")
        with pytest.raises(duckdb.Error):
            con.execute("SET enable_external_access = true")
    finally:
        con.close()
    assert not (tmp_path / "out.csv").exists()
