"""``dpexport schedule``: run each table at its schedule's fire times, in one process.

A table's ``schedule`` (resolved from the spec's blocks, CONTRACT §3) is read by
:mod:`dpexport.config.schedules`: a cron expression in its zone (``CRON_TZ=``, the
table's ``timezone:``, else UTC), ``continuous`` (every ``every`` seconds on a grid
aligned to the Unix epoch) or ``on_change`` (a poll every ``poll`` on such a grid, which
exports only when the table's change marker moved since its last committed export), its
fire times held to the off-peak window when one applies. A fire time is the export's
logical time (``run --at``), so its idempotency token is the same whoever runs it,
and a restarted scheduler, or a second one, makes each export once.

The scheduler runs what is due, then sleeps until the next fire time. When it falls
behind (an export longer than the interval, a process started late), it runs only
the latest fire time of each table and counts the ones it skipped: an INCREMENTAL
or APPEND export at the latest time covers the skipped windows anyway, and a
FULL_REFRESH at an older time would only be overwritten.

``replay`` runs every fire time in a range instead, in time order, without
sleeping: a backfill, and the way tests and benchmarks drive a schedule.

The config is loaded once. The warehouse connection is opened per tick and closed
after it, unless ``hold`` says to keep it: DuckDB lets one process write a database
file or many read it, so a held read-only connection would stop the process that
loads the warehouse from writing between ticks.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from dpexport.alerts.rules import scheduled as scheduled_alerts
from dpexport.config import schedules
from dpexport.config.schedules import DEFAULT_POLL, Schedule
from dpexport.config.spec import ResolvedConfig, TableSpec
from dpexport.engines.base import Engine
from dpexport.errors import DpexportError
from dpexport.flow.context import ExportResult, RunOptions
from dpexport.ops.changes import Change, poll_change

log = logging.getLogger(__name__)

#: how often a sleeping scheduler looks at its stop flag
POLL_SECONDS = 0.2


class Stop:
    """Set by a signal handler: finish the running export, then exit."""

    requested = False
    #: the signal that asked (SIGINT exits with 130)
    signum: int | None = None


@dataclass(frozen=True)
class Job:
    """One scheduled table: when it fires, and with which trigger."""

    #: the table, or for a replication item its name
    table: str
    schedule: str
    every: timedelta
    #: the index of the ``replication`` item this job copies, or None for an export
    replication: int | None = None
    #: the zone of a cron without a ``CRON_TZ=`` prefix (the table's ``timezone:``)
    timezone: str | None = None
    #: the spec 10.1 off-peak window its fire times are held to, when one applies
    off_peak: str | None = None
    #: how often an ``on_change`` table is polled
    poll: timedelta = DEFAULT_POLL
    #: the principal it runs as (CONTRACT §11; None: the scheduler's own)
    principal: str | None = None

    @functools.cached_property
    def when(self) -> Schedule:
        """The schedule as :mod:`~dpexport.config.schedules` reads it."""
        return schedules.parse(
            self.schedule,
            timezone=self.timezone,
            every=self.every,
            poll=self.poll,
            off_peak=self.off_peak,
        )

    @property
    def interval(self) -> bool:
        return self.when.kind != "cron"

    @property
    def on_change(self) -> bool:
        """Exported at a poll only when its table changed (a replication item just runs)."""
        return self.when.kind == "on_change" and self.replication is None

    @property
    def key(self) -> str:
        """Names the job among the scheduler's (a table and an item may share a name)."""
        return self.table if self.replication is None else f"replication:{self.table}"

    @property
    def trigger(self) -> str:
        return "stream" if self.when.kind == "continuous" and self.replication is None else "cron"

    def next_after(self, at: datetime) -> datetime:
        """The first fire time strictly after ``at``."""
        return self.when.next_after(at)

    def latest(self, at: datetime) -> datetime:
        """The last fire time at or before ``at``."""
        return self.when.latest(at)

    def between(self, start: datetime, end: datetime) -> Iterator[datetime]:
        """Every fire time in ``(start, end]``."""
        return self.when.between(start, end)


def jobs_for(
    specs: Iterable[TableSpec], every: timedelta, poll: timedelta = DEFAULT_POLL
) -> list[Job]:
    """A job per table that has a schedule; tables without one run on demand only."""
    for name, step in (("continuous", every), ("on_change poll", poll)):
        if step <= timedelta(0):
            raise ValueError(f"the {name} interval must be positive, not {step}")
    jobs = [
        Job(s.table, s.schedule, every, timezone=s.timezone, off_peak=s.off_peak, poll=poll)
        for s in specs
        if s.schedule
    ]
    for job in jobs:
        _ = job.when  # a schedule that cannot be read fails now, not at its first fire time
    return jobs


