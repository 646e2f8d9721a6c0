"""``--json`` on every command (issue 23, docs/json.md): each prints one JSON document on
stdout as ONE line ending in exactly one newline (``schedule``: one object a line), in
its documented shape, with the exit codes of the text form; ``--log-format json`` makes
every stderr line a JSON object; ``init`` writes a starter that passes ``check`` on the
demo warehouse, and ``init --example diagnosticpro`` the spec config."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click
import pytest

from tests.alert_servers import AlertReceiver, alert_receiver  # noqa: F401 (a fixture)
from tests.e2e.cli import Result, dpexport

REPO = Path(__file__).resolve().parents[2]
BUCKET = "gs://diagnosticpro-exports"
#: the demo config plus a Slack channel (``alerts test`` needs one)
CHANNELS = "metrics:\n  channels:\n    slack: {url_env: SLACK_WEBHOOK_URL}\n"
#: a table whose check fails, into a folder ``verify .../prod/`` does not read: a DLQ entry
FAILING = """\
project: p
environment: test
warehouse: {engine: duckdb, path: warehouse.duckdb}
buckets: {exports: gs://diagnosticpro-exports}
exports:
  - source: diagnosticpro_prod.reddit_diagnostic_posts
    destination: gs://diagnosticpro-exports/test/reddit/
    format: PARQUET
    compression: SNAPPY
    partitioning: {field: created_date, granularity: daily}
    mode: APPEND
    validation:
      - content_length_check: {max: 10}
"""
#: an INCREMENTAL table no service account restricts: ``compact`` folds its exports
INCREMENTAL = """\
project: p
environment: test
warehouse: {engine: duckdb, path: warehouse.duckdb}
buckets: {exports: gs://diagnosticpro-exports}
exports:
  - source: diagnosticpro_prod.parts_inventory
    destination: gs://diagnosticpro-exports/test/parts_inventory/
    format: PARQUET
    compression: ZSTD
    mode: INCREMENTAL
    change_column: inventory_updated_at
    merge_key: [part_id, location_id]
"""


@dataclass
class Demo:
    base: Path
    config: Path
    root: Path

    def cli(self, *args: str | Path, env: dict[str, str] | None = None) -> Result:
        return dpexport("-c", self.config, "--local-root", self.root, *args, env=env)


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory, demo_warehouse: Path) -> Iterator[Demo]:
    """The demo warehouse exported once, with one failed export in the DLQ."""
    base = tmp_path_factory.mktemp("json")
    shutil.copyfile(demo_warehouse, base / "warehouse.duckdb")
    (base / "warehouse.duckdb").chmod(0o644)
    text = (REPO / "src/dpexport/demo/diagnosticpro.yaml").read_text(encoding="utf-8")
    config = base / "dpexport.yaml"
    config.write_text(text.replace("metrics:\n", CHANNELS, 1), encoding="utf-8")
    found = Demo(base, config, base / "out")
    assert found.cli("run").code == 0
    (base / "failing.yaml").write_text(FAILING, encoding="utf-8")
    failed = dpexport("-c", base / "failing.yaml", "--local-root", found.root, "run")
    assert failed.code == 1, failed.err
    yield found


def one_document(result: Result) -> Any:
    """stdout's one JSON document: a single line with exactly one newline at its end."""
    assert result.out.endswith("\n") and not result.out.endswith("\n\n"), result.out[-200:]
    assert result.out.count("\n") == 1, result.out[:400]
    return json.loads(result.out)


def has_keys(doc: Any, keys: set[str]) -> None:
    assert isinstance(doc, dict) and keys <= set(doc), (keys - set(doc), doc)


RESULT_KEYS = {"table", "export_id", "status", "rows", "files", "manifests", "error", "reason"}
#: (arguments, exit codes allowed, the keys of the document or of each array item,
#: whether the array must have items); None as the keys: not an array but an object
CASES: list[tuple[tuple[str, ...], tuple[int, ...], set[str], bool | None]] = [
    (("check",), (0,), {"ok", "config", "tables", "warehouse_checked", "errors", "warnings"}, None),
    (
        ("plan", "--table", "users"),
        (0,),
        {"table", "mode", "slice", "window", "path", "idempotency_token", "cost_usd"},
        True,
    ),
    (("run", "--table", "users"), (0,), RESULT_KEYS, True),
    (
        ("verify", f"{BUCKET}/prod/"),
        (0,),
        {"ok", "uri", "manifests", "files", "rows", "problems"},
        None,
    ),
    (("status",), (0,), {"table", "last_export", "rows", "freshness", "dlq_open"}, True),
    (
        ("logs", "query", "SELECT status, count(*) AS n FROM export_logs GROUP BY 1"),
        (0,),
        {"n"},
        True,
    ),
    (("dlq", "list"), (0,), {"export_id", "state", "table", "age_hours", "error"}, True),
    (
        ("replicate",),
        (0,),
        {"replication", "table", "target", "copied", "mismatches", "errors"},
        True,
    ),
    (("lifecycle", "apply"), (0,), {"store", "applied", "not_applied", "error"}, True),
    (("lifecycle", "sweep", "--dry-run"), (0,), {"store", "rule", "keys", "status"}, False),
    (("lifecycle", "archive", "--dry-run"), (0,), {"table", "moved", "folders"}, False),
    (("reconcile", "--dry-run"), (0,), {"table", "late_rows", "folders", "error"}, True),
    (("alerts", "list"), (0,), {"rule", "table"}, False),
    (("dlq", "retry"), (0, 1), {"export_id", "outcome", "new_export_id", "error"}, True),
    (("dlq", "purge"), (0,), set(), False),
]


@pytest.mark.slow
@pytest.mark.parametrize(
    ("args", "codes", "keys", "items"), CASES, ids=[" ".join(c[0][:2]) for c in CASES]
)
def test_each_command_prints_its_shape_on_one_line(
    demo: Demo, args: tuple[str, ...], codes: tuple[int, ...], keys: set[str], items: bool | None
) -> None:
    result = demo.cli(*args, "--json")
    assert result.code in codes, result.err
    doc = one_document(result)
    if items is None:
        has_keys(doc, keys)
        return
    assert isinstance(doc, list) and (doc or not items), doc
    for item in doc:
        if keys:
            has_keys(item, keys)
        else:  # dlq purge: the export ids purged
            assert isinstance(item, str)


def test_iam_render_json_has_the_buckets_then_the_keys(demo: Demo) -> None:
    result = demo.cli("iam", "render", "--json")
    assert result.code == 0, result.err
    docs = one_document(result)
    buckets = [d for d in docs if "bucket" in d]
    keys = [d for d in docs if "kms_key" in d]
    assert buckets and len(buckets) + len(keys) == len(docs)
    assert all({"gcloud", "iam_policy", "terraform"} <= set(d) for d in buckets)
    assert all({"key_rotation_days", "command"} <= set(d) for d in keys)


def test_check_json_reports_every_error_and_exits_2(demo: Demo) -> None:
    bad = demo.base / "bad.yaml"
    bad.write_text(
        FAILING.replace("SNAPPY", "SNAPPIER").replace("daily", "weekly"), encoding="utf-8"
    )
    result = dpexport("-c", bad, "check", "--json")
    assert result.code == 2
    doc = one_document(result)
    assert doc["ok"] is False and doc["tables"] is None
    paths = {e["path"] for e in doc["errors"]}
    assert {"exports[0].compression", "exports[0].partitioning.granularity"} <= paths, paths
    assert all(e["message"] for e in doc["errors"])
    assert "SNAPPIER" in result.err  # the text on stderr, as without --json
    missing = dpexport("-c", demo.base / "nothing.yaml", "check", "--json")
    assert missing.code == 2
    doc = one_document(missing)
    assert doc["ok"] is False and "not found" in doc["errors"][0]["message"]


def test_check_json_lists_the_warnings_it_logged(demo: Demo) -> None:
    doc = one_document(demo.cli("check", "--json"))
    assert doc["ok"] is True and doc["tables"] == 15 and doc["warehouse_checked"] is True
    assert doc["errors"] == []
    assert any("pagerduty" in w for w in doc["warnings"]), doc["warnings"]


def test_compact_json(demo: Demo) -> None:
    config = demo.base / "inventory.yaml"
    config.write_text(INCREMENTAL, encoding="utf-8")
    assert dpexport("-c", config, "--local-root", demo.root, "run").code == 0
    result = dpexport(
        "-c", config, "--local-root", demo.root, "compact", "--json", "--table", "parts_inventory"
    )
    assert result.code == 0, result.err
    [snapshot] = one_document(result)
    has_keys(snapshot, RESULT_KEYS)
    assert snapshot["status"] == "SUCCESS" and snapshot["rows"] > 0
    assert "/parts_inventory__snapshot/" in snapshot["manifests"][0]


def test_decrypt_json_names_the_plain_file(demo: Demo) -> None:
    import hashlib

    [sealed, *_] = sorted(demo.root.rglob("users_*.enc"))
    out = demo.base / "users.jsonl.gz"
    result = demo.cli("decrypt", sealed, "-o", out, "--json")
    assert result.code == 0, result.err
    doc = one_document(result)
    plain = out.read_bytes()
    assert doc == {
        "source": str(sealed),
        "output": str(out),
        "bytes": len(plain),
        "sha256": hashlib.sha256(plain).hexdigest(),
    }
    refused = demo.cli("decrypt", sealed, "--json")
    assert refused.code == 2 and "-o" in refused.err and refused.out == ""


def test_alerts_test_json(demo: Demo, alert_receiver: AlertReceiver) -> None:  # noqa: F811
    env = {"SLACK_WEBHOOK_URL": alert_receiver.slack_url}
    result = demo.cli("alerts", "test", "--json", env=env)
    assert result.code == 0, result.err
    [doc] = one_document(result)
    assert doc == {
        "channel": "slack",
        "rule": "test",
        "action": "trigger",
        "outcome": "sent",
        "attempts": 1,
        "error": None,
    }


@pytest.mark.slow
def test_schedule_json_is_one_object_a_line(demo: Demo) -> None:
    at = "2026-01-05T03:00:30Z"
    result = demo.cli("schedule", "--once", "--table", "users", "--now", at, "--json")
    assert result.code == 0, result.err
    lines = result.out.splitlines()
    assert lines and result.out.endswith("\n") and not result.out.endswith("\n\n")
    for line in lines:
        record = json.loads(line)
        assert {"at", "table", "status"} <= set(record)
    assert [json.loads(line)["table"] for line in lines] == ["users"]


@pytest.mark.slow
def test_demo_and_init_json(tmp_path: Path) -> None:
    made = dpexport("demo", "--dir", tmp_path / "demo", "--rows", "300", "--json")
    assert made.code == 0, made.err
    doc = one_document(made)
    has_keys(doc, {"warehouse", "config", "local_root", "exports", "results"})
    assert Path(doc["config"]) == tmp_path / "demo" / "dpexport.yaml"
    assert doc["results"] and all(r["status"] == "SUCCESS" for r in doc["results"])
    assert Path(doc["exports"]).is_dir()
    result = dpexport("init", "--dir", tmp_path / "new", "--json")
    assert result.code == 0, result.err
    assert one_document(result) == {"config": str(tmp_path / "new/dpexport.yaml"), "example": None}


def test_the_starter_passes_check_and_runs_on_the_demo_warehouse(
    tmp_path: Path, demo_warehouse: Path
) -> None:
    assert dpexport("init", "--dir", tmp_path).code == 0
    text = (tmp_path / "dpexport.yaml").read_text(encoding="utf-8")
    assert len(text.splitlines()) <= 40 and text.count("- source:") == 1
    keys = [line for line in text.splitlines() if ":" in line and not line.startswith("#")]
    assert all("#" in line for line in keys), "every key of the starter is commented"
    shutil.copyfile(demo_warehouse, tmp_path / "warehouse.duckdb")
    checked = dpexport("-c", tmp_path / "dpexport.yaml", "check", "--json")
    assert checked.code == 0, checked.err
    doc = one_document(checked)
    assert (doc["ok"], doc["tables"], doc["warehouse_checked"]) == (True, 1, True)
    ran = dpexport("run", "--json", cwd=tmp_path)  # its bucket is ./exports
    assert ran.code == 0, ran.err
    [record] = one_document(ran)
    assert record["status"] == "SUCCESS" and record["rows"] > 0
    assert record["manifests"] and all((tmp_path / uri).is_file() for uri in record["manifests"]), (
        record["manifests"]
    )


def test_init_example_diagnosticpro_is_the_spec_config(tmp_path: Path) -> None:
    result = dpexport("init", "--dir", tmp_path, "--example", "diagnosticpro", "--json")
    assert result.code == 0, result.err
    assert one_document(result)["example"] == "diagnosticpro"
    written = (tmp_path / "dpexport.yaml").read_text(encoding="utf-8")
    assert written == (REPO / "examples/diagnosticpro.yaml").read_text(encoding="utf-8")
    unknown = dpexport("init", "--dir", tmp_path / "x", "--example", "nope")
    assert unknown.code == 2 and "diagnosticpro" in unknown.err


def test_json_logs_are_one_object_a_line(demo: Demo) -> None:
    result = demo.cli("--log-format", "json", "--debug", "run", "--table", "users")
    assert result.code == 0, result.err
    records = [json.loads(line) for line in result.err.splitlines()]
    assert records and all({"ts", "level", "logger", "message"} <= set(r) for r in records)
    assert all(r["logger"].startswith("dpexport") and r["ts"].endswith("Z") for r in records)
    assert "DEBUG" in {r["level"] for r in records}
    # the result line people read is a record too
    [line] = [r for r in records if r["logger"] == "dpexport.cli"]
    assert line["level"] == "INFO" and line["message"].startswith("SUCCESS  users")
    checked = demo.cli("check", env={"DPEXPORT_LOG_FORMAT": "json"})
    warnings = [json.loads(line) for line in checked.err.splitlines()]
    assert warnings and {r["level"] for r in warnings} == {"WARNING"}
    failed = demo.cli("run", "--table", "nope", env={"DPEXPORT_LOG_FORMAT": "json"})
    assert failed.code == 2
    [*_, last] = [json.loads(line) for line in failed.err.splitlines()]
    assert last["level"] == "ERROR" and "'nope'" in last["message"]
    usage = demo.cli("--log-format", "json", "run", "--bogus")
    assert usage.code == 2 and "--bogus" in json.loads(usage.err)["message"]


def test_every_command_takes_json() -> None:
    from dpexport.cli import cli

    def leaves(group: click.Group, prefix: str) -> Iterator[tuple[str, click.Command]]:
        ctx = click.Context(group)
        for name in group.list_commands(ctx):
            command = group.get_command(ctx, name)
            assert command is not None, name
            if isinstance(command, click.Group):
                yield from leaves(command, f"{prefix}{name} ")
            else:
                yield prefix + name, command

    missing = [
        name
        for name, command in leaves(cli, "")
        if not any(p.name == "as_json" for p in command.params)
    ]
    assert missing == []
