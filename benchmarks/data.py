"""The synthetic warehouse the benchmark reads: ``bench.sensor_telemetry``, ``bench.users``
and ``bench.sensor_telemetry_2k`` (its first rows: what a process costs before any data).

Built once per row count in a DuckDB file and reused (the file name carries the row
count and a version; bump ``VERSION`` when the shape changes). Values are derived from
the row number by hashing, so two builds of the same size hold the same data.
"""

from __future__ import annotations

import time
from pathlib import Path

VERSION = 3
DATASET = "bench"
#: rows of ``sensor_telemetry_2k``, the start-up case's table
STARTUP_ROWS = 2_000
#: Two days of telemetry; the layout cases make 48 hours x 12 sensor types folders.
START = "2025-09-15 00:00:00"
SECONDS = 2 * 24 * 3600
EQUIPMENT = 20_000
SENSOR_TYPES = (
    "engine_temp",
    "oil_pressure",
    "coolant_temp",
    "rpm",
    "vibration",
    "battery_voltage",
    "fuel_rate",
    "intake_air",
    "exhaust_temp",
    "boost_pressure",
    "throttle_pos",
    "speed",
)
#: INCREMENTAL: rows of ``users`` changed after the first export's logical time.
CHANGED_SHARE = 0.01
USERS_FIRST_AT = "2025-09-15T00:00:00Z"
USERS_CHANGED_FROM = "2025-09-16 10:00:00"
USERS_SECOND_AT = "2025-09-16T14:00:00Z"


def _uuid(expr: str) -> str:
    """A UUID-shaped string from ``md5(expr)`` (deterministic, unlike ``uuid()``)."""
    m = f"md5({expr})"
    return (
        f"(substr({m},1,8)||'-'||substr({m},9,4)||'-4'||substr({m},14,3)||'-a'"
        f"||substr({m},18,3)||'-'||substr({m},21,12))"
    )


def _unit(expr: str, salt: int) -> str:
    """A value in [0, 1) from hashing ``expr`` with ``salt``."""
    return f"((hash({expr}, {salt}) % 1000003) / 1000003.0)"


def telemetry_sql(rows: int) -> str:
    sensors = "[" + ", ".join(f"'{s}'" for s in SENSOR_TYPES) + "]"
    u = _unit
    # created_at advances with i (telemetry arrives roughly in time order) with jitter
    return f"""
    CREATE TABLE {DATASET}.sensor_telemetry AS
    SELECT
      {_uuid("'r' || i")} AS reading_id,
      (hash(i, 1) % {EQUIPMENT})::BIGINT AS equipment_id,
      -- hashed apart from equipment_id: hash(i, 1) and hash(i, 2) share low bits
      list_extract({sensors}, (hash(i::VARCHAR || 'st') % {len(SENSOR_TYPES)})::INTEGER + 1)
        AS sensor_type,
      TIMESTAMP '{START}' + to_microseconds(
        least({SECONDS * 1_000_000 - 1},
              (i * {SECONDS}.0 / {rows} * 1000000 + {u("i", 3)} * 60000000)::BIGINT)
      ) AS created_at,
      CAST(TIMESTAMP '{START}' + to_seconds((i * {SECONDS}.0 / {rows})::BIGINT) AS DATE)
        AS reading_date,
      round({u("i", 4)} * 250 - 40, 3) AS value,
      round({u("i", 5)} * 10, 3) AS min_value,
      round(200 + {u("i", 6)} * 100, 3) AS max_value,
      list_extract(['C', 'kPa', 'rpm', 'V', 'mm/s', 'L/h'], (hash(i, 7) % 6)::INTEGER + 1)
        AS unit,
      (hash(i, 8) % 101)::INTEGER AS quality_score,
      i::BIGINT AS sequence_no,
      'fw-' || (hash(i, 9) % 7)::VARCHAR || '.' || (hash(i, 10) % 20)::VARCHAR AS firmware,
      CASE WHEN hash(i, 11) % 10 = 0
           THEN 'E' || lpad(((hash(i, 12) % 999))::VARCHAR, 3, '0') END AS error_code,
      hash(i, 13) % 50 = 0 AS is_anomaly,
      {_uuid("'s' || (i // 500)")} AS session_id,
      round(25 + {u("i", 14)} * 24, 6) AS latitude,
      round(-125 + {u("i", 15)} * 58, 6) AS longitude,
      round({u("i", 16)} * 60 - 10, 2) AS ambient_temp_c,
      (-((hash(i, 17) % 90)::SMALLINT)) AS signal_dbm,
      list_extract(['us-east', 'us-west', 'eu-central', 'ap-south'], (hash(i, 18) % 4)::INTEGER + 1)
        AS region,
      (hash(i, 19) % 5000)::INTEGER AS ingest_lag_ms
    FROM range({rows}) t(i)
    """


