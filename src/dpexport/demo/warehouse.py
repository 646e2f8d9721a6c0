"""The demo warehouse: every table the spec names, with realistic, reproducible data.

All rows are generated inside DuckDB from ``range()`` and seeded hashes
(``hash(i, salt, seed)``), never in Python loops, so millions of rows take seconds and
the same ``seed`` and ``now`` always give the same content. String values include
unicode, emoji, quotes, commas, backslashes and newlines, since the demo also
exercises the writers. Timestamps are UTC wall-clock ``TIMESTAMP`` values, none after
``now``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import duckdb

from dpexport.demo import warehouse_data as v
from dpexport.demo.warehouse_data import DTC_CODES, SENSOR_RANGES

__all__ = [
    "DEMO_DATASET",
    "DEMO_NOW",
    "DTC_CODES",
    "SENSOR_RANGES",
    "TABLES",
    "create_demo_warehouse",
    "table_sizes",
]

DEMO_DATASET = "diagnosticpro_prod"
#: The fixed default "now" of the demo, so that a demo warehouse is reproducible.
DEMO_NOW = datetime(2025, 9, 16, 14, 30, 22, tzinfo=UTC)


TABLES: tuple[str, ...] = (
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
)

_EQUIPMENT = 20_000  # equipment_registry rows: the ids sensor_telemetry refers to
_PARTS = 2_000  # parts_catalog rows
_LOCATIONS = 40  # parts_inventory locations; (part, location) pairs are unique


def table_sizes(rows: int) -> dict[str, int]:
    """Rows per demo table for ``rows`` sensor readings (the largest table)."""
    if rows < 1:
        raise ValueError(f"rows must be at least 1 (got {rows})")

    def part(divisor: int, floor: int = 10) -> int:
        return max(rows // divisor, floor)

    return {
        "reddit_diagnostic_posts": part(10),
        "youtube_repair_videos": part(20),
        "sensor_telemetry": rows,
        "diagnostic_sessions": part(4),
        "feature_store": part(5),
        "users": part(20, 20),
        "billing_transactions": part(10),
        "parts_inventory": min(part(10), _PARTS * _LOCATIONS),
        "parts_catalog": _PARTS,
        "equipment_registry": _EQUIPMENT,
        "equipment_manufacturers": len(v.MANUFACTURERS),
        "dtc_code_definitions": len(DTC_CODES),
        "configuration_settings": len(v.SETTINGS),
        "audit_logs": part(10),
        "api_access_log": part(4),
    }


def _lit(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _list(values: list[str] | tuple[str, ...]) -> str:
    return "[" + ", ".join(_lit(v) for v in values) + "]"


def _macros(seed: int, now: datetime) -> list[str]:
    now_sql = f"TIMESTAMP '{now.astimezone(UTC).replace(tzinfo=None).isoformat(sep=' ')}'"
    s = int(seed)
    return [
        f"CREATE OR REPLACE TEMP MACRO demo_now() AS {now_sql}",
        # uniform in [0, 1): 53 bits of a seeded hash
        f"CREATE OR REPLACE TEMP MACRO rnd(i, salt) AS "
        f"(hash(i, salt, {s}) >> 11) / 9007199254740992.0",
        f"CREATE OR REPLACE TEMP MACRO rint(i, salt, n) AS (hash(i, salt, {s}) % n)::BIGINT",
        "CREATE OR REPLACE TEMP MACRO between_(i, salt, lo, hi) AS lo + rnd(i, salt) * (hi - lo)",
        # a time in the `seconds` before now, to the millisecond
        "CREATE OR REPLACE TEMP MACRO ago(i, salt, seconds) AS demo_now() - "
        "to_milliseconds((rnd(i, salt) * seconds * 1000)::BIGINT)",
        f"CREATE OR REPLACE TEMP MACRO hexid(i, salt) AS md5(concat(i, ':', salt, ':', {s}))",
        # a version-4 UUID string from one md5 hex digest (computed once per row)
        "CREATE OR REPLACE TEMP MACRO uuid_of(h) AS concat_ws('-', substr(h, 1, 8), "
        "substr(h, 9, 4), '4' || substr(h, 14, 3), substr('89ab', 1 + (strpos("
        "'0123456789abcdef', substr(h, 17, 1)) - 1) % 4, 1) || substr(h, 18, 3), "
        "substr(h, 21, 12))",
        "CREATE OR REPLACE TEMP MACRO uuid4(i, salt) AS uuid_of(hexid(i, salt))",
        # n characters drawn from an alphabet
        "CREATE OR REPLACE TEMP MACRO rchars(i, salt, alphabet, n) AS array_to_string("
        "list_transform(range(n), lambda k: substr(alphabet, "
        f"1 + (hash(i, salt, k, {s}) % length(alphabet))::BIGINT, 1)), '')",
        # URL-safe base64 of a digest: [A-Za-z0-9_-], as YouTube ids are
        "CREATE OR REPLACE TEMP MACRO b64url(i, salt) AS replace(replace(to_base64(unhex("
        "hexid(i, salt))), '+', '-'), '/', '_')",
        "CREATE OR REPLACE TEMP MACRO ipv4(i, salt) AS concat_ws('.', "
        "11 + rint(i, salt || 1, 212), "
        "rint(i, salt || 2, 256), rint(i, salt || 3, 256), 1 + rint(i, salt || 4, 254))",
        "CREATE OR REPLACE TEMP MACRO ipv6_of(h) AS '2001:db8:' || concat_ws(':', "
        "substr(h, 1, 4), substr(h, 5, 4), ltrim(substr(h, 9, 4), '0'), substr(h, 13, 4)) "
        "|| '::' || substr(h, 17, 3)",
        "CREATE OR REPLACE TEMP MACRO ip(i, salt) AS CASE WHEN rnd(i, salt || 'six') < 0.12 "
        "THEN ipv6_of(hexid(i, salt)) ELSE ipv4(i, salt) END",
    ]


def _pick_sql(exprs: list[str], salt: str) -> str:
    """SQL choosing one of ``exprs`` per row by a seeded hash of ``i`` (a CASE: fast)."""
    whens = " ".join(f"WHEN {k} THEN {e}" for k, e in enumerate(exprs))
    return f"(CASE rint(i, {_lit(salt)}, {len(exprs)}) {whens} END)"


def _pick(values: list[str] | list[int], salt: str) -> str:
    """SQL choosing one of the literal ``values`` per row."""
    return _pick_sql([_lit(v) if isinstance(v, str) else str(int(v)) for v in values], salt)


def _actors(n: dict[str, int]) -> list[str]:
    return [
        f"'user:' || (10000 + rint(i, 'au', {n['users']}))",
        "'service:bigquery-exporter'",
        "'service:airflow-operator'",
        "'admin:ops@diagnosticpro.com'",
    ]


def _resources(n: dict[str, int]) -> list[str]:
    return [
        f"'users/' || (10000 + rint(i, 'ru', {n['users']}))",
        "'tables/diagnosticpro_prod.users'",
        "'buckets/diagnosticpro-exports'",
        f"'equipment/' || (1000000 + rint(i, 're', {n['equipment_registry']}))",
    ]


def _statements(n: dict[str, int]) -> dict[str, str]:
    """One CREATE TABLE ... AS SELECT per generated table (reference tables are inserted)."""
    d = f'"{DEMO_DATASET}"'
    wmis = _list([m[3] for m in v.MANUFACTURERS])
    codes = _list(list(DTC_CODES))
    return {
        "equipment_registry": f"""
