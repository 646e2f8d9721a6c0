"""Operations commands (CONTRACT §2): ``logs query``, ``status``, ``dlq list|retry|purge``.

Thin click commands over :mod:`dpexport.ops` and :mod:`dpexport.reliability.dlq`,
registered onto the main ``cli`` group. Each takes ``-c`` and ``--local-root`` like every
command, and a hidden ``--now TS`` (or ``$DPEXPORT_NOW``) that fixes the current time,
so tests and replays get the same ages, freshness and ``CURRENT_DATE`` at any wall-clock
time. Heavy modules (DuckDB, sqlglot, the runner) load inside the commands.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

import click

from dpexport.cli import (
    _check_schemas,
    _common,
    _load,
    _open_engine,
    _Settings,
    _settings,
    cli,
)
from dpexport.errors import UsageError

F = TypeVar("F", bound=Callable[..., Any])
log = logging.getLogger("dpexport.schedule")


def _now_option(func: F) -> F:
    return click.option(
        "--now",
        "now",
        default=None,
        hidden=True,
        envvar="DPEXPORT_NOW",
        help="the current time, RFC 3339 (tests and replays)",
    )(func)


def _now(value: str | None, option: str = "--now") -> datetime:
    """``option``'s RFC 3339 time as an aware UTC datetime; none given: now."""
    from dpexport.ops.logs import parse_time

    if not value:
        return datetime.now(UTC)
    parsed = parse_time(value)
    if parsed is None:
        raise UsageError(f"{option}: {value!r} is not an RFC 3339 time")
    return parsed


def _stores(settings: _Settings) -> tuple[Any, list[Any]]:
    from dpexport.ops.logs import config_stores

    config = _load(settings)
    return config, config_stores(config, settings.root)


# -- logs ----------------------------------------------------------------------------------
@click.group("logs")
@_common
@click.pass_context
def logs_group(ctx: click.Context, config_path: str | None, local_root: str | None) -> None:
    """The export logs: one record per export attempt, under export-logs/."""
    _settings(ctx, config_path, local_root)


# SQL that starts with a "-- comment" is an argument, not an unknown option
@logs_group.command("query", context_settings={"ignore_unknown_options": True})
@_common
@click.argument("sql")
@click.option("--json", "as_json", is_flag=True, help="print a JSON array of row objects")
@_now_option
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
    from dpexport.ops.logs import as_objects, query_all, render_table

    settings = _settings(ctx, config_path, local_root)
    _, stores = _stores(settings)
    text = sys.stdin.read() if sql == "-" else sql
    results = query_all(stores, text, now=_now(now))
    if as_json:
        docs = [as_objects(r) for r in results]
        click.echo(json.dumps(docs[0] if len(docs) == 1 else docs, indent=2))
        return
    click.echo("\n\n".join(render_table(r) for r in results))


# -- status --------------------------------------------------------------------------------
@click.command("status")
@_common
@click.option("--json", "as_json", is_flag=True, help="print a JSON array, one object a table")
@_now_option
@click.pass_context
def status_command(
    ctx: click.Context,
    config_path: str | None,
    local_root: str | None,
    as_json: bool,
    now: str | None,
) -> None:
    """Per table: last export, rows, hours since, FRESH/STALE, 7-day success rate, open DLQ."""
    from dpexport.ops.status import render, status

    settings = _settings(ctx, config_path, local_root)
    config = _load(settings)
    statuses = status(config, local_root=settings.root, now=_now(now))
    if as_json:
        click.echo(json.dumps([s.to_json() for s in statuses], indent=2))
    else:
        click.echo(render(statuses))


# -- dlq -----------------------------------------------------------------------------------
@click.group("dlq")
@_common
@click.pass_context
def dlq_group(ctx: click.Context, config_path: str | None, local_root: str | None) -> None:
    """The dead-letter queue (spec 7.2): failed exports waiting for review or retry."""
    _settings(ctx, config_path, local_root)


