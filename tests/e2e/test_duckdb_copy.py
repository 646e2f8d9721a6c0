"""DuckDB writes the Parquet files itself (``COPY``) when nothing needs the rows in
Python; the export is then the same as a streamed one: every row once, exact values,
sha256 of the stored bytes, verification, and a crash anywhere leaves nothing behind.
Tables that need dpexport's own writer (pinned sizes, types DuckDB stores otherwise)
stream, and ``plan`` says which path each table takes."""

from __future__ import annotations

import hashlib
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pyarrow.parquet as pq
import pytest

from tests.e2e.cli import dpexport, kill_at_step, plan_paths, run_ok

REPO = Path(__file__).resolve().parents[2]
AT = "2025-09-17T06:00:00Z"
OUT = Path("gs/bench/out")

CONFIG = """\
project: bench
environment: test
warehouse: {engine: duckdb, path: warehouse.duckdb}
buckets: {exports: gs://bench}
exports:
  - source: ds.readings
    destination: gs://bench/out/readings/
    format: PARQUET
    compression: ZSTD
    mode: FULL_REFRESH
    max_file_size: 1MB
  - source: ds.pinned
    destination: gs://bench/out/pinned/
    format: PARQUET
    compression: SNAPPY
    mode: FULL_REFRESH
    optimization: {page_size: 64KB}
  - source: ds.devices
    destination: gs://bench/out/devices/
    format: PARQUET
    compression: SNAPPY
    mode: FULL_REFRESH
"""

READINGS = """
CREATE TABLE ds.readings AS
SELECT
    i AS id,
    'sensor-' || (i % 997) AS name,
    CASE WHEN i % 7 = 0 THEN NULL ELSE (i * 0.25)::DOUBLE END AS value,
    (i % 3 = 0) AS flag,
    DATE '2025-09-01' + (i % 30)::INTEGER AS day,
    TIMESTAMPTZ '2025-09-16 00:00:00+00' + to_microseconds(i * 1000) AS at,
    ((i % 100000) / 7)::DECIMAL(12, 3) AS amount,
    CASE WHEN i % 5 = 0 THEN 'ünïcode "q", ' || i ELSE NULL END AS note,
    md5(i::VARCHAR) AS digest
FROM range(300000) t(i)
"""


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("copy")
    con = duckdb.connect(str(root / "warehouse.duckdb"))
    con.execute("CREATE SCHEMA ds")
    con.execute(READINGS)
    con.execute("CREATE TABLE ds.pinned AS SELECT * FROM ds.readings WHERE id < 20000")
    con.execute(
        "CREATE TABLE ds.devices AS SELECT i AS id, "
        "('00000000-0000-4000-8000-' || lpad(i::VARCHAR, 12, '0'))::UUID AS device "
        "FROM range(1000) t(i)"
    )
    con.close()
    (root / "dpexport.yaml").write_text(CONFIG, encoding="utf-8")
    return root


def _run(base: Path, root: Path, *args: str) -> None:
    run_ok(base / "dpexport.yaml", root, AT, *args)


def _source(base: Path, table: str) -> list[tuple[Any, ...]]:
    con = duckdb.connect(str(base / "warehouse.duckdb"), read_only=True)
    try:
        return con.execute(f"SELECT * FROM ds.{table} ORDER BY id").fetchall()
    finally:
        con.close()


def _manifest(root: Path, table: str) -> tuple[Path, dict[str, Any]]:
    folder = root / OUT / table / "2025/09/17"
    success = json.loads((folder / "SUCCESS").read_text())
    return folder, json.loads((folder / success["manifest"]).read_text())


def test_plan_names_the_path_of_each_table(base: Path, tmp_path: Path) -> None:
    paths = plan_paths(base / "dpexport.yaml", tmp_path, AT)
    assert paths["ds.readings"] == "DuckDB COPY (DuckDB writes the Parquet files)"
    assert paths["ds.pinned"].startswith("streamed: the config sets Parquet row group/page")
    # DuckDB's zero-row probe finds the UUID column before the run, as the run does
    assert paths["ds.devices"] == (
        "streamed: column 'device' would be stored as extension<arrow.uuid>, not string"
    )
    # and the run takes the path plan named, for every table
    _run(base, tmp_path)
    logs = [json.loads(p.read_text()) for p in tmp_path.rglob("export-logs/**/*.json")]
    assert {f"{r['dataset']}.{r['table_name']}": r["path"] for r in logs} == paths


