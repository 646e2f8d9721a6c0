"""Storage commands (CONTRACT §2): ``replicate`` and ``lifecycle apply|sweep|archive``.

Thin click commands over :func:`dpexport.api_storage.replicate`, :func:`~dpexport.api_storage.
lifecycle_apply`, :func:`~dpexport.api_storage.lifecycle_sweep` and :func:`~dpexport.api_storage.
lifecycle_archive`. ``sweep`` and ``archive`` take the hidden ``--now`` (or
``$DPEXPORT_NOW``) of the operations commands, so tests see fixed ages.
"""

from __future__ import annotations

import logging

import click

from dpexport import api_storage as api
from dpexport.cli.common import (
    common_options,
    echo_err,
    echo_json,
    json_option,
    now_option,
    parse_now,
    settings_of,
)


@click.command("replicate")
@common_options
@click.option("--table", "tables", multiple=True, help="only this table (repeatable)")
@json_option('[{"replication", "table", "target", "copied", "mismatches", "errors", ...}]')
@click.option("--as", "principal", default=None, help="principal it acts as (CONTRACT §11)")
@click.pass_context
def replicate_command(
    ctx: click.Context,
    config_path: str | None,
    local_root: str | None,
    tables: tuple[str, ...],
    as_json: bool,
    principal: str | None,
) -> None:
    """Copy committed exports to the replication targets (data, sidecars, manifests,
    SUCCESS last), every sha256 verified at the target; exit 1 on any mismatch."""
    settings = settings_of(ctx, config_path, local_root)
    reports = api.replicate(settings.workspace(), tables=tables, principal=principal)
    if as_json:
        echo_json([r.to_json() for r in reports])
    else:
        for r in reports:
            for problem in r.mismatches + r.errors:
                click.echo(f"FAIL {problem}")
            click.echo(r.line())
        if not reports:
            click.echo("nothing to replicate (no replication item names these tables)")
    ctx.exit(0 if all(r.ok for r in reports) else 1)


@click.group("lifecycle")
@common_options
@click.pass_context
def lifecycle_group(ctx: click.Context, config_path: str | None, local_root: str | None) -> None:
    """Storage classes and retention (spec 6.2, 10.2): bucket rules and the sweep."""
    settings_of(ctx, config_path, local_root)


@lifecycle_group.command("apply")
@common_options
@json_option('[{"store", "applied", "not_applied", "error"}], one a store')
@click.option("--as", "principal", default=None, help="principal it acts as (CONTRACT §11)")
@click.pass_context
def lifecycle_apply(
    ctx: click.Context,
    config_path: str | None,
    local_root: str | None,
    as_json: bool,
    principal: str | None,
) -> None:
    """Write the bucket rules each store supports; say what could not be applied."""
    settings = settings_of(ctx, config_path, local_root)
    results = api.lifecycle_apply(settings.workspace(), principal=principal)
    if as_json:
        echo_json([r.to_json() for r in results])
    else:
        for r in results:
            click.echo(r.store)
            if r.error:
                click.echo(f"  error: {r.error}")
            for line in r.applied:
                click.echo(f"  applied: {line}")
            for line in r.not_applied:
                click.echo(f"  not applied: {line}")
    ctx.exit(1 if any(r.error for r in results) else 0)


@lifecycle_group.command("sweep")
@common_options
@click.option("--dry-run", is_flag=True, help="list what is due; delete nothing")
@json_option('[{"store", "rule", "what", "keys", "status", ...}], one an item')
@now_option
@click.option("--as", "principal", default=None, help="principal it acts as (CONTRACT §11)")
@click.pass_context
def lifecycle_sweep(
    ctx: click.Context,
    config_path: str | None,
    local_root: str | None,
    dry_run: bool,
    as_json: bool,
    now: str | None,
    principal: str | None,
) -> None:
    """Delete what the auto_delete rules make due (temp 7 days, failed 30, test 1, DLQ 90,
    tokens 7), never anything under a retention rule; tier Azure blobs by age."""
    settings = settings_of(ctx, config_path, local_root)
    workspace = settings.workspace()
    items, errors = api.lifecycle_sweep(
        workspace, now=parse_now(now), dry_run=dry_run, principal=principal
    )
    if as_json:
        echo_json([i.to_json() for i in items])
    else:
        for item in items:
            click.echo(item.line())
        gone = sum(len(i.keys) for i in items if i.status in ("deleted", "would delete"))
        verb = "would delete" if dry_run else "deleted"
        click.echo(f"{verb} {gone} object(s); {len(errors)} store error(s)")
    for error in errors:
        echo_err(error, logging.ERROR, "error: ")
    ctx.exit(1 if errors else 0)


@lifecycle_group.command("archive")
@common_options
@click.option("--table", "tables", multiple=True, help="only this table (repeatable)")
@click.option("--dry-run", is_flag=True, help="list what is due; copy and delete nothing")
@json_option('[{"table", "moved", "folders": [...], "errors", ...}], one a table')
@now_option
@click.option("--as", "principal", default=None, help="principal it acts as (CONTRACT §11)")
@click.pass_context
def lifecycle_archive(
    ctx: click.Context,
    config_path: str | None,
    local_root: str | None,
    tables: tuple[str, ...],
    dry_run: bool,
    as_json: bool,
    now: str | None,
    principal: str | None,
) -> None:
    """Move committed folders older than archive_after to buckets.cold_storage: copied,
    every sha256 verified there, SUCCESS last, then removed from the source (never what
    a retention still holds); exit 1 on any failure."""
    settings = settings_of(ctx, config_path, local_root)
    reports = api.lifecycle_archive(
        settings.workspace(),
        tables=tables,
        dry_run=dry_run,
        now=parse_now(now),
        principal=principal,
    )
    if as_json:
        echo_json([r.to_json() for r in reports])
    else:
        for r in reports:
            for line in r.lines():
                click.echo(line)
        if not reports:
            click.echo("nothing to archive (no table sets archive_after)")
    ctx.exit(0 if all(r.ok for r in reports) else 1)


COMMANDS = (replicate_command, lifecycle_group)
