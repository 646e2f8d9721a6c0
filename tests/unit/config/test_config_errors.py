"""Bad input: every problem reported, in one pass, with its YAML path, line and a hint."""

from __future__ import annotations

import pytest

from dpexport.config import check_against_schemas, identifiers, load_config_text
from dpexport.errors import ConfigError
from tests.unit.config.config_helpers import by_path, issues_of


def test_unknown_key_suggests_the_nearest() -> None:
    issues = issues_of("warehouse:\n  engin: duckdb\n")
    (issue,) = issues
    assert issue.path == "warehouse.engin"
    assert issue.suggestion == "engine"
    assert issue.line == 2
    assert "unknown key" in issue.message


def test_unknown_key_inside_a_wrapped_block_keeps_the_wrapper_in_its_path() -> None:
    text = "exports:\n  - export_config:\n      source: ds.t\n      schedul: '0 * * * *'\n"
    (issue,) = issues_of(text)
    assert issue.path == "exports[0].export_config.schedul"
    assert issue.suggestion == "schedule"
    assert issue.line == 4


def test_wrong_type() -> None:
    issues = by_path(issues_of("retry_configuration:\n  max_attempts: five\n"))
    issue = issues["retry_configuration.max_attempts"]
    assert issue.value == "'five'"
    assert issue.line == 2


def test_bad_unit_names_accepted_forms() -> None:
    issue = by_path(issues_of("exports:\n  - {source: t, max_file_size: 12 parsecs}\n"))[
        "exports[0].max_file_size"
    ]
    assert issue.expected is not None and "128MB" in issue.expected


def test_codec_not_allowed_for_format() -> None:
    issue = by_path(issues_of("exports:\n  - {source: t, format: JSONL, compression: SNAPPY}\n"))[
        "exports[0].compression"
    ]
    assert "JSONL" in issue.message
    assert issue.expected == "one of GZIP, ZSTD, BROTLI, NONE"


@pytest.mark.parametrize(
    ("item", "path", "suggestion"),
    [
        ("{source: t, format: PARQET}", "exports[0].format", "PARQUET"),
        ("{source: t, compression: ZTSD}", "exports[0].compression", "ZSTD"),
        ("{source: t, mode: APEND}", "exports[0].mode", "APPEND"),
        ("{source: t, schedule: '61 * * * *'}", "exports[0].schedule", None),
        ("{source: t, schedule: continous}", "exports[0].schedule", "continuous"),
        ("{source: 'ds/../../etc'}", "exports[0].source", None),
        ("{source: 'ds..t'}", "exports[0].source", None),
        ("{source: ''}", "exports[0].source", None),
        ("{source: 'a\\\\b'}", "exports[0].source", None),
        ("{source: t, destination: 'gcs://b/p/'}", "exports[0].destination", "gs://b/p/"),
        ("{source: t, destination: 'http://b/p/'}", "exports[0].destination", None),
        ("{source: t, destination: 'gs://b/../x/'}", "exports[0].destination", None),
        ("{source: t, encryption: CMEK}", "exports[0].encryption", None),
        (
            "{source: t, partitioning: {field: a, granularity: dayly}}",
            "exports[0].partitioning.granularity",
            "daily",
        ),
        ("{source: t, partitioning: {granularity: daily}}", "exports[0].partitioning", None),
        (
            "{source: t, optimization: {column_encoding: DELTA}}",
            "exports[0].optimization.column_encoding",
            None,
        ),
        (
            "{source: t, gdpr_compliance: {anonymization: [{email: sha256}]}}",
            "exports[0].gdpr_compliance.anonymization[0].email",
            "hash_sha256",
        ),
        (
            "{source: t, partitioning: {primary: timestamp_hour}}",
            "exports[0].partitioning.primary",
            None,
        ),
    ],
)
def test_bad_export_items(item: str, path: str, suggestion: str | None) -> None:
    issues = by_path(issues_of(f"exports:\n  - {item}\n"))
    assert path in issues, issues
    assert issues[path].suggestion == suggestion
    assert issues[path].line == 2


def test_table_name_escaping_its_folder_in_a_section() -> None:
    issues = by_path(issues_of("full_refresh:\n  ../etc: {frequency: daily}\n"))
    assert 'full_refresh["../etc"]' in issues


def test_inline_secret_is_reported_but_never_echoed() -> None:
    secret = "hunter2-s3cr3t-value"
    text = (
        f"buckets:\n  exports: gs://b\n  password: {secret}\n"
        f"metrics:\n  channels:\n    slack: {{webhook_token: {secret}}}\n"
        f"encryption:\n  at_rest:\n    sensitive_data:\n      kms_key: {secret}\n"
    )
    with pytest.raises(ConfigError) as info:
        load_config_text(text, "t.yaml")
    assert secret not in str(info.value)
    issues = by_path(info.value.issues)
    assert issues["buckets.password"].value == "<redacted>"
    assert "password_env" in (issues["buckets.password"].expected or "")
    token = [i for i in info.value.issues if i.path == "metrics.channels.slack.webhook_token"]
    assert {i.message.split(" ")[0] for i in token} == {"unknown", "secret"}
    assert all(i.value in (None, "<redacted>") for i in token)
    assert "KMS" in issues["encryption.at_rest.sensitive_data.kms_key"].message
    for issue in info.value.issues:
        assert secret not in issue.render("t.yaml")