CREATE TABLE {d}.equipment_registry AS
WITH base AS (
  SELECT i, 1000000 + i AS equipment_id,
         1 + rint(i, 'mf', {len(v.MANUFACTURERS)}) AS manufacturer_id,
         2010 + rint(i, 'yr', 16)::INTEGER AS year
  FROM range({n["equipment_registry"]}) r(i)
), draft AS (
  SELECT *, {wmis}[manufacturer_id] || rchars(i, 'vds', '{v.VIN_CHARS}', 5) || '0'
         || substr('{v.VIN_YEARS}', year - 2009, 1)
         || rchars(i, 'plant', 'ABCDEFGHJKLMNPRSTUVWXYZ', 1)
         || printf('%06d', i) AS draft_vin
  FROM base
), checked AS (
  SELECT *, list_sum(list_transform(range(1, 18), lambda p:
           {v.VIN_VALUES}[strpos('{v.VIN_CHARS}', substr(draft_vin, p, 1))]
           * {v.VIN_WEIGHTS}[p])) % 11 AS check_value
  FROM draft
)
SELECT equipment_id,
  substr(draft_vin, 1, 8) || CASE WHEN check_value = 10 THEN 'X' ELSE check_value::VARCHAR END
    || substr(draft_vin, 10) AS identification_number,
  manufacturer_id, {_list(v.MODELS)}[manufacturer_id] AS model, year,
  CASE WHEN manufacturer_id IN (1, 2, 13) THEN 'light_truck' WHEN manufacturer_id = 14
       THEN 'construction' WHEN manufacturer_id = 15 THEN 'agricultural'
       WHEN manufacturer_id IN (16, 17) THEN 'heavy_truck' ELSE 'passenger_car' END
    AS equipment_type,
  10000 + rint(i, 'owner', {n["users"]}) AS owner_user_id,
  (50000 + rint(i, 'odo', 250000))::INTEGER AS odometer_km,
  {_pick(["active", "active", "active", "in_service", "retired"], "status")} AS status,
  ago(i, 'reg', 5 * 365 * 86400) AS registered_at,
  ago(i, 'mod', 30 * 86400) AS last_modified
