"""``dpexport check`` on settings the common readers misread (issue 22), as a user runs
it: a backslash CSV escape and BROTLI text are warned of (exit 0, the table's YAML path,
the portable choice), nothing refused; per-table ``csv:``/``jsonl:`` values check
refuses name their YAML path (exit 2)."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from tests.e2e.cli import dpexport

HEAD = """\
project: p
environment: test
warehouse: {engine: duckdb, path: warehouse.duckdb}
buckets: {exports: gs://b}
"""


@pytest.fixture
def site(tmp_path: Path) -> Path:
    con = duckdb.connect(str(tmp_path / "warehouse.duckdb"))
    con.execute("CREATE SCHEMA ds")
    for name in ("a", "b", "c", "d"):
        con.execute(f"CREATE TABLE ds.{name} AS SELECT 1 AS id, 'x' AS s")
    con.close()
    return tmp_path


def _check(site: Path, body: str) -> tuple[int, str, list[str]]:
    (site / "dpexport.yaml").write_text(HEAD + body, encoding="utf-8")
    result = dpexport("-c", site / "dpexport.yaml", "check")
    warnings = [line for line in result.err.splitlines() if " WARNING " in line]
    return result.code, result.out + result.err, warnings


def test_backslash_escape_and_brotli_text_are_warned_of_not_refused(site: Path) -> None:
    code, out, warnings = _check(
        site,
        """\
formats:
  CSV: {format_config: {escape_character: "\\\\"}}
exports:
  - {source: ds.a, destination: gs://b/a/, format: CSV, compression: GZIP}
  - {source: ds.b, destination: gs://b/b/, format: JSONL, compression: BROTLI}
  - {source: ds.c, destination: gs://b/c/, format: CSV, compression: BROTLI,
     csv: {escape_character: '"'}}
  - {source: ds.d, destination: gs://b/d/, format: PARQUET, compression: BROTLI}
""",
    )
    assert code == 0, out
    assert "dpexport.yaml: OK (4 tables)" in out
    [escape] = [w for w in warnings if "escape_character" in w]
    assert "exports[0] (ds.a): CSV escape_character '\\\\'" in escape
    assert "escape_character: '\"' (RFC 4180, quotes doubled)" in escape
    brotli = [w for w in warnings if "BROTLI" in w]
    assert len(brotli) == 2  # JSONL and CSV; Parquet's BROTLI is read by all
    assert "exports[1] (ds.b): JSONL in BROTLI cannot be read by DuckDB, pandas" in brotli[0]
    assert "exports[2] (ds.c): CSV in BROTLI" in brotli[1]
    assert all("GZIP is read by all of them" in w for w in brotli)
    assert not any("exports[3]" in w for w in warnings)


def test_the_portable_choices_are_not_warned_of(site: Path) -> None:
    code, out, warnings = _check(
        site,
        """\
formats:
  CSV: {format_config: {escape_character: '"'}}
exports:
  - {source: ds.a, destination: gs://b/a/, format: CSV, compression: GZIP}
  - {source: ds.b, destination: gs://b/b/, format: JSONL, compression: ZSTD}
""",
    )
    assert code == 0, out
    assert not [w for w in warnings if "escape_character" in w or "BROTLI" in w], warnings


def test_the_table_escape_overrides_the_format_block(site: Path) -> None:
    """A table's own ``csv: {escape_character: "\\\\"}`` over a portable formats block is
    the one warned of."""
    code, out, warnings = _check(
        site,
        """\
formats:
  CSV: {format_config: {escape_character: '"'}}
exports:
  - {source: ds.a, destination: gs://b/a/, format: CSV}
  - {source: ds.b, destination: gs://b/b/, format: CSV, csv: {escape_character: "\\\\"}}
""",
    )
    assert code == 0, out
    assert [
        w.split(": CSV escape")[0].split(" WARNING ")[1] for w in warnings if "escape" in w
    ] == ["exports[1] (ds.b)"]


@pytest.mark.parametrize(
    ("item", "message"),
    [
        (
            "format: CSV, csv: {delimiter: ',,'}",
            "exports[0].csv.delimiter: the delimiter must be one ASCII character (got ',,')",
        ),
        (
            "format: CSV, csv: {bogus: 1}",
            "exports[0].csv.bogus: unknown key 'bogus'",
        ),
        (
            "format: JSONL, jsonl: {timestamp_format: WHENEVER}",
            "exports[0].jsonl.timestamp_format: unknown timestamp format (got 'WHENEVER')",
        ),
        (
            "format: PARQUET, csv: {delimiter: ';'}",
            "exports[0].csv: csv: holds CSV settings, but the table is exported as PARQUET",
        ),
        (
            "format: CSV, jsonl: {encoding: UTF-8}",
            "exports[0].jsonl: jsonl: holds JSONL settings, but the table is exported as CSV",
        ),
    ],
)
def test_bad_table_text_options_are_refused_by_path(site: Path, item: str, message: str) -> None:
    code, out, _ = _check(
        site,
        f"exports:\n  - {{source: ds.a, destination: gs://b/a/, {item}}}\n",
    )
    assert code == 2, out
    assert f"dpexport.yaml:6: {message}" in out
