"""Operations commands (CONTRACT §2): ``logs query``, ``status``, ``dlq list|retry|purge``.

Thin click commands over the functions of the same name in :mod:`dpexport.api`. Each
takes a hidden ``--now TS`` (or ``$DPEXPORT_NOW``) that fixes the current time, so tests
and replays get the same ages, freshness and ``CURRENT_DATE`` at any wall-clock time.
"""

from __future__ import annotations

import sys

import click

from dpexport import api
from dpexport.cli.common import (
    common_options,
    echo_json,
    json_option,
    now_option,
    parse_now,
    settings_of,
)


# -- logs ----------------------------------------------------------------------------------
@click.group("logs")
@common_options
@click.pass_context
def logs_group(ctx: click.Context, config_path: str | None, local_root: str | None) -> None:
    """The export logs: one record per export attempt, under export-logs/."""
    settings_of(ctx, config_path, local_root)


# SQL that starts with a "-- comment" is an argument, not an unknown option
@logs_group.command("query", context_settings={"ignore_unknown_options": True})
@common_options
@click.argument("sql")
@json_option("[{COLUMN: VALUE, ...}], one object a row (several statements: [[...], ...])")
@now_option
@click.pass_context
def logs_query(
    ctx: click.Context,
    config_path: str | None,
    local_root: str | None,
    sql: str,
    as_json: bool,
    now: str | None,
) -> None:
    """Run BigQuery-dialect SQL over the export_logs table (SQL '-' reads stdin).

    Several statements print one result each (with --json: an array per statement,
    inside one array)."""
    from dpexport.ops.logs import as_objects, render_table

    settings = settings_of(ctx, config_path, local_root)
    workspace = settings.workspace()
    text = sys.stdin.read() if sql == "-" else sql
    results = api.logs_query(workspace, text, now=parse_now(now))
    if as_json:
        docs = [as_objects(r) for r in results]
        echo_json(docs[0] if len(docs) == 1 else docs)
        return
    click.echo("\n\n".join(render_table(r) for r in results))


# -- status --------------------------------------------------------------------------------
@click.command("status")
@common_options
@json_option('[{"table", "last_export", "rows", "freshness", "dlq_open", ...}], one a table')
@click.option("--principal", default=None, help="only the exports that acted as this principal")
@now_option
@click.pass_context
def status_command(
    ctx: click.Context,
    config_path: str | None,
    local_root: str | None,
    as_json: bool,
    principal: str | None,
    now: str | None,
) -> None:
    """Per table: last export, rows, hours since, FRESH/STALE, 7-day success rate, open DLQ."""
    from dpexport.ops.status import render

    settings = settings_of(ctx, config_path, local_root)
    statuses = api.status(settings.workspace(), now=parse_now(now), principal=principal)
    if as_json:
        echo_json([s.to_json() for s in statuses])
    else:
        click.echo(render(statuses))


# -- dlq -----------------------------------------------------------------------------------
@click.group("dlq")
@common_options
@click.pass_context
def dlq_group(ctx: click.Context, config_path: str | None, local_root: str | None) -> None:
    """The dead-letter queue (spec 7.2): failed exports waiting for review or retry."""
    settings_of(ctx, config_path, local_root)


@dlq_group.command("list")
@common_options
@json_option('[{"export_id", "state", "table", "age_hours", "error", ...}], one an entry')
@now_option
@click.pass_context
def dlq_list(
    ctx: click.Context,
    config_path: str | None,
    local_root: str | None,
    as_json: bool,
    now: str | None,
) -> None:
    """Every entry: age, attempts, whether it is due for auto-retry or escalated."""
    settings = settings_of(ctx, config_path, local_root)
    docs = [e.to_json() for e in api.dlq_list(settings.workspace(), now=parse_now(now))]
    if as_json:
        echo_json(docs)
        return
    if not docs:
        click.echo("the dead-letter queue is empty")
        return
    for d in docs:
        flags = ",".join(
            f for f, on in (("due", d["due_for_auto_retry"]), ("ESCALATE", d["escalate"])) if on
        )
        click.echo(
            f"{d['export_id']:32} {d['state']:8} {d['table'] or '-':40} "
            f"age={d['age_hours']:.1f}h attempts={d['attempts']} {flags or '-':11} "
            f"{d['code']}: {d['error']}"
        )


@dlq_group.command("retry")
@common_options
@click.argument("export_id", required=False)
@click.option("--due", is_flag=True, help="only entries due for auto-retry")
@json_option('[{"export_id", "outcome", "new_export_id", "error"}]')
@now_option
@click.option("--as", "principal", default=None, help="principal it acts as (CONTRACT §11)")
@click.pass_context
def dlq_retry(
    ctx: click.Context,
    config_path: str | None,
    local_root: str | None,
    export_id: str | None,
    due: bool,
    as_json: bool,
    now: str | None,
    principal: str | None,
) -> None:
    """Run failed exports again (one by id, or every open entry); success removes the
    entry, failure counts a retry, and max_attempts retries poison it."""
    settings = settings_of(ctx, config_path, local_root)
    at_now = parse_now(now)
    outcomes = api.dlq_retry(
        settings.workspace(), export_id, due=due, now=at_now, principal=principal
    )
    if as_json:
        echo_json([o.to_json() for o in outcomes])
    else:
        for o in outcomes:
            line = f"{o.outcome:12} {o.export_id}"
            if o.new_export_id:
                line += f" (re-run as {o.new_export_id})"
            if o.error:
                line += f": {o.error}"
            click.echo(line)
        if not outcomes:
            click.echo("nothing to retry")
    ctx.exit(1 if any(o.outcome in ("failed", "poisoned") for o in outcomes) else 0)


@dlq_group.command("purge")
@common_options
@click.option("--force", is_flag=True, help="delete every entry, whatever the retention says")
@json_option("[EXPORT_ID, ...], the entries purged")
@now_option
@click.pass_context
def dlq_purge(
    ctx: click.Context,
    config_path: str | None,
    local_root: str | None,
    force: bool,
    as_json: bool,
    now: str | None,
) -> None:
    """Delete entries older than the DLQ retention (90 days), or all with --force."""
    from dpexport.reliability.dlq import DlqSettings

    settings = settings_of(ctx, config_path, local_root)
    workspace = settings.workspace()
    purged = api.dlq_purge(workspace, force=force, now=parse_now(now))
    if as_json:
        echo_json(purged)
    else:
        days = DlqSettings.from_config(workspace.config).retention.days
        what = "every entry" if force else f"entries older than {days} days"
        click.echo(f"purged {len(purged)} ({what})" + (": " + ", ".join(purged) if purged else ""))


COMMANDS = (logs_group, status_command, dlq_group)
