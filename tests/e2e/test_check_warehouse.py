"""``check`` holds the config against the warehouse, in the same pass as every config
error (issue 17), and section entries attach to the table of their entity name.

Through the CLI on the demo warehouse (and tables added to a copy of it): every problem
at its own YAML path, exit 2, nothing written anywhere; without a warehouse, ``check``
says it checked the config only.
"""

from __future__ import annotations

import json
import shutil
from datetime import timedelta
from pathlib import Path

from dpexport.config import load_config
from tests.e2e.cli import dpexport, warehouse_sql

REPO = Path(__file__).resolve().parents[2]
DS = "diagnosticpro_prod"
HEAD = """\
project: p
environment: prod
warehouse: {engine: duckdb, path: warehouse.duckdb}
buckets: {exports: gs://b}
"""


def item(source: str, *lines: str) -> str:
    """One ``exports`` item reading ``source`` (a table of the demo dataset unless it
    names its own), with more ``key: value`` lines."""
    name = source if "." in source else f"{DS}.{source}"
    return f"  - source: {name}\n" + "".join(f"    {line}\n" for line in lines)


def exports(*items: str) -> str:
    return "exports:\n" + "".join(items)


def _tree(base: Path) -> set[str]:
    """Every path under ``base`` (DuckDB's own WAL aside)."""
    return {p.relative_to(base).as_posix() for p in base.rglob("*") if ".wal" not in p.name}


def _check(base: Path, text: str, *args: str, name: str = "c.yaml") -> tuple[int, str, str]:
    """``dpexport -c base/NAME --local-root base/out check`` on ``text``; asserts it
    wrote nothing (the bucket folder is never created, no file appears)."""
    config = base / name
    config.write_text(text, encoding="utf-8")
    before = _tree(base)
    result = dpexport("-c", config, "--local-root", base / "out", "check", *args, cwd=base)
    assert not (base / "out").exists()
    assert _tree(base) == before, _tree(base) - before
    return result.code, result.out, result.err


def _lines_at(err: str, path: str) -> list[str]:
    """The problem lines of ``err`` reported at exactly ``path``."""
    return [line for line in err.splitlines() if f": {path}: " in line]


# -- one pass -----------------------------------------------------------------------------
def test_config_and_warehouse_problems_are_listed_in_one_pass(demo_dir: Path) -> None:
    text = (
        HEAD
        + "exports:\n"
        + item("no_such_table", "mode: FULL_REFRESH")
        + item(
            "reddit_diagnostic_posts",
            "mode: APPEND",
            "partitioning: {field: created_dayte, granularity: daily}",
        )
        + item("parts_catalog", "mode: SOMETIMES")
        + item("dtc_code_definitions", "mode: FULL_REFRESH", "schedule: '61 * * * *'")
    )
    code, out, err = _check(demo_dir, text)
    assert code == 2, out + err
    assert "4 problem(s)" in err, err
    (table,) = _lines_at(err, "exports[0].source")
    assert f"{DS}.no_such_table" in table and "not found in the warehouse" in table
    (column,) = _lines_at(err, "exports[1].partitioning.field")
    assert "'created_dayte'" in column and "did you mean 'created_date'?" in column
    (mode,) = _lines_at(err, "exports[2].mode")
    assert "SOMETIMES" in mode
    (cron,) = _lines_at(err, "exports[3].schedule")
    assert "cron" in cron
    assert "OK" not in out


def test_a_refused_value_does_not_hide_what_the_warehouse_shows(demo_dir: Path) -> None:
    """A part the models refuse (a wrong type) is reported and left out; the other
    tables are still held against the warehouse in the same run."""
    text = (
        HEAD
        + "exports:\n"
        + item("parts_catalog", "mode: FULL_REFRESH", "max_file_size: [1GB]")
        + item("no_such_table", "mode: FULL_REFRESH")
        + item("dtc_code_definitions", "destination: [gs://b/x/]")
        + item("users", "mode: FULL_REFRESH", "merge_key: user_idd")
    )
    code, out, err = _check(demo_dir, text)
    assert code == 2, out + err
    assert _lines_at(err, "exports[0].max_file_size")
    assert _lines_at(err, "exports[2].destination")
    assert _lines_at(err, "exports[1].source")
    (merge,) = _lines_at(err, "exports[3].merge_key")  # numbered as the file numbers it
    assert "'user_idd'" in merge


