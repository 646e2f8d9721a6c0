"""One public function per command, making the command's checks (issue 16, point 5):
a string is one table, an unknown table is refused naming the choices, the warehouse's
schemas are checked before anything runs, and a failed export raises ``ExportFailed``
holding every result (``raise_on_failure=False`` returns them)."""

from __future__ import annotations

import ast
import json
import sys
import types
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import click
import duckdb
import pytest
from click.testing import CliRunner

import dpexport
from dpexport.cli import cli
from dpexport.errors import ConfigError, ExportFailed, UnknownTable, UsageError

AT = datetime(2025, 9, 17, tzinfo=UTC)
CONFIG = """\
warehouse: {engine: duckdb, path: warehouse.duckdb}
exports:
  - source: s.users
    destination: gs://b/users/
    format: PARQUET
    compression: SNAPPY
    schedule: "0 * * * *"
  - source: s.orders
    destination: gs://b/orders/
    format: JSONL
    compression: GZIP
"""


def _sql(base: Path, sql: str) -> None:
    con = duckdb.connect(str(base / "warehouse.duckdb"))
    try:
        con.execute(sql)
    finally:
        con.close()


@pytest.fixture
def base(tmp_path: Path) -> Path:
    """A warehouse with two small tables, and a config exporting both."""
    _sql(
        tmp_path,
        "CREATE SCHEMA s;"
        "CREATE TABLE s.users AS SELECT i AS id, 'u' || i AS name FROM range(10) r(i);"
        "CREATE TABLE s.orders AS SELECT i AS id, i * 2 AS amount FROM range(7) r(i);",
    )
    (tmp_path / "dpexport.yaml").write_text(CONFIG, encoding="utf-8")
    return tmp_path


def _invoke(base: Path, *args: str) -> tuple[int, str, BaseException | None]:
    common = ["-c", str(base / "dpexport.yaml"), "--local-root", str(base / "out")]
    result = CliRunner().invoke(cli, [*common, *args])
    return result.exit_code, result.output, result.exception


# -- every command is a function ----------------------------------------------------------
def _command_functions() -> list[str]:
    names = []
    ctx = click.Context(cli)
    for name in cli.list_commands(ctx):
        command = cli.get_command(ctx, name)
        subcommands = getattr(command, "commands", None)
        if subcommands:
            names += [f"{name}_{sub}" for sub in subcommands]
        else:
            names.append(name)
    return sorted(names)


def test_every_command_has_a_public_function() -> None:
    names = _command_functions()
    assert "logs_query" in names and "dlq_retry" in names and "lifecycle_sweep" in names
    missing = [n for n in names if n not in dpexport.__all__]
    assert missing == []
    assert all(callable(getattr(dpexport, n)) for n in names)


def test_a_function_keeps_its_name_when_a_submodule_shares_it() -> None:
    import dpexport.demo.warehouse
    import dpexport.ops.compact  # the submodules, as any other module imports them
    import dpexport.planning.plan

    for name in ("plan", "compact", "demo"):
        assert isinstance(getattr(dpexport, name), types.FunctionType), name
    assert isinstance(sys.modules["dpexport.planning.plan"], types.ModuleType)


def test_the_cli_modules_import_nothing_private_from_each_other() -> None:
    folder = Path(dpexport.__file__).parent / "cli"
    paths = sorted(folder.glob("*.py"))
    assert len(paths) > 2, "the CLI is a package of modules"
    private = []
    for path in paths:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("dpexport"):
                private += [f"{path.name}: {a.name}" for a in node.names if a.name.startswith("_")]
    assert private == []


# -- run -----------------------------------------------------------------------------------
def test_a_string_is_one_table(base: Path) -> None:
    config = dpexport.load_config(base / "dpexport.yaml")
    results = dpexport.run(config, tables="users", at=AT, local_root=base / "out")
    assert [(r.table, r.status, r.rows) for r in results] == [("users", "SUCCESS", 10)]


def test_an_unknown_table_names_the_choices_and_writes_nothing(base: Path) -> None:
    config = dpexport.load_config(base / "dpexport.yaml")
    with pytest.raises(UnknownTable) as caught:
        dpexport.run(config, tables=["users", "userz"], at=AT, local_root=base / "out")
    error = caught.value
    assert isinstance(error, UsageError) and error.exit_code == 2
    assert (error.name, error.choices, error.suggestion) == ("userz", ["users", "orders"], "users")
    assert "did you mean 'users'?" in str(error) and "users, orders" in str(error)
    assert not (base / "out").exists()
    for call in (
        lambda: dpexport.plan(config, tables="nope", at=AT),
        lambda: dpexport.compact(config, "nope", local_root=base / "out"),
        lambda: dpexport.replicate(config, tables=["nope"], local_root=base / "out"),
        lambda: dpexport.schedule(config, tables="nope", once=True, local_root=base / "out"),
    ):
        with pytest.raises(UnknownTable, match="users, orders"):
            call()
    assert not (base / "out").exists()


def test_the_cli_refuses_an_unknown_table_with_the_same_error(base: Path) -> None:
    _, _, error = _invoke(base, "run", "--table", "ordres")
    assert isinstance(error, UnknownTable) and error.suggestion == "orders"


