"""The cost arithmetic (``dpexport.ops.cost``) with exact figures, the price table it
ships, ``pricing:`` read from a config, and the Prometheus gauge that carries it."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from dpexport.config import load_config_text
from dpexport.config.models.pricing import Pricing
from dpexport.flow.context import ExportResult
from dpexport.ops import cost
from dpexport.ops.prices import AS_OF, PRICES, SOURCES
from tests.unit.config.config_helpers import by_path, issues_of

GIB, TIB = 1024**3, 1024**4
BASE = "buckets: {exports: gs://b}\nexports:\n  - {source: ds.t}\n"


def test_a_tib_billed_by_bigquery_is_its_on_demand_price_and_duckdb_is_free() -> None:
    big = cost.estimate(cost.Usage(engine="bigquery", bytes_billed=TIB, jobs=3, store="gs"))
    assert big["warehouse"] == {"engine": "bigquery", "bytes": TIB, "jobs": 3, "usd": 6.25}
    assert big["total"] == 6.25
    duck = cost.estimate(cost.Usage(engine="duckdb", bytes_billed=TIB, store="gs"))
    assert (duck["warehouse"]["usd"], duck["total"]) == (0.0, 0.0)


def test_storage_is_priced_per_class_per_month() -> None:
    usage = cost.Usage(store="gs", stored={"STANDARD": 10 * GIB, "ARCHIVE": 1000 * GIB})
    out = cost.estimate(usage)
    assert out["storage"] == {
        "by_class": {
            "ARCHIVE": {"bytes": 1000 * GIB, "usd_per_month": 1.2},
            "STANDARD": {"bytes": 10 * GIB, "usd_per_month": 0.2},
        },
        "usd_per_month": 1.4,
    }
    assert out["total"] == 1.4
    # Azure's default tier is Hot
    assert cost.default_class("az") == "HOT"
    hot = cost.estimate(cost.Usage(store="az", stored={"HOT": 100 * GIB}))
    assert hot["storage"]["usd_per_month"] == 1.84


def test_requests_are_priced_per_thousand_and_a_local_folder_is_free() -> None:
    out = cost.estimate(cost.Usage(store="s3", writes=2000, reads=5000))
    assert out["operations"] == {"class_a": 2000, "class_b": 5000, "usd": 0.012}
    local = cost.estimate(cost.Usage(store=cost.store_of("/data/exports"), writes=2000))
    assert (local["store"], local["total"]) == ("file", 0.0)


def test_an_export_counts_each_file_sidecar_manifest_and_marker_written() -> None:
    usage = cost.export_usage(
        engine="duckdb",
        billed=(0, 0),
        destination="gs://b/prod/ds/t/",
        stored_bytes=3 * GIB,
        files=7,
        folders=2,
        reads=2,
    )
    assert (usage.writes, usage.reads, usage.stored) == (18, 2, {"STANDARD": 3 * GIB})
    out = cost.estimate(usage)
    # 3 GiB x 0.020 + 18 x 0.005/1000 + 2 x 0.0004/1000
    assert out["total"] == 0.060091
    assert out["operations"]["usd"] == 0.000091


def test_cross_cloud_replication_pays_egress_from_the_source_cloud() -> None:
    out = cost.replication_cost("gs://b/prod/t/", "s3://dr/prod/t/", 10 * GIB, 40)
    # egress 10 GiB x 0.12; 40 PUTs on S3 x 0.005/1000, 40 GETs on GCS x 0.0004/1000;
    # a month of S3 Standard 10 GiB x 0.023
    assert out["egress"] == {"bytes": 10 * GIB, "usd": 1.2}
    assert out["operations"] == {"class_a": 40, "class_b": 40, "usd": 0.000216}
    assert out["storage"]["usd_per_month"] == 0.23
    assert out["total"] == 1.430216
    same = cost.replication_cost("gs://b/prod/t/", "gs://other/prod/t/", 10 * GIB, 40)
    assert same["egress"] == {"bytes": 0, "usd": 0.0}


def test_an_override_in_the_config_changes_its_line_by_the_exact_amount() -> None:
    usage = cost.Usage(
        engine="bigquery",
        bytes_billed=3 * TIB,
        store="gs",
        stored={"STANDARD": 10 * GIB},
        writes=1000,
        egress={"gs.az": 2 * GIB},
    )
    before = cost.estimate(usage)
    overrides = {
        "warehouse: {bigquery: {per_tib: 5}}": ("warehouse", "usd", "-3.75"),  # 3 x (5 - 6.25)
        "storage: {gs: {STANDARD: 0.026}}": ("storage", "usd_per_month", "0.06"),  # 10 x 0.006
        "operations: {gs: {class_a: 0.05}}": ("operations", "usd", "0.045"),  # 1000 x 0.045/1000
        "egress: {gs: {az: 0.08}}": ("egress", "usd", "-0.08"),  # 2 x (0.08 - 0.12)
    }
    for line, (part, figure, delta) in overrides.items():
        config = load_config_text(BASE + "pricing:\n  " + line + "\n", "t.yaml")
        after = cost.estimate(usage, cost.price_table(config.pricing))
        assert _d(after[part][figure]) - _d(before[part][figure]) == Decimal(delta), line
        assert _d(after["total"]) - _d(before["total"]) == Decimal(delta), line


def _d(value: float) -> Decimal:
    return Decimal(str(value))


def test_totals_of_breakdowns_add_exactly() -> None:
    usage = cost.Usage(engine="bigquery", bytes_billed=TIB, store="gs", stored={"STANDARD": GIB})
    prices = cost.price_table({"storage.gs.STANDARD": Decimal("1")})
    assert cost.total_usd([cost.estimate(usage), cost.estimate(usage, prices)]) == 13.52


def test_the_price_table_is_dated_and_names_its_sources() -> None:
    assert datetime.strptime(AS_OF, "%Y-%m-%d")
    assert set(SOURCES) == {"gs", "bigquery", "s3", "az"}
    assert all(url.startswith("https://") for url in SOURCES.values())
    assert all(value >= 0 for value in PRICES.values())
    # every line the shipped table has can be overridden by the config block's shape
    sections = {key.split(".")[0] for key in PRICES}
    assert sections == set(Pricing.model_fields)


def test_pricing_overrides_a_line_from_the_config() -> None:
    config = load_config_text(
        BASE + "pricing:\n  storage: {gs: {standard: $0.026}}\n  egress: {gs: {s3: 0.11 USD}}\n",
        "t.yaml",
    )
    assert config.pricing == {
        "storage.gs.STANDARD": Decimal("0.026"),
        "egress.gs.s3": Decimal("0.11"),
    }
    table = cost.price_table(config.pricing)
    assert table["storage.gs.STANDARD"] == Decimal("0.026")
    assert table["storage.gs.NEARLINE"] == Decimal("0.01")  # the rest as shipped


def test_a_price_line_that_does_not_exist_is_refused_with_its_path() -> None:
    issues = by_path(
        issues_of(
            BASE
            + "pricing:\n  storage:\n    gs: {STANDRD: 0.02}\n  operations: {gs: {x: 1}}\n"
            + "  egress: {gcs: {s3: 1}}\n"
        )
    )
    issue = issues["pricing.storage.gs.STANDRD"]
    assert issue.message == "unknown storage price of gs"
    assert (issue.suggestion, issue.line) == ("STANDARD", 6)
    assert issue.expected == "one of STANDARD, NEARLINE, COLDLINE, ARCHIVE"
    assert issues["pricing.operations.gs.x"].message == "unknown operations price of gs"
    assert issues["pricing.egress.gcs.s3"].suggestion == "gs.s3"


@pytest.mark.parametrize("value", ["-0.02", "'-$1'", "cheap"])
def test_a_negative_or_non_money_price_is_refused_with_its_path(value: str) -> None:
    issues = by_path(issues_of(BASE + f"pricing:\n  storage: {{gs: {{STANDARD: {value}}}}}\n"))
    assert "pricing.storage.gs.STANDARD" in issues, issues


def test_the_gauge_holds_the_last_successful_exports_cost() -> None:
    from dpexport.ops.metrics import SchedulerMetrics
    from dpexport.ops.scheduler import Tick

    metrics = SchedulerMetrics()
    spent = cost.estimate(cost.Usage(store="gs", writes=4000))
    results = [
        ExportResult("users", "e1", "SUCCESS", 5, 1, cost_usd=spent),
        ExportResult("audit_logs", "e2", "FAILURE", error="boom", cost_usd=spent),
    ]
    metrics.observe(Tick(datetime(2025, 9, 16, tzinfo=UTC), "schedule", results, 1.0, 0, [], []))
    value = metrics.registry.get_sample_value
    assert value("dpexport_export_cost_usd", {"table": "users"}) == 0.02
    assert value("dpexport_export_cost_usd", {"table": "audit_logs"}) is None