FROM checked ORDER BY equipment_id""",
        "sensor_telemetry": f"""
CREATE TABLE {d}.sensor_telemetry AS
WITH base AS (
  SELECT i, string_split({_pick(v.SENSOR_SPECS, "st")}, '|') AS spec,
         ago(i, 'ts', 2 * 86400) AS created_at
  FROM range({n["sensor_telemetry"]}) r(i)
)
SELECT uuid4(i, 'reading') AS reading_id,
  1000000 + rint(i, 'eq', {n["equipment_registry"]}) AS equipment_id,
  spec[1] AS sensor_type,
  round(between_(i, 'val', spec[3]::DOUBLE, spec[4]::DOUBLE), 3) AS value,
  spec[2] AS unit,
  {_pick(["OK", "OK", "OK", "OK", "OK", "OK", "OK", "OK", "SUSPECT", "DEGRADED"], "q")}
    AS quality_flag,
  CASE WHEN rnd(i, 'amb_null') < 0.15 THEN NULL
       ELSE round(between_(i, 'amb', -25.0, 45.0), 1) END AS ambient_temp_c,
  {_pick(["fw-3.2.1", "fw-3.2.2", "fw-3.3.0", "fw-4.0.0-beta"], "fw")} AS firmware_version,
  created_at,
  created_at + to_milliseconds(50 + rint(i, 'lag', 5000)) AS ingested_at
FROM base ORDER BY created_at""",
        "users": f"""
