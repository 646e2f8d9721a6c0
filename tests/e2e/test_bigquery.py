"""The BigQuery engine against bqemulator: the same rows, keys and files as DuckDB's.

The demo warehouse is generated in DuckDB, loaded into the emulator as Parquet, and
every read is compared with the DuckDB engine's answer to the same ScanRequest.
"""

from __future__ import annotations

import dataclasses
import json
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from dpexport.config.spec import (
    CsvOptions,
    JsonlOptions,
    ParquetOptions,
    Partitioning,
    SubPartition,
)
from dpexport.engines import duckdb_layout
from dpexport.engines.base import ScanRequest, Slice
from dpexport.engines.duckdb import DuckDBEngine
from dpexport.errors import NotFound
from dpexport.formats import open_writer, read_file
from tests.bq_emulator import (
    DEMO_DATASET,
    BQEmulator,
    bq,  # noqa: F401 - the fixture
    ensure_dataset,
    load_demo,
)
from tests.e2e.cli import dpexport

TABLES = [
    "sensor_telemetry",
    "reddit_diagnostic_posts",
    "diagnostic_sessions",
    "parts_inventory",
    "dtc_code_definitions",
    "equipment_manufacturers",
    "equipment_registry",  # sensor_telemetry's equipment_id_validation reads it
]


@pytest.fixture(scope="module")
def loaded(bq: BQEmulator, demo_warehouse: Path) -> dict[str, int]:  # noqa: F811
    return load_demo(bq, demo_warehouse, TABLES)


@pytest.fixture(scope="module")
def engines(bq: BQEmulator, demo_warehouse: Path, loaded: dict[str, int]) -> Any:  # noqa: F811
    big = bq.engine()
    duck = DuckDBEngine(demo_warehouse)
    yield big, duck
    big.close()
    duck.close()


def _rows(table: pa.Table, key: str) -> list[dict[str, Any]]:
    """Rows sorted by ``key``, timestamps compared as UTC instants."""
    out = []
    for row in table.to_pylist():
        for k, v in row.items():
            if isinstance(v, datetime) and v.tzinfo is None:
                row[k] = v.replace(tzinfo=UTC)
            elif isinstance(v, datetime):
                row[k] = v.astimezone(UTC)
        out.append(row)
    return sorted(out, key=lambda r: (str(r[key]), json.dumps(r, default=str)))


# -- types ------------------------------------------------------------------------


def test_every_type_round_trips(bq: BQEmulator) -> None:  # noqa: F811
    from google.cloud.bigquery import SchemaField as S
    from google.cloud.bigquery import Table

    client = bq.client()
    ensure_dataset(bq, client, "types")
    schema = [
        S("i", "INT64", mode="REQUIRED"),
        S("f", "FLOAT64"),
        S("n", "NUMERIC"),
        S("b", "BOOL"),
        S("s", "STRING"),
        S("by", "BYTES"),
        S("d", "DATE"),
        S("t", "TIME"),
        S("dt", "DATETIME"),
        S("ts", "TIMESTAMP"),
        S("j", "JSON"),
        S("g", "GEOGRAPHY"),
        S("arr", "INT64", mode="REPEATED"),
        S("rec", "RECORD", fields=[S("a", "STRING"), S("bb", "INT64", mode="REPEATED")]),
    ]
    client.create_table(Table(f"{bq.project}.types.all", schema=schema), timeout=15)
    errors = client.insert_rows_json(
        f"{bq.project}.types.all",
        [
            {
                "i": 1, "f": 1.5, "n": "1.123456789", "b": True, "s": "hé", "by": "aGk=",
                "d": "2025-09-16", "t": "12:34:56.123456", "dt": "2025-09-16T12:34:56.123456",
                "ts": "2025-09-16T12:34:56.123456Z", "j": '{"a":1}', "g": "POINT(1 2)",
                "arr": [1, 2], "rec": {"a": "x", "bb": [3]},
            },
            {"i": 2},
        ],
        timeout=15,
    )  # fmt: skip
    client.close()
    assert errors == []
    with bq.engine() as engine:
        arrow = engine.schema("types", "all")
        assert [str(f.type) for f in arrow] == [
            "int64", "double", "decimal128(38, 9)", "bool", "string", "binary", "date32[day]",
            "time64[us]", "timestamp[us]", "timestamp[us, tz=UTC]", "string", "string",
            "list<item: int64>", "struct<a: string, bb: list<item: int64>>",
        ]  # fmt: skip
        assert [f.nullable for f in arrow][:2] == [False, True]
        assert not arrow.field("arr").nullable
        plain = ScanRequest("types", "all", columns=tuple(n for n in arrow.names if n != "g"))
        assert engine.read_path(plain).kind == "query"  # JSON: text through SQL
        no_json = dataclasses.replace(plain, columns=("i", "n", "by", "dt", "ts", "arr", "rec"))
        assert engine.read_path(no_json).kind == "storage"
        via_storage = engine.scan(no_json).read_all().sort_by("i").to_pylist()
        everything = ScanRequest("types", "all", order_by=("i",))
        table = engine.scan(everything).read_all()
    assert table.schema.equals(arrow)
    first, second = table.to_pylist()
    assert first["n"] == __import__("decimal").Decimal("1.123456789")
    assert first["by"] == b"hi"
    assert first["dt"] == datetime(2025, 9, 16, 12, 34, 56, 123456)
    assert first["ts"] == datetime(2025, 9, 16, 12, 34, 56, 123456, tzinfo=UTC)
    assert first["t"].isoformat() == "12:34:56.123456"
    assert json.loads(first["j"]) == {"a": 1}
    assert first["g"].replace(" ", "") == "POINT(12)"
    assert first["arr"] == [1, 2] and first["rec"] == {"a": "x", "bb": [3]}
    assert second["arr"] == [] and second["s"] is None
    picked = ["i", "n", "by", "dt", "ts", "arr", "rec"]
    assert via_storage == [{k: r[k] for k in picked} for r in (first, second)]