def _entries(settings: _Settings, now: datetime) -> tuple[Any, list[tuple[Any, Any]]]:
    from dpexport.runner import dlq_entries

    config = _load(settings)
    return config, dlq_entries(config, settings.root, now)


@dlq_group.command("list")
@_common
@click.option("--json", "as_json", is_flag=True, help="print a JSON array, one object an entry")
@_now_option
@click.pass_context
def dlq_list(
    ctx: click.Context,
    config_path: str | None,
    local_root: str | None,
    as_json: bool,
    now: str | None,
) -> None:
    """Every entry: age, attempts, whether it is due for auto-retry or escalated."""
    settings = _settings(ctx, config_path, local_root)
    _, entries = _entries(settings, _now(now))
    docs = [e.to_json() for _, e in entries]
    if as_json:
        click.echo(json.dumps(docs, indent=2))
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
@_common
@click.argument("export_id", required=False)
@click.option("--due", is_flag=True, help="only entries due for auto-retry")
@click.option("--json", "as_json", is_flag=True, help="print a JSON array of outcomes")
@_now_option
@click.pass_context
def dlq_retry(
    ctx: click.Context,
    config_path: str | None,
    local_root: str | None,
    export_id: str | None,
    due: bool,
    as_json: bool,
    now: str | None,
) -> None:
    """Run failed exports again (one by id, or every open entry); success removes the
    entry, failure counts a retry, and max_attempts retries poison it."""
    from dpexport.reliability.dlq import RetryOutcome
    from dpexport.runner import retry_dlq

    settings = _settings(ctx, config_path, local_root)
    at_now = _now(now)
    config, entries = _entries(settings, at_now)
    if export_id is not None:
        entries = [(s, e) for s, e in entries if e.export_id == export_id]
        if not entries:
            raise UsageError(f"no DLQ entry {export_id!r} (see 'dpexport dlq list')")
    else:
        entries = [(s, e) for s, e in entries if e.state == "open"]
    if due:
        entries = [(s, e) for s, e in entries if e.due_for_auto_retry]
    outcomes: list[RetryOutcome] = []
    if entries:
        engine = _open_engine(config)
        try:
            outcomes = retry_dlq(config, engine, entries, local_root=settings.root, now=at_now)
        finally:
            engine.close()
    if as_json:
        click.echo(json.dumps([o.to_json() for o in outcomes], indent=2))
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
@_common
@click.option("--force", is_flag=True, help="delete every entry, whatever the retention says")
@click.option("--json", "as_json", is_flag=True, help="print a JSON array of purged export ids")
@_now_option
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
    from dpexport.reliability.dlq import DlqSettings, purge

    settings = _settings(ctx, config_path, local_root)
    config, stores = _stores(settings)
    dlq_settings = DlqSettings.from_config(config)
    at_now = _now(now)
    purged = [eid for s in stores for eid in purge(s, at_now, force, dlq_settings)]
    if as_json:
        click.echo(json.dumps(purged))
    else:
        days = dlq_settings.retention.days
        what = "every entry" if force else f"entries older than {days} days"
        click.echo(f"purged {len(purged)} ({what})" + (": " + ", ".join(purged) if purged else ""))


