"""Row checks, as a table: each passes on good rows, fails on bad ones (counting
them), warns under severity warn, and quarantines the bad rows when asked."""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa
import pytest

from dpexport.checks import REASON_COLUMN
from dpexport.config.spec import Partitioning, SubPartition
from tests.unit.checks.check_harness import DATASET, ExportFn


@dataclass(frozen=True)
class Case:
    check: str
    columns: str  # after "id INTEGER, "
    good: tuple[str, ...]  # SQL value lists after the id
    bad: tuple[str, ...]
    params: tuple[tuple[str, object], ...] = ()
    extra_sql: str = ""

    def sql(self, with_bad: bool) -> str:
        rows = [f"({i}, {v})" for i, v in enumerate(self.good, start=1)]
        if with_bad:
            rows += [f"({i}, {v})" for i, v in enumerate(self.bad, start=100)]
        return (
            f"CREATE TABLE {DATASET}.t (id INTEGER, {self.columns});"
            f"INSERT INTO {DATASET}.t VALUES {', '.join(rows)};{self.extra_sql}"
        )

    def item(self, **more: object) -> object:
        params = {**dict(self.params), **more}
        return {self.check: params} if params else self.check


REGISTRY = (
    f"CREATE TABLE {DATASET}.equipment_registry (equipment_id INTEGER);"
    f"INSERT INTO {DATASET}.equipment_registry VALUES (1), (2), (NULL);"
)

CASES = [
    Case(
        "subreddit_verification",
        "subreddit VARCHAR",
        ("'MechanicAdvice'", "'cars_2'"),
        ("NULL", "'a'", "'bad-name'", "'" + "x" * 22 + "'"),
    ),
    Case(
        "content_length_check",
        "content VARCHAR",
        ("'x'", "'héllo wörld'", "repeat('y', 40000)"),
        ("''", "NULL", "repeat('z', 40001)"),
    ),
    Case(
        "video_id_format",
        "video_id VARCHAR",
        ("'dQw4w9WgXcQ'", "'abc_DEF-123'"),
        ("'short'", "NULL", "'dQw4w9WgXcQQ'", "'dQw4w9WgXc!'"),
    ),
    Case(
        "metadata_completeness",
        "title VARCHAR, channel_id VARCHAR, upload_date DATE",
        ("'t', 'c', DATE '2025-01-01'",),
        ("NULL, 'c', DATE '2025-01-01'", "'t', 'c', NULL", "'t', NULL, DATE '2025-01-01'"),
    ),
    Case(
        "audit_trail_completeness",
        "created_by VARCHAR, created_at TIMESTAMP",
        ("'alice', TIMESTAMP '2025-01-01 00:00:00'",),
        ("NULL, TIMESTAMP '2025-01-01 00:00:00'", "'bob', NULL"),
    ),
    Case(
        "currency_validation",
        "currency VARCHAR",
        ("'USD'", "'EUR'", "'JPY'", "'CHF'"),
        ("'usd'", "'ABC'", "NULL", "'XXX'"),
    ),
    Case(
        "email_format_check",
        "email VARCHAR",
        ("'a@b.co'", "'first.last+tag@mail.example.org'"),
        ("'nope'", "'a@b'", "'@x.com'", "NULL", "'a b@c.de'", "'a@@b.de'"),
    ),
    Case(
        "feature_version_tracking",
        "feature_version VARCHAR",
        ("'v1'", "'v2'"),
        ("NULL",),
    ),
    Case(
        "equipment_id_validation",
        "equipment_id INTEGER",
        ("1", "2", "2"),
        ("NULL", "999"),
        extra_sql=REGISTRY,
    ),
    Case(
        "sensor_value_ranges",
        "sensor_type VARCHAR, value DOUBLE",
        ("'rpm', 800", "'engine_temp', 90.5", "'unknown_kind', 1e9", "NULL, 5"),
        ("'rpm', -1", "'engine_temp', 500", "'battery_voltage', NULL", "'maf', 700"),
    ),
    Case(
        "sensor_value_ranges",
        "sensor_type VARCHAR, value DOUBLE",
        ("'pressure', 10", "'rpm', -5", "'pressure', 1000000"),
        ("'pressure', 9.5", "'temp', 101"),
        params=(("ranges", {"pressure": [10, None], "temp": [-10, 100]}),),
    ),
    Case(
        "timestamp_ordering",
        "created_at TIMESTAMP",
        ("TIMESTAMP '2000-01-01 00:00:00'", "TIMESTAMP '2025-06-01 12:04:59'"),
        (
            "TIMESTAMP '1999-12-31 23:59:59'",
            "TIMESTAMP '2025-06-01 12:05:01'",
            "NULL",
        ),
    ),
    Case(
        "timestamp_ordering",
        "created_at TIMESTAMPTZ",
        ("TIMESTAMPTZ '2025-06-01 14:00:00+02:00'",),
        ("TIMESTAMPTZ '2025-06-01 14:10:00+02:00'",),
    ),
    Case(
        "timestamp_ordering",
        "created_at TIMESTAMP",
        ("TIMESTAMP '2025-06-01 12:59:00'",),
        ("TIMESTAMP '2025-06-01 13:01:00'",),
        params=(("max_future", "1 hour"),),
    ),
    Case(
        "subreddit_verification",
        "subreddit VARCHAR",
        ("'MechanicAdvice'", "'mechanicadvice'", "'Cars'"),
        ("'AskReddit'",),
        params=(("allowed", ["MechanicAdvice", "cars"]),),
    ),
]
IDS = [f"{c.check}-{i}" for i, c in enumerate(CASES)]


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_passes_on_good_rows(export: ExportFn, case: Case) -> None:
    out = export(case.sql(with_bad=False), "t", [case.item()])
    result = out.result(case.check)
    assert result.status == "passed", result.detail
    assert (result.rows_checked, result.rows_failed) == (len(case.good), 0)
    assert out.ids() == list(range(1, len(case.good) + 1))


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_fails_on_bad_rows(export: ExportFn, case: Case) -> None:
    out = export(case.sql(with_bad=True), "t", [case.item()])
    result = out.result(case.check)
    assert result.status == "failed"
    assert result.rows_failed == len(case.bad), result.detail
    assert result.rows_checked == len(case.good) + len(case.bad)
    assert f"{len(case.bad)} of {result.rows_checked}" in result.detail
    assert out.run.failures() == [result]
    assert out.quarantined is None


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_severity_warn_warns(export: ExportFn, case: Case) -> None:
    out = export(case.sql(with_bad=True), "t", [case.item(severity="warn")])
    result = out.result(case.check)
    assert result.status == "warned"
    assert result.rows_failed == len(case.bad)
    assert out.run.failures() == []


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_quarantine_keeps_bad_rows_out(export: ExportFn, case: Case) -> None:
    out = export(case.sql(with_bad=True), "t", [case.item(on_fail="quarantine")])
    result = out.result(case.check)
    assert result.status == "passed", result.detail
    assert (result.rows_quarantined, result.rows_failed) == (len(case.bad), 0)
    assert "quarantined" in result.detail
    assert out.ids() == list(range(1, len(case.good) + 1))
    assert out.quarantined is not None  # the rows the export wrote to the DLQ
    assert sorted(r["id"] for r in out.quarantined) == list(range(100, 100 + len(case.bad)))
    reasons = {r[REASON_COLUMN] for r in out.quarantined}
    assert len(reasons) == 1 and reasons.pop().startswith(case.check + ": ")