# -- streamed scans ---------------------------------------------------------------


@pytest.mark.parametrize("fmt,codec", [("PARQUET", "SNAPPY"), ("JSONL", "GZIP"), ("CSV", "NONE")])
def test_streamed_scan_writes_the_same_rows_as_duckdb(
    engines: Any, tmp_path: Path, fmt: str, codec: str
) -> None:
    big, duck = engines
    request = ScanRequest(
        DEMO_DATASET, "reddit_diagnostic_posts", extra=duckdb_layout.partition_key_sql(
            Partitioning(time_expression="created_date")
        ), order_by=("__dp_k0",)
    )  # fmt: skip
    written = {}
    for name, engine in (("bq", big), ("duck", duck)):
        reader = engine.scan(request)
        path = tmp_path / f"{name}.{fmt.lower()}"
        writer = open_writer(
            path, reader.schema, fmt, codec,
            parquet=ParquetOptions(), jsonl=JsonlOptions(), csv=CsvOptions(),
        )  # fmt: skip
        for batch in reader:
            writer.write_batch(batch)
        done = writer.close()
        written[name] = (done.rows, read_file(path, fmt, codec, csv=CsvOptions()))
    assert written["bq"][0] == written["duck"][0] == 300  # DEMO_ROWS 3000 -> 300 posts
    bq_rows = _rows(written["bq"][1], "post_id")
    duck_rows = _rows(written["duck"][1], "post_id")
    assert [r["post_id"] for r in bq_rows] == [r["post_id"] for r in duck_rows]
    assert [r["__dp_k0"] for r in bq_rows] == [r["__dp_k0"] for r in duck_rows]
    assert [r["content"] for r in bq_rows] == [r["content"] for r in duck_rows]


def test_partition_keys_are_identical_to_duckdb(engines: Any) -> None:
    big, duck = engines
    part = Partitioning(
        time_expression="created_at",
        granularity="hourly",
        sub_partitions=(
            SubPartition("shard_id", "equipment_id % 100"),
            SubPartition("sensor_type", "sensor_type"),
        ),
    )
    request = ScanRequest(
        DEMO_DATASET,
        "sensor_telemetry",
        columns=("reading_id",),
        extra=duckdb_layout.partition_key_sql(part),
        order_by=("__dp_k0", "__dp_k1", "__dp_k2"),
    )
    got = {tuple(r.values()) for r in big.scan(request).read_all().to_pylist()}
    want = {tuple(r.values()) for r in duck.scan(request).read_all().to_pylist()}
    assert got == want
    assert len(got) == 3000  # one key triple per reading


