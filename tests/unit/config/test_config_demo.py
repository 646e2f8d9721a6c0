"""The demo config: every spec block in its place, and what each block sets."""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from decimal import Decimal
from importlib import resources
from pathlib import Path

import pytest
import yaml

from dpexport.config import ResolvedConfig, SubPartition, load_config
from dpexport.config.models import DpexportConfig
from dpexport.publish.tokens import config_hash
from tests.unit.config.config_spec_blocks import BLOCKS

MB = 1024 * 1024
KMS = (
    "projects/diagnostic-pro-start-up/locations/us-central1/keyRings/exports/"
    "cryptoKeys/sensitive-data"
)
TABLES = {
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
}


def demo_path() -> Path:
    return Path(str(resources.files("dpexport") / "demo" / "diagnosticpro.yaml"))


@pytest.fixture(scope="module")
def demo() -> ResolvedConfig:
    return load_config(demo_path())


@pytest.fixture(scope="module")
def demo_data() -> dict[str, object]:
    data = yaml.safe_load(demo_path().read_text())
    assert isinstance(data, dict)
    return data


#: spec words ``check`` refuses, which the demo leaves out (and says why): the in-transit
#: certificate ``*.diagnosticpro.com`` names what DiagnosticPro's endpoints serve, which
#: a client cannot enforce (tests/e2e/test_transit.py)
REFUSED = {"encryption": [("in_transit", "certificate")]}


@pytest.mark.parametrize("block_id", list(BLOCKS))
def test_demo_carries_every_spec_block_verbatim(block_id: str, demo_data: dict) -> None:
    where, text = BLOCKS[block_id]
    block = yaml.safe_load(text)
    if where == "exports[]":
        assert block in demo_data["exports"]
    elif where.startswith("formats."):
        assert demo_data["formats"][where.split(".")[1]] == block
    else:
        body = block[where] if where in block and len(block) == 1 else block
        for outer, inner in REFUSED.get(where, ()):
            del body[outer][inner]
        # Every key of the spec's block, unchanged (the demo may add dpexport keys).
        assert {k: demo_data[where].get(k) for k in body} == body


def test_examples_link_to_the_demo() -> None:
    link = Path(__file__).parents[3] / "examples" / "diagnosticpro.yaml"
    assert link.is_symlink()
    assert link.resolve() == demo_path().resolve()


def test_fifteen_tables_in_one_dataset(demo: ResolvedConfig) -> None:
    assert {t.table for t in demo.tables} == TABLES
    assert len(demo.tables) == 15
    assert {t.dataset for t in demo.tables} == {"diagnosticpro_prod"}
    assert demo.project == "diagnostic-pro-start-up"
    assert demo.environment == "prod"
    assert demo.buckets == {
        "exports": "gs://diagnosticpro-exports",
        "cross_cloud": "s3://diagnosticpro-cross-cloud",
        "azure": "az://diagnosticpro",
        "cold_storage": "gs://diagnosticpro-cold-storage",
    }


def test_warehouse_path_is_relative_to_the_file(demo: ResolvedConfig) -> None:
    assert demo.warehouse.engine == "duckdb"
    assert demo.warehouse.path == str(demo_path().parent / "warehouse.duckdb")
    assert demo.source_path == str(demo_path())


def test_reddit_8_1_and_4_1(demo: ResolvedConfig) -> None:
    t = demo.table("reddit_diagnostic_posts")
    assert (t.mode, t.format, t.compression) == ("APPEND", "PARQUET", "SNAPPY")
    assert t.partitioning.time_expression == "created_date"
    assert t.partitioning.granularity == "daily"
    assert t.partitioning.sub_partitions == ()
    assert t.schedule == "0 */6 * * *"
    assert t.export_type == "scheduled"
    assert t.deduplication == "by post_id"
    assert t.validation == ("unique_post_ids", "subreddit_verification", "content_length_check")
    assert t.destination == (
        "gs://diagnosticpro-exports/prod/diagnosticpro_prod/reddit_diagnostic_posts/"
    )


def test_youtube_entity_is_the_source_table(demo: ResolvedConfig) -> None:
    t = demo.table("diagnosticpro_prod.youtube_repair_videos")
    assert t.table == "youtube_repair_videos"
    assert t.destination.endswith("/youtube_videos/")
    assert (t.format, t.compression, t.mode) == ("JSONL", "GZIP", "APPEND")
    assert t.partitioning.time_expression == "upload_date"
    assert t.schema_evolution.enabled is False  # Parquet's 2.1 block does not apply to JSONL