def users_sql(rows: int) -> str:
    changed = max(1, int(rows * CHANGED_SHARE))
    every = max(1, rows // changed)
    u = _unit
    return f"""
    CREATE TABLE {DATASET}.users AS
    SELECT
      i::BIGINT AS user_id,
      'user' || i::VARCHAR || '@example.com' AS email,
      'User ' || i::VARCHAR AS display_name,
      list_extract(['us-east', 'us-west', 'eu-central', 'ap-south'], (hash(i, 21) % 4)::INTEGER + 1)
        AS region,
      list_extract(['free', 'pro', 'fleet'], (hash(i, 22) % 3)::INTEGER + 1) AS plan,
      hash(i, 23) % 9 <> 0 AS is_active,
      TIMESTAMP '2024-01-01' + to_seconds((hash(i, 24) % 20000000)::BIGINT) AS created_at,
      CASE WHEN i % {every} = 0 AND i // {every} < {changed}
           THEN TIMESTAMP '{USERS_CHANGED_FROM}' + to_seconds((hash(i, 25) % 7200)::BIGINT)
           ELSE TIMESTAMP '2025-01-01' + to_seconds((hash(i, 26) % 20000000)::BIGINT)
      END AS updated_at,
      round({u("i", 27)} * 1000, 2) AS lifetime_spend,
      CASE WHEN hash(i, 28) % 3 = 0 THEN '+1-555-' || lpad((hash(i, 29) % 10000)::VARCHAR, 4, '0')
      END AS phone
    FROM range({rows}) t(i)
    """


def users_rows(rows: int) -> int:
    """``users`` is half the telemetry's size (at least 100k rows)."""
    return max(100_000, rows // 2)


def path_for(workdir: Path, rows: int) -> Path:
    return workdir / f"bench_{rows}_v{VERSION}.duckdb"


def warehouse(workdir: Path, rows: int, *, log: bool = True) -> Path:
    """The DuckDB file for ``rows`` telemetry rows, built if missing.

    ``run.py`` calls this in a child process (``python data.py WORK ROWS``): a child's
    peak RSS as Linux reports it starts at its parent's RSS at fork, so the harness
    must stay small."""
    import duckdb

    path = path_for(workdir, rows)
    if path.exists():
        return path
    workdir.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".building")
    tmp.unlink(missing_ok=True)
    t0 = time.monotonic()
    con = duckdb.connect(str(tmp))
    try:
        con.execute(f"CREATE SCHEMA {DATASET}")
        con.execute(telemetry_sql(rows))
        con.execute(users_sql(users_rows(rows)))
        con.execute(
            f"CREATE TABLE {DATASET}.sensor_telemetry_2k AS SELECT * FROM "
            f"{DATASET}.sensor_telemetry ORDER BY rowid LIMIT {STARTUP_ROWS}"
        )
        con.execute("CHECKPOINT")
    finally:
        con.close()
    tmp.rename(path)
    if log:
        print(f"built {path.name} in {time.monotonic() - t0:.1f} s", flush=True)
    return path


if __name__ == "__main__":
    import sys

    warehouse(Path(sys.argv[1]), int(sys.argv[2]))