def test_append_slice_and_dedupe_pushed_down(engines: Any) -> None:
    big, duck = engines
    lo = datetime(2025, 9, 15, 0, 0, tzinfo=UTC)
    hi = datetime(2025, 9, 16, 6, 0, tzinfo=UTC)
    request = ScanRequest(
        DEMO_DATASET,
        "sensor_telemetry",
        columns=("reading_id", "equipment_id", "created_at"),
        slice=Slice("created_at", lo, hi),
        dedupe_by=("equipment_id",),
    )
    naive = dataclasses.replace(
        request, slice=Slice("created_at", lo.replace(tzinfo=None), hi.replace(tzinfo=None))
    )
    got = _rows(big.scan(request).read_all(), "reading_id")
    want = _rows(duck.scan(naive).read_all(), "reading_id")
    assert got == want and got
    assert all(lo < r["created_at"] <= hi for r in got)
    assert big.count(request) == duck.count(naive) == len(want)
    plain = dataclasses.replace(request, dedupe_by=())
    assert big.read_path(plain).kind == "storage"  # row restriction only
    assert _rows(big.scan(plain).read_all(), "reading_id") == _rows(
        duck.scan(dataclasses.replace(naive, dedupe_by=())).read_all(), "reading_id"
    )


def test_incremental_newest_by_composite_key(engines: Any) -> None:
    big, duck = engines
    request = ScanRequest(
        DEMO_DATASET,
        "parts_inventory",
        slice=Slice("inventory_updated_at", None, datetime(2030, 1, 1, tzinfo=UTC)),
        newest_by=("part_id", "location_id"),
        newest_order="inventory_updated_at",
    )
    naive = dataclasses.replace(
        request, slice=Slice("inventory_updated_at", None, datetime(2030, 1, 1))
    )
    got = _rows(big.scan(request).read_all(), "part_id")
    want = _rows(duck.scan(naive).read_all(), "part_id")
    assert got == want and got
    keys = [(r["part_id"], r["location_id"]) for r in got]
    assert len(keys) == len(set(keys))
    agg = big.aggregate(request, {"hi": "max(inventory_updated_at)", "n": "count(*)"})
    ref = duck.aggregate(naive, {"hi": "max(inventory_updated_at)", "n": "count(*)"})
    assert agg["n"] == ref["n"] and agg["hi"] == ref["hi"].replace(tzinfo=UTC)


def test_missing_table_is_not_found_and_not_retried(engines: Any) -> None:
    big, _ = engines
    assert not big.table_exists(DEMO_DATASET, "no_such_table")
    start = time.monotonic()
    with pytest.raises(NotFound) as info:
        big.count(ScanRequest(DEMO_DATASET, "no_such_table"))
    assert info.value.code == "NOT_FOUND"
    assert time.monotonic() - start < 5


# -- server side -------------------------------------------------------------------


def test_export_data_writes_into_the_local_roots_staging(
    bq: BQEmulator,  # noqa: F811
    engines: Any,
) -> None:
    from dpexport.engines.bigquery_export import export_server_side

    big, duck = engines
    request = ScanRequest(
        DEMO_DATASET,
        "reddit_diagnostic_posts",
        extra=duckdb_layout.partition_key_sql(Partitioning(time_expression="created_date")),
        order_by=("__dp_k0",),
    )
    export_id = f"exp_test_{bq.project}"
    staging = f"gs://diagnosticpro-exports/_staging/{export_id}/"
    local = bq.local_root / "gs" / "diagnosticpro-exports" / "_staging" / export_id
    folders = {r["__dp_k0"] for r in duck.scan(request).read_all().to_pylist()}
    prefixes: list[str] = []

    def mkdir(prefix: str) -> None:  # the emulator writes only into existing folders
        prefixes.append(prefix)
        (local / prefix[len(staging) :]).mkdir(parents=True, exist_ok=True)

    result = export_server_side(big, request, staging, compression="ZSTD", before_export=mkdir)
    assert sorted(prefixes) == sorted(f"{staging}{f}/" for f in folders)
    assert {f.folder for f in result.folders} == folders
    assert all(f.job_id for f in result.folders)
    total = 0
    for staged in result.folders:
        files = sorted((local / staged.folder).glob("part-*.parquet"))
        assert files, staged
        for path in files:
            meta = pq.ParquetFile(path).metadata
            assert meta.row_group(0).column(0).compression == "ZSTD"
            data = pq.read_table(path)
            assert "__dp_k0" not in data.schema.names
            days = {d.strftime("%Y/%m/%d") for d in data.column("created_date").to_pylist()}
            assert days == {staged.folder}
            total += data.num_rows
    assert total == duck.count(request)


