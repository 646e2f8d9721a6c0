"""Each spec block, pasted with or without its wrapper key, parses in its place."""

from __future__ import annotations

import pytest

from dpexport.config import load_config_text
from dpexport.errors import ConfigError
from tests.unit.config.config_helpers import place, unwrap
from tests.unit.config.config_spec_blocks import BLOCKS

#: Tables without a destination of their own go to this bucket (there is no default).
BUCKETS = "buckets: {exports: gs://diagnosticpro-exports}\n"
#: Blocks that name things defined by another block (8.2's `timestamp_hour` names the
#: 3.2 expression; CMEK takes its key from 6.3).
CONTEXT = {"8.2": ["3.2"], "8.3": ["6.3"], "8.5": ["6.3"]}
WRAPPED = [
    k for k, (where, _) in BLOCKS.items() if where.startswith("formats.") or where == "exports[]"
]


#: the one spec line ``check`` refuses: 6.3's in-transit certificate names what the
#: platform's endpoints serve, which a client cannot enforce (tests/e2e/test_transit.py)
REFUSED_LINE = '    certificate: "*.diagnosticpro.com"\n'


def _config(block_id: str, text: str) -> str:
    parts = [place(BLOCKS[c][1], BLOCKS[c][0]) for c in CONTEXT.get(block_id, [])]
    text = "\n".join([BUCKETS, *parts, place(text, BLOCKS[block_id][0])])
    return text.replace(REFUSED_LINE, "")


def test_the_spec_certificate_line_is_refused() -> None:
    spec = BLOCKS["6.3"][1]
    assert REFUSED_LINE in spec
    with pytest.raises(ConfigError, match=r"in_transit\.certificate: names a server"):
        load_config_text(BUCKETS + place(spec, BLOCKS["6.3"][0]))


@pytest.mark.parametrize("block_id", list(BLOCKS))
def test_block_parses_verbatim(block_id: str) -> None:
    load_config_text(_config(block_id, BLOCKS[block_id][1]))


@pytest.mark.parametrize("block_id", WRAPPED)
def test_block_parses_without_its_wrapper(block_id: str) -> None:
    with_wrapper = load_config_text(_config(block_id, BLOCKS[block_id][1]))
    without = load_config_text(_config(block_id, unwrap(BLOCKS[block_id][1])))
    assert with_wrapper.tables == without.tables
    assert with_wrapper == without


def test_a_table_named_only_in_a_section_is_exported() -> None:
    cfg = load_config_text(BUCKETS + place(BLOCKS["4.2"][1], "full_refresh"))
    t = cfg.table("parts_catalog")
    assert t.destination == "gs://diagnosticpro-exports/prod/diagnosticpro_prod/parts_catalog/"
    assert (t.format, t.compression, t.mode) == ("PARQUET", "SNAPPY", "FULL_REFRESH")


def test_defaults_follow_environment_bucket_and_dataset() -> None:
    cfg = load_config_text(
        "environment: staging\n"
        "buckets: {exports: 's3://other/'}\n"
        "warehouse: {dataset: analytics}\n"
        "append_only: {events: {partition_by: hourly}}\n"
    )
    t = cfg.table("analytics.events")
    assert t.destination == "s3://other/staging/analytics/events/"
    assert t.partitioning.time_expression is None
    assert t.partitioning.granularity == "hourly"


def test_reconcile_window_from_a_section_entry() -> None:
    from datetime import timedelta

    cfg = load_config_text(
        BUCKETS + "append_only: {events: {change_column: ts, reconcile: 3 days}}\n"
        "incremental: {users: {change_column: ts, reconcile: 0 days}, more: {change_column: ts}}\n"
    )
    assert cfg.table("events").reconcile == timedelta(days=3)
    assert cfg.table("users").reconcile == timedelta(0)
    assert cfg.table("more").reconcile == timedelta(days=7)


def test_case_insensitive_words_are_normalised() -> None:
    cfg = load_config_text(
        BUCKETS + "exports:\n"
        "  - {source: ds.a, format: jsonl, compression: zstd, mode: overwrite}\n"
        "  - {source: ds.b, format: csv, mode: Incremental, change_column: ts}\n"
    )
    a, b = cfg.table("ds.a"), cfg.table("ds.b")
    assert (a.format, a.compression, a.mode) == ("JSONL", "ZSTD", "FULL_REFRESH")
    assert (b.format, b.compression, b.mode) == ("CSV", "GZIP", "INCREMENTAL")