def test_sensor_telemetry_8_2_with_3_2(demo: ResolvedConfig) -> None:
    t = demo.table("sensor_telemetry")
    assert t.partitioning.time_expression == "created_at"
    assert t.partitioning.granularity == "hourly"
    assert t.partitioning.sub_partitions == (
        SubPartition("shard_id", "equipment_id % 100"),
        SubPartition("sensor_type", "sensor_type"),
    )
    assert (t.format, t.compression, t.mode) == ("PARQUET", "ZSTD", "APPEND")
    assert t.parquet.row_group_size == 256 * MB
    assert t.parquet.page_size == MB
    assert t.parquet.column_encoding == {"*": "DELTA_BINARY_PACKED"}
    assert t.schedule == "continuous"
    assert t.export_type == "continuous"


def test_diagnostic_sessions_and_feature_store_sub_folders(demo: ResolvedConfig) -> None:
    s = demo.table("diagnostic_sessions")
    assert s.partitioning.time_expression == "session_start"
    assert s.partitioning.granularity == "daily"
    assert s.partitioning.sub_partitions == (SubPartition("region", "user_region"),)
    assert s.mode == "APPEND"
    assert s.archive_after == timedelta(days=90)
    f = demo.table("feature_store")
    assert f.partitioning.time_expression == "feature_timestamp"
    assert f.partitioning.granularity == "hourly"
    assert f.partitioning.sub_partitions == (SubPartition("category", "feature_category"),)
    assert f.mode == "INCREMENTAL"
    assert f.destination == "gs://diagnosticpro-exports/prod/diagnosticpro_ml/features/"
    assert f.schema_evolution.enabled and f.schema_evolution.backward_compatible
    assert f.schema_evolution.version_column == "_schema_version"


def test_billing_8_3_and_4_3(demo: ResolvedConfig) -> None:
    t = demo.table("billing_transactions")
    assert t.partitioning.time_expression == "transaction_date"
    assert t.partitioning.granularity == "monthly"
    assert (t.encryption.mode, t.encryption.kms_key) == ("CMEK", KMS)
    assert t.mode == "INCREMENTAL"
    assert t.merge_key == ("transaction_id",)
    assert t.change_column == "transaction_timestamp"
    assert t.lookback_window == timedelta(hours=48)
    assert t.compression == "GZIP"
    assert t.compliance == ("PCI_DSS_compliant", "SOX_compliant")


def test_users_exports_item_overrides_incremental(demo: ResolvedConfig) -> None:
    t = demo.table("users")
    assert t.mode == "FULL_REFRESH"
    assert (t.format, t.compression) == ("JSONL", "GZIP")
    assert t.encryption.mode == "CMEK"
    assert t.partitioning.time_expression is None
    assert t.gdpr is not None
    assert t.gdpr.anonymization == (
        {"email": "hash_sha256"},
        {"phone": "mask_except_last_4"},
        {"ip_address": "truncate_last_octet"},
    )
    assert t.gdpr.excluded_fields == ("password_hash", "security_questions")
    assert t.gdpr.hash_key_env == "DPEXPORT_HASH_KEY"


def test_the_gdpr_block_is_part_of_the_token_hash(demo: ResolvedConfig) -> None:
    # the typed block hashes by its values: the same block, the same token; another
    # anonymization rule, another token (so a changed transform exports again)
    t = demo.table("users")
    assert t.gdpr is not None and isinstance(t.gdpr.anonymization, tuple)
    same = dataclasses.replace(t.gdpr, anonymization=tuple(t.gdpr.anonymization))
    assert config_hash(t) == config_hash(dataclasses.replace(t, gdpr=same))
    fewer = dataclasses.replace(t.gdpr, anonymization=t.gdpr.anonymization[:-1])
    assert config_hash(t) != config_hash(dataclasses.replace(t, gdpr=fewer))


def test_incremental_section_tables(demo: ResolvedConfig) -> None:
    inv = demo.table("parts_inventory")
    assert inv.mode == "INCREMENTAL"
    assert inv.merge_key == ("part_id", "location_id")
    assert inv.change_column == "inventory_updated_at"
    assert inv.lookback_window == timedelta(hours=4)
    reg = demo.table("equipment_registry")
    assert (reg.merge_key, reg.lookback_window) == (("identification_number",), timedelta(days=7))
    assert (
        reg.destination == "gs://diagnosticpro-exports/prod/diagnosticpro_prod/equipment_registry/"
    )
    assert (reg.format, reg.compression) == ("PARQUET", "SNAPPY")


def test_full_refresh_tables(demo: ResolvedConfig) -> None:
    schedules = {
        "equipment_manufacturers": "0 0 * * 0",
        "dtc_code_definitions": "0 0 1 * *",
        "parts_catalog": "0 0 * * *",
        "configuration_settings": "on_change",  # polled by the scheduler
    }
    for name, cron in schedules.items():
        t = demo.table(name)
        assert t.mode == "FULL_REFRESH"
        assert t.schedule == cron
        assert t.partitioning.time_expression is None
    assert demo.table("configuration_settings").frequency == "on_change"
    assert demo.table("configuration_settings").export_type == "scheduled"
    # spec 10.1's window holds the schedules of frequency words, all four here
    assert {demo.table(name).off_peak for name in schedules} == {"2 AM - 6 AM PST"}


