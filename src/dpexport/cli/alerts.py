"""``dpexport alerts test|list`` (CONTRACT §10): thin commands over
:func:`dpexport.api_storage.alerts_test` and :func:`dpexport.api_storage.alerts_list`."""

from __future__ import annotations

import click

from dpexport import api_storage as api
from dpexport.cli.common import common_options, echo_json, json_option, settings_of


@click.group("alerts")
@common_options
@click.pass_context
def alerts_group(ctx: click.Context, config_path: str | None, local_root: str | None) -> None:
    """Alerts (spec 9.1): send a test alert, list the open incidents."""
    settings_of(ctx, config_path, local_root)


@alerts_group.command("test")
@common_options
@click.option("--channel", default=None, help="only this channel (pagerduty, slack, email)")
@json_option('[{"channel", "rule", "action", "outcome", "attempts", "error"}], one a channel')
@click.pass_context
def alerts_test(
    ctx: click.Context,
    config_path: str | None,
    local_root: str | None,
    channel: str | None,
    as_json: bool,
) -> None:
    """Send a test alert to every configured channel (or one); exit 1 if one failed."""
    settings = settings_of(ctx, config_path, local_root)
    deliveries = api.alerts_test(settings.workspace(), channel=channel)
    if as_json:
        echo_json([d.to_json() for d in deliveries])
    else:
        for d in deliveries:
            tail = f": {d.error}" if d.error else ""
            click.echo(f"{d.channel}: {d.outcome} ({d.attempts} attempt(s)){tail}")
    if any(d.outcome == "failed" for d in deliveries):
        ctx.exit(1)


@alerts_group.command("list")
@common_options
@json_option('[{"rule", "table", "opened_at", "summary", ...}], one an incident')
@click.pass_context
def alerts_list(
    ctx: click.Context, config_path: str | None, local_root: str | None, as_json: bool
) -> None:
    """The open incidents: one per rule and table, until the condition clears."""
    settings = settings_of(ctx, config_path, local_root)
    docs = api.alerts_list(settings.workspace())
    if as_json:
        echo_json(docs)
        return
    if not docs:
        click.echo("no open incidents")
        return
    for d in docs:
        click.echo(
            f"{d.get('rule')!s:18} {d.get('table')!s:40} since {d.get('opened_at')}  "
            f"{d.get('summary')}"
        )


COMMANDS = (alerts_group,)