def test_run_checks_the_config_against_the_warehouse_as_the_cli_does(base: Path) -> None:
    """A partition field the source lacks: ``dpexport run`` exits 2 naming it, and the
    Python call raises the same ConfigError before anything is written."""
    text = CONFIG.replace("    schedule:", "    partitioning: {field: made_at}\n    schedule:")
    (base / "dpexport.yaml").write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError, match="made_at"):
        dpexport.run(base / "dpexport.yaml", at=AT, local_root=base / "out")
    assert not (base / "out").exists()
    _, _, error = _invoke(base, "run")
    assert isinstance(error, ConfigError) and "made_at" in str(error)


def test_a_failed_export_raises_with_every_result(base: Path) -> None:
    config = dpexport.load_config(base / "dpexport.yaml")
    _sql(base, "DROP TABLE s.orders")
    with pytest.raises(ExportFailed) as caught:
        dpexport.run(config, at=AT, local_root=base / "out")
    error = caught.value
    assert error.exit_code == 1
    assert [(r.table, r.status) for r in error.results] == [
        ("users", "SUCCESS"),
        ("orders", "FAILURE"),
    ]
    assert [r.table for r in error.failed] == ["orders"]
    assert "1 of 2 export(s) failed: orders:" in str(error)
    # the failure was recorded as the CLI's would be: a DLQ entry, an export log
    [entry] = dpexport.dlq_list(config, local_root=base / "out", now=AT)
    assert entry.table and entry.table.endswith("orders")
    [(_, rows)] = dpexport.logs_query(
        config,
        "SELECT status, count(*) FROM export_logs GROUP BY 1 ORDER BY 1",
        local_root=base / "out",
    )
    assert rows == [("FAILURE", 1), ("SUCCESS", 1)]


def test_raise_on_failure_false_returns_the_failure(base: Path) -> None:
    _sql(base, "DROP TABLE s.orders")
    results = dpexport.run(
        base / "dpexport.yaml", at=AT, local_root=base / "out", raise_on_failure=False
    )
    assert [r.status for r in results] == ["SUCCESS", "FAILURE"]


# -- the other commands --------------------------------------------------------------------
def test_plan_returns_what_plan_json_prints(base: Path) -> None:
    plans = dpexport.plan(base / "dpexport.yaml", tables="orders", at=AT, local_root=base / "out")
    code, output, error = _invoke(
        base, "plan", "--table", "orders", "--at", AT.isoformat(), "--json"
    )
    assert code == 0, error
    assert json.loads(json.dumps(plans, default=str)) == json.loads(output)
    assert [p["table"] for p in plans] == ["s.orders"]
    assert not (base / "out").exists()


def test_check_says_whether_the_warehouse_was_checked(base: Path) -> None:
    report = dpexport.check(base / "dpexport.yaml")
    assert report == dpexport.CheckReport(tables=2, warehouse_problem=None)
    (base / "warehouse.duckdb").unlink()
    report = dpexport.check(base / "dpexport.yaml")
    assert report.tables == 2 and "does not exist" in str(report.warehouse_problem)


def test_a_workspace_is_a_config_with_its_local_root(base: Path) -> None:
    workspace = dpexport.Workspace.load(base / "dpexport.yaml", local_root=base / "out")
    assert [s.table for s in workspace.select("s.orders")] == ["orders"]
    [result] = dpexport.run(workspace, tables="orders", at=AT)
    assert result.status == "SUCCESS" and (base / "out/gs/b/orders").is_dir()
    with pytest.raises(TypeError):
        dpexport.run(workspace, local_root=base / "elsewhere")
    with pytest.raises(UsageError, match="not found"):
        dpexport.Workspace.load(base / "missing.yaml")


def test_status_and_schedule_replay(base: Path) -> None:
    ticks: list[Any] = []
    ok = dpexport.schedule(
        base / "dpexport.yaml",
        replay=(AT, AT + timedelta(hours=2)),
        on_tick=ticks.append,
        local_root=base / "out",
    )
    assert ok and [t.at for t in ticks] == [AT + timedelta(hours=1), AT + timedelta(hours=2)]
    statuses = dpexport.status(base / "dpexport.yaml", local_root=base / "out")
    assert {s.table: s.rows for s in statuses} == {"users": 10, "orders": None}
    with pytest.raises(UsageError, match="no schedule"):
        dpexport.schedule(base / "dpexport.yaml", tables="orders", once=True)


def test_each_family_module_holds_the_commands_the_group_names() -> None:
    """The top-level group loads a command's module when the command is asked for, by a
    table of names: a command added to a module but not to the table would be missing,
    one in the table but not the module would fail to load."""
    import importlib

    from dpexport.cli import FAMILIES

    for family, names in FAMILIES.items():
        module = importlib.import_module(f"dpexport.cli.{family}")
        assert tuple(c.name for c in module.COMMANDS) == names
    ctx = click.Context(cli)
    assert all(cli.get_command(ctx, n) is not None for n in cli.list_commands(ctx))
    assert cli.get_command(ctx, "nope") is None
