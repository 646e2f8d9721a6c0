"""The commands that start a user off (CONTRACT §2): ``init`` writes a config, ``demo``
builds a warehouse and exports it; each prints what :func:`dpexport.api.init` and
:func:`dpexport.api.demo` return."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from dpexport import api
from dpexport.cli.common import (
    common_options,
    echo_json,
    exit_code,
    json_option,
    report_results,
    settings_of,
)
from dpexport.demo import EXAMPLES


@click.command()
@common_options
@click.option("--dir", "directory", type=click.Path(file_okay=False), default=".")
@click.option("--force", is_flag=True, help="overwrite an existing dpexport.yaml")
@click.option(
    "--example",
    type=click.Choice(EXAMPLES),
    default=None,
    help="write this full example instead (diagnosticpro: every spec block)",
)
@json_option('{"config": PATH, "example": null|NAME}')
@click.pass_context
def init(
    ctx: click.Context,
    config_path: str | None,
    local_root: str | None,
    directory: str,
    force: bool,
    example: str | None,
    as_json: bool,
) -> None:
    """Write a short commented starter dpexport.yaml (one DuckDB warehouse, one local
    bucket, one table), or with --example diagnosticpro the spec's full config."""
    target = api.init(directory, force=force, example=example)
    if as_json:
        echo_json({"config": str(target.resolve()), "example": example})
    else:
        click.echo(f"wrote {target}")


@click.command()
@common_options
@click.option("--dir", "directory", type=click.Path(file_okay=False), default="dpexport-demo")
@click.option(
    "--rows",
    type=click.IntRange(min=1),
    default=20_000,
    help="rows of the largest table (sensor_telemetry); others scale with it",
)
@json_option('{"warehouse", "config", "local_root", "exports", "results": [run\'s objects]}')
@click.pass_context
def demo(
    ctx: click.Context,
    config_path: str | None,
    local_root: str | None,
    directory: str,
    rows: int,
    as_json: bool,
) -> None:
    """Create a demo warehouse and config, run every export, print where to look."""
    from dpexport.flow.progress import make_progress

    settings = settings_of(ctx, config_path, local_root)
    with make_progress() as progress:
        made = api.demo(
            directory,
            rows=rows,
            local_root=settings.root,
            raise_on_failure=False,
            progress=progress,
        )
    exports = made.local_root / "gs" / "diagnosticpro-exports" / "prod"
    if as_json:
        echo_json(
            {
                "warehouse": str(made.warehouse),
                "config": str(made.config_file),
                "local_root": str(made.local_root),
                "exports": str(exports),
                "results": [r.to_json() for r in made.results],
            }
        )
        ctx.exit(exit_code(made.results))
    report_results(made.results, as_json=False)
    click.echo(
        f"\nwarehouse: {made.warehouse}\nconfig:    {made.config_file}\n"
        f"exports:   {exports}/\n"
        f"try:       {_self_command()} --local-root {made.local_root} -c {made.config_file} "
        f"verify gs://diagnosticpro-exports/prod/"
    )
    ctx.exit(exit_code(made.results))


def _self_command() -> str:
    """How to run dpexport again from here: the venv's script when it is not on PATH."""
    import shutil

    script = Path(sys.executable).parent / "dpexport"
    on_path = shutil.which("dpexport")
    if on_path and Path(on_path).resolve() == script.resolve():
        return "dpexport"
    return str(script) if script.exists() else f"{sys.executable} -m dpexport"


COMMANDS = (init, demo)
