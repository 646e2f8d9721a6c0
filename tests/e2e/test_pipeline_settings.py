"""Three settings that used to be parsed and ignored take effect (issue 17):
``optimization_strategies.compression.high_volume_tables`` is the codec of spec 3.2 tables
(``low_latency_tables`` of ``continuous`` ones),
``compression_matrix.*.compression_ratio`` are the verification bands, and spec 5.2's
``validation_checks`` lists are the steps that run (``check`` refuses lists without what
exactly-once needs, and unknown names)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import pyarrow.parquet as pq

import dpexport
from dpexport.engines import open_engine
from dpexport.errors import TransientError
from dpexport.flow.context import RunOptions
from dpexport.flow.runner import run_exports
from dpexport.storage.base import ObjectInfo, Store
from tests.e2e.cli import Result
from tests.e2e.cli import dpexport as cli

AT = "2025-09-16T14:30:22Z"
BASE = """\
project: p
environment: test
warehouse: {engine: duckdb, path: warehouse.duckdb}
buckets: {exports: gs://b}
"""


def _warehouse(tmp_path: Path, rows: int = 50, newest: str = "2025-09-16 14:00:00") -> Path:
    con = duckdb.connect(str(tmp_path / "warehouse.duckdb"))
    con.execute("CREATE SCHEMA ds")
    con.execute(
        f"CREATE TABLE ds.sessions AS SELECT i AS id, repeat('abc', 20) AS note, "
        f"TIMESTAMP '{newest}' - INTERVAL (i % 30) MINUTE AS session_start "
        f"FROM range(0, {rows}) t(i)"
    )
    con.close()
    return tmp_path


def _write(base: Path, text: str) -> Path:
    config = base / "dpexport.yaml"
    config.write_text(BASE + text, encoding="utf-8")
    return config


def _run(config: Path, *args: str) -> Result:
    return cli("-c", config, "--local-root", config.parent / "out", "run", "--at", AT, *args)


def _files(base: Path, folder: str = "sessions") -> list[Path]:
    root = base / "out" / "gs" / "b" / folder
    return sorted(
        p for p in root.rglob("*") if p.name.endswith((".parquet.zst", ".parquet.snappy"))
    )


def _codec(path: Path) -> str:
    return str(pq.ParquetFile(path).metadata.row_group(0).column(0).compression)


SESSIONS = """\
optimization_strategies: {compression: {high_volume_tables: ZSTD, low_latency_tables: SNAPPY}}
high_volume:
  sessions: {primary_partition: "date(session_start)"}
exports:
  - source: ds.sessions
    destination: gs://b/sessions/
"""


def test_a_high_volume_table_is_written_zstd_by_default(tmp_path: Path) -> None:
    config = _write(_warehouse(tmp_path), SESSIONS)
    result = _run(config)
    assert result.code == 0, result.err
    [written] = _files(tmp_path)
    assert written.name.endswith(".parquet.zst")
    assert _codec(written) == "ZSTD"
    checked = cli("-c", config, "check")
    assert checked.code == 0, checked.err
    assert "low_latency_tables" not in checked.err


def test_a_continuous_table_takes_the_low_latency_codec_first(tmp_path: Path) -> None:
    """A table whose schedule is ``continuous`` is low-latency: ``low_latency_tables``
    (SNAPPY) wins over ``high_volume_tables`` (ZSTD); its format must take it."""
    config = _write(_warehouse(tmp_path), SESSIONS + "    schedule: continuous\n")
    assert _run(config).code == 0
    [written] = _files(tmp_path)
    assert written.name.endswith(".parquet.snappy")
    assert _codec(written) == "SNAPPY"
    text = config.read_text(encoding="utf-8")
    jsonl = text + "    format: JSONL\n"
    config.write_text(jsonl, encoding="utf-8")
    checked = cli("-c", config, "check")
    assert checked.code == 2
    assert "optimization_strategies.compression.low_latency_tables" in checked.err
    assert "JSONL cannot be written SNAPPY, and a continuous table is JSONL" in checked.err


def test_the_items_own_compression_wins(tmp_path: Path) -> None:
    config = _write(_warehouse(tmp_path), SESSIONS + "    compression: SNAPPY\n")
    assert _run(config).code == 0
    [written] = _files(tmp_path)
    assert written.name.endswith(".parquet.snappy")
    assert _codec(written) == "SNAPPY"


def test_a_table_outside_3_2_keeps_the_format_codec(tmp_path: Path) -> None:
    text = SESSIONS.replace("high_volume:\n  sessions:", "high_volume:\n  other:")
    con = duckdb.connect(str(_warehouse(tmp_path) / "warehouse.duckdb"))
    con.execute("CREATE TABLE ds.other AS SELECT * FROM ds.sessions")
    con.close()
    text += "  - source: ds.other\n    destination: gs://b/other/\n"
    assert _run(_write(tmp_path, text)).code == 0
    [written] = _files(tmp_path)
    assert _codec(written) == "SNAPPY"
    [other] = _files(tmp_path, "other")
    assert _codec(other) == "ZSTD"


# A streamed export (a data check makes it stream) of ~12 MB that compresses by ~99%.
BANDED = """\
compression_matrix:
  SNAPPY: {{compression_ratio: "{band}"}}
exports:
  - source: ds.sessions
    destination: gs://b/sessions/
    compression: SNAPPY
    validation: [null_percentage_threshold]
"""


def test_a_file_outside_the_configs_band_is_warned(tmp_path: Path) -> None:
    base = _warehouse(tmp_path, rows=200_000)
    result = _run(_write(base, BANDED.format(band="10-20%")))
    assert result.code == 0, result.err
    assert "compression ratio" in result.err and "expected 10-20%" in result.err


def test_a_file_inside_the_configs_band_is_not_warned(tmp_path: Path) -> None:
    base = _warehouse(tmp_path, rows=200_000)
    result = _run(_write(base, BANDED.format(band="90-100%")))
    assert result.code == 0, result.err
    assert "compression ratio" not in result.err


FAILING = """\
validation_checks:
  failure_handling: {handling}
exports:
  - source: ds.sessions
    destination: gs://b/sessions/
    mode: APPEND
    change_column: session_start
    validation: [{{content_length_check: {{column: note, max: 10}}}}]
"""


def test_no_create_failure_marker_no_failure_marker(tmp_path: Path) -> None:
    config = _write(_warehouse(tmp_path), FAILING.format(handling="[]"))
    result = _run(config, "--json")
    assert result.code == 1, result.err
    [record] = json.loads(result.out)
    assert record["status"] == "FAILURE"
    assert not list((tmp_path / "out").rglob("FAILURE"))
    # the default list writes one
    _write(tmp_path, FAILING.format(handling="[create_failure_marker]"))
    assert _run(config).code == 1
    assert list((tmp_path / "out").rglob("FAILURE"))


class Unavailable:
    """Every write into the destination fails as a 503 would; the rest goes through."""

    def __init__(self, inner: Store) -> None:
        self.inner = inner
        self.url = inner.url
        self.attempts = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def _fail(self, key: str) -> None:
        if key.startswith("sessions/") and not key.endswith("FAILURE"):
            self.attempts += 1
            raise TransientError("503 Service Unavailable", code="SERVICE_UNAVAILABLE")

    def put_bytes(self, key: str, data: bytes) -> ObjectInfo:
        self._fail(key)
        return self.inner.put_bytes(key, data)

    def put_file(self, key: str, source: Path) -> ObjectInfo:
        self._fail(key)
        return self.inner.put_file(key, source)


def _unavailable_run(base: Path, handling: str) -> tuple[list[Unavailable], dict[str, Any]]:
    text = FAILING.format(handling=handling).rsplit("    validation:", 1)[0]
    text = "retry_configuration: {max_attempts: 3, initial_delay_seconds: 0}\n" + text
    config = dpexport.load_config(_write(base, text))
    stores: list[Unavailable] = []

    def wrap(store: Store) -> Store:
        stores.append(Unavailable(store))
        return stores[-1]

    engine = open_engine(config.warehouse, base_dir=base)
    try:
        at = datetime(2025, 9, 16, 14, 30, 22, tzinfo=UTC)
        options = RunOptions(at=at, local_root=base / "out", wrap_store=wrap)
        [result] = run_exports(config, engine, options)
    finally:
        engine.close()
    assert result.status == "FAILURE"
    [log] = (base / "out" / "gs" / "b" / "export-logs").rglob("*.json")
    return stores, json.loads(log.read_text())


def test_without_initiate_retry_one_attempt(tmp_path: Path) -> None:
    stores, record = _unavailable_run(_warehouse(tmp_path), "[create_failure_marker]")
    assert [s.attempts for s in stores] == [1]
    assert record["retry_count"] == 0


def test_with_initiate_retry_the_policys_attempts(tmp_path: Path) -> None:
    stores, record = _unavailable_run(_warehouse(tmp_path), "[initiate_retry]")
    assert [s.attempts for s in stores] == [3]
    assert record["retry_count"] == 2


STALE = """\
validation_checks:
  pre_export: {steps}
exports:
  - source: ds.sessions
    destination: gs://b/sessions/
    mode: APPEND
    change_column: session_start
    freshness: 1 hour
"""


def test_without_check_partition_freshness_a_stale_source_exports(tmp_path: Path) -> None:
    base = _warehouse(tmp_path, newest="2025-09-14 14:00:00")  # two days old
    gated = _run(_write(base, STALE.format(steps="[verify_source_table_exists, "
                                                  "check_partition_freshness]")))  # fmt: skip
    assert gated.code == 1 and "the source is stale" in gated.err
    result = _run(_write(base, STALE.format(steps="[verify_source_table_exists]")))
    assert result.code == 0, result.err
    assert _files(tmp_path)


def test_check_refuses_missing_required_steps_and_unknown_names(tmp_path: Path) -> None:
    text = """\
validation_checks:
  pre_export: [verify_source_table_exists, check_partition_freshnes]
  post_export: [verify_row_counts, validate_file_formats, create_success_marker]
  failure_handling: [create_failure_marker, trigger_alert]
exports:
  - source: ds.sessions
    destination: gs://b/sessions/
"""
    config = _write(_warehouse(tmp_path), text)
    result = cli("-c", config, "check")
    assert result.code == 2, result.out + result.err
    assert "validation_checks.post_export" in result.err
    assert "calculate_checksums" in result.err and "exactly-once" in result.err
    assert "validation_checks.pre_export[1]" in result.err
    assert "did you mean 'check_partition_freshness'" in result.err
    ran = _run(config)
    assert ran.code == 2 and not (tmp_path / "out").exists()
    fixed = text.replace("validate_file_formats", "calculate_checksums, validate_file_formats")
    fixed = fixed.replace("freshnes]", "freshness]")
    result = cli("-c", _write(tmp_path, fixed), "check")
    assert result.code == 0, result.err
    assert "trigger_alert" not in result.err  # it takes effect (issue 20): no note