CREATE TABLE {d}.users AS
WITH base AS (
  SELECT i, 10000 + i AS user_id, {_pick(v.NAMES, "name")} AS full_name,
         ago(i, 'created', 3 * 365 * 86400) AS created_at
  FROM range({n["users"]}) r(i)
)
SELECT user_id,
  lower({_pick(["alex", "sam", "jo", "maria", "li.wei", "o.brien", "zoe"], "local")})
    || CASE WHEN rnd(i, 'plus') < 0.1 THEN '+garage' ELSE '' END || '.' || user_id::VARCHAR
    || '@' || {_pick(["gmail.com", "outlook.com", "example.co.uk", "mail.de", "proton.me"], "dom")}
    AS email,
  CASE WHEN rnd(i, 'nophone') < 0.04 THEN NULL
       ELSE '+1-' || printf('%03d', 201 + rint(i, 'a', 700)) || '-555-'
            || printf('%04d', rint(i, 'p', 10000))
       END AS phone,
  ip(i, 'ip') AS ip_address,
  '$2b$12$' || substr(replace(replace(to_base64(unhex(sha256(hexid(i, 'pw')) || hexid(i, 'pw2'))),
    '+', '.'), '/', '.'), 1, 53) AS password_hash,
  '[{{"q": "First car?", "a": "' || hexid(i, 'sq1') || '"}}, {{"q": "Pet''s name?", "a": "'
    || hexid(i, 'sq2') || '"}}]' AS security_questions,
  full_name, {_pick(v.COUNTRIES, "country")} AS country,
  rnd(i, 'consent') < 0.92 AS consent_given,
  rnd(i, 'mkt') < 0.35 AS marketing_opt_in,
  {_pick(["free", "free", "pro", "fleet"], "plan")} AS plan,
  created_at,
  greatest(created_at, ago(i, 'upd', 14 * 86400)) AS updated_at,
  CASE WHEN rnd(i, 'nologin') < 0.2 THEN NULL ELSE ago(i, 'login', 30 * 86400) END AS last_login_at
FROM base ORDER BY user_id""",
        "diagnostic_sessions": f"""
CREATE TABLE {d}.diagnostic_sessions AS
WITH base AS (
  SELECT i, ago(i, 'start', 7 * 86400) AS session_start,
         1000000 + rint(i, 'eq', {n["equipment_registry"]}) AS equipment_id
  FROM range({n["diagnostic_sessions"]}) r(i)
)
SELECT uuid4(i, 'session') AS session_id, 10000 + rint(i, 'user', {n["users"]}) AS user_id,
  b.equipment_id, e.identification_number AS vin,
  list_transform(range(rint(i, 'ndtc', 4)),
    lambda k: {codes}[1 + (hash(i, k, 'dtc') % {len(DTC_CODES)})::BIGINT])
    AS dtc_codes,
  session_start,
  CASE WHEN rnd(i, 'open') < 0.05 THEN NULL
       ELSE least(session_start + to_seconds(60 + rint(i, 'dur', 3600)), demo_now()) END
    AS session_end,
  {_pick(v.REGIONS, "region")} AS user_region,
  {_pick(["completed", "completed", "completed", "abandoned", "escalated"], "status")} AS status,
  {_pick(["ISO 15765-4 (CAN)", "SAE J1850 PWM", "ISO 9141-2", "SAE J1939"], "proto")}
    AS obd_protocol,
  {{'platform': {_pick(["ios", "android", "web"], "plat")},
    'app_version': {_pick(["5.1.0", "5.2.3", "6.0.0"], "ver")}}} AS device,
  session_start AS created_at
FROM base b JOIN {d}.equipment_registry e USING (equipment_id) ORDER BY session_start""",
        "feature_store": f"""
CREATE TABLE {d}.feature_store AS
WITH base AS (
  SELECT i, string_split({_pick(v.FEATURES, "feat")}, '|') AS spec,
         ago(i, 'fts', 3 * 86400) AS feature_timestamp
  FROM range({n["feature_store"]}) r(i)
)
SELECT i + 1 AS feature_id, 1000000 + rint(i, 'ent', {n["equipment_registry"]}) AS entity_id,
  spec[2] AS feature_name,
  CASE WHEN rnd(i, 'fnull') < 0.02 THEN NULL
       ELSE round(between_(i, 'fval', spec[3]::DOUBLE, spec[4]::DOUBLE), 4) END AS feature_value,
  spec[1] AS feature_category,
  {_pick(["v2.3.0", "v2.3.1", "v2.3.1", "v2.4.0-rc1"], "fver")} AS feature_version,
  feature_timestamp,
  least(feature_timestamp + to_seconds(rint(i, 'fupd', 7200)), demo_now()) AS updated_at
FROM base ORDER BY feature_timestamp""",
        "billing_transactions": f"""
