"""Every key the config accepts, in one of three tables (issue 17).

- :data:`DOCUMENTATION`: keys that explain, by nature (``reason``, ``usage``, ...); the
  code never reads them.
- :data:`NOT_ENFORCED_YET`: keys accepted but without effect until the issue named makes
  them real; ``check`` says so on stderr (:func:`not_enforced_notes`).
- :data:`EFFECTS`: every other key, with the test that changes it and asserts its effect.

Keys are YAML key-path patterns: segments joined by ``.``; ``*`` is any mapping key, a
trailing ``[]`` any item of a list. An ``exports`` item's ``export_config:`` block is read
as the item itself, so ``exports[].export_config.format`` is ``exports[].format``. The
key-coverage test (``tests/unit/config/test_key_coverage.py``) holds every leaf key of the
shipped configs against these tables, so no setting can be silently ignored again.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

_FMT = "tests/e2e/test_format_settings.py::"
_PIPE = "tests/e2e/test_pipeline_settings.py::"
_LIFE = "tests/e2e/test_lifecycle.py::"
_MODES = "tests/e2e/test_modes.py::"
_LAYOUT = "tests/e2e/test_layout.py::"
_RETRY = "tests/unit/reliability/test_retry.py::"
_DLQ = "tests/unit/reliability/test_dlq.py::"
_WH = "tests/e2e/test_check_warehouse.py::"
_TZ = "tests/e2e/test_schedule_tz.py::"
_SET = "tests/e2e/test_setting_effects.py::"
_ENC = "tests/e2e/test_encryption_settings.py::"
_COST = "tests/unit/ops/test_cost.py::"
_COST_E2E = "tests/e2e/test_cost.py::"
_ALERTS = "tests/e2e/test_alerts.py::"
_ACCESS = "tests/e2e/test_access_check.py::"
_BUCKET = "tests/e2e/test_bucket_access.py::"

#: keys that are documentation by nature: nothing in the code reads them
DOCUMENTATION: frozenset[str] = frozenset(
    {
        "append_only.*.reason",
        "full_refresh.*.reason",
        "incremental.*.reason",
        "compression_matrix.*.compatibility",
        "compression_matrix.*.speed",
        "compression_matrix.*.use_for[]",
        "filenames.examples[]",
        "idempotency_design.example",
        "idempotency_design.usage[]",
        "idempotency_design.token_format",
        "lifecycle_policies.*.cost_reduction",
        "optimization_strategies.incremental_exports.reduces_cost",
        "optimization_strategies.incremental_exports.reduces_volume",
        "optimization_strategies.regional_optimization.same_region_transfer",
        "optimization_strategies.regional_optimization.multi_region_strategy",
        "optimization_strategies.scheduling.cost_savings",
    }
)

#: keys accepted without effect yet -> the issue that makes them real
NOT_ENFORCED_YET: Mapping[str, int] = {}

#: every other key -> ``path::test`` that changes it and asserts its effect
EFFECTS: Mapping[str, str] = {
    "project": "tests/e2e/test_bigquery.py::test_every_type_round_trips",
    "environment": "tests/unit/config/test_config_blocks.py::"
    "test_defaults_follow_environment_bucket_and_dataset",
    "buckets.exports": "tests/unit/config/test_config_blocks.py::"
    "test_defaults_follow_environment_bucket_and_dataset",
    "buckets.azure": "tests/e2e/test_replication.py::test_replicate_to_s3_and_azure",
    "buckets.cross_cloud": "tests/e2e/test_replication.py::test_replicate_to_s3_and_azure",
    "buckets.cold_storage": "tests/e2e/test_archive.py::"
    "test_a_table_with_archive_after_and_no_cold_bucket_is_a_config_error",
    "warehouse.engine": "tests/e2e/test_bigquery.py::test_every_type_round_trips",
    "warehouse.path": _FMT + "test_csv_utf16_gzip",
    "filenames.pattern": "tests/e2e/test_filenames.py::test_files_and_sidecars_follow_the_patterns",
    "filenames.metadata_sidecar": "tests/e2e/test_filenames.py::"
    "test_files_and_sidecars_follow_the_patterns",
    # formats (spec 2.2/2.3)
    "formats.JSONL.format_config.encoding": _FMT + "test_jsonl_utf16_unix_epoch_and_a_null_marker",
    "formats.JSONL.format_config.timestamp_format": _FMT
    + "test_jsonl_epoch_millis_reads_in_duckdb_and_pyarrow",
    "formats.JSONL.format_config.null_representation": _FMT
    + "test_jsonl_utf16_unix_epoch_and_a_null_marker",
    "formats.JSONL.format_config.newline_delimited": _FMT
    + "test_jsonl_latin1_array_with_schema_nulls_left_out_iso8601",
    "formats.JSONL.format_config.schema_included": _FMT
    + "test_jsonl_latin1_array_with_schema_nulls_left_out_iso8601",
    "formats.CSV.format_config.encoding": _FMT + "test_csv_latin1_with_its_dialect",
    "formats.CSV.format_config.delimiter": _FMT + "test_csv_latin1_with_its_dialect",
    "formats.CSV.format_config.null_marker": _FMT + "test_csv_latin1_with_its_dialect",
    "formats.CSV.format_config.header": _FMT + "test_csv_latin1_with_its_dialect",
    "formats.CSV.format_config.quote_character": _SET
    + "test_csv_quote_and_escape_are_the_bytes_of_a_quoted_field",
    "formats.CSV.format_config.escape_character": _SET
    + "test_csv_quote_and_escape_are_the_bytes_of_a_quoted_field",
    "formats.PARQUET.format_config.version": _SET
    + "test_parquet_version_is_the_files_format_version",
    "formats.PARQUET.format_config.encoding": _SET + "test_parquet_encoding_is_dictionary_or_plain",
    "formats.PARQUET.format_config.page_size": _SET + "test_page_size_caps_the_data_pages",
    "formats.PARQUET.format_config.row_group_size": _SET
    + "test_row_group_size_sizes_the_row_groups",
    "formats.PARQUET.format_config.compression": _PIPE
    + "test_a_table_outside_3_2_keeps_the_format_codec",
    "formats.PARQUET.format_config.schema_evolution.version_column": "tests/unit/config/"
    "test_config_safety.py::test_the_configured_version_column_is_reserved_when_evolution_is_on",
    "formats.PARQUET.format_config.schema_evolution.backward_compatible": _SET
    + "test_backward_compatible_decides_whether_a_dropped_column_fails",
    "formats.PARQUET.format_config.schema_evolution.enabled": "tests/unit/config/"
    "test_config_safety.py::test_the_configured_version_column_is_reserved_when_evolution_is_on",
    # pipeline: codecs, bands, steps
    "compression_matrix.*.compression_ratio": _PIPE
    + "test_a_file_outside_the_configs_band_is_warned",
    "optimization_strategies.compression.high_volume_tables": _PIPE
    + "test_a_high_volume_table_is_written_zstd_by_default",
    "optimization_strategies.compression.low_latency_tables": _PIPE
    + "test_a_continuous_table_takes_the_low_latency_codec_first",
    "validation_checks.*[]": _PIPE + "test_check_refuses_missing_required_steps_and_unknown_names",
    "validation_checks.*[]=check_partition_freshness": _PIPE
    + "test_without_check_partition_freshness_a_stale_source_exports",
    "validation_checks.*[]=create_failure_marker": _PIPE
    + "test_no_create_failure_marker_no_failure_marker",
    "validation_checks.*[]=initiate_retry": _PIPE + "test_without_initiate_retry_one_attempt",
    "validation_checks.*[]=trigger_alert": _ALERTS
    + "test_without_trigger_alert_a_failure_sends_nothing",
    # alerts (issue 20)
    "metrics.*.threshold": _ALERTS + "test_export_size_and_cost_over_their_thresholds_fire",
    "metrics.*.alert": _ALERTS + "test_export_size_and_cost_over_their_thresholds_fire",
    "dlq_configuration.processing.escalation_after": _ALERTS
    + "test_dlq_entries_past_the_review_sla_and_escalation_page",
    "dlq_configuration.processing.manual_review_sla": _ALERTS
    + "test_dlq_entries_past_the_review_sla_and_escalation_page",
    # exports items
    "exports[].source": _FMT + "test_csv_utf16_gzip",
    "exports[].destination": "tests/unit/config/test_config_blocks.py::"
    "test_defaults_follow_environment_bucket_and_dataset",
    "exports[].format": _FMT + "test_csv_utf16_gzip",
    "exports[].compression": _PIPE + "test_the_items_own_compression_wins",
    "exports[].mode": _MODES + "test_append_twice_exports_exactly_the_new_rows",
    "exports[].encryption": _LAYOUT + "test_billing_monthly_encrypted",
    "exports[].partitioning.field": _LAYOUT + "test_reddit_daily_by_created_date",
    "exports[].partitioning.granularity": _LAYOUT + "test_reddit_daily_by_created_date",
    "exports[].partitioning.primary": "tests/unit/config/test_config_blocks.py::"
    "test_shard_names_without_a_high_volume_entry",
    "exports[].partitioning.secondary": "tests/unit/config/test_config_blocks.py::"
    "test_shard_names_without_a_high_volume_entry",
    "exports[].partitioning.path_pattern": "tests/e2e/test_hive_paths.py::"
    "test_an_exports_item_pattern_lays_out_dt_folders",
    "exports[].schedule": "tests/e2e/test_schedule.py::"
    "test_replay_runs_every_fire_time_once_and_exports_each_row_once",
    "exports[].schema_evolution.enabled": _MODES
    + "test_schema_evolution_added_column_ok_dropped_column_fails",
    "exports[].schema_evolution.compatibility": _MODES
    + "test_schema_evolution_added_column_ok_dropped_column_fails",
    "exports[].validation[]": "tests/e2e/test_cli.py::"
    "test_failing_check_exits_1_marks_failure_and_publishes_nothing",
    "exports[].compliance[]": "tests/unit/ops/test_lifecycle.py::"
    "test_retention_holds_until_it_ends",
    "exports[].gdpr_compliance.anonymization[].*": "tests/e2e/test_demo.py::"
    "test_users_export_holds_no_raw_personal_data",
    "exports[].gdpr_compliance.excluded_fields[]": "tests/e2e/test_demo.py::"
    "test_users_export_holds_no_raw_personal_data",
    "exports[].optimization.column_encoding": _WH
    + "test_delta_binary_packed_needs_an_integer_column",
    "exports[].optimization.row_group_size": _SET + "test_row_group_size_sizes_the_row_groups",
    # spec 3.2 and section 4 entries
    "high_volume.*.path_pattern": "tests/unit/config/test_config_errors.py::"
    "test_partition_expression_on_a_missing_column",
    "high_volume.*.primary_partition": "tests/unit/config/test_config_entities.py::"
    "test_a_bare_entry_attaches_to_the_item_of_its_entity_in_another_dataset",
    "high_volume.*.secondary_partition": _LAYOUT + "test_diagnostic_sessions_day_and_region",
    "high_volume.*.tertiary_partition": _LAYOUT + "test_sensor_telemetry_hour_shard_and_type",
    "append_only.*.export_mode": _SET + "test_a_section_entrys_export_mode_is_the_tables_mode",
    "append_only.*.retention": "tests/e2e/test_retention.py::"
    "test_sweep_keeps_until_the_retention_ends_then_deletes",
    "full_refresh.*.export_mode": _SET + "test_a_section_entrys_export_mode_is_the_tables_mode",
    "incremental.*.export_mode": _SET + "test_a_section_entrys_export_mode_is_the_tables_mode",
    "append_only.*.partition_by": "tests/unit/config/test_config_blocks.py::"
    "test_defaults_follow_environment_bucket_and_dataset",
    "append_only.*.deduplication": _MODES + "test_dedup_across_the_lookback_overlap",
    "append_only.*.archive_after": "tests/e2e/test_archive.py::"
    "test_archive_moves_folders_older_than_archive_after",
    "full_refresh.*.frequency": "tests/e2e/test_exactly_once.py::"
    "test_same_logical_time_twice_is_skipped",
    "full_refresh.*.frequency=on_change": _TZ
    + "test_on_change_exports_after_a_change_and_not_again_without_one",
    "full_refresh.*.timezone": _TZ + "test_a_frequency_word_reads_its_entrys_zone",
    "exports[].timezone": _TZ + "test_cron_in_a_zone_fires_at_exact_utc_times_across_dst",
    "optimization_strategies.scheduling.off_peak_exports": _TZ
    + "test_off_peak_window_holds_frequency_schedules_inside_it",
    "incremental.*.change_column": _MODES + "test_incremental_composite_key_window_and_compact",
    "incremental.*.lookback_window": _MODES + "test_dedup_across_the_lookback_overlap",
    "incremental.*.merge_key": _MODES + "test_incremental_composite_key_window_and_compact",
    "incremental.*.merge_key[]": _MODES + "test_incremental_composite_key_window_and_compact",
    "exports[].reconcile": "tests/e2e/test_reconcile.py::test_reconcile_setting_sets_the_window",
    "exports[].table_format": "tests/e2e/test_delta.py::"
    "test_full_refresh_removes_the_files_it_replaces_in_the_same_commit",
    "table_format": "tests/e2e/test_delta.py::"
    "test_every_reader_returns_the_source_rows_after_a_first_export",
    "append_only.*.reconcile": "tests/unit/config/test_config_blocks.py::"
    "test_reconcile_window_from_a_section_entry",
    "incremental.*.reconcile": "tests/unit/config/test_config_blocks.py::"
    "test_reconcile_window_from_a_section_entry",
    # reliability
    "retry_configuration.max_attempts": _PIPE + "test_with_initiate_retry_the_policys_attempts",
    "retry_configuration.initial_delay_seconds": _RETRY + "test_policy_from_the_spec_block",
    "retry_configuration.max_delay_seconds": _SET + "test_multiplier_and_max_delay_are_the_waits",
    "retry_configuration.multiplier": _SET + "test_multiplier_and_max_delay_are_the_waits",
    "retry_configuration.backoff_strategy": _RETRY + "test_policy_from_the_spec_block",
    "retry_configuration.retry_conditions[]": _RETRY + "test_retry_conditions_come_from_the_policy",
    "retry_configuration.non_retryable[]": _RETRY + "test_not_retried",
    "dlq_configuration.retention": "tests/e2e/test_ops.py::test_dlq_list_retry_purge",
    "dlq_configuration.processing.auto_retry_after": "tests/e2e/test_schedule.py::"
    "test_once_retries_a_failed_fire_time_from_the_dlq_when_due",
    "dlq_configuration.structure.*[]": _DLQ + "test_poison_moves_the_entry",
    "dlq_configuration.storage_location": "tests/e2e/test_state_locations.py::"
    "test_a_failed_export_goes_to_the_configured_dlq",
    "idempotency_design.storage.location": "tests/e2e/test_state_locations.py::"
    "test_tokens_live_under_their_location_and_a_rerun_finds_them",
    "idempotency_design.storage.retention": "tests/e2e/test_state_locations.py::"
    "test_sweep_deletes_tokens_older_than_the_retention",
    "idempotency_design.lease.expires_after": _SET
    + "test_lease_is_renewed_every_renew_every_and_lapses_after_expires_after",
    "idempotency_design.lease.renew_every": _SET
    + "test_lease_is_renewed_every_renew_every_and_lapses_after_expires_after",
    # storage, encryption, lifecycle, replication
    "encryption.at_rest.sensitive_data.kms_key": "tests/e2e/test_write_path.py::"
    "test_plan_and_run_agree_on_s3",
    "encryption.cross_cloud.aws_s3.sse": "tests/e2e/test_replication.py::"
    "test_replicate_to_s3_and_azure",
    "encryption.cross_cloud.azure_blob.encryption_scope": "tests/e2e/test_clouds.py::"
    "test_export_to_cloud_matches_local_and_verifies",
    "encryption.at_rest.algorithm": _ENC + "test_check_refuses_what_dpexport_does_not_do",
    "encryption.at_rest.method": _ENC + "test_check_refuses_what_dpexport_does_not_do",
    "encryption.at_rest.sensitive_data.algorithm": _ENC
    + "test_sensitive_algorithm_is_the_cipher_of_a_cmek_tables_files",
    "encryption.at_rest.sensitive_data.method": _ENC
    + "test_check_refuses_what_dpexport_does_not_do",
    "encryption.cross_cloud.aws_s3.kms_master_key": _ENC
    + "test_kms_master_key_is_the_sse_kms_key_of_cmek_objects_on_s3",
    "encryption.at_rest.key_rotation": "tests/e2e/test_key_rotation.py::"
    "test_key_rotation_is_set_on_aws_kms_and_rendered_for_cloud_kms",
    "encryption.cross_cloud.azure_blob.key_vault": "tests/e2e/test_key_vault.py::"
    "test_client_side_export_with_a_key_vault_key_decrypts",
    "lifecycle_policies.*.action": _LIFE + "test_apply",
    "lifecycle_policies.auto_delete.*": _LIFE + "test_sweep_with_retention",
    "bucket_policies.*.lifecycle_rules[].action": _LIFE + "test_apply",
    "bucket_policies.*.lifecycle_rules[].age": _LIFE + "test_apply",
    "bucket_policies.*.versioning": _LIFE + "test_apply",
    "bucket_policies.*.uniform_access": _BUCKET + "test_s3_ownership_policy_and_public_block",
    "bucket_policies.*.iam_bindings[].role": _BUCKET + "test_s3_ownership_policy_and_public_block",
    "bucket_policies.*.iam_bindings[].members[]": _ACCESS
    + "test_a_public_member_is_refused_at_its_path",
    "bucket_policies.*.iam_bindings[].allow_public": _ACCESS
    + "test_allow_public_true_lets_a_public_member_pass",
    "encryption.in_transit.protocol": "tests/e2e/test_transit.py::"
    "test_a_tls_1_3_floor_refuses_a_tls_1_2_server_on_every_store",
    "encryption.in_transit.certificate": "tests/e2e/test_transit.py::"
    "test_the_configured_ca_is_the_one_servers_are_verified_with",
    "encryption.in_transit.cipher_suites[]": _ACCESS
    + "test_a_weak_cipher_suite_is_refused_at_its_path",
    "replication[].name": "tests/e2e/test_schedule.py::"
    "test_replication_items_run_on_their_schedule_after_the_exports",
    "replication[].tables[]": "tests/e2e/test_replication.py::test_replicate_to_s3_and_azure",
    "replication[].target": "tests/e2e/test_replication.py::test_replicate_to_s3_and_azure",
    # principals (CONTRACT §11): the roles decide what each may do
    "service_accounts.*.roles[]": "tests/e2e/test_principals.py::"
    "test_each_spec_principal_does_what_its_roles_allow",
    # cost (spec 10.1): lines of the price table overridden
    "pricing.warehouse.*.*": _COST
    + "test_an_override_in_the_config_changes_its_line_by_the_exact_amount",
    "pricing.storage.*.*": _COST
    + "test_an_override_in_the_config_changes_its_line_by_the_exact_amount",
    "pricing.operations.*.*": _COST_E2E
    + "test_a_price_override_changes_the_estimate_by_the_exact_amount",
    "pricing.egress.*.*": _COST_E2E + "test_replicate_reports_the_egress_between_clouds",
    # alert channels (issue 20, CONTRACT §10): each delivers to a local server
    "metrics.channels.*.routing_key_env": "tests/alerts/test_channels.py::"
    "test_pagerduty_trigger_then_resolve_are_valid_events_v2",
    "metrics.channels.*.events_url": "tests/alerts/test_channels.py::"
    "test_pagerduty_trigger_then_resolve_are_valid_events_v2",
    "metrics.channels.*.url_env": "tests/alerts/test_channels.py::"
    "test_slack_gets_one_text_and_a_resolve_says_resolved",
    "metrics.channels.*.smtp_host": "tests/alerts/test_channels.py::"
    "test_email_goes_to_the_to_list_and_email_to_finance_to_its_list",
    "metrics.channels.*.smtp_port": "tests/alerts/test_channels.py::"
    "test_email_goes_to_the_to_list_and_email_to_finance_to_its_list",
    "metrics.channels.*.sender": "tests/alerts/test_channels.py::"
    "test_email_goes_to_the_to_list_and_email_to_finance_to_its_list",
    "metrics.channels.*.to[]": "tests/alerts/test_channels.py::"
    "test_email_goes_to_the_to_list_and_email_to_finance_to_its_list",
    "metrics.channels.*.recipients.*[]": "tests/alerts/test_channels.py::"
    "test_email_goes_to_the_to_list_and_email_to_finance_to_its_list",
    "metrics.channels.*.starttls": "tests/alerts/test_channels.py::"
    "test_email_with_starttls_logs_in_with_the_environments_credentials",
    "metrics.channels.*.username_env": "tests/alerts/test_channels.py::"
    "test_email_with_starttls_logs_in_with_the_environments_credentials",
    "metrics.channels.*.smtp_password_env": "tests/alerts/test_channels.py::"
    "test_email_with_starttls_logs_in_with_the_environments_credentials",
    "service_accounts.*.aws_role_arn": "tests/e2e/test_credentials.py::"
    "test_a_principal_writes_through_its_assumed_role",
    "service_accounts.*.azure_client_id": "tests/e2e/test_credentials.py::"
    "test_azure_signs_in_as_the_principals_client_id",
}

#: the three tables by name, for :func:`tables_of`
TABLES: Mapping[str, Mapping[str, object]] = {
    "DOCUMENTATION": dict.fromkeys(DOCUMENTATION),
    "NOT_ENFORCED_YET": NOT_ENFORCED_YET,
    "EFFECTS": EFFECTS,
}


def leaf_keys(doc: object, prefix: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    """Each leaf of ``doc`` as (path segments, value); a list item adds ``[]`` to its key
    and an ``exports`` item's ``export_config:`` block is read as the item."""
    if isinstance(doc, Mapping):
        for key, value in doc.items():
            if str(key) == "export_config" and prefix[-1:] == ("exports[]",):
                yield from leaf_keys(value, prefix)
            else:
                yield from leaf_keys(value, (*prefix, str(key)))
    elif isinstance(doc, list) and prefix:
        for item in doc:
            yield from leaf_keys(item, (*prefix[:-1], prefix[-1] + "[]"))
    elif prefix:
        yield prefix, doc


