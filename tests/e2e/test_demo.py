"""The demo as a user runs it: every table exported, and every file reads back in
pyarrow and DuckDB with the rows and checksums its manifest states."""

from __future__ import annotations

import gzip
import hashlib
import json
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest

from dpexport.formats import read_file
from dpexport.security.crypto import LocalKeyProvider, open_decrypted
from tests.e2e.cli import dpexport

SPEC_TABLES = {  # spec sections 4 and 8
    "reddit_diagnostic_posts",
    "youtube_repair_videos",
    "sensor_telemetry",
    "diagnostic_sessions",
    "feature_store",
    "users",
    "billing_transactions",
    "parts_inventory",
    "parts_catalog",
    "equipment_registry",
    "equipment_manufacturers",
    "dtc_code_definitions",
    "configuration_settings",
    "audit_logs",
    "api_access_log",
}


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("demo")
    result = dpexport("demo", "--dir", base, "--rows", "3000")
    assert result.code == 0, result.err
    for table in SPEC_TABLES:
        assert f"SUCCESS  {table}" in result.err, result.err
    return base


def _manifests(root: Path) -> list[Path]:
    return sorted(root.rglob("manifest_*.json"))


def test_every_table_has_committed_exports(demo: Path) -> None:
    bucket = demo / "buckets" / "gs" / "diagnosticpro-exports"
    tables = {json.loads(m.read_text())["source"]["table"] for m in _manifests(bucket / "prod")}
    assert tables == SPEC_TABLES
    for manifest in _manifests(bucket / "prod"):
        success = json.loads((manifest.parent / "SUCCESS").read_text())
        assert manifest.name in success["manifests"]
        assert not (manifest.parent / "FAILURE").exists()
    assert not list((bucket / "_staging").rglob("*")) if (bucket / "_staging").exists() else True


def test_files_read_back_in_pyarrow_and_duckdb_as_manifests_state(demo: Path) -> None:
    bucket = demo / "buckets" / "gs" / "diagnosticpro-exports"
    provider = LocalKeyProvider(demo / "buckets" / "kms")
    con = duckdb.connect()
    exported: dict[str, int] = {}
    for manifest_path in _manifests(bucket / "prod"):
        manifest = json.loads(manifest_path.read_text())
        fmt = manifest["destination"]["format"]
        codec = manifest["destination"]["compression"]
        total = 0
        for entry in manifest["files"]:
            path = manifest_path.parent / entry["name"]
            data = path.read_bytes()
            assert "sha256:" + hashlib.sha256(data).hexdigest() == entry["checksum"]
            assert len(data) == entry["bytes"]
            table = read_file(path, fmt, codec, decryptor=provider)
            assert table.num_rows == entry["rows"]
            if not path.name.endswith(".enc"):
                assert _duckdb_rows(con, path, fmt) == entry["rows"], path
            if fmt == "PARQUET" and not path.name.endswith(".enc"):
                assert pq.ParquetFile(path).metadata.format_version == "2.6"
            total += entry["rows"]
        assert total == manifest["statistics"]["row_count"]
        table_name = manifest["source"]["table"]
        exported[table_name] = exported.get(table_name, 0) + total
    source = duckdb.connect(str(demo / "warehouse.duckdb"), read_only=True)
    for table, rows in exported.items():
        row = source.execute(f"SELECT count(*) FROM diagnosticpro_prod.{table}").fetchone()
        assert row is not None
        (expected,) = row
        if table == "users":  # consent_flag_check drops rows without consent
            row = source.execute(
                "SELECT count(*) FROM diagnosticpro_prod.users WHERE consent_given"
            ).fetchone()
            assert row is not None
            (expected,) = row
        assert rows == expected, table


def _duckdb_rows(con: duckdb.DuckDBPyConnection, path: Path, fmt: str) -> int:
    if fmt == "PARQUET":
        sql = f"SELECT count(*) FROM read_parquet('{path}')"
    elif fmt == "JSONL":
        sql = f"SELECT count(*) FROM read_json('{path}', format='newline_delimited')"
    else:
        sql = f"SELECT count(*) FROM read_csv('{path}', header=true, escape='\\', quote='\"')"
    row = con.execute(sql).fetchone()
    assert row is not None
    (rows,) = row
    return int(rows)