def replication_jobs(
    config: ResolvedConfig, specs: Iterable[TableSpec], every: timedelta
) -> list[Job]:
    """A job per ``replication`` item that has a schedule and copies one of ``specs``."""
    from dpexport.ops.replicate import item_name

    wanted = {s.qualified_name for s in specs}
    jobs = []
    for index, item in enumerate(config.replication):
        if not item.schedule:
            continue
        if not any(config.table(t).qualified_name in wanted for t in item.tables):
            continue
        jobs.append(Job(item_name(item, index), item.schedule, every, replication=index))
    return jobs


@dataclass
class Tick:
    """The exports of one fire time, as the scheduler reports them."""

    at: datetime
    trigger: str
    results: list[ExportResult]
    seconds: float
    #: earlier fire times of these tables that were not run because this one was later
    skipped: int = 0
    #: what the replication items due at this time copied (``replicate.TableReport``)
    replicated: list[Any] = field(default_factory=list)
    #: what the day's reconcile pass found, at its first fire time (``reconcile.TableReport``;
    #: a record each only for a table with late rows, fewer rows or a failure)
    reconciled: list[Any] = field(default_factory=list)
    #: what the day's archive pass did (``archive.ArchiveReport``; a record each only for a
    #: table with a folder moved or a failure)
    archived: list[Any] = field(default_factory=list)
    #: the alerts the tick's rules sent (failure_rate, the DLQ's; ``alerts.model.Delivery``)
    alerts: list[Any] = field(default_factory=list)

    @property
    def failed(self) -> bool:
        return (
            any(r.status == "FAILURE" for r in self.results)
            or any(not r.ok for r in self.replicated)
            or any(r.failed for r in self.reconciled)
            or any(not r.ok for r in self.archived)
        )

    def records(self) -> list[dict[str, Any]]:
        """A JSON object per export, then one per replicated table (``"replication"``
        names the item; ``status`` is SUCCESS or FAILURE)."""
        common = {
            "at": self.at.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "trigger": self.trigger,
            "seconds": round(self.seconds, 4),
            "skipped_ticks": self.skipped,
        }
        return (
            [{**r.to_json(), **common} for r in self.results]
            + [
                {**r.to_json(), "status": "SUCCESS" if r.ok else "FAILURE", **common}
                for r in self.replicated
            ]
            + [
                {**r.to_json(), "reconcile": True, **common}
                | {"status": "FAILURE" if r.failed else "SUCCESS"}
                for r in self.reconciled
                if r.folders_changed
            ]
            + [
                {**r.to_json(), "archive": True, **common}
                | {"status": "SUCCESS" if r.ok else "FAILURE"}
                for r in self.archived
                if r.acted
            ]
        )


