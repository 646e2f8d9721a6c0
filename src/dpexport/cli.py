"""The ``dpexport`` command line: thin commands over the library (CONTRACT §2)."""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any, TypeVar

import click

from dpexport import TRIGGERS
from dpexport.errors import ConfigError, DpexportError, UsageError

F = TypeVar("F", bound=Callable[..., Any])
log = logging.getLogger("dpexport")


def _common(func: F) -> F:
    """``-c`` and ``--local-root`` are accepted before or after the command name."""
    func = click.option(
        "-c",
        "--config",
        "config_path",
        type=click.Path(dir_okay=False),
        default=None,
        help="Config file (default ./dpexport.yaml or $DPEXPORT_CONFIG).",
    )(func)
    func = click.option(
        "--local-root",
        type=click.Path(file_okay=False),
        default=None,
        help="Map gs:// s3:// az:// URIs and KMS keys to folders under DIR "
        "(or $DPEXPORT_LOCAL_ROOT).",
    )(func)
    return func


class _Settings:
    def __init__(self) -> None:
        self.config_path: str | None = None
        self.local_root: str | None = None
        self.debug = False

    def merge(self, config_path: str | None, local_root: str | None) -> None:
        self.config_path = config_path or self.config_path
        self.local_root = local_root or self.local_root

    @property
    def config_file(self) -> Path:
        return Path(self.config_path or os.environ.get("DPEXPORT_CONFIG") or "dpexport.yaml")

    @property
    def root(self) -> Path | None:
        value = self.local_root or os.environ.get("DPEXPORT_LOCAL_ROOT")
        return Path(value).resolve() if value else None


def _settings(ctx: click.Context, config_path: str | None, local_root: str | None) -> _Settings:
    settings: _Settings = ctx.ensure_object(_Settings)
    settings.merge(config_path, local_root)
    return settings


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@_common
@click.option("--debug", is_flag=True, help="Show tracebacks and debug logs.")
@click.version_option(package_name="dpexport")
@click.pass_context
def cli(ctx: click.Context, config_path: str | None, local_root: str | None, debug: bool) -> None:
    """Export warehouse tables to object storage, exactly once (spec: DiagnosticPro S3)."""
    settings = _settings(ctx, config_path, local_root)
    settings.debug = debug
    _setup_logging(debug)


def _setup_logging(debug: bool) -> None:
    level = logging.DEBUG if debug else logging.INFO
    handler: logging.Handler
    if sys.stderr.isatty():
        from rich.logging import RichHandler

        from dpexport.progress import stderr_console

        handler = RichHandler(console=stderr_console(), show_path=False, show_time=False)
        handler.setFormatter(logging.Formatter("%(message)s"))
    else:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(
            logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%Y-%m-%dT%H:%M:%SZ")
        )
    root = logging.getLogger("dpexport")
    root.handlers[:] = [handler]
    root.setLevel(level)
    root.propagate = False


def _load(settings: _Settings) -> Any:
    from dpexport.config import load_config

    path = settings.config_file
    if not path.exists():
        raise UsageError(
            f"config file {str(path)!r} not found (set -c PATH or $DPEXPORT_CONFIG, "
            "or run 'dpexport init')"
        )
    return load_config(path)


def _open_engine(config: Any) -> Any:
    from dpexport.engines import open_engine

    base = Path(config.source_path).parent if config.source_path else None
    return open_engine(config.warehouse, base_dir=base)


def _check_schemas(config: Any, engine: Any) -> None:
    """Config problems that need the warehouse (partition expressions on missing columns)."""
    from dpexport.config import check_against_schemas

    schemas: dict[str, list[str]] = {}
    for table in config.tables:
        if engine.table_exists(table.dataset, table.table):
            schemas[table.qualified_name] = list(engine.schema(table.dataset, table.table).names)
    issues = check_against_schemas(config, schemas)
    if issues:
        raise ConfigError(issues, source=config.source_path)


def _parse_at(at: str | None) -> datetime | None:
    if not at:
        return None
    try:
        value = datetime.fromisoformat(at.replace("Z", "+00:00"))
    except ValueError:
        raise UsageError(
            f"--at: {at!r} is not an RFC 3339 time (e.g. 2025-09-16T14:30:22Z)"
        ) from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


@cli.command()
@_common
@click.pass_context
def check(ctx: click.Context, config_path: str | None, local_root: str | None) -> None:
    """Parse and validate the config; list every error with its YAML path."""
    settings = _settings(ctx, config_path, local_root)
    config = _load(settings)
    engine = None
    try:
        engine = _open_engine(config)
        _check_schemas(config, engine)
    except UsageError as exc:
        log.warning("warehouse not checked: %s", exc)
    finally:
        if engine is not None:
            engine.close()
    click.echo(f"{settings.config_file}: OK ({len(config.tables)} tables)")


