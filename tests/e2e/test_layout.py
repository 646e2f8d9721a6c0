"""Each layout puts each row in the folder of its own partition value."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from dpexport.formats import read_file
from tests.e2e.cli import dpexport

PROD = Path("gs/diagnosticpro-exports/prod")


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory, demo_warehouse: Path) -> Path:
    import shutil

    from dpexport.demo import example_config_text

    base = tmp_path_factory.mktemp("layout")
    shutil.copyfile(demo_warehouse, base / "warehouse.duckdb")
    (base / "dpexport.yaml").write_text(example_config_text(), encoding="utf-8")
    args: list[str | Path] = ["-c", base / "dpexport.yaml", "--local-root", base / "buckets", "run"]
    for table in (
        "sensor_telemetry",
        "diagnostic_sessions",
        "feature_store",
        "reddit_diagnostic_posts",
        "billing_transactions",
        "dtc_code_definitions",
    ):
        args += ["--table", table]
    result = dpexport(*args, "--at", "2025-09-16T14:30:22Z")
    assert result.code == 0, result.err
    return base / "buckets"


def test_sensor_telemetry_hour_shard_and_type(exported: Path) -> None:
    root = exported / PROD / "diagnosticpro_prod" / "sensor_telemetry"
    files = [p for p in root.rglob("*.parquet.zst")]
    assert len(files) > 50
    rows = 0
    for path in files:
        yyyy, mm, dd, hh, shard, sensor = path.parent.relative_to(root).parts
        table = pq.read_table(path)
        rows += table.num_rows
        hours = {t.strftime("%Y/%m/%d/%H") for t in table.column("created_at").to_pylist()}
        assert hours == {f"{yyyy}/{mm}/{dd}/{hh}"}
        assert {e % 100 for e in table.column("equipment_id").to_pylist()} == {int(shard)}
        assert set(table.column("sensor_type").to_pylist()) == {sensor}
    # the manifest of each hour folder lists its sub-folders' files, paths relative to it
    for manifest in root.rglob("manifest_*.json"):
        assert len(manifest.parent.relative_to(root).parts) == 4
        doc = json.loads(manifest.read_text())
        for entry in doc["files"]:
            assert (manifest.parent / entry["name"]).is_file()
            assert len(Path(entry["name"]).parts) == 3
    assert rows > 0


def test_diagnostic_sessions_day_and_region(exported: Path) -> None:
    root = exported / PROD / "diagnosticpro_prod" / "diagnostic_sessions"
    # a spec 3.2 table: optimization_strategies.compression.high_volume_tables (ZSTD)
    files = list(root.rglob("*.parquet.zst"))
    assert files
    for path in files:
        yyyy, mm, dd, region = path.parent.relative_to(root).parts
        assert pq.ParquetFile(path).metadata.row_group(0).column(0).compression == "ZSTD"
        table = pq.read_table(path)
        days = {t.strftime("%Y/%m/%d") for t in table.column("session_start").to_pylist()}
        assert days == {f"{yyyy}/{mm}/{dd}"}
        assert set(table.column("user_region").to_pylist()) == {region}


def test_feature_store_hour_and_category(exported: Path) -> None:
    root = exported / PROD / "diagnosticpro_ml" / "features"
    files = list(root.rglob("*.parquet.snappy"))
    assert files
    for path in files:
        yyyy, mm, dd, hh, category = path.parent.relative_to(root).parts
        table = pq.read_table(path)
        hours = {t.strftime("%Y/%m/%d/%H") for t in table.column("feature_timestamp").to_pylist()}
        assert hours == {f"{yyyy}/{mm}/{dd}/{hh}"}
        assert set(table.column("feature_category").to_pylist()) == {category}


def test_reddit_daily_by_created_date(exported: Path) -> None:
    root = exported / PROD / "diagnosticpro_prod" / "reddit_diagnostic_posts"
    for path in root.rglob("*.parquet.snappy"):
        yyyy, mm, dd = path.parent.relative_to(root).parts
        table = pq.read_table(path)
        assert {d.strftime("%Y/%m/%d") for d in table.column("created_date").to_pylist()} == {
            f"{yyyy}/{mm}/{dd}"
        }
        assert path.name.startswith("reddit_diagnostic_posts_")


def test_billing_monthly_encrypted(exported: Path) -> None:
    from dpexport.security.crypto import LocalKeyProvider

    root = exported / PROD / "diagnosticpro_prod" / "financial"
    files = list(root.rglob("*.parquet.gz.enc"))
    assert files
    provider = LocalKeyProvider(exported / "kms")
    for path in files:
        yyyy, mm = path.parent.relative_to(root).parts
        assert path.read_bytes()[:7] == b"DPXENC1"
        table = read_file(path, "PARQUET", "GZIP", decryptor=provider)
        months = {t.strftime("%Y/%m") for t in table.column("transaction_date").to_pylist()}
        assert months == {f"{yyyy}/{mm}"}
        sidecar = json.loads(path.with_name(path.name + ".metadata.json").read_text())
        assert sidecar["encryption"]["algorithm"] == "AES-256-GCM"
        assert sidecar["checksum"].startswith("sha256:")
    key_files = list((exported / "kms").iterdir())
    assert key_files and all((p.stat().st_mode & 0o777) == 0o600 for p in key_files)


def test_unpartitioned_table_by_logical_date(exported: Path) -> None:
    root = exported / PROD / "diagnosticpro_prod" / "dtc_code_definitions"
    [manifest] = list(root.rglob("manifest_*.json"))
    assert manifest.parent.relative_to(root).as_posix() == "2025/09/16"
    doc = json.loads(manifest.read_text())
    assert doc["source"]["partition"] == "2025-09-16"
    assert doc["logical_time"] == "2025-09-16T14:30:22Z"
