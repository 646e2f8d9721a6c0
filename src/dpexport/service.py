"""``dpexport schedule`` from Python: the selected tables' jobs, the warehouse checked
once before the first fire time, Prometheus metrics while serving, then a replay, one
round, or the service loop until stopped (:class:`~dpexport.ops.scheduler.Scheduler`)."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dpexport.errors import UsageError
from dpexport.workspace import ConfigSource, Workspace

if TYPE_CHECKING:
    from dpexport.config.spec import ResolvedConfig
    from dpexport.dashboard.server import DashboardServer
    from dpexport.ops.metrics import SchedulerMetrics
    from dpexport.ops.scheduler import Job, Stop, Tick

log = logging.getLogger("dpexport.schedule")


def schedule(
    config: ConfigSource,
    *,
    tables: str | Sequence[str] = (),
    once: bool = False,
    replay: tuple[datetime, datetime] | None = None,
    now: datetime | None = None,
    every: float = 60.0,
    poll_every: float = 300.0,
    hold: bool = False,
    principal: str | None = None,
    metrics_port: int | None = None,
    metrics_host: str = "127.0.0.1",
    on_tick: Callable[[Tick], None] | None = None,
    stop: Stop | None = None,
    on_serve: Callable[[], None] | None = None,
    local_root: str | os.PathLike[str] | None = None,
) -> bool:
    """Run the exports at their schedules' fire times (cron in its zone, ``continuous``
    every ``every`` seconds, ``on_change`` polled every ``poll_every`` seconds and exported
    when its table changed: :mod:`dpexport.config.schedules`); returns True when every
    export, retry and replication succeeded.

    ``replay=(start, end)`` runs every fire time in ``(start, end]`` and returns; ``once``
    retries the DLQ entries due, runs each table's latest fire time at ``now`` and
    returns; otherwise it serves until ``stop.requested``, with Prometheus metrics on
    ``metrics_port`` (default the config's ``metrics.port``; 0: none). ``on_serve`` is
    called once serving is about to start: where a command installs signal handlers
    that set ``stop`` (this function installs none)."""
    from dpexport.flow.context import RunOptions
    from dpexport.flow.runner import run_exports
    from dpexport.ops.scheduler import Scheduler, Stop

    if once and replay is not None:
        raise UsageError("once and replay are two different runs; give one of them")
    ws = Workspace.of(config, local_root=local_root)
    jobs = _jobs(ws, tables, timedelta(seconds=every), timedelta(seconds=poll_every))
    jobs = _as_principals(ws, jobs, principal)  # refused now, before any work
    with ws.engine():  # fails now, before the first fire time, if it cannot open or check
        pass
    outcome = _Outcome(on_tick)
    port = metrics_port if metrics_port is not None else _metrics_port(ws.config)
    if port and not (once or replay):
        outcome.serve_metrics(port, metrics_host, ws.config, ws.local_root)
    scheduler = Scheduler(
        ws.config,
        jobs,
        open_engine=ws.open_engine,
        run=run_exports,
        options=RunOptions(principal=principal, local_root=ws.local_root),
        hold=hold,
        on_tick=outcome.tick,
        on_retry=outcome.retried,
        on_next=outcome.next_fire,
    )
    try:
        if replay is not None:
            scheduler.replay(*replay)
        elif once:
            at_now = now or datetime.now(UTC)
            scheduler.retry_dlq(at_now)  # older fire times first
            scheduler.run_due(at_now, {})
        else:
            stop = stop or Stop()
            if on_serve is not None:
                on_serve()
            log.info("scheduling %s", ", ".join(f"{j.table} ({j.schedule})" for j in jobs))
            scheduler.serve(stop)
    finally:
        scheduler.close()
        outcome.close()
    return not outcome.failed


def _jobs(
    ws: Workspace, tables: str | Sequence[str], every: timedelta, poll: timedelta
) -> list[Job]:
    from dpexport.ops.scheduler import jobs_for, replication_jobs

    specs = ws.select(tables)
    jobs = jobs_for(specs, every, poll) + replication_jobs(ws.config, specs, every)
    if not jobs:
        named = ", ".join(s.table for s in specs)
        raise UsageError(f"no schedule: none of {named} has a 'schedule' (or frequency)")
    return jobs


def _as_principals(ws: Workspace, jobs: list[Job], named: str | None) -> list[Job]:
    """Each job with the principal it runs as (CONTRACT §11): ``named`` (``--as``,
    ``$DPEXPORT_PRINCIPAL``) for all, else per job the only principal allowed to, as
    ``run`` and ``replicate`` choose over the whole schedule."""
    import dataclasses

    from dpexport.security.principals import (
        Action,
        export_action,
        principal_for,
        replicate_action,
    )

    config = ws.config

    def action(job: Job) -> Action:
        if job.replication is None:
            return export_action("run", [config.table(job.table)])
        return replicate_action([config.replication[job.replication].target])

    exports = [config.table(j.table) for j in jobs if j.replication is None]
    copies = [config.replication[j.replication].target for j in jobs if j.replication is not None]
    whole = {False: export_action("run", exports), True: replicate_action(copies)}
    return [
        dataclasses.replace(
            j, principal=principal_for(config, action(j), named, whole[j.replication is not None])
        )
        for j in jobs
    ]


def _metrics_port(config: ResolvedConfig) -> int | None:
    port = config.metrics.port
    return int(port) if port is not None else None


class _Outcome:
    """Whether any export, DLQ retry or replication of a schedule failed; feeds the
    metrics (when served) and the caller's ``on_tick``."""

    def __init__(self, on_tick: Callable[[Tick], None] | None) -> None:
        self.on_tick = on_tick
        self.failed = False
        self.metrics: SchedulerMetrics | None = None
        self.server: Any = None

    def serve_metrics(
        self, port: int, host: str, config: ResolvedConfig, local_root: Path | None
    ) -> None:
        from dpexport.ops.metrics import SchedulerMetrics

        self.metrics = SchedulerMetrics(config, local_root)
        try:
            self.server = self.metrics.serve(port, host)
        except OSError as exc:
            raise UsageError(f"--port {port}: cannot serve metrics on {host}: {exc}") from None
        log.info("metrics on http://%s:%d/metrics", host, port)

    def tick(self, tick: Tick) -> None:
        self.failed = self.failed or tick.failed
        if self.metrics is not None:
            self.metrics.observe(tick)
        if self.on_tick is not None:
            self.on_tick(tick)

    def retried(self, outcomes: list[Any]) -> None:
        self.failed = self.failed or any(o.outcome in ("failed", "poisoned") for o in outcomes)
        if self.metrics is not None:
            self.metrics.observe_retries(outcomes)

    def next_fire(self, at: datetime | None) -> None:
        if self.metrics is not None:
            self.metrics.set_next_fire(at)

    def close(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()


def dashboard(
    config: ConfigSource,
    *,
    host: str = "127.0.0.1",
    port: int = 8050,
    token: str | None = None,
    refresh: int = 30,
    now: datetime | None = None,
    local_root: str | os.PathLike[str] | None = None,
) -> DashboardServer:
    """``dpexport dashboard`` from Python: the read-only dashboard bound to ``host:port``
    (``port=0``: a free one, in ``server.server_address``), not yet serving; call its
    ``serve_forever()`` (in a thread, say) and ``shutdown()``. A ``token`` is required
    off loopback; ``now`` fixes the page's clock (tests, screenshots). Errors name the
    CLI's options, which these arguments are."""
    from dpexport.dashboard.server import Dashboard, DashboardServer, is_loopback

    if token is not None and not token.strip():
        raise UsageError("--token: an empty token would let anyone in")
    if token is None and not is_loopback(host):
        raise UsageError(f"--host {host} is not loopback: give a --token")
    ws = Workspace.of(config, local_root=local_root)
    board = Dashboard(ws, now=lambda: now or datetime.now(UTC), refresh=refresh, token=token)
    try:
        return DashboardServer((host, port), board)
    except OSError as exc:
        raise UsageError(f"--host {host} --port {port}: cannot listen there: {exc}") from None
