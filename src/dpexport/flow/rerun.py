"""Failed exports run again from the DLQ (spec 7.2): the entries, wherever the config
keeps them, and each entry's export request re-run through :func:`~dpexport.flow.runner.
run_exports` (``dlq retry``, the scheduler's auto-retry)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from dpexport import TRIGGERS
from dpexport.config.spec import ResolvedConfig
from dpexport.engines.base import Engine
from dpexport.flow.context import ExportResult, RunOptions
from dpexport.flow.runner import run_exports
from dpexport.ops.logs import parse_time
from dpexport.reliability import dlq, places
from dpexport.reliability.places import Place
from dpexport.reliability.retry import RetryPolicy
from dpexport.storage.uri import StoreResolver

__all__ = ["dlq_entries", "rerun_request", "retry_dlq"]


def rerun_request(
    config: ResolvedConfig,
    engine: Engine,
    request: dict[str, Any],
    local_root: Path | None,
    principal: str | None = None,
) -> ExportResult:
    """Run a DLQ entry's export request (spec 7.2 ``export_request.json``) again: its
    table at its logical time and trigger, as ``principal`` (``dlq retry``'s, CONTRACT
    §11) or else the request's."""
    table = str(request.get("table") or "")
    at = parse_time(request.get("at"))
    if not table or at is None:
        return ExportResult(table, None, "FAILURE", error="export_request lacks table/at")
    trigger = request.get("trigger")
    try:
        config.table(table)
    except KeyError:
        return ExportResult(table, None, "FAILURE", error="table no longer in the config")
    if trigger == "reconcile":  # a failed repair of late rows: the pass again, at its time
        from dpexport.ops.reconcile import rerun

        return rerun(config, engine, table, at, local_root)
    if trigger not in TRIGGERS:
        trigger = "manual"
    options = RunOptions(
        tables=(table,),
        at=at,
        trigger=str(trigger),
        principal=principal or request.get("principal"),
        local_root=local_root,
    )
    return run_exports(config, engine, options)[0]


def dlq_entries(
    config: ResolvedConfig, local_root: Path | None, now: datetime
) -> list[tuple[Place, dlq.DlqEntry]]:
    """Every DLQ entry, with the place it was found: the configured ``storage_location``,
    or the default prefix of each of the config's stores (``ops.logs.config_stores``)."""
    from dpexport.ops.logs import config_stores

    settings = dlq.DlqSettings.from_config(config)
    resolver = StoreResolver(local_root)
    found = places.dlq_places(config, config_stores(config, local_root), resolver.resolve)
    return [
        (place, entry)
        for place in found
        for entry in dlq.list_entries(place.store, now, settings, root=place.root)
    ]


def retry_dlq(
    config: ResolvedConfig,
    engine: Engine,
    entries: Sequence[tuple[Place, dlq.DlqEntry]],
    *,
    local_root: Path | None,
    now: datetime,
    principal: str | None = None,
) -> list[dlq.RetryOutcome]:
    """Re-run each DLQ entry's export as ``principal`` (``dlq.retry_entry`` resolves,
    counts or poisons it)."""
    policy = RetryPolicy.from_config(config)
    return [
        dlq.retry_entry(
            place.store,
            entry,
            lambda request: rerun_request(config, engine, request, local_root, principal),
            now=now,
            policy=policy,
            root=place.root,
        )
        for place, entry in entries
    ]
