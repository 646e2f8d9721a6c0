"""``DpexportOperator``: one table exported at one logical time, as an Airflow task.

The logical time is the DAG run's ``data_interval_end``. Under the timetable
:func:`~dpexport.airflow.dags.dags_from_config` gives its DAGs (``CronTriggerTimetable``,
Airflow 3's default for a cron) it is the run's ``logical_date``: the cron's fire time,
which is what ``dpexport schedule`` calls the logical time of the same fire. Under a
data-interval timetable (``CronDataIntervalTimetable``, Airflow 2's default) the
``logical_date`` is the interval's *start*, and exporting "up to" it would lag one
interval behind and disagree with ``dpexport schedule``; the interval's end is the fire
time under both. A run without one (a manual run given no logical date) uses its
``run_after``. Each is stored on the DAG run, so a retry of the task, or a clear and
rerun, exports at the same time: its idempotency token is the same, and dpexport makes
it a no-op (``SKIPPED``, already done) or a resume of what was begun, never a second
copy. A backfill creates the runs the schedule would have, at the same times.

Retries: dpexport retries transient errors itself (spec 7.1, the only retry layer), so a
failed export is one the policy gave up on. It raises ``AirflowException``, which fails
the task (Airflow retries it if the task has ``retries``); a bad config or an unknown
table raises ``AirflowFailException``: no retry can fix it. The ``FAILURE`` marker, DLQ
entry, alerts and export log are written by dpexport before the task fails, as
``dpexport run`` writes them.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator  # type: ignore[import-not-found]
from airflow.sdk.exceptions import (  # type: ignore[import-not-found]
    AirflowException,
    AirflowFailException,
)

if TYPE_CHECKING:
    from dpexport.flow.context import ExportResult


class DpexportOperator(BaseOperator):
    """Export ``table`` of the dpexport config at ``config`` (a path) at the DAG run's
    logical time; the task's return value (its XCom) is the export's ``run --json``
    record plus ``logical_time``.

    ``local_root`` maps the config's buckets to a folder as ``--local-root`` does (None:
    the real stores); ``principal`` is ``--as`` (None: ``$DPEXPORT_PRINCIPAL`` or the only
    one allowed); ``trigger`` is the manifest's ``export_trigger``."""

    template_fields = ("config", "table", "local_root", "principal")
    ui_color = "#d6eaf8"

    def __init__(
        self,
        *,
        config: str | os.PathLike[str],
        table: str,
        local_root: str | os.PathLike[str] | None = None,
        principal: str | None = None,
        trigger: str = "cron",
        **kwargs: Any,
    ) -> None:
        from dpexport import TRIGGERS

        if trigger not in TRIGGERS:
            raise ValueError(f"trigger {trigger!r}: expected one of {', '.join(TRIGGERS)}")
        super().__init__(**kwargs)
        self.config = str(config)
        self.table = table
        self.local_root = str(local_root) if local_root is not None else None
        self.principal = principal
        self.trigger = trigger

    def execute(self, context: Any) -> dict[str, Any]:
        import dpexport

        at = logical_time(context)
        self.log.info("dpexport: exporting %s at %s", self.table, at.isoformat())
        try:
            [result] = dpexport.run(
                self.config,
                tables=self.table,
                at=at,
                trigger=self.trigger,
                principal=self.principal,
                local_root=self.local_root,
            )
        except dpexport.ExportFailed as exc:
            raise AirflowException(_failure(exc.results, at)) from exc
        except (dpexport.ConfigError, dpexport.UsageError) as exc:
            raise AirflowFailException(f"dpexport {self.table}: {exc}") from exc
        self.log.info("dpexport: %s %s", result.status, result.reason or "")
        return record(result, at)


def logical_time(context: Any) -> datetime:
    """The DAG run's logical time for dpexport (the module's docstring says why)."""
    run = context.get("dag_run")
    for found in (
        context.get("data_interval_end"),
        context.get("logical_date"),
        getattr(run, "run_after", None),
    ):
        if found is not None:
            return _utc(found)
    raise AirflowFailException("the DAG run has no logical date, data interval or run_after")


def _utc(value: datetime) -> datetime:
    """A plain ``datetime`` in UTC (Airflow passes pendulum's subclass)."""
    moment = value.astimezone(UTC)
    return datetime(*moment.timetuple()[:6], moment.microsecond, tzinfo=UTC)


def record(result: ExportResult, at: datetime) -> dict[str, Any]:
    """The XCom of one export: ``run --json``'s record and the logical time."""
    return {**result.to_json(), "logical_time": at.isoformat()}


def _failure(results: list[ExportResult], at: datetime) -> str:
    failed = [r for r in results if r.status == "FAILURE"]
    return "; ".join(
        f"dpexport {r.table} at {at.isoformat()} failed (export {r.export_id}): {r.error}"
        for r in failed
    )