# -- the CLI -----------------------------------------------------------------------


def test_run_with_the_bigquery_engine_passes_verify(
    bq: BQEmulator,  # noqa: F811
    engines: Any,
    tmp_path: Path,
) -> None:
    from dpexport.demo import example_config_text

    text = example_config_text().replace(
        "  engine: duckdb                  # duckdb (embedded default) | bigquery\n"
        "  path: warehouse.duckdb          # relative to this file; dataset = DuckDB schema\n",
        f"  engine: bigquery\n  project: {bq.project}\n  location: US\n"
        f"  api_endpoint: {bq.rest}\n  storage_api_endpoint: {bq.grpc}\n",
    )
    assert "engine: bigquery" in text
    config = tmp_path / "dpexport.yaml"
    config.write_text(text, encoding="utf-8")
    root = tmp_path / "buckets"
    args: list[str | Path] = ["-c", config, "--local-root", root, "run", "--json"]
    for table in ("reddit_diagnostic_posts", "sensor_telemetry", "dtc_code_definitions"):
        args += ["--table", table]
    result = dpexport(*args, "--at", "2025-09-16T14:30:22Z", env={"BIGQUERY_EMULATOR_HOST": ""})
    assert result.code == 0, result.err
    exports = json.loads(result.out)
    assert {e["status"] for e in exports} == {"SUCCESS"}, exports
    assert sum(e["rows"] for e in exports) > 0
    manifests = [m for e in exports for m in e["manifests"]]
    assert manifests
    for uri in manifests:
        checked = dpexport("--local-root", root, "verify", uri)
        assert checked.code == 0, checked.err
    _, duck = engines
    upper = datetime(2025, 9, 16, 14, 30, 22)
    for e in exports:
        cursor = {"reddit_diagnostic_posts": "created_date", "sensor_telemetry": "created_at"}
        column = cursor.get(e["table"])
        the_slice = Slice(column, None, upper if column == "created_at" else upper.date())
        expected = ScanRequest(DEMO_DATASET, e["table"], slice=the_slice if column else Slice())
        assert e["rows"] == duck.count(expected), e
    # reconcile's per-folder counts, asked of BigQuery, agree with what was published
    args = ["-c", config, "--local-root", root, "reconcile", "--dry-run", "--json"]
    args += ["--table", "reddit_diagnostic_posts", "--table", "sensor_telemetry"]
    result = dpexport(*args, "--at", "2025-09-17T14:30:22Z", env={"BIGQUERY_EMULATOR_HOST": ""})
    assert result.code == 0, result.err
    reports = json.loads(result.out)
    assert [(r["folders_compared"] > 0, r["folders"], r["error"]) for r in reports] == [
        (True, [], None)
    ] * 2, reports


# -- export logs -------------------------------------------------------------------

SUCCESS_RATE = """
SELECT
  DATE(export_timestamp) as export_date,
  table_name,
  COUNT(*) as total_exports,
  SUM(CASE WHEN status = 'SUCCESS' THEN 1 ELSE 0 END) as successful,
  ROUND(100.0 * SUM(CASE WHEN status = 'SUCCESS' THEN 1 ELSE 0 END) / COUNT(*), 2) as success_rate
FROM export_logs
WHERE export_timestamp >= CURRENT_DATE - 7
GROUP BY 1, 2
ORDER BY 1 DESC, 2;
"""


def test_spec_success_rate_query_runs_on_bigquery_export_logs(bq: BQEmulator) -> None:  # noqa: F811
    from dpexport.ops.bq_logs import query_logs, write_logs

    now = datetime.now(UTC).replace(microsecond=0)
    old = datetime(2020, 1, 1, tzinfo=UTC)

    def record(i: int, table: str, status: str, at: datetime) -> dict[str, Any]:
        return {
            "export_id": f"exp_{i}", "table_name": table, "dataset": DEMO_DATASET,
            "status": status, "export_timestamp": at.isoformat().replace("+00:00", "Z"),
            "logical_time": at.isoformat().replace("+00:00", "Z"), "mode": "APPEND",
            "format": "PARQUET", "compression": "SNAPPY", "destination": "gs://b/x/",
            "rows": 10, "files": 1, "manifests": ["gs://b/x/m.json"], "duration_ms": 5,
            "trigger": "manual", "error": None if status == "SUCCESS" else "boom",
        }  # fmt: skip

    records = [
        record(1, "users", "SUCCESS", now),
        record(2, "users", "SUCCESS", now),
        record(3, "users", "FAILURE", now),
        record(4, "audit_logs", "SUCCESS", now),
        record(5, "audit_logs", "FAILURE", old),  # older than 7 days: not counted
    ]
    with bq.engine() as engine:
        assert write_logs(engine, records, dataset="ops") == 5
        names, rows = query_logs(engine, SUCCESS_RATE, dataset="ops")
    assert names == ["export_date", "table_name", "total_exports", "successful", "success_rate"]
    assert [(r[1], r[2], r[3], float(r[4])) for r in rows] == [
        ("audit_logs", 1, 1, 100.0),
        ("users", 3, 2, 66.67),
    ]
    assert {r[0] for r in rows} == {now.date()}