@cli.command()
@_common
@click.option("--table", "tables", multiple=True, help="table or dataset.table (repeatable)")
@click.option("--at", "at", default=None, help="logical run time, RFC 3339 (default: now, UTC)")
@click.option("--trigger", type=click.Choice(TRIGGERS), default="manual")
@click.option("--as", "principal", default=None, help="principal the export runs as")
@click.option("--json", "as_json", is_flag=True, help="print one JSON array on stdout")
@click.pass_context
def run(
    ctx: click.Context,
    config_path: str | None,
    local_root: str | None,
    tables: tuple[str, ...],
    at: str | None,
    trigger: str,
    principal: str | None,
    as_json: bool,
) -> None:
    """Run the exports (all, or the named tables)."""
    settings = _settings(ctx, config_path, local_root)
    results = _run(settings, tables, _parse_at(at), trigger, principal)
    _report(results, as_json)
    ctx.exit(0 if all(r.status != "FAILURE" for r in results) else 1)


def _run(
    settings: _Settings,
    tables: tuple[str, ...],
    at: datetime | None,
    trigger: str,
    principal: str | None,
) -> list[Any]:
    from dpexport.progress import make_progress
    from dpexport.runner import RunOptions, run_exports, select_tables

    config = _load(settings)
    try:
        select_tables(config, tables)
    except KeyError as exc:
        known = ", ".join(t.table for t in config.tables)
        raise UsageError(
            f"--table {exc.args[0]!r}: no such table in the config ({known})"
        ) from None
    engine = _open_engine(config)
    try:
        _check_schemas(config, engine)
        with make_progress() as progress:
            options = RunOptions(
                tables=tables,
                at=at,
                trigger=trigger,
                principal=principal,
                local_root=settings.root,
                progress=progress,
            )
            return run_exports(config, engine, options)
    finally:
        engine.close()


def _report(results: list[Any], as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps([r.to_json() for r in results], indent=2))
        return
    for r in results:
        line = f"{r.status:8} {r.table:32} rows={r.rows:<10} files={r.files:<4}"
        if r.error:
            line += f" error: {r.error}"
        if r.reason:
            line += f" ({r.reason})"
        click.echo(line, err=True)


@cli.command()
@_common
@click.option("--table", "tables", multiple=True, help="table or dataset.table (repeatable)")
@click.option("--at", "at", default=None, help="logical run time, RFC 3339 (default: now, UTC)")
@click.option("--json", "as_json", is_flag=True, help="print one JSON array on stdout")
@click.pass_context
def plan(
    ctx: click.Context,
    config_path: str | None,
    local_root: str | None,
    tables: tuple[str, ...],
    at: str | None,
    as_json: bool,
) -> None:
    """Show what a run would do: slices, windows, folders, tokens, sizes. Writes nothing."""
    from dpexport.plan import describe
    from dpexport.runner import select_tables
    from dpexport.storage.uri import StoreResolver

    settings = _settings(ctx, config_path, local_root)
    config = _load(settings)
    try:
        specs = select_tables(config, tables)
    except KeyError as exc:
        raise UsageError(f"--table {exc.args[0]!r}: no such table in the config") from None
    logical = _parse_at(at) or datetime.now(UTC)
    stores = StoreResolver(settings.root)
    engine = _open_engine(config)
    try:
        _check_schemas(config, engine)
        plans = [
            describe(spec, engine=engine, logical_time=logical, **_destination(stores, spec))
            for spec in specs
        ]
    finally:
        engine.close()
    if as_json:
        click.echo(json.dumps(plans, indent=2, default=str))
        return
    for p in plans:
        sl = p["slice"]
        window = p["window"] or {}
        click.echo(f"{p['table']}  {p['mode']}  {p['format']}/{p['compression']}")
        click.echo(f"  destination  {p['destination']}{p['layout']}")
        if sl["cursor"]:
            op = ">=" if sl["after_inclusive"] else ">"
            after = f"{sl['cursor']} {op} {sl['after']}" if sl["after"] is not None else "start"
            click.echo(f"  slice        {after}, <= {sl['through']}")
            click.echo(f"  window       {window.get('from')} .. {window.get('to')}")
        click.echo(f"  path         {p['path']}")
        click.echo(f"  token        {p['idempotency_token']} ({p['token_status'] or 'new'})")
        click.echo(
            f"  estimate     {p['estimated_rows']} rows, ~{p['estimated_bytes']} bytes "
            f"in memory, {p['folders']} folder(s)"
        )
        for warning in p["warnings"]:
            click.echo(f"  WARNING      {warning}")


@cli.command()
@_common
@click.option("--table", "table", required=True, help="an INCREMENTAL table")
@click.option("--at", "at", default=None, help="logical time of the snapshot (default now)")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def compact(
    ctx: click.Context,
    config_path: str | None,
    local_root: str | None,
    table: str,
    at: str | None,
    as_json: bool,
) -> None:
    """Fold an INCREMENTAL table's exports into one snapshot by its merge key."""
    from dpexport.compact import compact as fold

    settings = _settings(ctx, config_path, local_root)
    config = _load(settings)
    try:
        config.table(table)
    except KeyError:
        raise UsageError(f"--table {table!r}: no such table in the config") from None
    result = fold(config, table, at=_parse_at(at), local_root=settings.root)
    _report([result], as_json)
    ctx.exit(0 if result.status != "FAILURE" else 1)