def test_malformed_yaml_names_its_line() -> None:
    with pytest.raises(ConfigError) as info:
        load_config_text("project: p\nexports:\n  - source: [a, b\n  - x\n", "bad.yaml")
    (issue,) = info.value.issues
    assert "malformed YAML" in issue.message
    assert issue.line is not None and issue.line >= 3
    assert "bad.yaml:" in str(info.value)


def test_duplicate_keys_are_reported() -> None:
    issues = by_path(issues_of("project: a\nproject: b\n"))
    assert issues["project"].line == 2


def test_conflicting_section_modes() -> None:
    text = "append_only:\n  t: {}\nincremental:\n  t: {change_column: u}\n"
    issues = by_path(issues_of(text))
    assert "conflicting modes" in issues["incremental.t.export_mode"].message
    # An exports item's `mode` settles it.
    load_config_text(text + "exports:\n  - {source: t, mode: APPEND}\nbuckets: {exports: gs://b}\n")


def test_replication_of_an_unknown_table() -> None:
    text = "exports:\n  - {source: ds.orders}\nreplication:\n  - {tables: [ds.ordres], target: 's3://b/'}\n"
    issue = by_path(issues_of(text))["replication[0].tables[0]"]
    assert issue.suggestion == "ds.orders"


def test_several_errors_in_one_file_are_all_reported() -> None:
    text = """\
project: p
warehouse:
  enigne: duckdb
exports:
  - export_config:
      source: ds.a
      format: JSONL
      compression: SNAPPY
  - source: ds.b
      # comment
    schedule: "not a cron"
  - source: "../x"
    mode: OVERWRITTEN
retry_configuration:
  max_attempts: many
metrics:
  failure_rate: {threshold: "often"}
"""
    issues = issues_of(text)
    paths = {i.path for i in issues}
    assert paths >= {
        "warehouse.enigne",
        "exports[0].export_config.compression",
        "exports[1].schedule",
        "exports[2].source",
        "exports[2].mode",
        "retry_configuration.max_attempts",
        "metrics.failure_rate.threshold",
    }
    assert all(i.line for i in issues)
    assert [i.line for i in issues] == sorted(i.line or 0 for i in issues)


def test_partition_expression_on_a_missing_column() -> None:
    cfg = load_config_text(
        "high_volume:\n"
        "  sensor_telemetry:\n"
        "    primary_partition: date(created_at)\n"
        "    secondary_partition: equipment_id % 100\n"
        "    path_pattern: '{entity}/{yyyy}/{MM}/{dd}/{HH}/{shard_id}/'\n"
        "exports:\n"
        "  - source: diagnosticpro_prod.reddit\n"
        "    partitioning: {field: created_dat, granularity: daily}\n"
        "    merge_key: [post_id, sub]\n"
        "buckets: {exports: gs://b}\n"
    )
    schemas = {
        "diagnosticpro_prod.sensor_telemetry": ["created_at", "sensor_type"],
        "diagnosticpro_prod.reddit": ["created_date", "post_id"],
    }
    issues = by_path(check_against_schemas(cfg, schemas))
    missing_shard = issues["high_volume.sensor_telemetry.secondary_partition"]
    assert "equipment_id" in missing_shard.message
    assert missing_shard.line == 4
    field = issues["exports[0].partitioning.field"]
    assert field.suggestion == "created_date"
    assert field.line == 8
    assert "sub" in issues["exports[0].merge_key"].message
    assert check_against_schemas(cfg, {}) == []
    only_reddit = {"diagnosticpro_prod.reddit": ["created_dat", "post_id", "sub"]}
    (absent,) = check_against_schemas(cfg, only_reddit, require_tables=True)
    assert absent.path == "high_volume.sensor_telemetry"


@pytest.mark.parametrize(
    ("expression", "columns"),
    [
        ("date(created_at)", ["created_at"]),
        ("equipment_id % 100", ["equipment_id"]),
        ("DATE_TRUNC('hour', ts)", ["ts"]),
        ("EXTRACT(HOUR FROM event_time)", ["event_time"]),
        ("CAST(a AS DATE) + b", ["a", "b"]),
        ('"Odd Column" || `other`', ["Odd Column", "other"]),
        ("case when region is null then 'none' else region end", ["region"]),
    ],
)
def test_identifiers(expression: str, columns: list[str]) -> None:
    assert identifiers(expression) == columns
