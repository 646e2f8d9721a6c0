"""The demo warehouse: every spec table, realistic values, reproducible."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import pytest

from dpexport.demo.warehouse import (
    DEMO_DATASET,
    DTC_CODES,
    SENSOR_RANGES,
    TABLES,
    create_demo_warehouse,
    table_sizes,
)

ROWS = 4000

REQUIRED_COLUMNS: dict[str, dict[str, str]] = {
    "reddit_diagnostic_posts": {
        "post_id": "VARCHAR", "subreddit": "VARCHAR", "title": "VARCHAR", "content": "VARCHAR",
        "author": "VARCHAR", "score": "INTEGER", "created_at": "TIMESTAMP",
        "created_date": "DATE",
    },
    "youtube_repair_videos": {
        "video_id": "VARCHAR", "title": "VARCHAR", "channel_id": "VARCHAR",
        "upload_date": "DATE", "transcript": "VARCHAR", "view_count": "BIGINT",
    },
    "sensor_telemetry": {
        "reading_id": "VARCHAR", "equipment_id": "BIGINT", "sensor_type": "VARCHAR",
        "value": "DOUBLE", "unit": "VARCHAR", "quality_flag": "VARCHAR",
        "created_at": "TIMESTAMP",
    },
    "diagnostic_sessions": {
        "session_id": "VARCHAR", "user_id": "BIGINT", "vin": "VARCHAR",
        "dtc_codes": "VARCHAR[]", "session_start": "TIMESTAMP", "session_end": "TIMESTAMP",
        "user_region": "VARCHAR",
    },
    "feature_store": {
        "entity_id": "BIGINT", "feature_name": "VARCHAR", "feature_value": "DOUBLE",
        "feature_category": "VARCHAR", "feature_version": "VARCHAR",
        "feature_timestamp": "TIMESTAMP", "updated_at": "TIMESTAMP",
    },
    "users": {
        "user_id": "BIGINT", "email": "VARCHAR", "phone": "VARCHAR", "ip_address": "VARCHAR",
        "password_hash": "VARCHAR", "security_questions": "VARCHAR", "full_name": "VARCHAR",
        "country": "VARCHAR", "consent_given": "BOOLEAN", "created_at": "TIMESTAMP",
        "updated_at": "TIMESTAMP",
    },
    "billing_transactions": {
        "transaction_id": "VARCHAR", "user_id": "BIGINT", "amount": "DECIMAL(18,2)",
        "currency": "VARCHAR", "transaction_timestamp": "TIMESTAMP",
        "transaction_date": "DATE", "status": "VARCHAR", "created_by": "VARCHAR",
        "created_at": "TIMESTAMP",
    },
    "parts_inventory": {
        "part_id": "BIGINT", "location_id": "VARCHAR", "quantity": "INTEGER",
        "inventory_updated_at": "TIMESTAMP",
    },
    "parts_catalog": {
        "part_id": "BIGINT", "part_number": "VARCHAR", "name": "VARCHAR",
        "category": "VARCHAR", "price": "DECIMAL(10,2)", "manufacturer_id": "BIGINT",
    },
    "equipment_registry": {
        "equipment_id": "BIGINT", "identification_number": "VARCHAR",
        "manufacturer_id": "BIGINT", "model": "VARCHAR", "year": "INTEGER",
        "last_modified": "TIMESTAMP",
    },
    "equipment_manufacturers": {"manufacturer_id": "BIGINT", "name": "VARCHAR"},
    "dtc_code_definitions": {
        "code": "VARCHAR", "description": "VARCHAR", "severity": "VARCHAR", "system": "VARCHAR",
    },
    "configuration_settings": {"key": "VARCHAR", "value": "VARCHAR", "updated_at": "TIMESTAMP"},
    "audit_logs": {
        "event_id": "VARCHAR", "actor": "VARCHAR", "action": "VARCHAR", "resource": "VARCHAR",
        "created_at": "TIMESTAMP", "created_by": "VARCHAR",
    },
    "api_access_log": {
        "request_id": "VARCHAR", "api_key_id": "VARCHAR", "endpoint": "VARCHAR",
        "method": "VARCHAR", "status_code": "INTEGER", "ip_address": "VARCHAR",
        "latency_ms": "DOUBLE", "requested_at": "TIMESTAMP",
    },
}  # fmt: skip

VIN = re.compile(r"^[A-HJ-NPR-Z0-9]{17}$")
VIN_VALUE = dict(
    zip(
        "ABCDEFGHJKLMNPRSTUVWXYZ",
        [1, 2, 3, 4, 5, 6, 7, 8, 1, 2, 3, 4, 5, 7, 9, 2, 3, 4, 5, 6, 7, 8, 9],
        strict=True,
    )
)
VIN_WEIGHTS = [8, 7, 6, 5, 4, 3, 2, 10, 0, 9, 8, 7, 6, 5, 4, 3, 2]


def vin_check_digit_ok(vin: str) -> bool:
    total = sum(
        (int(c) if c.isdigit() else VIN_VALUE[c]) * w for c, w in zip(vin, VIN_WEIGHTS, strict=True)
    )
    return vin[8] == ("X" if total % 11 == 10 else str(total % 11))


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, int]]:
    path = tmp_path_factory.mktemp("demo") / "warehouse.duckdb"
    return path, create_demo_warehouse(path, ROWS)


@pytest.fixture
def con(demo: tuple[Path, dict[str, int]]) -> Iterator[duckdb.DuckDBPyConnection]:
    c = duckdb.connect(str(demo[0]), read_only=True)
    yield c
    c.close()


def q(con: duckdb.DuckDBPyConnection, sql: str) -> list[tuple[Any, ...]]:
    return con.sql(sql.replace("T.", f"{DEMO_DATASET}.")).fetchall()


def content_hashes(path: Path) -> dict[str, str]:
    c = duckdb.connect(str(path), read_only=True)
    try:
        return {
            t: str(
                c.sql(
                    f"SELECT md5(string_agg(md5(x::VARCHAR), '' ORDER BY md5(x::VARCHAR))) "
                    f"FROM {DEMO_DATASET}.{t} x"
                ).fetchall()[0][0]
            )
            for t in TABLES
        }
    finally:
        c.close()


def test_every_spec_table_with_its_columns(
    demo: tuple[Path, dict[str, int]], con: duckdb.DuckDBPyConnection
) -> None:
    _, counts = demo
    assert set(counts) == set(TABLES) == set(REQUIRED_COLUMNS)
    assert counts == table_sizes(ROWS)
    for table, required in REQUIRED_COLUMNS.items():
        rel = con.sql(f"SELECT * FROM {DEMO_DATASET}.{table}")
        types = dict(zip(rel.columns, (str(t) for t in rel.types), strict=True))
        for column, typ in required.items():
            assert types.get(column) == typ, (table, column, types.get(column))
        assert counts[table] > 0


def test_deterministic_for_a_seed(tmp_path: Path, demo: tuple[Path, dict[str, int]]) -> None:
    again = tmp_path / "again.duckdb"
    create_demo_warehouse(again, ROWS)
    assert content_hashes(again) == content_hashes(demo[0])
    other = tmp_path / "other.duckdb"
    create_demo_warehouse(other, ROWS, seed=7)
    assert content_hashes(other)["sensor_telemetry"] != content_hashes(demo[0])["sensor_telemetry"]


def test_rows_scales_big_tables(tmp_path: Path) -> None:
    small = create_demo_warehouse(tmp_path / "s.duckdb", 1000)
    big = create_demo_warehouse(tmp_path / "b.duckdb", 3000)
    assert small["sensor_telemetry"] == 1000 and big["sensor_telemetry"] == 3000
    for table in ("diagnostic_sessions", "api_access_log", "feature_store"):
        assert big[table] > small[table]
    assert big["dtc_code_definitions"] == small["dtc_code_definitions"]


def test_now_bounds_every_timestamp(tmp_path: Path) -> None:
    now = datetime(2024, 2, 29, 12, 0, tzinfo=UTC)
    create_demo_warehouse(tmp_path / "n.duckdb", 500, now=now)
    c = duckdb.connect(str(tmp_path / "n.duckdb"), read_only=True)
    try:
        (latest,) = c.sql(
            f"SELECT max(created_at) FROM {DEMO_DATASET}.sensor_telemetry"
        ).fetchall()[0]
        (earliest,) = c.sql(
            f"SELECT min(created_at) FROM {DEMO_DATASET}.sensor_telemetry"
        ).fetchall()[0]
    finally:
        c.close()
    naive = now.replace(tzinfo=None)
    assert latest <= naive and (naive - earliest).total_seconds() <= 2 * 86400


def test_vins_look_valid(con: duckdb.DuckDBPyConnection) -> None:
    vins = [v for (v,) in q(con, "SELECT identification_number FROM T.equipment_registry")]
    assert len(vins) == len(set(vins))
    assert all(VIN.match(v) and vin_check_digit_ok(v) for v in vins)
    session_vins = [v for (v,) in q(con, "SELECT vin FROM T.diagnostic_sessions")]
    assert all(VIN.match(v) for v in session_vins)


def test_dtc_codes_format(con: duckdb.DuckDBPyConnection) -> None:
    pattern = re.compile(r"^[PCBU][0-3][0-9A-F]{3}$")
    assert all(pattern.match(code) for code in DTC_CODES)
    used = {c for (codes,) in q(con, "SELECT dtc_codes FROM T.diagnostic_sessions") for c in codes}
    assert used and used <= set(DTC_CODES)
    assert {"P0301", "P0420", "C0035", "B1000", "U0100"} <= set(DTC_CODES)


def test_sensor_values_within_type_ranges(con: duckdb.DuckDBPyConnection) -> None:
    rows = q(
        con, "SELECT sensor_type, unit, min(value), max(value) FROM T.sensor_telemetry GROUP BY ALL"
    )
    assert {r[0] for r in rows} == set(SENSOR_RANGES)
    for sensor_type, unit, lo, hi in rows:
        low, high, expected_unit = SENSOR_RANGES[sensor_type]
        assert unit == expected_unit
        assert low <= lo <= hi <= high, sensor_type


def test_referential_integrity(con: duckdb.DuckDBPyConnection) -> None:
    orphans = q(
        con,
        "SELECT count(*) FROM T.sensor_telemetry s ANTI JOIN T.equipment_registry e "
        "USING (equipment_id)",
    )
    assert orphans == [(0,)]
    (distinct,) = q(con, "SELECT count(DISTINCT equipment_id) FROM T.sensor_telemetry")[0]
    assert distinct > ROWS // 2
    dup_pairs = q(
        con,
        "SELECT count(*) FROM (SELECT part_id, location_id FROM T.parts_inventory "
        "GROUP BY ALL HAVING count(*) > 1)",
    )
    assert dup_pairs == [(0,)]
    for child, parent, key in [
        ("parts_inventory", "parts_catalog", "part_id"),
        ("billing_transactions", "users", "user_id"),
        ("diagnostic_sessions", "users", "user_id"),
    ]:
        sql = f"SELECT count(*) FROM T.{child} ANTI JOIN T.{parent} USING ({key})"
        assert q(con, sql) == [(0,)], child


def test_realistic_values(con: duckdb.DuckDBPyConnection) -> None:
    video_ids = [v for (v,) in q(con, "SELECT video_id FROM T.youtube_repair_videos")]
    assert all(re.fullmatch(r"[A-Za-z0-9_-]{11}", v) for v in video_ids)
    (null_share,) = q(con, "SELECT avg((transcript IS NULL)::INT) FROM T.youtube_repair_videos")[0]
    assert 0.2 < null_share < 0.4
    ips = [v for (v,) in q(con, "SELECT ip_address FROM T.users")]
    assert any(":" in ip for ip in ips) and any(ip.count(".") == 3 for ip in ips)
    (consent,) = q(con, "SELECT avg(consent_given::INT) FROM T.users")[0]
    assert consent > 0.8
    currencies = {c for (c,) in q(con, "SELECT DISTINCT currency FROM T.billing_transactions")}
    assert {"USD", "EUR", "GBP", "JPY"} <= currencies
    regions = {r for (r,) in q(con, "SELECT DISTINCT user_region FROM T.diagnostic_sessions")}
    assert {"us-east", "us-west", "eu-west", "ap-south"} <= regions
    subs = [s for (s,) in q(con, "SELECT subreddit FROM T.reddit_diagnostic_posts")]
    assert all(re.fullmatch(r"[A-Za-z0-9_]{2,21}", s) for s in subs)
    sql = "SELECT min(length(content)), max(length(content)) FROM T.reddit_diagnostic_posts"
    shortest, longest = q(con, sql)[0]
    assert shortest >= 1 and longest <= 40000
    sql = "SELECT count(DISTINCT post_id) = count(*) FROM T.reddit_diagnostic_posts"
    assert q(con, sql) == [(True,)]


def test_tricky_strings_present(con: duckdb.DuckDBPyConnection) -> None:
    text = " ".join(
        str(v)
        for (v,) in q(
            con,
            "SELECT string_agg(content, ' ') FROM (SELECT content FROM T.reddit_diagnostic_posts "
            "LIMIT 200)",
        )
    )
    for needle in ("\n", '"', ",", "'", "😬", "\\"):
        assert needle in text, repr(needle)