@cli.command()
@_common
@click.argument("uri")
@click.pass_context
def verify(ctx: click.Context, config_path: str | None, local_root: str | None, uri: str) -> None:
    """Re-check an export: a manifest, or a folder holding manifests (recursively)."""
    from dpexport.storage.uri import uri_problem
    from dpexport.verification import verify_uri

    problem = uri_problem(uri)
    if problem is not None:  # a malformed argument, not a failed check: exit 2
        hint = f"; did you mean {problem.suggestion!r}?" if problem.suggestion else ""
        raise UsageError(f"verify {uri!r}: {problem.message}; expected {problem.expected}{hint}")
    settings = _settings(ctx, config_path, local_root)
    report = verify_uri(uri, local_root=settings.root)
    for line in report.lines():
        click.echo(line)
    ctx.exit(0 if report.ok else 1)


@cli.command()
@_common
@click.argument("source")
@click.option("-o", "--output", type=click.Path(dir_okay=False), default=None)
@click.pass_context
def decrypt(
    ctx: click.Context,
    config_path: str | None,
    local_root: str | None,
    source: str,
    output: str | None,
) -> None:
    """Restore a client-side encrypted (.enc) file to its plain bytes."""
    from dpexport.security.files import decrypt_to

    settings = _settings(ctx, config_path, local_root)
    decrypt_to(source, output, local_root=settings.root)


@cli.command()
@_common
@click.option("--dir", "directory", type=click.Path(file_okay=False), default=".")
@click.option("--force", is_flag=True, help="overwrite an existing dpexport.yaml")
@click.pass_context
def init(
    ctx: click.Context, config_path: str | None, local_root: str | None, directory: str, force: bool
) -> None:
    """Write a starter dpexport.yaml (the spec's blocks)."""
    from dpexport.demo import example_config_text

    target = Path(directory) / "dpexport.yaml"
    if target.exists() and not force:
        raise UsageError(f"{target} exists; pass --force to overwrite it")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(example_config_text(), encoding="utf-8")
    click.echo(f"wrote {target}")


@cli.command()
@_common
@click.option("--dir", "directory", type=click.Path(file_okay=False), default="dpexport-demo")
@click.option(
    "--rows",
    type=click.IntRange(min=1),
    default=20_000,
    help="rows of the largest table (sensor_telemetry); others scale with it",
)
@click.pass_context
def demo(
    ctx: click.Context, config_path: str | None, local_root: str | None, directory: str, rows: int
) -> None:
    """Create a demo warehouse and config, run every export, print where to look."""
    from dpexport.demo import prepare_demo

    settings = _settings(ctx, config_path, local_root)
    base = Path(directory).resolve()
    config_file, root = prepare_demo(base, rows)
    settings.config_path = str(config_file)
    settings.local_root = str(settings.root or root)
    results = _run(settings, (), None, "manual", None)
    _report(results, as_json=False)
    bucket = Path(settings.local_root) / "gs" / "diagnosticpro-exports"
    click.echo(
        f"\nwarehouse: {base / 'warehouse.duckdb'}\nconfig:    {config_file}\n"
        f"exports:   {bucket}/prod/\n"
        f"try:       {_self_command()} --local-root {settings.local_root} -c {config_file} "
        f"verify gs://diagnosticpro-exports/prod/"
    )
    ctx.exit(0 if all(r.status != "FAILURE" for r in results) else 1)


def _destination(stores: Any, spec: Any) -> dict[str, Any]:
    from dpexport.plan import destination_of

    store, key = destination_of(stores, spec.destination)
    return {"store": store, "dest_key": key}


def _self_command() -> str:
    """How to run dpexport again from here: the venv's script when it is not on PATH."""
    import shutil

    script = Path(sys.executable).parent / "dpexport"
    on_path = shutil.which("dpexport")
    if on_path and Path(on_path).resolve() == script.resolve():
        return "dpexport"
    return str(script) if script.exists() else f"{sys.executable} -m dpexport"


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> None:
    """Entry point: maps errors to exit codes (0 ok, 1 failed, 2 bad input, 130 interrupted)."""
    signal.signal(signal.SIGTERM, _on_sigterm)
    debug = "--debug" in (argv if argv is not None else sys.argv[1:])
    try:
        code = cli.main(args=argv, prog_name="dpexport", standalone_mode=False)
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(130)
    except click.exceptions.Abort:
        click.echo("interrupted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(2)
    except DpexportError as exc:
        if debug:
            raise
        click.echo(f"error: {exc}", err=True)
        sys.exit(exc.exit_code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    sys.exit(code if isinstance(code, int) else 0)


import dpexport.cli_storage  # noqa: E402,F401
from dpexport import cli_ops  # noqa: E402,F401