@dataclass
class Scheduler:
    """Runs ``jobs`` through ``run`` (``runner.run_exports``) at their fire times."""

    config: ResolvedConfig
    jobs: Sequence[Job]
    #: the warehouse as a principal (None: the scheduler's own)
    open_engine: Callable[[str | None], Engine]
    run: Callable[[ResolvedConfig, Engine, RunOptions], list[ExportResult]]
    options: RunOptions = field(default_factory=RunOptions)
    hold: bool = False
    on_tick: Callable[[Tick], None] = lambda tick: None
    on_next: Callable[[datetime], None] = lambda at: None
    on_retry: Callable[[list[Any]], None] = lambda outcomes: None
    #: how often ``serve`` looks for DLQ entries due for auto-retry
    dlq_every: timedelta = timedelta(minutes=5)
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    #: the warehouse connections ``hold`` keeps, by principal
    _engines: dict[str | None, Engine] = field(default_factory=dict, init=False)
    #: the UTC day of the last daily pass (reconcile, archive)
    _day: date | None = field(default=None, init=False)

    def close(self) -> None:
        while self._engines:
            self._engines.popitem()[1].close()

    def replay(self, start: datetime, end: datetime) -> list[Tick]:
        """Every fire time of every job in ``(start, end]``, in order, without sleeping."""
        times: dict[datetime, list[Job]] = {}
        for job in self.jobs:
            for t in job.between(start, end):
                times.setdefault(t, []).append(job)
        return [self._tick(t, jobs) for t, jobs in sorted(times.items())]

    def run_due(self, now: datetime, last: dict[str, datetime]) -> list[Tick]:
        """Each job's latest fire time at or before ``now`` that is after ``last[table]``
        (a job not in ``last`` runs its latest fire time: what a fresh start catches up).
        ``last`` is updated."""
        due: dict[datetime, list[tuple[Job, int]]] = {}
        for job in self.jobs:
            latest = job.latest(now)
            previous = last.get(job.key)
            if previous is not None and latest <= previous:
                continue
            skipped = 0 if previous is None else sum(1 for _ in job.between(previous, latest)) - 1
            due.setdefault(latest, []).append((job, skipped))
            last[job.key] = latest
        ticks = []
        for t, entries in sorted(due.items()):
            skipped = sum(s for _, s in entries)
            if skipped:
                log.warning(
                    "behind schedule: running %s at %s, %d earlier fire time(s) not run",
                    ", ".join(j.table for j, _ in entries),
                    t.isoformat(),
                    skipped,
                )
            ticks.append(self._tick(t, [j for j, _ in entries], skipped))
        return ticks

    def serve(self, stop: Stop) -> None:
        """Run due exports until ``stop`` is set; a set ``stop`` lets the export that is
        running finish (each export is crash-safe anyway)."""
        last: dict[str, datetime] = {}
        dlq_checked: datetime | None = None
        while not stop.requested:
            now = self.clock()
            if dlq_checked is None or now - dlq_checked >= self.dlq_every:
                self.retry_dlq(now)  # older fire times first: APPEND windows stay in order
                dlq_checked = now
            self.run_due(self.clock(), last)
            upcoming = self.next_fire(self.clock())
            if upcoming is None:
                log.warning("no table has a schedule; nothing to run")
                break
            self.on_next(upcoming)
            log.info("next fire time %s", upcoming.isoformat())
            wake = min(upcoming, dlq_checked + self.dlq_every)
            # short sleeps: a signal handler only sets a flag (it must not take locks)
            while not stop.requested and (left := (wake - self.clock()).total_seconds()) > 0:
                time.sleep(min(left, POLL_SECONDS))

    def next_fire(self, now: datetime) -> datetime | None:
        return min((job.next_after(now) for job in self.jobs), default=None)

    def retry_dlq(self, now: datetime) -> list[Any]:
        """Re-run the DLQ entries of the scheduled tables that are due for auto-retry
        (spec 7.2 ``auto_retry_after``); the outcomes, as ``dlq.RetryOutcome``."""
        from dpexport.flow.rerun import dlq_entries, retry_dlq

        mine = {j.table for j in self.jobs if j.replication is None}
        try:
            entries = dlq_entries(self.config, self.options.local_root, now)
        except DpexportError as exc:  # a store that cannot be listed now: next time
            log.error("DLQ auto-retry postponed: cannot read the DLQ: %s", exc)
            return []
        due = [
            (place, entry)
            for place, entry in entries
            if entry.due_for_auto_retry and self._table_of(entry.request) in mine
        ]
        if not due:
            return []
        try:
            engine = self._acquire(self.options.principal)
        except DpexportError as exc:
            log.error("DLQ auto-retry postponed: cannot open the warehouse: %s", exc)
            return []
        try:
            outcomes = retry_dlq(
                self.config, engine, due, local_root=self.options.local_root, now=now
            )
        finally:
            self._release(engine, self.options.principal)
        for o in outcomes:
            log.warning("DLQ auto-retry of %s: %s %s", o.export_id, o.outcome, o.error or "")
        self.on_retry(outcomes)
        return outcomes

    def _tables(self) -> list[str]:
        return list(dict.fromkeys(j.table for j in self.jobs if j.replication is None))

    def _table_of(self, request: dict[str, Any]) -> str | None:
        try:
            return self.config.table(str(request.get("table") or "")).table
        except KeyError:
            return None

    def _acquire(self, who: str | None) -> Engine:
        return self._engines.pop(who, None) or self.open_engine(who)

    def _release(self, engine: Engine, who: str | None) -> None:
        if self.hold:
            self._engines[who] = engine
        else:
            engine.close()

    def _export(self, at: datetime, jobs: Sequence[Job]) -> list[ExportResult]:
        """Run the export jobs at ``at``: a ``run`` per principal and trigger."""
        results: list[ExportResult] = []
        for who in dict.fromkeys(self._who(j) for j in jobs):
            results += self._export_as(who, at, [j for j in jobs if self._who(j) == who])
        return results

    def _who(self, job: Job) -> str | None:
        return job.principal or self.options.principal

    def _export_as(self, who: str | None, at: datetime, jobs: Sequence[Job]) -> list[ExportResult]:
        try:
            engine = self._acquire(who)
        except DpexportError as exc:
            # e.g. the warehouse's writer holds its lock right now: this fire time fails
            # and the scheduler goes on (the next one covers APPEND and INCREMENTAL
            # windows; FULL_REFRESH re-exports the whole table anyway)
            log.error("fire time %s: cannot open the warehouse: %s", at.isoformat(), exc)
            error = f"cannot open the warehouse: {exc}"
            return [ExportResult(j.table, None, "FAILURE", error=error) for j in jobs]
        results: list[ExportResult] = []
        changes: dict[str, Change] = {}
        try:
            changes.update(
                (j.table, poll_change(self.config, engine, j.table, self.options.local_root))
                for j in jobs
                if j.on_change
            )
            jobs = [j for j in jobs if j.table not in changes or changes[j.table].changed]
            for trigger in sorted({j.trigger for j in jobs}):
                opts = RunOptions(
                    tables=tuple(j.table for j in jobs if j.trigger == trigger),
                    at=at,
                    trigger=trigger,
                    principal=who,
                    local_root=self.options.local_root,
                    progress=self.options.progress,
                    deliver=self.options.deliver,
                    alert_timeout=self.options.alert_timeout,
                )
                results += self.run(self.config, engine, opts)
        finally:
            self._release(engine, who)
        for r in results:
            if r.table in changes and (r.status == "SUCCESS" or r.already_done):
                changes[r.table].remember(at, r.export_id)
        return results

    def _daily(self, at: datetime, failed: set[str]) -> tuple[list[Any], list[Any]]:
        """Once a UTC day, at its first fire time, after its exports: the scheduled
        tables' late rows found and exported (``reconcile``; not of the tables whose
        export just failed: its record says why), then ``lifecycle archive``, aged by the
        fire time. The reports of both."""
        from dpexport.ops import archive, reconcile

        day = at.astimezone(UTC).date()
        if self._day is not None and day <= self._day:
            return [], []
        self._day = day
        tables = [j.table for j in self.jobs if j.replication is None]
        late = [
            t for t in tables if t not in failed and reconcile.can_reconcile(self.config.table(t))
        ]
        reconciled: list[Any] = []
        for who in dict.fromkeys(self._who(j) for j in self.jobs if j.table in late):
            mine = [j.table for j in self.jobs if j.table in late and self._who(j) == who]
            reconciled += self._reconcile(who, at, mine)
        archived = archive.daily_pass(
            self.config, at, tables, self.options.local_root, self.options.principal
        )
        return reconciled, archived

    def _reconcile(self, who: str | None, at: datetime, tables: list[str]) -> list[Any]:
        from dpexport.ops import reconcile

        try:
            engine = self._acquire(who)
        except DpexportError as exc:
            log.error("reconcile at %s postponed: cannot open the warehouse: %s", at, exc)
            return []
        try:
            options = dataclasses.replace(self.options, principal=who)
            return reconcile.daily_pass(self.config, engine, at, tables, options)
        finally:
            self._release(engine, who)

    def _replicate(self, who: str | None, jobs: list[Job]) -> list[Any]:
        from dpexport.ops.replicate import replicate
        from dpexport.security.identity import identity_of
        from dpexport.storage.uri import StoreResolver

        identity = identity_of(self.config.service_accounts, who)  # CONTRACT §11
        opener = StoreResolver(self.options.local_root, identity=identity).resolve
        items = [j.replication for j in jobs if j.replication is not None]
        return replicate(
            self.config, local_root=self.options.local_root, items=items, opener=opener
        )

    def _tick(self, at: datetime, jobs: Sequence[Job], skipped: int = 0) -> Tick:
        started = time.perf_counter()
        results = self._export(at, [j for j in jobs if j.replication is None])
        replicated: list[Any] = []
        copies = [j for j in jobs if j.replication is not None]
        for who in dict.fromkeys(self._who(j) for j in copies):
            # after the exports of the same fire time, so they are copied too
            replicated += self._replicate(who, [j for j in copies if self._who(j) == who])
        failed = {r.table for r in results if r.status == "FAILURE"}
        reconciled, archived = self._daily(at, failed)
        trigger = ",".join(sorted({j.trigger for j in jobs}))
        seconds = time.perf_counter() - started
        tick = Tick(at, trigger, results, seconds, skipped, replicated, reconciled, archived)
        tick.alerts = scheduled_alerts(self.config, self._tables(), self.options, self.clock())
        for r in results:
            log.info("%s %s at %s: %s rows", r.status, r.table, at.isoformat(), r.rows)
        for report in replicated:
            log.info("replication %s at %s: %s", report.replication, at.isoformat(), report.line())
        self.on_tick(tick)
        return tick
