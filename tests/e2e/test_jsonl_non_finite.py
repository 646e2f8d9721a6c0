"""A DOUBLE column holding NaN, +inf, -inf and NULL exported as JSONL through the CLI: the
file tells the four apart ("NaN", "Infinity", "-Infinity", null), the manifest says so,
and dpexport's own checks of the file (verify, the GDPR read-back) pass (issue 15)."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import duckdb
import pytest

from tests.e2e.cli import dpexport

AT = "2025-09-16T14:30:22Z"
CONFIG = """\
project: p
environment: test
warehouse: {engine: duckdb, path: warehouse.duckdb}
buckets: {exports: gs://b}
exports:
  - source: ds.readings
    destination: gs://b/readings/
    format: JSONL
    compression: NONE
    mode: FULL_REFRESH
  - source: ds.people
    destination: gs://b/people/
    format: JSONL
    compression: GZIP
    mode: FULL_REFRESH
    gdpr_compliance:
      anonymization:
        - email: "hash_sha256"
      excluded_fields:
        - "password_hash"
    validation:
      - data_minimization_verify
"""


@pytest.fixture()
def base(tmp_path: Path) -> Path:
    con = duckdb.connect(str(tmp_path / "warehouse.duckdb"))
    con.execute("CREATE SCHEMA ds")
    con.execute(
        "CREATE TABLE ds.readings AS SELECT * FROM (VALUES "
        "(1, 'nan'::DOUBLE, 'NaN'), (2, 'inf'::DOUBLE, 'Infinity'), "
        "(3, '-inf'::DOUBLE, '-Infinity'), (4, NULL, NULL), (5, 2.5, 'x')) t(id, value, label)"
    )
    con.execute(
        "CREATE TABLE ds.people AS SELECT * FROM (VALUES "
        "(1, 'a@example.com', 'h1', 'nan'::DOUBLE), (2, 'b@example.com', 'h2', 'inf'::DOUBLE), "
        "(3, 'c@example.com', 'h3', NULL), (4, 'd@example.com', 'h4', 0.5)) "
        "t(id, email, password_hash, score)"
    )
    con.close()
    (tmp_path / "dpexport.yaml").write_text(CONFIG, encoding="utf-8")
    return tmp_path


def _run(base: Path, table: str) -> list[Path]:
    result = dpexport(
        "-c", base / "dpexport.yaml", "--local-root", base / "out",
        "run", "--table", table, "--at", AT, "--json",
    )  # fmt: skip
    assert result.code == 0, result.out + result.err
    [record] = json.loads(result.out)
    assert record["status"] == "SUCCESS", record
    return [base / "out" / "gs" / uri.removeprefix("gs://") for uri in record["manifests"]]


def test_non_finite_doubles_are_strings_and_null_is_null(base: Path) -> None:
    [manifest] = _run(base, "readings")
    doc = json.loads(manifest.read_text(encoding="utf-8"))
    assert doc["jsonl"] == {"non_finite_floats": "string"}
    assert {"name": "value", "type": "double", "nullable": True} in doc["schema"]
    [entry] = doc["files"]
    lines = (manifest.parent / entry["name"]).read_text(encoding="utf-8").splitlines()
    assert sorted(lines) == [
        '{"id":1,"value":"NaN","label":"NaN"}',
        '{"id":2,"value":"Infinity","label":"Infinity"}',
        '{"id":3,"value":"-Infinity","label":"-Infinity"}',
        '{"id":4,"value":null,"label":null}',
        '{"id":5,"value":2.5,"label":"x"}',
    ]

    verified = dpexport("--local-root", base / "out", "verify", "gs://b/readings/")
    assert verified.code == 0, verified.out + verified.err
    assert "OK gs://b/readings/: 1 manifest(s), 1 file(s), 5 row(s), 0 problem(s)" in verified.out


def test_the_gdpr_read_back_check_reads_them(base: Path) -> None:
    [manifest] = _run(base, "people")
    doc = json.loads(manifest.read_text(encoding="utf-8"))
    [check] = [c for c in doc["validation"]["checks"] if c["name"] == "data_minimization_verify"]
    assert check["status"] == "passed", check
    [entry] = doc["files"]
    rows = [
        json.loads(line)
        for line in gzip.decompress((manifest.parent / entry["name"]).read_bytes()).splitlines()
    ]
    assert sorted((r["id"], r["score"]) for r in rows) == [
        (1, "NaN"),
        (2, "Infinity"),
        (3, None),
        (4, 0.5),
    ]
    assert all("password_hash" not in r and "@" not in r["email"] for r in rows)

    verified = dpexport("--local-root", base / "out", "verify", "gs://b/people/")
    assert verified.code == 0, verified.out + verified.err
