"""APPEND, INCREMENTAL and compact through the CLI, checked against the source table."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from tests.e2e.cli import dpexport, warehouse_sql

BUCKET = "gs/diagnosticpro-exports/prod/diagnosticpro_prod"
T1 = "2025-09-16T14:30:22Z"
T2 = "2025-09-17T14:30:22Z"
T3 = "2025-09-18T14:30:22Z"

HEAD = """\
project: p
environment: prod
warehouse: {engine: duckdb, path: warehouse.duckdb}
buckets: {exports: gs://diagnosticpro-exports}
exports:
"""


def _config(base: Path, body: str) -> Path:
    path = base / "modes.yaml"
    path.write_text(HEAD + body, encoding="utf-8")
    return path


def _run(base: Path, config: Path, table: str, at: str) -> dict[str, Any]:
    result = dpexport(
        "-c", config, "--local-root", base / "out", "run", "--table", table, "--at", at, "--json"
    )
    assert result.code == 0, result.err
    [record] = json.loads(result.out)
    assert record["status"] == "SUCCESS", record
    return dict(record)


def _rows_of(base: Path, manifests: list[str]) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for uri in manifests:
        path = base / "out" / "gs" / uri.removeprefix("gs://")
        for entry in json.loads(path.read_text())["files"]:
            rows += pq.read_table(path.parent / entry["name"]).to_pylist()
    return rows


REDDIT = """\
  - source: diagnosticpro_prod.reddit_diagnostic_posts
    destination: gs://diagnosticpro-exports/prod/diagnosticpro_prod/reddit_diagnostic_posts/
    format: PARQUET
    compression: SNAPPY
    partitioning: {field: created_date, granularity: daily}
    mode: APPEND
    deduplication: "by post_id"
"""

NEW_POSTS = """
INSERT INTO diagnosticpro_prod.reddit_diagnostic_posts
SELECT * REPLACE ('t3_new_' || post_id AS post_id, DATE '2025-09-17' AS created_date,
                  TIMESTAMP '2025-09-17 08:00:00' AS created_at)
FROM diagnosticpro_prod.reddit_diagnostic_posts LIMIT 7
"""


def test_append_twice_exports_exactly_the_new_rows(demo_dir: Path) -> None:
    config = _config(demo_dir, REDDIT)
    first = _run(demo_dir, config, "reddit_diagnostic_posts", T1)
    warehouse_sql(demo_dir, NEW_POSTS)
    second = _run(demo_dir, config, "reddit_diagnostic_posts", T2)
    new_rows = _rows_of(demo_dir, second["manifests"])
    assert sorted(r["post_id"] for r in new_rows) == sorted(
        r[0]
        for r in warehouse_sql(
            demo_dir,
            "SELECT post_id FROM diagnosticpro_prod."
            "reddit_diagnostic_posts WHERE post_id LIKE 't3_new_%'",
        )
    )
    everything = _rows_of(demo_dir, first["manifests"]) + new_rows
    ids = [r["post_id"] for r in everything]
    assert len(ids) == len(set(ids))
    source = {
        r[0]
        for r in warehouse_sql(
            demo_dir, "SELECT post_id FROM diagnosticpro_prod.reddit_diagnostic_posts"
        )
    }
    assert set(ids) == source
    third = _run(demo_dir, config, "reddit_diagnostic_posts", T3)
    assert third["rows"] == 0 and third["manifests"] == []


def test_late_row_lands_in_its_own_day(demo_dir: Path) -> None:
    config = _config(
        demo_dir, REDDIT.replace("mode: APPEND", "mode: APPEND\n    change_column: scraped_at")
    )
    _run(demo_dir, config, "reddit_diagnostic_posts", T1)
    (day,) = warehouse_sql(
        demo_dir, "SELECT min(created_date) FROM diagnosticpro_prod.reddit_diagnostic_posts"
    )[0]
    warehouse_sql(
        demo_dir,
        f"""INSERT INTO diagnosticpro_prod.reddit_diagnostic_posts
        SELECT * REPLACE ('t3_late' AS post_id, DATE '{day}' AS created_date,
                          TIMESTAMP '2025-09-17 09:00:00' AS scraped_at)
        FROM diagnosticpro_prod.reddit_diagnostic_posts LIMIT 1""",
    )
    second = _run(demo_dir, config, "reddit_diagnostic_posts", T2)
    assert second["rows"] == 1
    [uri] = second["manifests"]
    assert f"/{day:%Y/%m/%d}/manifest_" in uri
    folder = demo_dir / "out" / BUCKET / "reddit_diagnostic_posts" / f"{day:%Y/%m/%d}"
    success = json.loads((folder / "SUCCESS").read_text())
    assert len(success["manifests"]) == 2 and success["manifest"] == uri.rsplit("/", 1)[1]
    assert [r["post_id"] for r in _rows_of(demo_dir, [uri])] == ["t3_late"]
    assert dpexport("--local-root", demo_dir / "out", "verify", folder).code == 0


def test_dedup_across_the_lookback_overlap(demo_dir: Path) -> None:
    config = _config(
        demo_dir,
        REDDIT.replace(
            "mode: APPEND",
            "mode: APPEND\n    change_column: scraped_at\n    lookback_window: 2 days",
        ),
    )
    first = _run(demo_dir, config, "reddit_diagnostic_posts", T1)
    (watermark,) = warehouse_sql(
        demo_dir, "SELECT max(scraped_at) FROM diagnosticpro_prod.reddit_diagnostic_posts"
    )[0]
    # a re-scrape of a post already published, and a late post inside the overlap
    (recent,) = warehouse_sql(
        demo_dir,
        "SELECT post_id FROM diagnosticpro_prod.reddit_diagnostic_posts "
        "ORDER BY scraped_at DESC LIMIT 1",
    )[0]
    warehouse_sql(
        demo_dir,
        f"""INSERT INTO diagnosticpro_prod.reddit_diagnostic_posts
        SELECT * REPLACE (TIMESTAMP '2025-09-17 10:00:00' AS scraped_at)
        FROM diagnosticpro_prod.reddit_diagnostic_posts WHERE post_id = '{recent}'""",
    )
    warehouse_sql(
        demo_dir,
        f"""INSERT INTO diagnosticpro_prod.reddit_diagnostic_posts
        SELECT * REPLACE ('t3_late_in_overlap' AS post_id,
                          TIMESTAMP '{watermark}' - INTERVAL 1 HOUR AS scraped_at)
        FROM diagnosticpro_prod.reddit_diagnostic_posts LIMIT 1""",
    )
    second = _run(demo_dir, config, "reddit_diagnostic_posts", T2)
    exported = [r["post_id"] for r in _rows_of(demo_dir, second["manifests"])]
    assert exported == ["t3_late_in_overlap"]
    ids = [r["post_id"] for r in _rows_of(demo_dir, first["manifests"] + second["manifests"])]
    assert len(ids) == len(set(ids))


INVENTORY = """\
  - source: diagnosticpro_prod.parts_inventory
    destination: gs://diagnosticpro-exports/prod/diagnosticpro_prod/parts_inventory/
    format: PARQUET
    compression: ZSTD
    mode: INCREMENTAL
    change_column: inventory_updated_at
    lookback_window: 4 hours
    merge_key: [part_id, location_id]
"""


def test_incremental_composite_key_window_and_compact(demo_dir: Path) -> None:
    config = _config(demo_dir, INVENTORY)
    first = _run(demo_dir, config, "parts_inventory", T1)
    (count,) = warehouse_sql(demo_dir, "SELECT count(*) FROM diagnosticpro_prod.parts_inventory")[0]
    assert first["rows"] == count
    (watermark,) = warehouse_sql(
        demo_dir, "SELECT max(inventory_updated_at) FROM diagnosticpro_prod.parts_inventory"
    )[0]
    # the source is a change log: two newer versions of 5 keys, the newest must win
    warehouse_sql(
        demo_dir,
        """CREATE TABLE diagnosticpro_prod.chosen AS SELECT * FROM
        diagnosticpro_prod.parts_inventory ORDER BY part_id, location_id LIMIT 5""",
    )
    for hours, qty in ((1, 1000), (2, 2000)):
        warehouse_sql(
            demo_dir,
            f"""INSERT INTO diagnosticpro_prod.parts_inventory
            SELECT * REPLACE ({qty} AS quantity,
                              TIMESTAMP '2025-09-17 00:00:00' + INTERVAL {hours} HOUR
                              AS inventory_updated_at)
            FROM diagnosticpro_prod.chosen""",
        )
    second = _run(demo_dir, config, "parts_inventory", T2)
    rows = _rows_of(demo_dir, second["manifests"])
    expected = warehouse_sql(
        demo_dir,
        f"""SELECT part_id, location_id, quantity FROM
        diagnosticpro_prod.parts_inventory
        WHERE inventory_updated_at >= TIMESTAMP '{watermark}' - INTERVAL 4 HOUR
          AND inventory_updated_at <= TIMESTAMP '2025-09-17 14:30:22'
        QUALIFY row_number() OVER (PARTITION BY part_id, location_id
                                   ORDER BY inventory_updated_at DESC) = 1""",
    )
    got = sorted((r["part_id"], r["location_id"], r["quantity"]) for r in rows)
    assert got == sorted(expected)
    assert len({(r["part_id"], r["location_id"]) for r in rows}) == len(rows)
    assert sum(1 for r in rows if r["quantity"] == 2000) == 5
    manifest = json.loads(
        (demo_dir / "out" / "gs" / second["manifests"][0].removeprefix("gs://")).read_text()
    )
    assert manifest["mode"] == "INCREMENTAL"
    assert manifest["window"]["to"] == "2025-09-17T02:00:00.000000Z"
    assert manifest["watermark"] == "2025-09-17T02:00:00.000000Z"

    result = dpexport(
        "-c",
        config,
        "--local-root",
        demo_dir / "out",
        "compact",
        "--table",
        "parts_inventory",
        "--at",
        T2,
        "--json",
    )
    assert result.code == 0, result.err
    [snap] = json.loads(result.out)
    assert "/parts_inventory__snapshot/2025/09/17/" in snap["manifests"][0]
    snapshot = sorted(
        (r["part_id"], r["location_id"], r["quantity"])
        for r in _rows_of(demo_dir, snap["manifests"])
    )
    newest = warehouse_sql(
        demo_dir,
        """SELECT part_id, location_id, quantity FROM
        diagnosticpro_prod.parts_inventory QUALIFY row_number() OVER
        (PARTITION BY part_id, location_id ORDER BY inventory_updated_at DESC) = 1""",
    )
    assert snapshot == sorted(newest)
    again = dpexport(
        "-c",
        config,
        "--local-root",
        demo_dir / "out",
        "compact",
        "--table",
        "parts_inventory",
        "--at",
        T3,
        "--json",
    )
    assert again.code == 0, again.err
    snaps = list((demo_dir / "out" / BUCKET / "parts_inventory__snapshot").rglob("manifest_*"))
    assert [p.parent.name for p in snaps] == ["18"]


CATALOG = """\
  - source: diagnosticpro_prod.parts_catalog
    destination: gs://diagnosticpro-exports/prod/diagnosticpro_prod/parts_catalog/
    format: PARQUET
    compression: SNAPPY
    mode: FULL_REFRESH
    schema_evolution: {enabled: true, compatibility: backward}
"""


def test_schema_evolution_added_column_ok_dropped_column_fails(demo_dir: Path) -> None:
    config = _config(demo_dir, CATALOG)
    first = _run(demo_dir, config, "parts_catalog", T1)
    v1 = {r["_schema_version"] for r in _rows_of(demo_dir, first["manifests"])}
    warehouse_sql(demo_dir, "ALTER TABLE diagnosticpro_prod.parts_catalog ADD COLUMN color VARCHAR")
    second = _run(demo_dir, config, "parts_catalog", T2)
    v2 = {r["_schema_version"] for r in _rows_of(demo_dir, second["manifests"])}
    assert len(v1) == len(v2) == 1 and v1 != v2
    history = json.loads(
        (
            demo_dir / "out/gs/diagnosticpro-exports/_state/schemas/"
            "diagnosticpro_prod.parts_catalog.json"
        ).read_text()
    )
    assert [v["version"] for v in history["versions"]] == sorted(v1 | v2)
    warehouse_sql(demo_dir, "ALTER TABLE diagnosticpro_prod.parts_catalog DROP COLUMN weight_kg")
    third = dpexport("-c", config, "--local-root", demo_dir / "out", "run", "--at", T3, "--json")
    assert third.code == 1
    [record] = json.loads(third.out)
    assert "not backward compatible" in record["error"] and "weight_kg" in record["error"]
    folder = demo_dir / "out" / BUCKET / "parts_catalog"
    assert list(folder.rglob("FAILURE"))
    # the previous snapshot is still the published one
    assert [p.parent.name for p in folder.rglob("manifest_*.json")] == ["17"]
    allowed = _config(demo_dir, CATALOG.replace("compatibility: backward", "compatibility: none"))
    assert _run(demo_dir, allowed, "parts_catalog", T3)["rows"] > 0


def test_partition_level_overwrite_keeps_other_folders(demo_dir: Path) -> None:
    body = """\
  - source: diagnosticpro_prod.billing_transactions
    destination: gs://diagnosticpro-exports/prod/diagnosticpro_prod/financial/
    format: PARQUET
    compression: SNAPPY
    partitioning: {field: transaction_date, granularity: monthly}
    mode: FULL_REFRESH
    overwrite: partitions
"""
    config = _config(demo_dir, body)
    first = _run(demo_dir, config, "billing_transactions", T1)
    months = {u.split("/financial/")[1][:7] for u in first["manifests"]}
    assert len(months) >= 2
    newest = max(months)
    warehouse_sql(
        demo_dir,
        f"DELETE FROM diagnosticpro_prod.billing_transactions WHERE "
        f"strftime(transaction_date, '%Y/%m') <> '{newest}'",
    )
    second = _run(demo_dir, config, "billing_transactions", T2)
    assert {u.split("/financial/")[1][:7] for u in second["manifests"]} == {newest}
    folder = demo_dir / "out" / BUCKET / "financial"
    manifests = sorted(
        p.relative_to(folder).parent.as_posix() for p in folder.rglob("manifest_*.json")
    )
    assert manifests == sorted(months)  # the other months are untouched
    success = json.loads((folder / newest / "SUCCESS").read_text())
    assert success["manifests"] == [second["manifests"][0].rsplit("/", 1)[1]]
    assert dpexport("--local-root", demo_dir / "out", "verify", folder).code == 0


def test_date_cursor_loses_no_row_of_a_day_still_running(demo_dir: Path) -> None:
    """Spec 8.1 exports reddit every 6 hours on a DATE field: posts of today that arrive
    after a run must still be published, once."""
    config = _config(demo_dir, REDDIT)
    first = _run(demo_dir, config, "reddit_diagnostic_posts", "2025-09-17T06:00:00Z")
    warehouse_sql(
        demo_dir,
        """INSERT INTO diagnosticpro_prod.reddit_diagnostic_posts
        SELECT * REPLACE ('t3_today_' || post_id AS post_id, DATE '2025-09-17' AS created_date)
        FROM diagnosticpro_prod.reddit_diagnostic_posts LIMIT 3""",
    )
    second = _run(demo_dir, config, "reddit_diagnostic_posts", "2025-09-17T12:00:00Z")
    warehouse_sql(
        demo_dir,
        """INSERT INTO diagnosticpro_prod.reddit_diagnostic_posts
        SELECT * REPLACE ('t3_later_' || post_id AS post_id, DATE '2025-09-17' AS created_date)
        FROM diagnosticpro_prod.reddit_diagnostic_posts LIMIT 4""",
    )
    third = _run(demo_dir, config, "reddit_diagnostic_posts", "2025-09-17T18:00:00Z")
    fourth = _run(demo_dir, config, "reddit_diagnostic_posts", "2025-09-18T06:00:00Z")
    assert (
        sorted(r["post_id"][:9] for r in _rows_of(demo_dir, second["manifests"]))
        == ["t3_today_"] * 3
    )
    assert (
        sorted(r["post_id"][:9] for r in _rows_of(demo_dir, third["manifests"]))
        == ["t3_later_"] * 4
    )
    assert fourth["rows"] == 0
    ids = [
        r["post_id"]
        for r in _rows_of(demo_dir, first["manifests"] + second["manifests"] + third["manifests"])
    ]
    source = {
        r[0]
        for r in warehouse_sql(
            demo_dir, "SELECT post_id FROM diagnosticpro_prod.reddit_diagnostic_posts"
        )
    }
    assert len(ids) == len(set(ids)) and set(ids) == source


def test_date_cursor_without_a_key_exports_complete_days(demo_dir: Path) -> None:
    body = """\
  - source: diagnosticpro_prod.youtube_repair_videos
    destination: gs://diagnosticpro-exports/prod/diagnosticpro_prod/youtube_videos/
    format: PARQUET
    compression: SNAPPY
    partitioning: {field: upload_date, granularity: daily}
    mode: APPEND
"""
    config = _config(demo_dir, body)
    warehouse_sql(
        demo_dir,
        """INSERT INTO diagnosticpro_prod.youtube_repair_videos
        SELECT * REPLACE ('today_' || substr(video_id, 1, 5) AS video_id,
                          DATE '2025-09-16' AS upload_date)
        FROM diagnosticpro_prod.youtube_repair_videos LIMIT 2""",
    )
    first = _run(demo_dir, config, "youtube_repair_videos", "2025-09-16T12:00:00Z")
    rows = _rows_of(demo_dir, first["manifests"])
    assert rows and max(r["upload_date"] for r in rows).isoformat() <= "2025-09-15"
    second = _run(demo_dir, config, "youtube_repair_videos", "2025-09-17T01:00:00Z")
    later = _rows_of(demo_dir, second["manifests"])
    assert {r["upload_date"].isoformat() for r in later} == {"2025-09-16"}
    assert sum(r["video_id"].startswith("today_") for r in later) == 2
    (total,) = warehouse_sql(
        demo_dir,
        "SELECT count(*) FROM diagnosticpro_prod.youtube_repair_videos "
        "WHERE upload_date <= DATE '2025-09-16'",
    )[0]
    assert len(rows) + len(later) == total
