"""``dpexport files``: a table's committed data files, or a reader's statement over exactly
them (CONTRACT §13), printing what :func:`dpexport.api.files` returns."""

from __future__ import annotations

import json

import click

from dpexport import api
from dpexport.cli.common import common_options, settings_of

FORMATS = ("uris", "duckdb", "bigquery")


@click.command()
@common_options
@click.argument("table")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(FORMATS),
    default="uris",
    show_default=True,
    help="the files' URIs, a DuckDB CREATE VIEW or a BigQuery CREATE EXTERNAL TABLE",
)
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help='print {"table", "format", "files": [{"uri", "rows", "format", "codec"}], "statement"}',
)
@click.pass_context
def files(
    ctx: click.Context,
    config_path: str | None,
    local_root: str | None,
    table: str,
    fmt: str,
    as_json: bool,
) -> None:
    """The committed data files of TABLE, from its SUCCESS markers and manifests (never a
    staged, uncommitted or retired file); or, with --format, a statement that reads
    exactly them. Reads only."""
    settings = settings_of(ctx, config_path, local_root)
    found = api.files(settings.workspace(), table, format=fmt)
    if as_json:
        click.echo(json.dumps(found.document(), separators=(",", ":")))
    elif found.statement is not None:
        click.echo(found.statement, nl=False)
    else:
        for f in found.files:
            click.echo(f.uri)


COMMANDS: tuple[click.Command, ...] = (files,)