# -- schedule ------------------------------------------------------------------------------
@click.command("schedule")
@_common
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
    help="seconds between exports of continuous and on_change tables",
)
@click.option("--port", type=int, default=None, help="metrics port (default metrics.port; 0: off)")
@click.option("--host", default="127.0.0.1", show_default=True, help="metrics address")
@click.option("--hold", is_flag=True, help="keep the warehouse open between fire times")
@click.option("--as", "principal", default=None, help="principal the exports run as")
@click.option("--json", "as_json", is_flag=True, help="print a JSON object per export, a line each")
@_now_option
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
    port: int | None,
    host: str,
    hold: bool,
    principal: str | None,
    as_json: bool,
    now: str | None,
) -> None:
    """Run the exports on their schedules (cron in UTC, continuous), until stopped."""
    import signal
    from datetime import timedelta

    from dpexport.export import RunOptions
    from dpexport.ops.scheduler import Scheduler, Stop, Tick, jobs_for, replication_jobs
    from dpexport.runner import run_exports, select_tables

    settings = _settings(ctx, config_path, local_root)
    if end is not None and start is None:
        raise UsageError("--until needs --from (a replay runs the fire times between them)")
    if once and start is not None:
        raise UsageError("--once and --from are two different runs; give one of them")
    at_now = _now(now)
    replay = (
        None if start is None else (_now(start, "--from"), _now(end, "--until") if end else at_now)
    )
    config = _load(settings)
    try:
        specs = select_tables(config, tables)
    except KeyError as exc:
        raise UsageError(f"--table {exc.args[0]!r}: no such table in the config") from None
    jobs = jobs_for(specs, timedelta(seconds=every))
    jobs += replication_jobs(config, specs, timedelta(seconds=every))
    if not jobs:
        named = ", ".join(s.table for s in specs)
        raise UsageError(f"no schedule: none of {named} has a 'schedule' (or frequency)")
    metrics_block = getattr(config.raw, "metrics", None)
    port = port if port is not None else getattr(metrics_block, "port", None)
    metrics = None
    if port and not (once or start):
        from dpexport.ops.metrics import SchedulerMetrics

        metrics = SchedulerMetrics()
        try:
            metrics.serve(port, host)
        except OSError as exc:
            raise UsageError(f"--port {port}: cannot serve metrics on {host}: {exc}") from None
        log.info("metrics on http://%s:%d/metrics", host, port)

    failed = False

    def report(tick: Tick) -> None:
        nonlocal failed
        failed = failed or tick.failed
        if metrics is not None:
            metrics.observe(tick)
        for record in tick.records():
            if as_json:
                click.echo(json.dumps(record), nl=True)
                sys.stdout.flush()
            else:
                line = f"{record['at']} {record['status']:8} {record['table']:32} "
                if "replication" in record:
                    line += f"replicated to {record['target']}: copied {record['copied']}"
                    line += "".join(f" error: {e}" for e in record["mismatches"] + record["errors"])
                else:
                    line += f"rows={record['rows']:<10} {record['seconds']:.2f} s"
                    if record["error"]:
                        line += f" error: {record['error']}"
                click.echo(line, err=True)

    def retried(outcomes: list[Any]) -> None:
        nonlocal failed
        failed = failed or any(o.outcome in ("failed", "poisoned") for o in outcomes)
        if metrics is not None:
            metrics.observe_retries(outcomes)

    engine = _open_engine(config)  # fails now, before the first fire time, if it cannot open
    try:
        _check_schemas(config, engine)
    finally:
        engine.close()
    scheduler = Scheduler(
        config,
        jobs,
        open_engine=lambda: _open_engine(config),
        run=run_exports,
        options=RunOptions(principal=principal, local_root=settings.root),
        hold=hold,
        on_tick=report,
        on_retry=retried,
        on_next=metrics.set_next_fire if metrics is not None else (lambda at: None),
    )
    try:
        if replay is not None:
            scheduler.replay(*replay)
        elif once:
            scheduler.retry_dlq(at_now)  # older fire times first
            scheduler.run_due(at_now, {})
        else:
            stop = Stop()

            def on_signal(signum: int, frame: Any) -> None:
                if stop.requested:  # a second signal: stop now (exports are crash-safe)
                    raise KeyboardInterrupt
                stop.requested, stop.signum = True, signum

            signal.signal(signal.SIGTERM, on_signal)
            signal.signal(signal.SIGINT, on_signal)
            log.info("scheduling %s", ", ".join(f"{j.table} ({j.schedule})" for j in jobs))
            scheduler.serve(stop)
            # a service stopped on purpose: failures went to logs, metrics and the DLQ
            ctx.exit(130 if stop.signum == signal.SIGINT else 0)
    finally:
        scheduler.close()
    ctx.exit(1 if failed else 0)


cli.add_command(schedule_command)
cli.add_command(logs_group)
cli.add_command(status_command)
cli.add_command(dlq_group)
