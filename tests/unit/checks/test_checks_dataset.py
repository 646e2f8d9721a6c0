"""Checks of the export as a whole, consent, and what the written files hold."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from dpexport.checks.dataset import _leak_values, _Leaks
from dpexport.config.spec import GdprCompliance
from dpexport.transforms.pipeline import Checks
from tests.unit.checks.check_harness import DATASET, ExportFn

T = f"{DATASET}.t"


def test_unique_post_ids(export: ExportFn) -> None:
    sql = f"CREATE TABLE {T} (id INTEGER, post_id VARCHAR);"
    good = export(sql + f"INSERT INTO {T} VALUES (1, 'a'), (2, 'b'), (3, NULL), (4, NULL);",
                  "t", ["unique_post_ids"])  # fmt: skip
    assert good.result("unique_post_ids").status == "passed"
    bad = export(sql + f"INSERT INTO {T} VALUES (1, 'a'), (2, 'a'), (3, 'a'), (4, 'b');",
                 "t", ["unique_post_ids"])  # fmt: skip
    result = bad.result("unique_post_ids")
    assert (result.status, result.rows_checked, result.rows_failed) == ("failed", 4, 2)
    warned = export(sql + f"INSERT INTO {T} VALUES (1, 'a'), (2, 'a');", "t",
                    [{"unique_post_ids": {"severity": "warn"}}])  # fmt: skip
    assert warned.result("unique_post_ids").status == "warned"


@pytest.mark.parametrize(
    ("values", "params", "status"),
    [
        ("(1, 'x'), (2, NULL)", {}, "passed"),  # exactly 50%
        ("(1, 'x'), (2, NULL), (3, NULL)", {}, "failed"),
        ("(1, 'x'), (2, NULL), (3, NULL)", {"min_ratio": "30%"}, "passed"),
        ("(1, 'x'), (2, 'y'), (3, NULL)", {"min_ratio": 0.9}, "failed"),
    ],
)
def test_transcript_availability(
    export: ExportFn, values: str, params: dict[str, object], status: str
) -> None:
    sql = f"CREATE TABLE {T} (id INTEGER, transcript VARCHAR); INSERT INTO {T} VALUES {values};"
    out = export(sql, "t", [{"transcript_availability": params} if params else
                            "transcript_availability"])  # fmt: skip
    result = out.result("transcript_availability")
    assert result.status == status, result.detail
    assert result.rows_failed == (values.count("NULL") if status == "failed" else 0)


@pytest.mark.parametrize("amount_type", ["DECIMAL(18, 2)", "DOUBLE", "BIGINT"])
def test_transaction_balance(export: ExportFn, amount_type: str) -> None:
    sql = (
        f"CREATE TABLE {T} (id INTEGER, amount {amount_type});"
        f"INSERT INTO {T} VALUES (1, 10), (2, 20), (3, NULL), (4, 5);"
    )
    ok = export(sql, "t", ["transaction_balance_check"])
    result = ok.result("transaction_balance_check")
    assert result.status == "passed", result.detail
    assert result.rows_checked == 4 and "sum(amount) 35" in result.detail

    def drop_first(batch: pa.RecordBatch) -> pa.RecordBatch:
        return batch.slice(1) if batch.num_rows and batch.column("id")[0].as_py() == 1 else batch

    lost = export(sql, "t", ["transaction_balance_check"], corrupt=drop_first)
    # the export's own row count fails it first; the check says the same
    assert lost.export.status == "FAILURE"
    assert "row count mismatch: the slice has 4 rows but 3 were written" in str(lost.export.error)
    result = lost.result("transaction_balance_check")
    assert result.status == "failed" and result.rows_failed == 1
    assert "3 rows written, 4 in the source slice" in result.detail
    assert "sum(amount) written 25" in result.detail


def test_transaction_balance_notices_changed_amounts(export: ExportFn) -> None:
    sql = f"CREATE TABLE {T} (id INTEGER, amount DECIMAL(18, 2));"
    sql += f"INSERT INTO {T} VALUES (1, 10.01), (2, 20.02);"

    def bump(batch: pa.RecordBatch) -> pa.RecordBatch:
        amount = pc.add(batch.column("amount"), pa.scalar(Decimal("0.01"), pa.decimal128(18, 2)))
        i = batch.schema.get_field_index("amount")
        return batch.set_column(i, "amount", pc.cast(amount, pa.decimal128(18, 2)))

    result = export(sql, "t", ["transaction_balance_check"], corrupt=bump).result(
        "transaction_balance_check"
    )
    assert result.status == "failed" and result.rows_failed == 0
    assert "sum(amount) written 30.05, source 30.03" in result.detail


def test_currency_codes_table_is_iso_4217() -> None:
    from dpexport.checks import ISO_4217

    assert {"USD", "EUR", "GBP", "JPY", "CHF", "CNY", "INR", "BRL", "XAF", "ZWG"} <= ISO_4217
    assert not {"usd", "HRK", "XXX", "XTS", "ABC"} & ISO_4217
    assert all(len(c) == 3 and c.isupper() for c in ISO_4217)


def test_null_percentage_threshold(export: ExportFn) -> None:
    rows = ", ".join(f"({i}, {'NULL' if i <= 2 else i}, 'x')" for i in range(1, 21))
    sql = f"CREATE TABLE {T} (id INTEGER, a INTEGER, b VARCHAR); INSERT INTO {T} VALUES {rows};"
    out = export(sql, "t", ["null_percentage_threshold"])  # a: 10% null > 5%
    result = out.result("null_percentage_threshold")
    assert result.status == "failed" and result.rows_failed == 2
    assert "a 10.0%" in result.detail and "b " not in result.detail
    assert (
        export(sql, "t", [{"null_percentage_threshold": {"max": "10%"}}])
        .result("null_percentage_threshold")
        .status
        == "passed"
    )
    assert (
        export(sql, "t", [{"null_percentage_threshold": {"columns": ["b"]}}])
        .result("null_percentage_threshold")
        .status
        == "passed"
    )
    missing = export(sql, "t", [{"null_percentage_threshold": {"columns": ["nope"]}}])
    assert "'nope' does not exist" in missing.result("null_percentage_threshold").detail


def _features(values: list[float]) -> str:
    rows = ", ".join(f"({i}, {v}, 'v1')" for i, v in enumerate(values))
    return (
        f"CREATE TABLE {T} (entity_id INTEGER, score DOUBLE, feature_version VARCHAR);"
        f"INSERT INTO {T} VALUES {rows};"
    )


def test_feature_value_distributions(export: ExportFn) -> None:
    base = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0]  # mean 4, population std 2
    first = export(_features(base), "t", ["feature_value_distributions"])
    result = first.result("feature_value_distributions")
    assert result.status == "passed" and "baseline" in result.detail
    assert first.stats is not None  # stored for the next export
    stats = first.stats["feature_value_distributions"]
    assert stats["columns"] == {"score": {"count": 7, "mean": 4.0, "std": 2.0}}  # no entity_id

    near = export(_features([v + 5.9 for v in base]), "t", ["feature_value_distributions"],
                  previous_stats=first.stats)  # fmt: skip
    assert near.result("feature_value_distributions").status == "passed"
    far = export(_features([v + 6.5 for v in base]), "t", ["feature_value_distributions"],
                 previous_stats=first.stats)  # fmt: skip
    result = far.result("feature_value_distributions")
    assert result.status == "failed" and "score mean 10.5 vs 4 (3.25 std)" in result.detail
    loose = export(_features([v + 6.5 for v in base]), "t",
                   [{"feature_value_distributions": {"max_shift": 4}}],
                   previous_stats=first.stats)  # fmt: skip
    assert loose.result("feature_value_distributions").status == "passed"


def test_feature_stats_merge_across_batches(export: ExportFn) -> None:
    values = [float(v * v % 17) for v in range(50)]  # the fake engine yields 3-row batches
    out = export(_features(values), "t", ["feature_value_distributions"])
    assert out.stats is not None
    got = out.stats["feature_value_distributions"]["columns"]["score"]
    mean = sum(values) / len(values)
    std = (sum((v - mean) ** 2 for v in values) / len(values)) ** 0.5
    assert got["count"] == 50
    assert got["mean"] == pytest.approx(mean) and got["std"] == pytest.approx(std)


USERS = (
    f"CREATE TABLE {T} (id INTEGER, email VARCHAR, phone VARCHAR, ip_address VARCHAR,"
    " password_hash VARCHAR, consent_given BOOLEAN);"
    f"INSERT INTO {T} VALUES"
    " (1, 'a@x.com', '555-123-4567', '10.1.2.3', 'h1', true),"
    " (2, 'b@x.com', '555-987-6543', '10.9.9.0', 'h2', false),"
    " (3, 'c@x.com', NULL, '2001:db8::1', 'h3', NULL),"
    " (4, 'd@x.com', '1234', 'garbage', 'h4', true);"
)
GDPR = GdprCompliance(
    anonymization=(
        {"email": "hash_sha256"},
        {"phone": "mask_except_last_4"},
        {"ip_address": "truncate_last_octet"},
    ),
    excluded_fields=("password_hash",),
)


def test_consent_drops_rows_without_consent(export: ExportFn) -> None:
    out = export(USERS, "t", ["consent_flag_check"], gdpr=GDPR)
    result = out.result("consent_flag_check")
    assert (result.status, result.rows_checked, result.rows_dropped) == ("passed", 4, 2)
    assert out.ids() == [1, 4]
    assert out.run.row_filter() == 'coalesce(("consent_given" = TRUE), FALSE)'


def test_consent_column_from_the_gdpr_block(export: ExportFn) -> None:
    sql = USERS.replace("consent_given", "opted_in")
    out = export(sql, "t", ["consent_flag_check"], gdpr=replace(GDPR, consent_column="opted_in"))
    assert out.result("consent_flag_check").rows_dropped == 2 and out.ids() == [1, 4]


def test_consent_column_missing_exports_nothing(export: ExportFn) -> None:
    sql = f"CREATE TABLE {T} (id INTEGER); INSERT INTO {T} VALUES (1);"
    out = export(sql, "t", [{"consent_flag_check": {"severity": "warn"}}])
    result = out.result("consent_flag_check")
    assert result.status == "warned" and "'consent_given' does not exist" in result.detail
    assert out.written.num_rows == 0


def test_quarantine_never_copies_rows_without_consent(export: ExportFn) -> None:
    checks = ["consent_flag_check", {"email_format_check": {"on_fail": "quarantine"}}]
    out = export(USERS, "t", checks, gdpr=GDPR)
    assert out.quarantined == [] and out.ids() == [1, 4]
    bad_emails = (
        f"INSERT INTO {T} VALUES (5, 'not-an-email', NULL, '10.0.0.5', 'h5', true),"
        " (6, 'nope', NULL, NULL, 'h6', false);"
    )
    out = export(USERS + bad_emails, "t", checks, gdpr=GDPR)
    assert out.ids() == [1, 4]
    assert out.quarantined is not None
    (row,) = out.quarantined  # 6 has no consent: dropped, never quarantined
    assert row["id"] == 5
    # the DLQ copy is anonymized like the export: hashed, never the excluded column
    assert "password_hash" not in row and len(row["email"]) == 64
    assert row["ip_address"] == "10.0.0.0"


def test_email_format_is_checked_before_anonymization(export: ExportFn) -> None:
    out = export(USERS, "t", ["email_format_check"], gdpr=GDPR)
    assert out.result("email_format_check").status == "passed"
    assert all(len(v) == 64 for v in out.written.column("email").to_pylist())


def test_data_minimization_verify(export: ExportFn) -> None:
    out = export(USERS, "t", ["data_minimization_verify"], gdpr=GDPR)
    result = out.result("data_minimization_verify")
    # 10.9.9.0 is unchanged by truncation: not a leak
    assert result.status == "passed", result.detail
    assert result.rows_checked == 4


def test_data_minimization_catches_raw_values_and_excluded_columns(export: ExportFn) -> None:
    def leak(batch: pa.RecordBatch) -> pa.RecordBatch:
        i = batch.schema.get_field_index("email")
        raw = pa.array(["a@x.com"] * batch.num_rows, pa.string())
        batch = batch.set_column(i, "email", raw)
        return batch.append_column("password_hash", pa.array(["h"] * batch.num_rows, pa.string()))

    out = export(USERS, "t", ["data_minimization_verify"], gdpr=GDPR, corrupt=leak)
    result = out.result("data_minimization_verify")
    assert result.status == "failed"
    assert "excluded column(s) written: password_hash" in result.detail
    assert "4 written rows hold a raw email value" in result.detail
    assert "a@x.com" not in result.detail


def test_leaks_are_counted_across_lookups() -> None:
    """The written chunks are looked up in groups (64Ki rows here): hits in every group,
    in the remainder, and in columns of other string types are all counted."""
    leaks = _Leaks(pa.array(["a@x.com", "b@x.com"]))
    chunk = pa.array(["a@x.com", "c@x.com", None, "b@x.com"] * 10_000)  # 20,000 hits
    leaks.add(chunk)
    assert leaks.hits == 0  # 40,000 rows held, under the 64Ki that makes a lookup
    leaks.add(chunk)
    assert leaks.hits == 40_000  # 80,000 rows: looked up together, then let go
    leaks.add(chunk)
    leaks.add(chunk.cast(pa.large_string()))
    leaks.add(pa.array(["b@x.com", "z"]).dictionary_encode())
    assert leaks.count() == 4 * 20_000 + 1
    assert leaks.count() == 80_001  # nothing counted twice
    assert _Leaks(pa.array([], pa.string())).count() == 0


def test_leak_values_are_the_distinct_values_the_rule_changes() -> None:
    raw = ["10.9.9.0", "10.9.9.7", "10.9.9.7", None, "not an ip", "10.9.9.0"]
    # 10.9.9.0 is its own truncation; "not an ip" becomes NULL, so it would leak
    assert _leak_values(raw, "truncate_last_octet").to_pylist() == ["10.9.9.7", "not an ip"]
    assert _leak_values(["x", "x", "y"], "hash_sha256").to_pylist() == ["x", "y"]


def test_data_minimization_fails_when_not_read_back(
    export: ExportFn, monkeypatch: pytest.MonkeyPatch
) -> None:
    def skip(self: Checks, written: object) -> None:
        pass

    monkeypatch.setattr(Checks, "after_write", skip)  # an export that forgot to read back
    out = export(USERS, "t", ["data_minimization_verify"], gdpr=GDPR)
    assert "not read back" in out.result("data_minimization_verify").detail
    assert out.export.status == "FAILURE"


def test_check_on_excluded_column_fails_clearly(export: ExportFn) -> None:
    out = export(USERS, "t", [{"null_percentage_threshold": {"columns": ["password_hash"]}}],
                 gdpr=GDPR)  # fmt: skip
    result = out.result("null_percentage_threshold")
    assert result.status == "failed" and "'password_hash' is excluded" in result.detail


def test_results_are_stable_and_json(export: ExportFn) -> None:
    out = export(USERS, "t", ["consent_flag_check", "data_minimization_verify"], gdpr=GDPR)
    first = [r.to_json() for r in out.run.results()]
    assert first == [r.to_json() for r in out.run.results()]
    assert set(first[0]) >= {
        "name", "status", "rows_checked", "rows_failed", "rows_dropped", "rows_quarantined",
        "detail",
    }  # fmt: skip
