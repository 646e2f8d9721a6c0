"""Hive-style ``path_pattern`` segments (``dt={yyyy}-{MM}-{dd}``, ``shard={shard_id}``): the
folders they make, read back by the readers that discover partitions from ``key=value``
folders (DuckDB ``hive_partitioning``, pyarrow ``partitioning="hive"``, polars), over the
files ``dpexport files`` lists; and what ``check`` refuses."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import duckdb
import polars as pl
import pyarrow.dataset as ds
import pytest

from tests.e2e.cli import dpexport, warehouse_sql

AT = "2025-09-17T00:00:00Z"
DEST = "gs://diagnosticpro-exports/prod/diagnosticpro_prod/"
HEAD = """\
project: p
environment: prod
warehouse: {engine: duckdb, path: warehouse.duckdb}
buckets: {exports: gs://diagnosticpro-exports}
"""
SENSORS = (
    HEAD
    + """\
high_volume:
  sensor_telemetry:
    primary_partition: "date(created_at)"
    secondary_partition: "equipment_id % 100"
    tertiary_partition: "sensor_type"
    path_pattern: "PATTERN"
exports:
  - source: diagnosticpro_prod.sensor_telemetry
    destination: """
    + DEST
    + """sensor_telemetry/
    format: PARQUET
    compression: ZSTD
    mode: APPEND
"""
)
HIVE = "{entity}/dt={yyyy}-{MM}-{dd}/hour={HH}/shard={shard_id}/type={sensor_type}/"
POSTS = (
    HEAD
    + """\
exports:
  - source: diagnosticpro_prod.reddit_diagnostic_posts
    destination: """
    + DEST
    + """reddit_diagnostic_posts/
    format: PARQUET
    compression: SNAPPY
    partitioning: {field: created_date, granularity: daily, path_pattern: "PATTERN"}
    mode: APPEND
"""
)


def _config(base: Path, text: str, pattern: str) -> Path:
    path = base / "hive.yaml"
    path.write_text(text.replace("PATTERN", pattern), encoding="utf-8")
    return path


def _cli(base: Path, config: Path, *args: str) -> Any:
    return dpexport("-c", config, "--local-root", base / "out", *args)


def _files(base: Path, config: Path, table: str) -> dict[str, Any]:
    result = _cli(base, config, "files", table, "--json")
    assert result.code == 0, result.err
    doc: dict[str, Any] = json.loads(result.out)
    return doc


def _by_id(rows: list[dict[str, Any]], key: str) -> dict[str, tuple[str, ...]]:
    """Each row's partition columns as text (readers type them differently: DuckDB reads
    ``hour=07`` as text to keep its zero, pyarrow and polars as a number)."""
    out: dict[str, tuple[str, ...]] = {}
    for row in rows:
        hour = row["hour"]
        out[row[key]] = (
            str(row["dt"]),
            f"{int(hour):02d}" if hour is not None else "",
            str(row["shard"]),
            str(row["type"]),
        )
    return out


@pytest.mark.slow
def test_hive_folders_are_read_as_columns_by_duckdb_pyarrow_and_polars(demo_dir: Path) -> None:
    config = _config(demo_dir, SENSORS, HIVE)
    warehouse_sql(
        demo_dir,
        """INSERT INTO diagnosticpro_prod.sensor_telemetry
        SELECT * REPLACE ('r-null-type' AS reading_id, NULL AS sensor_type,
                          TIMESTAMP '2025-09-15 07:30:00' AS created_at)
        FROM diagnosticpro_prod.sensor_telemetry LIMIT 1""",
    )
    result = _cli(demo_dir, config, "run", "--at", AT, "--json")
    assert result.code == 0, result.err
    [record] = json.loads(result.out)
    assert "/sensor_telemetry/dt=2025-09-15/hour=07/manifest_" in " ".join(record["manifests"])
    doc = _files(demo_dir, config, "sensor_telemetry")
    paths = [f["path"] for f in doc["files"]]
    assert any("/type=__HIVE_DEFAULT_PARTITION__/" in p for p in paths)
    expected = {
        rid: (f"{at:%Y-%m-%d}", f"{at:%H}", str(eq % 100), str(kind))
        for rid, at, eq, kind in warehouse_sql(
            demo_dir,
            "SELECT reading_id, created_at, equipment_id, sensor_type "
            "FROM diagnosticpro_prod.sensor_telemetry",
        )
    }
    assert expected["r-null-type"][3] == "None"

    con = duckdb.connect()
    cursor = con.execute("SELECT * FROM read_parquet(?, hive_partitioning = true)", [paths])
    names = [d[0] for d in cursor.description]
    duck = [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
    assert _by_id(duck, "reading_id") == expected

    base = str(demo_dir / "out" / "gs" / DEST.removeprefix("gs://")) + "/sensor_telemetry"
    arrow = ds.dataset(paths, format="parquet", partitioning="hive", partition_base_dir=base)
    assert arrow.schema.names[-4:] == ["dt", "hour", "shard", "type"]
    assert _by_id(arrow.to_table().to_pylist(), "reading_id") == expected

    polars = pl.scan_parquet(paths, hive_partitioning=True).collect()
    assert polars.columns[-4:] == ["dt", "hour", "shard", "type"]
    assert _by_id(polars.to_dicts(), "reading_id") == expected

    view = _cli(demo_dir, config, "files", "sensor_telemetry", "--format", "duckdb")
    assert view.code == 0 and "hive_partitioning = true" in view.out
    con.execute(view.out)
    assert con.execute(
        "SELECT count(*), count(DISTINCT reading_id), count(*) FILTER (type IS NULL) "
        "FROM sensor_telemetry"
    ).fetchone() == (len(expected), len(expected), 1)

    # reconcile finds a late row's hive folder, and exports into it
    warehouse_sql(
        demo_dir,
        """INSERT INTO diagnosticpro_prod.sensor_telemetry
        SELECT * REPLACE ('r-late' AS reading_id, TIMESTAMP '2025-09-15 07:45:00' AS created_at)
        FROM diagnosticpro_prod.sensor_telemetry WHERE reading_id = 'r-null-type'""",
    )
    late = _cli(demo_dir, config, "reconcile", "--at", AT, "--days", "5")
    assert late.code == 0, late.err
    assert "dt=2025-09-15/hour=07" in late.out + late.err
    again = [f["path"] for f in _files(demo_dir, config, "sensor_telemetry")["files"]]
    rows = con.execute(
        f"SELECT reading_id, dt, hour, type FROM read_parquet({again}, hive_partitioning = true) "
        "WHERE reading_id LIKE 'r-%' ORDER BY reading_id"
    ).fetchall()
    assert [(r[0], str(r[1]), r[2], r[3]) for r in rows] == [
        ("r-late", "2025-09-15", "07", None),
        ("r-null-type", "2025-09-15", "07", None),
    ]


@pytest.mark.slow
def test_an_exports_item_pattern_lays_out_dt_folders(demo_dir: Path) -> None:
    config = _config(demo_dir, POSTS, "{entity}/dt={yyyy}{MM}{dd}/")
    result = _cli(demo_dir, config, "run", "--at", AT, "--json")
    assert result.code == 0, result.err
    paths = [f["path"] for f in _files(demo_dir, config, "reddit_diagnostic_posts")["files"]]
    folders = {Path(p).parent.name for p in paths}
    assert folders and all(f.startswith("dt=2025") and len(f) == 11 for f in folders)
    got = (
        duckdb.connect()
        .execute(
            f"SELECT post_id, created_date, dt FROM read_parquet({paths}, hive_partitioning = true)"
        )
        .fetchall()
    )
    source = warehouse_sql(
        demo_dir, "SELECT post_id, created_date FROM diagnosticpro_prod.reddit_diagnostic_posts"
    )
    assert sorted((p, d) for p, d, _ in got) == sorted(source)
    assert all(str(dt) == f"{d:%Y%m%d}" for _, d, dt in got)


@pytest.mark.parametrize(
    ("text", "pattern", "message"),
    [
        (SENSORS, HIVE.replace("type=", "sensor_type="), "hive key 'sensor_type' names the column"),
        (SENSORS, HIVE.replace("dt=", "1dt="), "hive key '1dt' in '1dt={yyyy}-{MM}-{dd}'"),
        (SENSORS, HIVE.replace("hour=", "dt="), "hive key 'dt' is used twice"),
        (SENSORS, HIVE.replace("{shard_id}", "{shard_id}-{x}"), "must be one {placeholder}"),
        (SENSORS, "{entity}/dt={dd}-{MM}-{yyyy}/", "{yyyy}, {MM}[, {dd}[, {HH}]] in that order"),
        (POSTS, "{entity}/dt={yyyy}-{MM}/", "lays out monthly folders, but the granularity"),
        (POSTS, "{entity}/dt={yyyy}-{MM}-{dd}/x={shard}/", "1 sub-folder placeholder(s) but 0"),
    ],
)
def test_check_refuses_hive_patterns_readers_cannot_use(
    demo_dir: Path, text: str, pattern: str, message: str
) -> None:
    config = _config(demo_dir, text, pattern)
    result = _cli(demo_dir, config, "check")
    assert result.code == 2, result.out + result.err
    where = "high_volume.sensor_telemetry.path_pattern" if text is SENSORS else "path_pattern"
    assert where in result.err and message in result.err, result.err