# -- every setting that names a column ------------------------------------------------------
#: YAML path -> the column it names, which the table lacks
MISSING_COLUMNS = {
    "exports[0].partitioning.field": "posted_on",
    "exports[1].change_column": "changed",
    "exports[2].validation[1]": "body",
    "exports[3].gdpr_compliance.anonymization[0].emial": "emial",
    "exports[3].gdpr_compliance.excluded_fields[1]": "nosuch_field",
    "exports[3].optimization.column_encoding.nosuch": "nosuch",
    "exports[3].validation[0]": "consent",
    "high_volume.sensor_telemetry.primary_partition": "created",
    "high_volume.sensor_telemetry.secondary_partition": "equipment",
    "high_volume.sensor_telemetry.tertiary_partition": "sensor_kind",
    "append_only.reddit_diagnostic_posts.deduplication": "post_idd",
    "incremental.users.change_column": "updated",
    "incremental.parts_inventory.merge_key": "location",
    "append_only.audit_logs.deduplication": "evnt_id",
}
MISSING_COLUMN_CONFIG = (
    HEAD
    + exports(
        item("reddit_diagnostic_posts", "partitioning: {field: posted_on, granularity: daily}"),
        item("youtube_repair_videos", "mode: APPEND", "change_column: changed"),
        item(
            "billing_transactions",
            "mode: FULL_REFRESH",
            "validation: [currency_validation, {transaction_balance_check: {column: body}}]",
        ),
        item(
            "users",
            "mode: FULL_REFRESH",
            "optimization: {column_encoding: {user_id: DELTA_BINARY_PACKED, nosuch: PLAIN}}",
            "gdpr_compliance:",
            "  anonymization: [{emial: hash_sha256}, {phone: mask_except_last_4}]",
            "  excluded_fields: [password_hash, nosuch_field]",
            "validation: [{consent_flag_check: {column: consent}}]",
        ),
    )
    + """\
high_volume:
  sensor_telemetry:
    primary_partition: "date(created)"
    secondary_partition: "equipment % 100"
    tertiary_partition: "sensor_kind"
    path_pattern: "{entity}/{yyyy}/{MM}/{dd}/{HH}/{shard_id}/{sensor_type}/"
append_only:
  reddit_diagnostic_posts: {deduplication: "by post_idd"}
  audit_logs: {deduplication: "by evnt_id on consumer side", change_column: created_at}
incremental:
  users: {change_column: updated}
  parts_inventory: {change_column: inventory_updated_at, merge_key: [part_id, location]}
"""
)


def test_every_setting_naming_a_missing_column_is_reported_at_its_own_path(
    demo_dir: Path,
) -> None:
    code, out, err = _check(demo_dir, MISSING_COLUMN_CONFIG)
    assert code == 2, out + err
    for path, column in MISSING_COLUMNS.items():
        lines = _lines_at(err, path)
        assert len(lines) == 1, (path, err)
        assert f"'{column}'" in lines[0], (path, lines[0])
    # a GDPR column is named at its own path, never at the item's source
    assert not _lines_at(err, "exports[3].source"), err
    assert f"{len(MISSING_COLUMNS)} problem(s)" in err, err


def test_delta_binary_packed_needs_an_integer_column(demo_dir: Path) -> None:
    encodings = "{content: DELTA_BINARY_PACKED, score: DELTA_BINARY_PACKED}"
    text = HEAD + exports(
        item(
            "reddit_diagnostic_posts",
            "partitioning: {field: created_date, granularity: daily}",
            f"optimization: {{column_encoding: {encodings}}}",
        )
    )
    code, out, err = _check(demo_dir, text)
    assert code == 2, out + err
    (line,) = _lines_at(err, "exports[0].optimization.column_encoding.content")
    assert "DELTA_BINARY_PACKED" in line and "INT32 and INT64" in line
    assert not _lines_at(err, "exports[0].optimization.column_encoding.score")  # INTEGER
    # one encoding for every column applies where the type allows it: fine
    text = text.replace(encodings, "DELTA_BINARY_PACKED")
    code, out, err = _check(demo_dir, text)
    assert code == 0, err
    assert "OK (1 tables)" in out


