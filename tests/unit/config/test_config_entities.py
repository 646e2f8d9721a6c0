"""Section entries attach to the table of their entity name (CONTRACT §3), and ``check``
reads a file with refused parts leniently (issue 17)."""

from __future__ import annotations

import pytest

from dpexport.config import check_against_schemas, load_config_text
from dpexport.config.resolve import inspect_config_text
from dpexport.config.schema_check import Columns, dedup_columns
from tests.unit.config.config_helpers import by_path, issues_of

HEAD = "buckets: {exports: gs://b}\n"


def test_a_bare_entry_attaches_to_the_item_of_its_entity_in_another_dataset() -> None:
    cfg = load_config_text(
        HEAD
        + "exports:\n  - {source: analytics.sessions, mode: APPEND}\n"
        + "append_only:\n  sessions: {change_column: updated_at, archive_after: 90 days}\n"
        + "high_volume:\n  sessions: {primary_partition: date(started_at)}\n"
    )
    (spec,) = cfg.tables
    assert spec.qualified_name == "analytics.sessions"
    assert spec.change_column == "updated_at" and spec.archive_after is not None
    assert spec.partitioning.time_expression == "started_at"
    assert spec.origins["change_column"] == "append_only.sessions.change_column"


def test_bare_entries_without_an_item_make_one_table_in_the_default_dataset() -> None:
    cfg = load_config_text(
        HEAD
        + "append_only:\n  events: {change_column: at}\n"
        + "high_volume:\n  events: {primary_partition: at}\n"
    )
    assert [t.qualified_name for t in cfg.tables] == ["diagnosticpro_prod.events"]


def test_a_qualified_entry_counts_as_a_table_a_bare_one_attaches_to() -> None:
    cfg = load_config_text(
        HEAD
        + "incremental:\n  web.users: {change_column: updated_at}\n"
        + "high_volume:\n  users: {primary_partition: date(updated_at)}\n"
    )
    (spec,) = cfg.tables
    assert spec.qualified_name == "web.users" and spec.mode == "INCREMENTAL"
    assert spec.origins["partitioning.time"] == "high_volume.users.primary_partition"


def test_a_bare_entry_naming_two_tables_is_refused_naming_both() -> None:
    issues = by_path(
        issues_of(
            HEAD
            + "exports:\n  - {source: a.t, mode: FULL_REFRESH}\n"
            + "  - {source: b.t, mode: FULL_REFRESH}\n"
            + "full_refresh:\n  t: {frequency: daily}\n"
        )
    )
    issue = issues["full_refresh.t"]
    assert "a.t (exports[0])" in issue.message and "b.t (exports[1])" in issue.message


def test_two_entries_of_one_section_for_one_table_are_refused() -> None:
    issues = by_path(
        issues_of(
            HEAD
            + "exports:\n  - {source: a.t, mode: APPEND, change_column: c}\n"
            + "append_only:\n  t: {reason: x}\n  a.t: {reason: y}\n"
        )
    )
    assert "second append_only entry for a.t" in issues['append_only["a.t"]'].message


def test_replication_takes_a_bare_entity_name() -> None:
    text = (
        HEAD
        + "exports:\n  - {source: a.t, mode: FULL_REFRESH}\n"
        + "replication:\n  - {name: dr, tables: [t], target: 's3://x/dr/'}\n"
    )
    assert load_config_text(text).replication[0].tables == ["t"]
    issues = by_path(issues_of(text.replace("tables: [t]", "tables: [u]")))
    assert issues["replication[0].tables[0]"].message == "not an exported table"


def test_refused_parts_are_left_out_and_later_items_keep_their_numbers() -> None:
    found = inspect_config_text(
        HEAD
        + "exports:\n"
        + "  - {source: a.one}\n"
        + "  - export_config: {source: a.two, max_file_size: [1]}\n"
        + "  - {sorce: a.three}\n"
        + "  - export_config: {source: a.four, merge_key: k}\n"
    )
    assert found.config is not None
    assert [t.table for t in found.config.tables] == ["one", "two", "four"]
    four = found.config.table("four")
    assert four.origins["merge_key"] == "exports[3].export_config.merge_key"
    assert "exports[2]" in found.taken_out
    assert "exports[1].export_config.max_file_size" in found.taken_out
    paths = {i.path for i in found.issues}
    assert {"exports[1].export_config.max_file_size", "exports[2].sorce"} <= paths
    with pytest.raises(Exception, match="problem"):
        load_config_text(HEAD + "exports:\n  - {sorce: a.three}\n")


def test_a_refused_warehouse_block_gives_no_config_to_hold() -> None:
    found = inspect_config_text(HEAD + "warehouse: {engine: bigquerry}\n")
    assert found.config is None and found.issues


def test_a_cursorless_append_table_names_its_time_columns() -> None:
    cfg = load_config_text(HEAD + "exports:\n  - {source: ds.t, mode: APPEND}\n")
    columns = Columns(("id", "at", "day"), {"id": "INT64", "at": "TIMESTAMP", "day": "DATE"})
    (issue,) = check_against_schemas(cfg, {"ds.t": columns})
    assert issue.path == "exports[0]" and "at (TIMESTAMP), day (DATE)" in issue.message
    (unread,) = check_against_schemas(cfg, {})
    assert unread.path == "exports[0]" and "not read" in unread.message


@pytest.mark.parametrize(
    ("text", "columns"),
    [
        ("by post_id", ["post_id"]),
        ("by event_id on consumer side", ["event_id"]),
        ("by a, b and c", ["a", "b", "c"]),
        ("BY x On Consumer Side", ["x"]),
        ("whenever", []),
        (None, []),
    ],
)
def test_dedup_columns(text: str | None, columns: list[str]) -> None:
    assert dedup_columns(text) == columns