def test_item_optimisation_and_per_column_encodings() -> None:
    cfg = load_config_text(
        BUCKETS + "formats: {PARQUET: {row_group_size: 64MB, encoding: PLAIN, compression: ZSTD}}\n"
        "exports:\n"
        "  - source: ds.t\n"
        "    optimization:\n"
        "      page_size: 2MB\n"
        "      column_encoding: {id: delta_binary_packed, price: BYTE_STREAM_SPLIT}\n"
    )
    t = cfg.table("t")
    assert t.compression == "ZSTD"
    assert t.parquet.row_group_size == 64 * 1024 * 1024
    assert t.parquet.page_size == 2 * 1024 * 1024
    assert t.parquet.dictionary is False
    assert t.parquet.column_encoding == {"id": "DELTA_BINARY_PACKED", "price": "BYTE_STREAM_SPLIT"}


def test_shard_names_without_a_high_volume_entry() -> None:
    cfg = load_config_text(
        BUCKETS + "exports:\n"
        "  - source: ds.t\n"
        "    partitioning: {primary: event_time, secondary: device_id_shard, tertiary: kind}\n"
    )
    p = cfg.table("t").partitioning
    assert p.time_expression == "event_time"
    assert [(s.name, s.expression) for s in p.sub_partitions] == [
        ("shard_id", "device_id % 100"),
        ("kind", "kind"),
    ]


def test_append_cursor_and_dedup_may_stand_in_the_section() -> None:
    cfg = load_config_text(
        BUCKETS + "append_only:\n"
        "  ds.events:\n"
        "    {change_column: ingested_at, lookback_window: 2 hours, deduplication: by id}\n"
        "exports:\n"
        "  - {source: ds.events, mode: APPEND, schedule: '*/5 * * * *'}\n"
    )
    t = cfg.table("events")
    assert t.change_column == "ingested_at"
    assert t.lookback_window is not None and t.lookback_window.total_seconds() == 7200
    assert t.deduplication == "by id"
    assert t.origins["change_column"] == 'append_only["ds.events"].change_column'


def test_gdpr_hash_key_env_and_kms_names_are_not_secrets() -> None:
    cfg = load_config_text(
        BUCKETS + "encryption:\n"
        "  cross_cloud: {aws_s3: {kms_master_key: 'arn:aws:kms:us-east-1:123:key/abc'}}\n"
        "  key_provider: {kind: local, credentials_env: KMS_CREDS}\n"
        "metrics:\n"
        "  channels: {slack: {url_env: SLACK_WEBHOOK}}\n"
        "exports:\n"
        "  - source: ds.users\n"
        "    encryption: CMEK\n"
        "    kms_key: projects/p/locations/l/keyRings/r/cryptoKeys/k\n"
        "    merge_key: id\n"
        "    gdpr_compliance: {anonymization: [{email: hash_sha256}], hash_key_env: MY_KEY}\n"
    )
    t = cfg.table("users")
    assert t.encryption.kms_key == "projects/p/locations/l/keyRings/r/cryptoKeys/k"
    assert t.gdpr is not None and t.gdpr.hash_key_env == "MY_KEY"


@pytest.mark.parametrize("text", ["", "# only a comment\n", "---\n", "{}\n"])
def test_an_empty_file_is_refused(text: str) -> None:
    # issue 17: it used to pass `check` as "OK (0 tables)"
    with pytest.raises(ConfigError) as info:
        load_config_text(text)
    (issue,) = info.value.issues
    assert issue.path == "" and "empty" in issue.message
    assert issue.expected is not None and "dpexport init" in issue.expected


def test_field_with_secondary_gets_sub_folders() -> None:
    # {field, secondary} used to drop the secondary silently: one folder per hour only
    cfg = load_config_text(
        BUCKETS + "exports:\n"
        "  - source: ds.t\n"
        "    partitioning: {field: ts, granularity: hourly, secondary: kind}\n"
        "  - source: ds.u\n"
    )
    p = cfg.table("t").partitioning
    assert (p.time_expression, p.granularity) == ("ts", "hourly")
    assert [(s.name, s.expression) for s in p.sub_partitions] == [("kind", "kind")]
    assert cfg.table("t").parquet.pinned is False


def test_pinned_parquet_sizes_are_known() -> None:
    cfg = load_config_text(
        BUCKETS + "formats: {PARQUET: {page_size: 1MB}}\nexports:\n  - source: ds.t\n"
    )
    assert cfg.table("t").parquet.pinned is True


def test_a_full_refresh_table_kept_for_compliance_is_refused() -> None:
    with pytest.raises(ConfigError) as caught:
        load_config_text(
            BUCKETS + "exports:\n  - {source: ds.t, mode: FULL_REFRESH, compliance: [SOX]}\n"
        )
    [issue] = caught.value.issues
    assert issue.path == "exports[0].compliance"
    assert "every export after the first would fail" in issue.message
    assert "retention 2557 days of ds.t, financial: SOX" in issue.message
    # the same list on an APPEND table is what it is for
    load_config_text(BUCKETS + "exports:\n  - {source: ds.t, mode: APPEND, compliance: [SOX]}\n")