# -- APPEND needs a cursor (CONTRACT §8) ----------------------------------------------------
def test_append_without_a_cursor_names_the_candidate_columns(demo_dir: Path) -> None:
    text = HEAD + exports(
        item("reddit_diagnostic_posts", "mode: APPEND"),
    )
    text += 'append_only:\n  api_access_log: {reason: "Security audit trail"}\n'
    code, out, err = _check(demo_dir, text)
    assert code == 2, out + err
    (reddit,) = _lines_at(err, "exports[0]")
    assert "no cursor" in reddit
    for candidate in ("created_at (TIMESTAMP)", "created_date (DATE)", "scraped_at (TIMESTAMP)"):
        assert candidate in reddit, reddit
    assert "title" not in reddit
    (api,) = _lines_at(err, "append_only.api_access_log")
    assert "requested_at (TIMESTAMP)" in api
    # plan and run refuse it too, before anything is written
    for command in ("plan", "run"):
        before = _tree(demo_dir)
        result = dpexport("-c", demo_dir / "c.yaml", "--local-root", demo_dir / "out", command)
        assert result.code == 2, (command, result.err)
        assert "no cursor" in result.err and "created_date (DATE)" in result.err
        assert _tree(demo_dir) == before


def test_the_specs_own_append_only_block_needs_the_two_cursors(demo_dir: Path) -> None:
    """Spec 4.1 leaves audit_logs and api_access_log without a cursor; the example
    names them in exports items. Without those items, check names both tables."""
    text = (REPO / "examples/diagnosticpro.yaml").read_text(encoding="utf-8")
    start = text.index("  # Not spec blocks: APPEND exports rows past a cursor")
    end = text.index("# Spec 9.1: Export Metrics")
    code, out, err = _check(demo_dir, text[:start] + "\n" + text[end:])
    assert code == 2, out + err
    assert "2 problem(s)" in err, err
    (audit,) = _lines_at(err, "append_only.audit_logs")
    assert "no cursor" in audit and "created_at (TIMESTAMP)" in audit
    (api,) = _lines_at(err, "append_only.api_access_log")
    assert "no cursor" in api and "requested_at (TIMESTAMP)" in api


# -- section entries attach to the table of their entity name -------------------------------
SESSIONS = """\
CREATE SCHEMA analytics;
CREATE TABLE analytics.sessions AS
  SELECT range AS session_id,
         TIMESTAMP '2025-09-10 00:00:00' + to_hours(range) AS updated_at,
         DATE '2025-09-10' + CAST(range // 24 AS INTEGER) AS started_on
  FROM range(72);
"""


def test_a_section_entry_attaches_to_the_exports_item_of_its_entity(demo_dir: Path) -> None:
    warehouse_sql(demo_dir, SESSIONS)
    text = HEAD + exports(
        item(
            "analytics.sessions",
            "mode: APPEND",
            "partitioning: {field: started_on, granularity: daily}",
        )
    )
    text += "append_only:\n  sessions: {change_column: updated_at, archive_after: 90 days}\n"
    code, out, err = _check(demo_dir, text)
    assert code == 0, err
    assert "OK (1 tables)" in out
    config = demo_dir / "c.yaml"
    spec = load_config(config).table("sessions")
    assert (spec.qualified_name, spec.archive_after) == ("analytics.sessions", timedelta(days=90))
    at = "2025-09-11T12:00:00Z"
    plan = dpexport("-c", config, "--local-root", demo_dir / "out", "plan", "--at", at, "--json")
    assert plan.code == 0, plan.err
    (entry,) = json.loads(plan.out)
    assert entry["table"] == "analytics.sessions"
    assert entry["slice"]["cursor"] == "updated_at"  # the append_only entry's change_column
    run = dpexport("-c", config, "--local-root", demo_dir / "out", "run", "--at", at, "--json")
    assert run.code == 0, run.err
    (result,) = json.loads(run.out)
    assert (result["table"], result["status"]) == ("sessions", "SUCCESS")
    # updated_at <= 2025-09-11T12:00 is 37 hourly rows; by started_on it would be 48
    assert result["rows"] == 37
    windows = []
    for uri in result["manifests"]:
        manifest = demo_dir / "out/gs" / uri.removeprefix("gs://")
        windows.append(json.loads(manifest.read_text(encoding="utf-8"))["window"])
    assert max(w["to"] for w in windows).startswith("2025-09-11T12:00:00")