def _matches(pattern: str, path: tuple[str, ...], value: object) -> bool:
    keys, _, wanted = pattern.partition("=")
    if wanted and str(value) != wanted:
        return False
    parts = keys.split(".")
    if len(parts) != len(path):
        return False
    for want, got in zip(parts, path, strict=True):
        if want.startswith("*"):
            if want[1:] != got[len(got) - len(want) + 1 :] or (
                got.endswith("[]") != want.endswith("[]")
            ):
                return False
        elif want != got:
            return False
    return True


def tables_of(path: tuple[str, ...], value: object) -> list[tuple[str, str]]:
    """The (table, pattern) pairs that cover the leaf at ``path``: a pattern naming the
    value (``key=value``) wins over the key's own, so each leaf has one answer."""
    found = [
        (name, pattern)
        for name, table in TABLES.items()
        for pattern in table
        if _matches(pattern, path, value)
    ]
    exact = [hit for hit in found if "=" in hit[1]]
    return exact or found


def uncovered(doc: object) -> list[str]:
    """Each leaf key of ``doc`` that no table or more than one covers, with why."""
    problems: list[str] = []
    for path, value in leaf_keys(doc):
        hits = tables_of(path, value)
        if len(hits) != 1:
            where = ", ".join(f"{t} {p}" for t, p in hits) or "no table"
            problems.append(f"{'.'.join(path)}: covered by {where}")
    return problems


def not_enforced_notes(doc: object) -> list[str]:
    """What ``check`` says on stderr: each present key accepted without effect yet."""
    notes: list[str] = []
    for path, value in leaf_keys(doc):
        hits = tables_of(path, value)
        for table, pattern in hits:
            if table == "NOT_ENFORCED_YET" and len(hits) == 1:
                shown = ".".join(path) + (f" {value}" if "=" in pattern else "")
                notes.append(
                    f"{shown}: accepted, not enforced yet (issue {NOT_ENFORCED_YET[pattern]})"
                )
    return list(dict.fromkeys(notes))
