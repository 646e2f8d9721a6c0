"""Parsing ``validation:`` lists: names, parameters, severity, on_fail; and the run's
plumbing (one aggregate query, the quarantine request, config errors)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pyarrow as pa
import pytest

from dpexport.checks import CHECKS, CheckContext, CheckRun, validate_check_items
from dpexport.engines.base import NativeWriter, ScanRequest
from dpexport.errors import ConfigError
from tests.unit.checks.check_harness import DATASET, table_spec

CONTRACT_CHECKS = {
    "unique_post_ids", "subreddit_verification", "content_length_check", "video_id_format",
    "transcript_availability", "metadata_completeness", "timestamp_ordering",
    "sensor_value_ranges", "equipment_id_validation", "transaction_balance_check",
    "currency_validation", "audit_trail_completeness", "feature_value_distributions",
    "null_percentage_threshold", "feature_version_tracking", "email_format_check",
    "data_minimization_verify", "consent_flag_check",
}  # fmt: skip


def test_every_contract_check_is_registered() -> None:
    assert set(CHECKS) == CONTRACT_CHECKS


def test_spec_blocks_validate_cleanly() -> None:
    items: list[object] = list(sorted(CONTRACT_CHECKS))
    assert validate_check_items(items, "exports[0].validation") == []


def test_unknown_check_suggests_the_nearest_name() -> None:
    (issue,) = validate_check_items(["unique_post_id"], "exports[0].validation")
    assert issue.path == "exports[0].validation[0]"
    assert issue.suggestion == "unique_post_ids"
    assert "did you mean 'unique_post_ids'?" in issue.render()


@pytest.mark.parametrize(
    ("item", "path", "fragment"),
    [
        ({"content_length_check": {"mx": 5}}, "v[0].content_length_check.mx", "max"),
        ({"content_length_check": {"max": -1}}, "v[0].content_length_check.max", "integer"),
        ({"currency_validation": {"severity": "fatal"}}, "v[0].currency_validation.severity",
         "error or warn"),
        ({"currency_validation": {"on_fail": "drop"}}, "v[0].currency_validation.on_fail",
         "fail or quarantine"),
        ({"unique_post_ids": {"on_fail": "quarantine"}}, "v[0].unique_post_ids.on_fail",
         "deduplication"),
        ({"consent_flag_check": {"on_fail": "quarantine"}}, "v[0].consent_flag_check.on_fail",
         "personal data"),
        ({"sensor_value_ranges": {"ranges": {"rpm": [10, 1]}}},
         "v[0].sensor_value_ranges.ranges", "min <= max"),
        ({"equipment_id_validation": {"reference": "registry"}},
         "v[0].equipment_id_validation.reference", "dataset.table.column"),
        ({"timestamp_ordering": {"max_future": "soon"}}, "v[0].timestamp_ordering.max_future",
         "minutes"),
        ({"null_percentage_threshold": {"max": 5}}, "v[0].null_percentage_threshold.max", "5%"),
        ({"transcript_availability": "half"}, "v[0].transcript_availability", "mapping"),
        ({"a": 1, "b": 2}, "v[0]", "{name: {param: value}}"),
        (42, "v[0]", "check name"),
    ],
)  # fmt: skip
def test_bad_items_are_named_with_their_path(item: object, path: str, fragment: str) -> None:
    issues = validate_check_items([item], "v")
    assert [i.path for i in issues] == [path]
    assert fragment in issues[0].render()


def test_every_problem_is_reported_in_one_pass() -> None:
    items: list[object] = ["nope", {"content_length_check": {"min": "a", "max": "b"}}, "ok_check"]
    assert len(validate_check_items(items, "v")) == 4


def test_params_accept_null_for_defaults() -> None:
    assert validate_check_items([{"timestamp_ordering": None}], "v") == []


class RecordingEngine:
    """An engine that records aggregate calls and answers from canned values."""

    name = "recording"
    stable_reads = True
    reads_by_folder = False
    exports_per_core = 1

    def __init__(self, schema: pa.Schema) -> None:
        self._schema = schema
        self.calls: list[dict[str, str]] = []

    def native_writer(self) -> NativeWriter | None:
        return None

    def size_hint(self, dataset: str, table: str) -> int | None:
        return None

    def write_export_logs(self, records: list[dict[str, Any]]) -> None:
        pass

    def table_exists(self, dataset: str, table: str) -> bool:
        return True

    def schema(self, dataset: str, table: str) -> pa.Schema:
        return self._schema

    def count(self, request: ScanRequest) -> int:
        return 0

    def aggregate(self, request: ScanRequest, expressions: dict[str, str]) -> dict[str, Any]:
        self.calls.append(expressions)
        return dict.fromkeys(expressions, 0)

    def distinct(
        self, request: ScanRequest, columns: tuple[str, ...], limit: int
    ) -> list[tuple[Any, ...]]:
        return []

    def change_marker(self, dataset: str, table: str) -> str:
        raise NotImplementedError

    def scan(self, request: ScanRequest) -> pa.RecordBatchReader:
        raise NotImplementedError

    def close(self) -> None:
        pass


def _run(validation: list[object], schema: pa.Schema) -> tuple[CheckRun, RecordingEngine]:
    engine = RecordingEngine(schema)
    request = ScanRequest(DATASET, "t", filter="region = 'eu'", extra={"shard": "id % 4"})
    ctx = CheckContext(table_spec("t", validation), engine, request, datetime.now(UTC))
    return CheckRun(ctx), engine


SCHEMA = pa.schema(
    [("id", pa.int64()), ("currency", pa.string()), ("created_at", pa.timestamp("us")),
     ("consent_given", pa.bool_()), ("post_id", pa.string())]
)  # fmt: skip


def test_all_sql_checks_share_one_aggregate_query() -> None:
    run, engine = _run(
        ["currency_validation", "unique_post_ids", "timestamp_ordering", "consent_flag_check"],
        SCHEMA,
    )
    run.before_scan()
    assert len(engine.calls) == 1
    assert all(name.isidentifier() for name in engine.calls[0])
    assert [r.status for r in run.results()] == ["passed"] * 4


def test_quarantine_request_keeps_the_scan_and_adds_the_reason() -> None:
    run, _ = _run(
        ["consent_flag_check", {"currency_validation": {"on_fail": "quarantine"}}], SCHEMA
    )
    q = run.quarantine_request()
    assert q is not None
    assert q.filter is not None and q.filter.startswith("(region = 'eu') AND ")
    assert '"consent_given" = TRUE' in q.filter and '"currency" IN (' in q.filter
    assert set(q.extra) == {"shard", "_dpexport_reason"}
    assert "currency_validation: " in q.extra["_dpexport_reason"]
    prepared = run.prepare(run.ctx.request)
    assert prepared.filter is not None and "NOT" not in prepared.filter
    assert prepared.filter.startswith("(region = 'eu') AND ")


def test_no_filter_and_no_quarantine_without_such_checks() -> None:
    run, engine = _run(["transaction_balance_check"], SCHEMA)  # amount missing
    assert run.row_filter() is None and run.quarantine_request() is None
    run.before_scan()
    assert engine.calls == []  # the only check cannot run: no query
    (failure,) = run.failures()
    assert "column 'amount' does not exist" in failure.detail


def test_prepare_orders_by_the_timestamp_column() -> None:
    run, _ = _run(["timestamp_ordering"], SCHEMA)
    assert run.prepare(run.ctx.request).order_by == ("created_at",)


def test_invalid_validation_raises_config_error() -> None:
    with pytest.raises(ConfigError) as info:
        _run(["unique_post_id"], SCHEMA)
    assert info.value.issues[0].path == f"{DATASET}.t.validation[0]"