def test_an_entity_name_matching_two_tables_is_refused_naming_both(demo_dir: Path) -> None:
    warehouse_sql(demo_dir, SESSIONS + "CREATE SCHEMA web; CREATE TABLE web.sessions (id INT);")
    text = HEAD + exports(
        item("analytics.sessions", "mode: FULL_REFRESH"),
        item("web.sessions", "mode: FULL_REFRESH"),
    )
    text += "append_only:\n  sessions: {change_column: updated_at}\n"
    code, out, err = _check(demo_dir, text)
    assert code == 2, out + err
    (line,) = _lines_at(err, "append_only.sessions")
    assert "analytics.sessions (exports[0])" in line and "web.sessions (exports[1])" in line


def test_an_entity_name_matching_no_table_names_the_candidates(demo_dir: Path) -> None:
    warehouse_sql(demo_dir, SESSIONS + "CREATE TABLE analytics.events (id INT);")
    text = HEAD + exports(
        item("analytics.sessions", "mode: APPEND", "change_column: updated_at"),
    )
    text += "full_refresh:\n  sesions: {frequency: daily}\n  events: {frequency: daily}\n"
    code, out, err = _check(demo_dir, text)
    assert code == 2, out + err
    (typo,) = _lines_at(err, "full_refresh.sesions")
    assert f"{DS}.sesions not found" in typo and "did you mean 'sessions'?" in typo
    (events,) = _lines_at(err, "full_refresh.events")  # no such table in the config's dataset
    assert f"{DS}.events not found" in events and "analytics.events" in events


# -- without a warehouse --------------------------------------------------------------------
def test_without_a_warehouse_check_says_it_checked_the_config_only(tmp_path: Path) -> None:
    text = HEAD.replace("warehouse.duckdb", "missing.duckdb") + exports(
        item("parts_catalog", "mode: FULL_REFRESH")
    )
    code, out, err = _check(tmp_path, text)
    assert code == 0, err
    assert "OK (1 tables)" in out
    assert "checked the config only" in err and "missing.duckdb" in err
    code, out, err = _check(tmp_path, text.replace("FULL_REFRESH", "SOMETIMES"))
    assert code == 2
    assert _lines_at(err, "exports[0].mode") and "checked the config only" in err


# -- the shipped configs --------------------------------------------------------------------
def test_the_shipped_example_and_the_starter_pass_check_on_the_demo(demo_dir: Path) -> None:
    example = (REPO / "examples/diagnosticpro.yaml").read_text(encoding="utf-8")
    demo = (REPO / "src/dpexport/demo/diagnosticpro.yaml").read_text(encoding="utf-8")
    assert example == demo
    code, out, err = _check(demo_dir, example, name="example.yaml")
    assert code == 0, err
    assert "OK (15 tables)" in out and "checked the config only" not in err
    starter = demo_dir / "starter"
    result = dpexport("init", "--dir", starter)
    assert result.code == 0, result.err
    shutil.copyfile(demo_dir / "warehouse.duckdb", starter / "warehouse.duckdb")
    result = dpexport("-c", starter / "dpexport.yaml", "check")
    assert result.code == 0, result.err
    assert "OK (1 tables)" in result.out and "checked the config only" not in result.err
