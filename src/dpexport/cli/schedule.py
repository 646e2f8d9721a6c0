"""``dpexport schedule`` (CONTRACT §2): the long-running scheduler, over
:func:`dpexport.schedule`. This module parses the options, prints each tick, and owns
the signals: a first SIGTERM or SIGINT lets the running export finish, a second stops
at once."""

from __future__ import annotations

import logging
import signal
import sys
from datetime import datetime
from types import FrameType
from typing import TYPE_CHECKING, Any

import click

from dpexport import schedule as run_schedule
from dpexport.cli.common import (
    common_options,
    echo_err,
    echo_json,
    json_option,
    now_option,
    parse_now,
    settings_of,
)
from dpexport.errors import UsageError

if TYPE_CHECKING:
    from dpexport.ops.scheduler import Stop, Tick


@click.command("schedule")
@common_options
@click.option("--table", "tables", multiple=True, help="only these tables (repeatable)")
@click.option("--once", is_flag=True, help="run each table's latest due fire time, then exit")
@click.option(
    "--from", "start", default=None, help="replay the fire times after this RFC 3339 time"
)
@click.option("--until", "end", default=None, help="... up to this one (default: now), then exit")
@click.option(
    "--every",
    type=click.FloatRange(min=1, min_open=False),
    default=60.0,
    show_default=True,
    help="seconds between exports of continuous tables",
)
@click.option(
    "--poll-every",
    type=click.FloatRange(min=1, min_open=False),
    default=300.0,
    show_default=True,
    help="seconds between looks at an on_change table (it exports when the table changed)",
)
@click.option("--port", type=int, default=None, help="metrics port (default metrics.port; 0: off)")
@click.option("--host", default="127.0.0.1", show_default=True, help="metrics address")
@click.option("--hold", is_flag=True, help="keep the warehouse open between fire times")
@click.option("--as", "principal", default=None, help="principal the exports run as")
@json_option('{"at", "table", "status", "rows", "seconds", "error", ...} per export, a line each')
@now_option
@click.pass_context
def schedule_command(
    ctx: click.Context,
    config_path: str | None,
    local_root: str | None,
    tables: tuple[str, ...],
    once: bool,
    start: str | None,
    end: str | None,
    every: float,
    poll_every: float,
    port: int | None,
    host: str,
    hold: bool,
    principal: str | None,
    as_json: bool,
    now: str | None,
) -> None:
    """Run the exports on their schedules (cron in its zone, continuous, on_change),
    until stopped."""
    from dpexport.ops.scheduler import Stop

    settings = settings_of(ctx, config_path, local_root)
    at_now, replay = _times(once, start, end, now)
    stop = Stop()
    ok = run_schedule(
        settings.workspace(),
        tables=tables,
        once=once,
        replay=replay,
        now=at_now,
        every=every,
        poll_every=poll_every,
        hold=hold,
        principal=principal,
        metrics_port=port,
        metrics_host=host,
        on_tick=lambda tick: _echo_tick(tick, as_json),
        stop=stop,
        on_serve=lambda: _on_signals(stop),
    )
    if not (once or replay):  # a service stopped on purpose: failures went to logs,
        ctx.exit(130 if stop.signum == signal.SIGINT else 0)  # metrics and the DLQ
    ctx.exit(0 if ok else 1)


def _times(
    once: bool, start: str | None, end: str | None, now: str | None
) -> tuple[datetime, tuple[datetime, datetime] | None]:
    """``--now``, and the replay range ``--from`` .. ``--until`` (default now) if given."""
    if end is not None and start is None:
        raise UsageError("--until needs --from (a replay runs the fire times between them)")
    if once and start is not None:
        raise UsageError("--once and --from are two different runs; give one of them")
    at_now = parse_now(now)
    if start is None:
        return at_now, None
    return at_now, (parse_now(start, "--from"), parse_now(end, "--until") if end else at_now)


def _on_signals(stop: Stop) -> None:
    """The first SIGTERM or SIGINT asks ``stop``; a second stops now (exports are
    crash-safe)."""

    def on_signal(signum: int, frame: FrameType | None) -> Any:
        if stop.requested:
            raise KeyboardInterrupt
        stop.requested, stop.signum = True, signum

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)


def _echo_tick(tick: Tick, as_json: bool) -> None:
    for record in tick.records():
        if as_json:
            echo_json(record)
            sys.stdout.flush()
            continue
        line = f"{record['at']} {record['status']:8} {record['table']:32} "
        if "replication" in record:
            line += f"replicated to {record['target']}: copied {record['copied']}"
            line += "".join(f" error: {e}" for e in record["mismatches"] + record["errors"])
        else:
            line += f"rows={record['rows']:<10} {record['seconds']:.2f} s"
            if record["error"]:
                line += f" error: {record['error']}"
        echo_err(line, logging.ERROR if record["status"] == "FAILURE" else logging.INFO)


COMMANDS = (schedule_command,)