CREATE TABLE {d}.billing_transactions AS
WITH base AS (
  SELECT i, ago(i, 'txts', 60 * 86400) AS transaction_timestamp,
         {_pick(v.CURRENCIES, "cur")} AS currency,
         {_pick(v.TX_STATUS, "txst")} AS status
  FROM range({n["billing_transactions"]}) r(i)
)
SELECT 'txn_' || substr(hexid(i, 'txn'), 1, 20) AS transaction_id,
  10000 + rint(i, 'user', {n["users"]}) AS user_id,
  (CASE WHEN currency = 'JPY' THEN round(between_(i, 'amt', 500, 60000), 0)
        ELSE round(between_(i, 'amt', 4.99, 899.99), 2) END
   * CASE WHEN status = 'refunded' THEN -1 ELSE 1 END)::DECIMAL(18, 2) AS amount,
  currency, transaction_timestamp, transaction_timestamp::DATE AS transaction_date, status,
  {_pick(["card", "card", "paypal", "apple_pay", "bank_transfer"], "pm")} AS payment_method,
  {_pick(v.TX_DESCRIPTIONS, "desc")} AS description,
  {_pick(["billing-service", "billing-service", "admin:ops@diagnosticpro.com", "stripe"], "by")}
    AS created_by,
  transaction_timestamp + to_milliseconds(rint(i, 'cre', 2000)) AS created_at
FROM base ORDER BY transaction_timestamp""",
        "parts_catalog": f"""
CREATE TABLE {d}.parts_catalog AS
SELECT 500000 + i AS part_id,
  upper(rchars(i, 'pfx', 'ABCDEFGHJKLMNPRSTUVWXYZ', 3)) || '-' || printf('%05d', i) || '-'
    || rchars(i, 'sfx', 'ABCX', 1) AS part_number,
  {_pick(v.PART_NAMES, "pname")} AS name, {_pick(v.CATEGORIES, "pcat")} AS category,
  round(between_(i, 'price', 3.5, 1800), 2)::DECIMAL(10, 2) AS price, 'USD' AS currency,
  1 + rint(i, 'pmf', {len(v.MANUFACTURERS)}) AS manufacturer_id,
  round(between_(i, 'kg', 0.05, 25), 3) AS weight_kg, rnd(i, 'active') < 0.95 AS is_active,
  ago(i, 'pupd', 90 * 86400) AS updated_at
FROM range({n["parts_catalog"]}) r(i) ORDER BY part_id""",
        "parts_inventory": f"""
CREATE TABLE {d}.parts_inventory AS
WITH base AS (
  SELECT i, (i * 7919 + rint(0, 'inv', {_PARTS * _LOCATIONS})) % {_PARTS * _LOCATIONS} AS pair
  FROM range({n["parts_inventory"]}) r(i)
)
SELECT 500000 + pair // {_LOCATIONS} AS part_id, 'LOC-' || printf('%03d', 1 + pair % {_LOCATIONS})
    AS location_id,
  rint(i, 'qty', 500)::INTEGER AS quantity, rint(i, 'res', 20)::INTEGER AS reserved_quantity,
  (5 + rint(i, 'rop', 45))::INTEGER AS reorder_point,
  'Aisle ' || (1 + rint(i, 'aisle', 30)) || ', Bin ' || rchars(i, 'bin', 'ABCDEF', 1)
    || (1 + rint(i, 'b', 99)) AS bin_location,
  ago(i, 'invupd', 7 * 86400) AS inventory_updated_at,
  ago(i, 'count', 90 * 86400) AS last_counted_at
FROM base ORDER BY part_id, location_id""",
        "reddit_diagnostic_posts": f"""
