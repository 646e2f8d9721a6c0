"""What a run of exports is given and what each export returns: the options, the
context an export runs in, its result (``run --json``), and the progress it reports."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from dpexport.config.spec import ResolvedConfig
from dpexport.engines.base import Engine
from dpexport.flow.budget import MemoryBudget
from dpexport.reliability.retry import Retrier
from dpexport.storage.base import Store
from dpexport.storage.uri import StoreResolver

if TYPE_CHECKING:
    from dpexport.publish.tokens import Lease


class Progress(Protocol):
    """What the runner reports while it works (the CLI draws a bar from it)."""

    def start(self, table: str, total_rows: int) -> None: ...

    def advance(self, table: str, rows: int, stored_bytes: int, files: int) -> None: ...

    def finish(self, table: str) -> None: ...


@dataclass
class ExportResult:
    """One export attempted, as ``run --json`` prints it (CONTRACT §2)."""

    table: str
    export_id: str | None
    status: str  # SUCCESS | FAILURE | SKIPPED
    rows: int = 0
    files: int = 0
    manifests: list[str] = field(default_factory=list)
    error: str | None = None
    reason: str | None = None
    #: SKIPPED because its token says this export was already committed (not printed:
    #: ``reason`` says it to people; this says it to code such as ``dlq retry``)
    already_done: bool = False
    #: what it cost, ``dpexport.ops.cost``'s breakdown (None: unknown, or nothing done)
    cost_usd: dict[str, Any] | None = None
    #: the alerts this export sent (``alerts.model.Delivery``; None: none evaluated yet)
    alerts: list[Any] | None = None
    #: wall time of the attempt, from taking its lease to its log record (None: not run)
    duration_seconds: float | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "table": self.table,
            "export_id": self.export_id,
            "status": self.status,
            "rows": self.rows,
            "files": self.files,
            "manifests": self.manifests,
            "error": self.error,
            "reason": self.reason,
            "cost_usd": self.cost_usd,
        }


@dataclass
class RunOptions:
    tables: Sequence[str] = ()
    at: datetime | None = None
    trigger: str = "manual"
    principal: str | None = None
    local_root: Path | None = None
    progress: Progress | None = None
    #: called with the name of each commit step (tests use it to stop at a step)
    on_step: Callable[[str], None] | None = None
    #: makes the retrier of one export (tests inject a clock and a sleep)
    retrier: Callable[[], Retrier] | None = None
    #: wraps each destination store (tests inject faults under the retries)
    wrap_store: Callable[[Store], Store] | None = None
    #: delivers alerts (``alerts.rules.Deliver``; None: ``alerts.deliver.deliver``;
    #: tests inject a recorder)
    deliver: Callable[..., list[Any]] | None = None
    #: seconds the alerts of one export may take together (None: ``alerts.rules``' default)
    alert_timeout: float | None = None
    #: tables exported at once (``run --parallel``; 1: one after another)
    parallel: int = 1
    #: the lease of a table the caller already holds (``compact`` takes it before it lists
    #: the increments it folds): that table's export works under it, and leaves it held
    held_lease: Lease | None = None


@dataclass
class RunContext:
    config: ResolvedConfig
    engine: Engine
    stores: StoreResolver
    options: RunOptions
    logical_time: datetime
    #: what the streamed writers of the run's exports may buffer together
    budget: MemoryBudget = field(default_factory=MemoryBudget)