def test_users_export_holds_no_raw_personal_data(demo: Path) -> None:
    bucket = demo / "buckets" / "gs" / "diagnosticpro-exports" / "prod" / "diagnosticpro_prod"
    provider = LocalKeyProvider(demo / "buckets" / "kms")
    source = duckdb.connect(str(demo / "warehouse.duckdb"), read_only=True)
    rows = source.execute(
        "SELECT email, phone, password_hash, security_questions, ip_address "
        "FROM diagnosticpro_prod.users"
    ).fetchall()
    data = b""
    for manifest_path in _manifests(bucket / "users"):
        manifest = json.loads(manifest_path.read_text())
        for entry in manifest["files"]:
            path = manifest_path.parent / entry["name"]
            table = read_file(path, "JSONL", "GZIP", decryptor=provider)
            assert "password_hash" not in table.column_names
            assert "security_questions" not in table.column_names
            with open(path, "rb") as fh:  # every stored byte, decrypted and decompressed
                data += gzip.decompress(open_decrypted(fh, provider).read())
    assert data.count(b"\n") == sum(1 for r in rows) - _no_consent(source)
    raw_values = [v for row in rows for v in row[:4] if v]
    assert len(raw_values) > 3 * len(rows)
    for value in raw_values:
        assert value.encode() not in data
    # IPs keep their network part only: no full IPv4 address survives
    full_ips = [r[4] for r in rows if r[4] and "." in r[4] and not r[4].endswith(".0")]
    assert full_ips and not any(f'"{ip}"'.encode() in data for ip in full_ips)


def _no_consent(source: duckdb.DuckDBPyConnection) -> int:
    row = source.execute(
        "SELECT count(*) FROM diagnosticpro_prod.users WHERE NOT consent_given"
    ).fetchone()
    assert row is not None
    (n,) = row
    return int(n)


def test_verify_passes_on_the_demo(demo: Path) -> None:
    result = dpexport(
        "--local-root", demo / "buckets", "verify", "gs://diagnosticpro-exports/prod/"
    )
    assert result.code == 0, result.out + result.err
    assert result.out.strip().splitlines()[-1].startswith("OK ")


def test_run_twice_full_refresh_keeps_only_the_newest_snapshot(demo_dir: Path) -> None:
    root = demo_dir / "buckets"
    args = (
        "-c",
        demo_dir / "dpexport.yaml",
        "--local-root",
        root,
        "run",
        "--table",
        "parts_catalog",
        "--json",
    )
    first = dpexport(*args, "--at", "2025-09-16T00:00:00Z")
    assert first.code == 0, first.err
    con = duckdb.connect(str(demo_dir / "warehouse.duckdb"))
    con.execute(
        "DELETE FROM diagnosticpro_prod.parts_catalog WHERE part_id IN "
        "(SELECT part_id FROM diagnosticpro_prod.parts_catalog LIMIT 10)"
    )
    row = con.execute("SELECT count(*) FROM diagnosticpro_prod.parts_catalog").fetchone()
    assert row is not None
    (remaining,) = row
    con.close()
    second = dpexport(*args, "--at", "2025-09-17T00:00:00Z")
    assert second.code == 0, second.err
    [result] = json.loads(second.out)
    assert result["status"] == "SUCCESS" and result["rows"] == remaining
    folder = root / "gs" / "diagnosticpro-exports" / "prod" / "diagnosticpro_prod" / "parts_catalog"
    manifests = _manifests(folder)
    assert [m.parent.relative_to(folder).as_posix() for m in manifests] == ["2025/09/17"]
    data_files = [p for p in folder.rglob("*.parquet*") if not p.name.endswith(".json")]
    assert len(data_files) == 1
    assert pq.read_table(data_files[0]).num_rows == remaining