CREATE TABLE {d}.reddit_diagnostic_posts AS
WITH base AS (
  SELECT i, ago(i, 'post', 30 * 86400) AS created_at FROM range({n["reddit_diagnostic_posts"]}) r(i)
)
SELECT 't3_' || lower(to_base(60466176 + i * 7919 + rint(0, 'pid', 7919), 36)) AS post_id,
  {_pick(v.SUBREDDITS, "sub")} AS subreddit, {_pick(v.TITLES, "title")} AS title,
  array_to_string(list_transform(range(1 + rint(i, 'ns', 6)),
    lambda k: {_list(v.SENTENCES)}[1 + (hash(i, k, 'sent') % {len(v.SENTENCES)})::BIGINT]),
    E'\\n\\n')
    || CASE WHEN rnd(i, 'long') < 0.02 THEN repeat(E'\\nlog line, "quoted", ✓', 400) ELSE '' END
    AS content,
  CASE WHEN rnd(i, 'del') < 0.03 THEN '[deleted]'
       ELSE {_pick(["wrench_wizard", "TorqueSpec", "diesel_dan", "Ölkanne", "obd2_nerd"], "au")}
            || rint(i, 'aun', 10000)::VARCHAR END AS author,
  (rint(i, 'score', 2000) - 50)::INTEGER AS score,
  rint(i, 'ncom', 300)::INTEGER AS num_comments,
  CASE WHEN rnd(i, 'flair') < 0.3 THEN NULL WHEN rnd(i, 'flair') < 0.4 THEN ''
       ELSE {_pick(["Solved ✅", "Unsolved", "Electrical", "Engine"], "fl")} END AS flair,
  created_at, created_at::DATE AS created_date,
  least(created_at + to_seconds(60 + rint(i, 'scr', 21600)), demo_now()) AS scraped_at
FROM base ORDER BY created_at""",
        "youtube_repair_videos": f"""
CREATE TABLE {d}.youtube_repair_videos AS
SELECT substr(b64url(i, 'vid'), 1, 11) AS video_id,
  {_pick(v.VIDEO_TITLES, "vt")} AS title,
  'UC' || substr(b64url(rint(i, 'chn', 400), 'ch'), 1, 22) AS channel_id,
  {_pick(["ChrisFix", "EricTheCarGuy", "South Main Auto", "Mécanique Fácil"], "cn")}
    AS channel_name,
  (demo_now() - to_days(rint(i, 'up', 365)::INTEGER))::DATE AS upload_date,
  (120 + rint(i, 'dur', 3600))::INTEGER AS duration_seconds,
  rint(i, 'views', 5000000) AS view_count, rint(i, 'likes', 100000) AS like_count,
  CASE WHEN rnd(i, 'tr') < 0.3 THEN NULL
       ELSE 'Hey guys, today we''re fixing a ' || {_pick(["misfire", "leak", "no-start"], "trk")}
            || E'.\\nFirst, disconnect the battery — safety first!' END AS transcript,
  list_transform(range(1 + rint(i, 'ntag', 4)), lambda k:
    ['diy', 'obd2', 'repair', 'car', 'mechanic', 'how-to'][1 + (hash(i, k, 'tag') % 6)::BIGINT])
    AS tags,
  {_pick(["en", "en", "en", "es", "de", "fr"], "lang")} AS language,
  ago(i, 'ytscr', 86400) AS scraped_at
FROM range({n["youtube_repair_videos"]}) r(i) ORDER BY upload_date""",
        "audit_logs": f"""
CREATE TABLE {d}.audit_logs AS
WITH base AS (SELECT i, ago(i, 'audit', 7 * 86400) AS created_at FROM range({n["audit_logs"]}) r(i))
SELECT uuid4(i, 'event') AS event_id,
  {_pick_sql(_actors(n), "actor")} AS actor,
  {_pick(["CREATE", "UPDATE", "DELETE", "LOGIN", "EXPORT", "READ", "PERMISSION_CHANGE"], "act")}
    AS action,
  {_pick_sql(_resources(n), "res")} AS resource,
  '{{"reason": "' || {_pick(v.AUDIT_REASONS, "why")}
    || '"}}' AS details,
  ip(i, 'aip') AS ip_address, created_at,
  {_pick(["audit-service", "api-gateway", "airflow-export-dag"], "acb")} AS created_by
FROM base ORDER BY created_at""",
        "api_access_log": f"""