def test_quarantine_reasons_name_every_failed_check(export: ExportFn) -> None:
    sql = (
        f"CREATE TABLE {DATASET}.t (id INTEGER, currency VARCHAR, created_by VARCHAR);"
        f"INSERT INTO {DATASET}.t VALUES (1, 'USD', 'a'), (2, 'usd', 'a'), (3, 'USD', NULL),"
        " (4, 'ABC', NULL);"
    )
    out = export(
        sql,
        "t",
        [
            {"currency_validation": {"on_fail": "quarantine"}},
            {"audit_trail_completeness": {"columns": ["created_by"], "on_fail": "quarantine"}},
        ],
    )
    assert out.ids() == [1]
    assert out.quarantined is not None
    got = {r["id"]: r[REASON_COLUMN] for r in out.quarantined}
    assert got[2].startswith("currency_validation: ")
    assert got[3].startswith("audit_trail_completeness: ")
    assert got[4].startswith("currency_validation: ") and "; audit_trail_completeness: " in got[4]
    assert out.result("currency_validation").rows_quarantined == 2
    assert out.result("audit_trail_completeness").rows_quarantined == 2


def test_fail_checks_count_only_rows_that_are_exported(export: ExportFn) -> None:
    sql = (
        f"CREATE TABLE {DATASET}.t (id INTEGER, currency VARCHAR, created_by VARCHAR);"
        f"INSERT INTO {DATASET}.t VALUES (1, 'USD', 'a'), (2, 'usd', NULL);"
    )
    out = export(
        sql, "t", [{"currency_validation": {"on_fail": "quarantine"}}, "audit_trail_completeness"]
    )
    audit = out.result("audit_trail_completeness")
    # created_at is missing: the check fails with a clear detail, not a crash
    assert audit.status == "failed" and "'created_at' does not exist" in audit.detail
    out = export(
        sql,
        "t",
        [
            {"currency_validation": {"on_fail": "quarantine"}},
            {"audit_trail_completeness": {"columns": ["created_by"]}},
        ],
    )
    audit = out.result("audit_trail_completeness")
    assert audit.status == "passed" and audit.rows_checked == 1


