"""``dags_from_config``: Airflow DAGs from a dpexport config's schedules.

One DAG per distinct schedule (a cron and the zone it reads), with a
:class:`~dpexport.airflow.operator.DpexportOperator` task per table on it. A DAG run is
then what one tick of ``dpexport schedule`` is: every table due at one fire time, each
exported at that logical time, each in its own task, so one table failing fails its task
and not the others, and a task is retried, cleared or backfilled alone. Grouping by table
instead would make a DAG per table, many for a large config, where a schedule's grid view
already shows each table's row.

Each DAG's timetable is Airflow's ``CronTriggerTimetable`` for the cron in its zone, so a
run's logical date is the cron's fire time, the logical time ``dpexport schedule`` gives
the same fire: the two runners make the same idempotency tokens, and an export made by
one is ``SKIPPED`` by the other. ``max_active_runs=1`` runs a DAG's fire times in order,
as APPEND watermarks need (and dpexport's per-table lease would refuse a second run of a
table at once); tasks get ``retries: 0`` unless ``default_args`` say otherwise, because
dpexport retries transient errors itself (spec 7.1).

Left out, and named in a warning when the DAGs are built:

- tables without a schedule: they run on demand (``dpexport run``, or a
  ``DpexportOperator`` in a DAG of one's own);
- ``continuous`` tables: a loop of exports seconds apart is ``dpexport schedule``'s; a DAG
  run per interval would spend more in Airflow's scheduler and metadata database than in
  the export;
- ``on_change`` tables: they export at a poll only when the table's change marker moved,
  which ``dpexport schedule`` keeps; a timetable cannot ask the warehouse, and exporting at
  every poll would republish unchanged tables;
- a frequency held to the off-peak window that no cron states (see :mod:`.offpeak`).

Airflow is imported when the DAGs are built, not when this module is.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dpexport.config import schedules

if TYPE_CHECKING:
    from dpexport.config.spec import ResolvedConfig, TableSpec

log = logging.getLogger(__name__)

#: what replaces the cron characters a DAG id cannot hold
_ID_CHARS = str.maketrans({"*": "x", "/": "every", ",": ".", "@": "", " ": "_"})


@dataclass(frozen=True)
class ScheduleGroup:
    """The tables that fire on one cron in one zone: one DAG."""

    dag_id: str
    cron: str
    zone: str
    #: (task id, the table's qualified name)
    tables: tuple[tuple[str, str], ...]


def schedule_groups(
    config: ResolvedConfig, prefix: str = "dpexport"
) -> tuple[list[ScheduleGroup], dict[str, str]]:
    """The config's tables by cron and zone, and the tables left out with the reason."""
    by_key: dict[tuple[str, str], list[tuple[str, str]]] = {}
    skipped: dict[str, str] = {}
    for spec in config.tables:
        found = _cron_of(spec)
        if isinstance(found, str):
            skipped[spec.table] = found
        else:
            by_key.setdefault(found, []).append((spec.table, spec.qualified_name))
    groups = [
        ScheduleGroup(dag_id(prefix, cron, zone), cron, zone, tuple(tables))
        for (cron, zone), tables in by_key.items()
    ]
    return groups, skipped


def _cron_of(spec: TableSpec) -> tuple[str, str] | str:
    """The table's (cron, zone), or why it has no DAG."""
    from dpexport.airflow.offpeak import held_cron

    if not spec.schedule:
        return "no schedule: it runs on demand"
    when = schedules.parse(spec.schedule, timezone=spec.timezone, off_peak=spec.off_peak)
    if when.kind == "continuous":
        return "continuous: `dpexport schedule` runs it, not a DAG run per interval"
    if when.kind == "on_change":
        return "on_change: `dpexport schedule` polls its change marker"
    if when.window is None:
        return when.cron, when.zone.key
    held = held_cron(when)
    if held is None:
        return f"its fire times held to the off-peak window {when.window.text!r} fit no cron"
    return held


def dag_id(prefix: str, cron: str, zone: str) -> str:
    """``dpexport_0_2_x_x_x`` for ``0 2 * * *`` in UTC, with the zone after other zones'."""
    name = f"{prefix}_{cron.strip().translate(_ID_CHARS)}"
    return name if zone == "UTC" else f"{name}_{zone.replace('/', '.')}"


def dags_from_config(
    path: str | os.PathLike[str],
    *,
    local_root: str | os.PathLike[str] | None = None,
    principal: str | None = None,
    prefix: str = "dpexport",
    start_date: datetime | None = None,
    catchup: bool = False,
    default_args: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """A DAG per schedule of the config at ``path``, by DAG id: put them in a DAG file's
    globals (``globals().update(dags_from_config(...))``). ``local_root`` and
    ``principal`` are the tasks' (``--local-root``, ``--as``); ``start_date`` and
    ``catchup`` the DAGs' (a backfill needs a start); ``default_args`` the tasks'."""
    from airflow.sdk import DAG, CronTriggerTimetable  # type: ignore[import-not-found]

    from dpexport.airflow.operator import DpexportOperator
    from dpexport.api import load_config

    config_path = Path(path).resolve()
    groups, skipped = schedule_groups(load_config(config_path), prefix)
    for table, why in skipped.items():
        log.warning("dpexport: no DAG for table %s: %s", table, why)
    root = str(Path(local_root).resolve()) if local_root is not None else None
    dags: dict[str, Any] = {}
    for group in groups:
        names = ", ".join(name for _, name in group.tables)
        with DAG(
            dag_id=group.dag_id,
            schedule=CronTriggerTimetable(group.cron, timezone=group.zone),
            start_date=start_date,
            catchup=catchup,
            max_active_runs=1,
            default_args={"retries": 0, **(default_args or {})},
            description=f"dpexport {names} at {group.cron} ({group.zone})",
            tags=["dpexport"],
        ) as dag:
            for task_id, table in group.tables:
                DpexportOperator(
                    task_id=task_id,
                    config=str(config_path),
                    table=table,
                    local_root=root,
                    principal=principal,
                )
        dags[group.dag_id] = dag
    return dags