CREATE TABLE {d}.api_access_log AS
WITH base AS (
  SELECT i, string_split({_pick(v.ENDPOINTS, "ep")}, ' ') AS ep,
         ago(i, 'req', 2 * 86400) AS requested_at
  FROM range({n["api_access_log"]}) r(i)
)
SELECT uuid4(i, 'request') AS request_id, 'key_' || substr(hexid(rint(i, 'key', 200), 'k'), 1, 12)
    AS api_key_id,
  ep[2] AS endpoint, ep[1] AS method,
  {_pick([200, 200, 200, 200, 200, 200, 201, 204, 400, 401, 404, 429, 500, 503], "sc")}::INTEGER
    AS status_code,
  ip(i, 'apiip') AS ip_address,
  {_pick(v.USER_AGENTS, "ua")} AS user_agent,
  round(5 + rnd(i, 'lat') * rnd(i, 'lat2') * 2000, 2) AS latency_ms,
  rint(i, 'bytes', 250000) AS response_bytes, requested_at
FROM base ORDER BY requested_at""",
    }


def create_demo_warehouse(
    path: Path,
    rows: int = 10_000,
    *,
    seed: int = 42,
    now: datetime | None = None,
) -> dict[str, int]:
    """Create (or replace) the demo schema ``diagnosticpro_prod`` in the DuckDB file ``path``.

    ``rows`` is the size of ``sensor_telemetry``; the other event tables are
    proportionally smaller and the reference tables fixed (see :func:`table_sizes`).
    The same ``seed`` and ``now`` (default :data:`DEMO_NOW`) give the same content.
    Returns table -> row count.
    """
    sizes = table_sizes(rows)
    when = now or DEMO_NOW
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(path))
    try:
        con.execute("SET enable_progress_bar = false")  # a library never draws on stderr
        con.execute("BEGIN")
        con.execute(f'DROP SCHEMA IF EXISTS "{DEMO_DATASET}" CASCADE')
        con.execute(f'CREATE SCHEMA "{DEMO_DATASET}"')
        for macro in _macros(seed, when):
            con.execute(macro)
        _create_reference_tables(con, when)
        for sql in _statements(sizes).values():
            con.execute(sql)
        con.execute("COMMIT")
        counts = {
            t: int(con.sql(f'SELECT count(*) FROM "{DEMO_DATASET}".{t}').fetchall()[0][0])
            for t in TABLES
        }
    except BaseException:
        con.close()
        raise
    con.close()
    return counts


def _create_reference_tables(con: duckdb.DuckDBPyConnection, now: datetime) -> None:
    d = f'"{DEMO_DATASET}"'
    stamp = now.astimezone(UTC).replace(tzinfo=None)
    con.execute(
        f"CREATE TABLE {d}.equipment_manufacturers (manufacturer_id BIGINT, name VARCHAR, "
        "country VARCHAR, wmi_code VARCHAR, founded_year INTEGER, updated_at TIMESTAMP)"
    )
    con.executemany(
        f"INSERT INTO {d}.equipment_manufacturers VALUES (?, ?, ?, ?, ?, ?)",
        [(*m, stamp) for m in v.MANUFACTURERS],
    )
    con.execute(
        f"CREATE TABLE {d}.dtc_code_definitions (code VARCHAR, description VARCHAR, "
        "severity VARCHAR, system VARCHAR, updated_at TIMESTAMP)"
    )
    con.executemany(
        f"INSERT INTO {d}.dtc_code_definitions VALUES (?, ?, ?, ?, ?)",
        [(c, *v, stamp) for c, v in DTC_CODES.items()],
    )
    con.execute(
        f'CREATE TABLE {d}.configuration_settings ("key" VARCHAR, "value" VARCHAR, '
        "value_type VARCHAR, description VARCHAR, updated_at TIMESTAMP, updated_by VARCHAR)"
    )
    con.executemany(
        f"INSERT INTO {d}.configuration_settings VALUES (?, ?, ?, ?, ?, ?)",
        [(*s, stamp, "ops@diagnosticpro.com") for s in v.SETTINGS],
    )