def test_append_only_section_tables(demo: ResolvedConfig) -> None:
    audit = demo.table("audit_logs")
    assert audit.mode == "APPEND"
    assert audit.deduplication == "by event_id on consumer side"
    assert demo.table("api_access_log").retention == timedelta(days=2190)


def test_format_defaults_2_1_to_2_3(demo: ResolvedConfig) -> None:
    t = demo.table("parts_catalog")
    assert t.parquet.version == "2.6"
    assert t.parquet.row_group_size == 128 * MB
    assert t.parquet.dictionary is True
    assert t.schema_evolution.enabled and t.schema_evolution.version_column == "_schema_version"
    assert t.csv.escape_character == "\\"
    assert t.csv.null_marker == ""
    assert t.jsonl.timestamp_format == "RFC3339"


def test_operational_blocks(demo: ResolvedConfig) -> None:
    retry = demo.retry_configuration
    assert (retry.max_attempts, retry.initial_delay_seconds, retry.max_delay_seconds) == (
        5,
        30,
        3600,
    )
    assert retry.multiplier == 2 and retry.backoff_strategy == "exponential"
    assert "QUOTA_EXCEEDED" in retry.retry_conditions and "NOT_FOUND" in retry.non_retryable
    dlq = demo.dlq_configuration
    assert dlq.retention == timedelta(days=90)
    assert dlq.processing.auto_retry_after == timedelta(hours=6)
    assert dlq.structure["failed_exports/"][0] == "export_request.json"
    idem = demo.idempotency_design
    assert idem.storage.retention == timedelta(days=7)
    assert (idem.lease.renew_every, idem.lease.expires_after) == (
        timedelta(seconds=30),
        timedelta(minutes=2),
    )
    metrics = demo.metrics
    assert metrics.export_duration is not None and metrics.export_size is not None
    assert metrics.failure_rate is not None and metrics.cost_per_export is not None
    assert metrics.export_duration.threshold == timedelta(minutes=30)
    assert metrics.export_size.threshold.bytes == 10 * 1024 * MB
    assert metrics.failure_rate.threshold.fraction == pytest.approx(0.05)
    assert metrics.cost_per_export.threshold.amount == Decimal("10")
    assert metrics.alert_targets(metrics.failure_rate.alert) == ["slack", "pagerduty"]
    assert demo.lifecycle_policies.transitions() == [
        (30, "NEARLINE"),
        (90, "COLDLINE"),
        (365, "ARCHIVE"),
    ]
    assert demo.lifecycle_policies.auto_delete["test_exports"] == timedelta(days=1)
    policy = demo.bucket_policies["diagnosticpro-exports"]
    assert policy.versioning is True and policy.lifecycle_rules[2].age == 365
    assert demo.encryption.at_rest is not None
    assert demo.encryption.at_rest.key_rotation == timedelta(days=90)
    assert [(r.tables, r.target) for r in demo.replication] == [
        (
            ["diagnosticpro_prod.billing_transactions"],
            "s3://diagnosticpro-cross-cloud/disaster-recovery/",
        ),
        (["diagnosticpro_prod.feature_store"], "az://diagnosticpro/ml-training/"),
    ]


def test_documentation_blocks(demo_data: dict[str, object]) -> None:
    # Blocks no code reads (ResolvedConfig leaves them out) still validate as their models.
    names = ("compression_matrix", "optimization_strategies", "validation_checks")
    doc = DpexportConfig.model_validate(
        {k: demo_data[k] for k in (*names, "service_accounts", "filenames")}
    )
    assert doc.compression_matrix["ZSTD"].compression_ratio == "70-80%"
    assert doc.optimization_strategies.compression.high_volume_tables == "ZSTD"
    assert (doc.validation_checks.post_export or [])[-1] == "create_success_marker"
    assert len(doc.service_accounts) == 3
    assert doc.filenames.metadata_sidecar == "{filename}.metadata.json"


def test_origins_point_at_the_yaml(demo: ResolvedConfig) -> None:
    t = demo.table("sensor_telemetry")
    assert t.origins["partitioning.time"] == "high_volume.sensor_telemetry.primary_partition"
    assert demo.lines[t.origins["partitioning.time"]] > 0
    r = demo.table("reddit_diagnostic_posts")
    assert r.origins["partitioning.time"] == "exports[0].export_config.partitioning.field"