def test_duckdb_written_export_has_every_row_exactly(base: Path, tmp_path: Path) -> None:
    _run(base, tmp_path, "--table", "readings")
    folder, manifest = _manifest(tmp_path, "readings")
    files = manifest["files"]
    assert isinstance(files, list)
    assert len(files) >= 3  # 300,000 rows rolled at max_file_size 1MB
    names = [f["name"] for f in files]
    assert all(n.endswith(".parquet.zst") for n in names)
    rows: list[tuple[Any, ...]] = []
    for entry in files:
        path = folder / entry["name"]
        data = path.read_bytes()
        assert entry["checksum"] == "sha256:" + hashlib.sha256(data).hexdigest()
        meta = pq.ParquetFile(path).metadata
        assert meta.format_version == "2.6"
        assert meta.created_by.startswith("DuckDB")
        assert meta.row_group(0).column(0).compression == "ZSTD"
        assert entry["rows"] == meta.num_rows
        sidecar = json.loads(path.with_name(path.name + ".metadata.json").read_text())
        assert sidecar["checksum"] == entry["checksum"] and sidecar["rows"] == meta.num_rows
        table = pq.read_table(path)
        assert str(table.schema.field("at").type) == "timestamp[us, tz=UTC]"
        rows += [tuple(r.values()) for r in table.to_pylist()]
    source = _source(base, "readings")
    assert manifest["statistics"]["row_count"] == len(source) == 300_000
    assert sorted(rows, key=lambda r: r[0]) == source
    assert source[7][2] is None and source[5][7] == 'ünïcode "q", 5'
    assert source[1][6] == Decimal("0.143")

    # DuckDB reads back the same rows from what a consumer sees
    con = duckdb.connect()
    glob = str(folder / "*.parquet.zst")
    row = con.execute(f"SELECT count(*), count(DISTINCT id) FROM read_parquet('{glob}')").fetchone()
    assert row is not None
    (n, ids) = row
    assert n == ids == 300_000

    assert not any(p.is_file() for p in (tmp_path / "gs/bench/_staging").rglob("*"))
    ok = dpexport("--local-root", tmp_path, "verify", "gs://bench/out/readings/2025/09/17/")
    assert ok.code == 0, ok.out + ok.err
    victim = folder / names[1]
    blob = bytearray(victim.read_bytes())
    blob[len(blob) // 2] ^= 0xFF
    victim.write_bytes(bytes(blob))
    bad = dpexport("--local-root", tmp_path, "verify", "gs://bench/out/readings/2025/09/17/")
    assert bad.code == 1
    assert names[1] in bad.out + bad.err


def test_pinned_sizes_use_dpexports_writer(base: Path, tmp_path: Path) -> None:
    _run(base, tmp_path, "--table", "pinned")
    folder, manifest = _manifest(tmp_path, "pinned")
    (entry,) = manifest["files"]
    meta = pq.ParquetFile(folder / entry["name"]).metadata
    assert meta.created_by.startswith("parquet-cpp-arrow")
    assert meta.num_rows == 20_000


def test_a_type_duckdb_stores_otherwise_streams(base: Path, tmp_path: Path) -> None:
    _run(base, tmp_path, "--table", "devices")
    folder, manifest = _manifest(tmp_path, "devices")
    (entry,) = manifest["files"]
    table = pq.read_table(folder / entry["name"])
    assert pq.ParquetFile(folder / entry["name"]).metadata.created_by.startswith("parquet-cpp")
    assert str(table.schema.field("device").type) == "string"
    assert table.column("device")[3].as_py() == "00000000-0000-4000-8000-000000000003"
    assert table.num_rows == 1000
    # the zero-row probe left nothing in staging
    assert not any(p.is_file() for p in (tmp_path / "gs/bench/_staging").rglob("*"))


@pytest.mark.parametrize(("step", "nth"), [("copied", 1), ("manifest", 1), ("move", 2)])
def test_killed_after_duckdb_wrote_then_rerun(
    base: Path, tmp_path: Path, step: str, nth: int
) -> None:
    kill_at_step(base / "dpexport.yaml", tmp_path, "readings", AT, step, nth)
    _run(base, tmp_path, "--table", "readings")
    folder, manifest = _manifest(tmp_path, "readings")
    ids = [i for entry in manifest["files"] for i in pq.read_table(folder / entry["name"])["id"]]
    assert len(ids) == len(set(ids)) == 300_000
    listed = {e["name"] for e in manifest["files"]}
    on_disk = {p.name for p in folder.glob("*.parquet.zst")}
    assert on_disk == listed
    assert not any(p.is_file() for p in (tmp_path / "gs/bench/_staging").rglob("*"))


def test_duckdb_written_export_to_s3(base: Path, tmp_path: Path) -> None:
    """On a cloud store DuckDB writes into local scratch and the files are uploaded to
    the bucket's staging, then committed: same rows, checksums of the stored objects."""
    from tests.conformance.servers import server_env, unique_bucket

    server_env("AWS_ENDPOINT_URL", "the S3 server (moto)")
    import boto3

    bucket = unique_bucket("copy")
    client = boto3.session.Session().client("s3")
    client.create_bucket(Bucket=bucket)
    config = tmp_path / "dpexport.yaml"
    config.write_text(
        CONFIG.replace("path: warehouse.duckdb", f"path: {base / 'warehouse.duckdb'}").replace(
            "gs://bench", f"s3://{bucket}"
        ),
        encoding="utf-8",
    )
    run = dpexport("-c", config, "run", "--at", AT, "--table", "readings", cwd=tmp_path)
    assert run.code == 0, run.out + run.err
    folder = "out/readings/2025/09/17/"
    success = json.loads(client.get_object(Bucket=bucket, Key=folder + "SUCCESS")["Body"].read())
    manifest = json.loads(
        client.get_object(Bucket=bucket, Key=folder + success["manifest"])["Body"].read()
    )
    ids: list[int] = []
    for entry in manifest["files"]:
        body = client.get_object(Bucket=bucket, Key=folder + entry["name"])["Body"].read()
        assert entry["checksum"] == "sha256:" + hashlib.sha256(body).hexdigest()
        (tmp_path / "f.parquet").write_bytes(body)
        meta = pq.ParquetFile(tmp_path / "f.parquet").metadata
        assert meta.created_by.startswith("DuckDB")
        ids += pq.read_table(tmp_path / "f.parquet")["id"].to_pylist()
    assert sorted(ids) == list(range(300_000))
    staged = client.list_objects_v2(Bucket=bucket, Prefix="_staging/").get("KeyCount", 0)
    assert staged == 0
    ok = dpexport("-c", config, "verify", f"s3://{bucket}/{folder}", cwd=tmp_path)
    assert ok.code == 0, ok.out + ok.err
    client.close()