def test_rows_written_out_of_cursor_order_fail(export: ExportFn) -> None:
    sql = (
        f"CREATE TABLE {DATASET}.t (id INTEGER, created_at TIMESTAMP);"
        f"INSERT INTO {DATASET}.t VALUES (1, TIMESTAMP '2025-01-01'), (2, TIMESTAMP '2025-01-03'),"
        " (3, TIMESTAMP '2025-01-02');"
    )
    ok = export(sql, "t", ["timestamp_ordering"])  # prepare() orders the scan by created_at
    assert ok.result("timestamp_ordering").status == "passed"
    assert ok.written.column("id").to_pylist() == [1, 3, 2]

    def reverse(batch: pa.RecordBatch) -> pa.RecordBatch:
        return batch.take(pa.array(range(batch.num_rows - 1, -1, -1), pa.int64()))

    bad = export(sql, "t", ["timestamp_ordering"], corrupt=reverse)
    result = bad.result("timestamp_ordering")
    assert result.status == "failed"
    assert result.rows_failed == 2 and "out of created_at order" in result.detail


def test_ordering_is_judged_per_file_key(export: ExportFn) -> None:
    # Two shards, each in cursor order, one after the other: no violation.
    sql = (
        f"CREATE TABLE {DATASET}.t (id INTEGER, shard INTEGER, created_at TIMESTAMP);"
        f"INSERT INTO {DATASET}.t VALUES (1, 0, TIMESTAMP '2025-01-01'),"
        " (2, 0, TIMESTAMP '2025-01-05'), (3, 1, TIMESTAMP '2025-01-02'),"
        " (4, 1, TIMESTAMP '2025-01-03'), (5, 1, TIMESTAMP '2025-01-04');"
    )
    by_shard = Partitioning(sub_partitions=(SubPartition("shard", "shard"),))
    out = export(sql, "t", ["timestamp_ordering"], partitioning=by_shard)
    assert out.written.column("id").to_pylist() == [1, 2, 3, 4, 5]
    assert out.result("timestamp_ordering").status == "passed"


def test_equipment_reference_missing_is_a_clear_failure(export: ExportFn) -> None:
    sql = f"CREATE TABLE {DATASET}.t (id INTEGER, equipment_id INTEGER);"
    sql += f"INSERT INTO {DATASET}.t VALUES (1, 1);"
    out = export(sql, "t", ["equipment_id_validation"])
    result = out.result("equipment_id_validation")
    assert result.status == "failed"
    assert "reference table diagnosticpro_prod.equipment_registry does not exist" in result.detail
    other = export(
        sql + REGISTRY,
        "t",
        [{"equipment_id_validation": {"reference": f"{DATASET}.equipment_registry.nope"}}],
    )
    assert "reference column 'nope'" in other.result("equipment_id_validation").detail


def test_feature_versions_go_into_the_manifest_entry(export: ExportFn) -> None:
    sql = (
        f"CREATE TABLE {DATASET}.t (id INTEGER, feature_version VARCHAR);"
        f"INSERT INTO {DATASET}.t VALUES (1, 'v2'), (2, 'v1'), (3, 'v2');"
    )
    first = export(sql, "t", ["feature_version_tracking"])
    entry = first.result("feature_version_tracking").to_json()
    assert entry["versions"] == ["v1", "v2"] and entry["status"] == "passed"
    assert first.stats == {"feature_version_tracking": {"versions": ["v1", "v2"]}}
    later = export(
        sql.replace("'v1'", "'v3'"),
        "t",
        ["feature_version_tracking"],
        previous_stats=first.stats,
    )
    assert "new since the previous export: v3" in later.result("feature_version_tracking").detail


@pytest.mark.parametrize("rows", [40, 1000])  # a short folder part (Python) and a long one
@pytest.mark.parametrize("dtype", [pa.timestamp("us", "UTC"), pa.date32(), pa.timestamp("ns")])
def test_order_within_a_folder_counts_each_step_back(rows: int, dtype: pa.DataType) -> None:
    from dpexport.checks.rows import TimestampOrdering

    check = TimestampOrdering({"column": "created_at"}, "error", "fail")
    check.current_group = "shard=1"
    values: list[int | None] = list(range(rows))
    values[5], values[6] = values[6], values[5]  # one step back
    values[9] = None  # a NULL is neither before nor after its neighbours
    values[20] = 19  # equal neighbours are in order
    values[rows - 3] = 2  # one step back, then forward again
    raw = pa.array(values, pa.int32() if dtype == pa.date32() else pa.int64())
    column = raw.view(dtype)
    batch = pa.RecordBatch.from_arrays([column], names=["created_at"])
    check.observe(batch)
    assert check.out_of_order == 2 and check.observed == rows
    # the folder's next part starts before this one's last row: one more
    check.observe(batch.slice(rows - 2))
    assert check.out_of_order == 3
    check.current_group = "shard=2"  # another folder starts afresh
    check.observe(batch.slice(0, 5))
    assert check.out_of_order == 3