SERVER_SIDE = """\
project: test
environment: prod
warehouse:
  engine: bigquery
  project: {project}
  location: US
  api_endpoint: {rest}
  storage_api_endpoint: {grpc}
buckets: {{exports: gs://{bucket}}}
exports:
  - source: diagnosticpro_prod.dtc_code_definitions
    destination: gs://{bucket}/prod/diagnosticpro_prod/dtc_code_definitions/
    format: PARQUET
    compression: SNAPPY
    mode: FULL_REFRESH
  - source: diagnosticpro_prod.equipment_manufacturers
    destination: gs://{bucket}/prod/diagnosticpro_prod/equipment_manufacturers/
    format: JSONL
    compression: GZIP
    mode: FULL_REFRESH
"""


def test_plan_and_run_take_the_server_side_path(
    bq: BQEmulator,  # noqa: F811
    engines: Any,
    tmp_path: Path,
) -> None:
    import os

    root = Path(os.environ["DPEXPORT_TEST_BQ_LOCAL_ROOT"])
    config = tmp_path / "dpexport.yaml"
    # the emulator's gs:// is one folder for the whole session: a bucket of this test's own
    # keeps an earlier run's idempotency tokens from turning this run into a skip
    bucket = f"bq-serverside-{bq.project}"
    config.write_text(
        SERVER_SIDE.format(project=bq.project, rest=bq.rest, grpc=bq.grpc, bucket=bucket)
    )
    at = ("--at", "2025-09-16T14:30:22Z")
    plan = dpexport("-c", config, "--local-root", root, "plan", *at, "--json")
    assert plan.code == 0, plan.err
    paths = {p["table"].split(".")[1]: p["path"] for p in json.loads(plan.out)}
    assert paths["dtc_code_definitions"] == "server-side (BigQuery EXPORT DATA)"
    assert paths["equipment_manufacturers"].startswith("streamed: JSONL")
    result = dpexport(
        "-c", config, "--local-root", root, "run", *at, "--json", env={"BIGQUERY_EMULATOR_HOST": ""}
    )
    assert result.code == 0, result.err
    dtc, catalog = json.loads(result.out)
    assert (dtc["status"], catalog["status"]) == ("SUCCESS", "SUCCESS"), result.out
    _, duck = engines
    assert dtc["rows"] == duck.count(ScanRequest(DEMO_DATASET, "dtc_code_definitions"))
    assert catalog["rows"] == duck.count(ScanRequest(DEMO_DATASET, "equipment_manufacturers"))
    manifest = json.loads((root / "gs" / dtc["manifests"][0].removeprefix("gs://")).read_text())
    assert manifest["metadata"]["bigquery_job_id"]
    assert manifest["statistics"]["row_count"] == dtc["rows"]
    streamed = json.loads((root / "gs" / catalog["manifests"][0].removeprefix("gs://")).read_text())
    assert streamed["metadata"]["bigquery_job_id"] is None
    checked = dpexport("--local-root", root, "verify", f"gs://{bucket}/prod/")
    assert checked.code == 0, checked.out + checked.err
    assert not list((root / "gs" / bucket / "_staging").rglob("*.parquet"))
    # with BigQuery as the warehouse, export logs land in its export_logs table too
    from dpexport.ops.bq_logs import query_logs

    engine = bq.engine()
    try:
        _, logged = query_logs(engine, "SELECT export_id, table_name, status FROM export_logs")
    finally:
        engine.close()
    found = {row[0]: tuple(row[1:]) for row in map(tuple, logged)}
    assert found[dtc["export_id"]] == ("dtc_code_definitions", "SUCCESS")
