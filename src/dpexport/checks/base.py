"""The shapes every named check shares: results, context, and the two base classes.

A check goes through these steps, driven by :class:`~dpexport.checks.runner.CheckRun`:

1. ``bind(env)``: look at the table's columns; a missing column sets ``error``.
2. ``sql(scope)`` / ``sql_done(values)``: aggregate SQL expressions evaluated in the
   run's single ``before_scan`` query, and their values.
3. ``observe(batch)``: the batches as written (after anonymization).
4. ``after_write(...)``: the written files, read back.
5. ``result()``: a :class:`CheckResult`.

:class:`RowCheck` is a check that judges each row by one SQL predicate; such a check can
quarantine the rows it rejects. SQL is DuckDB's dialect; identifiers are quoted.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar

import pyarrow as pa

from dpexport.checks.params import Param
from dpexport.config.spec import TableSpec
from dpexport.engines.base import Engine, ScanRequest
from dpexport.transforms.gdpr import GdprPlan


@dataclass
class CheckResult:
    """How one check came out; ``to_json`` is its entry in the manifest's
    ``validation.checks``. ``status`` is ``passed``, ``failed`` or ``warned``."""

    name: str
    status: str
    rows_checked: int
    rows_failed: int
    rows_dropped: int
    rows_quarantined: int
    detail: str
    severity: str
    info: dict[str, object] = field(default_factory=dict)  # extra manifest keys (versions)

    def to_json(self) -> dict[str, object]:
        """The manifest entry (extra ``info`` keys, such as ``versions``, are merged in)."""
        out: dict[str, object] = {
            "name": self.name,
            "status": self.status,
            "severity": self.severity,
            "rows_checked": self.rows_checked,
            "rows_failed": self.rows_failed,
            "rows_dropped": self.rows_dropped,
            "rows_quarantined": self.rows_quarantined,
            "detail": self.detail,
        }
        out.update(self.info)
        return out


@dataclass
class CheckContext:
    """What the checks of one export see.

    ``request`` is the export's scan (slice, exclude) before any check filter;
    ``previous_stats`` is what :meth:`CheckRun.stats` returned for the previous
    export of this table (``None`` on the first).
    """

    spec: TableSpec
    engine: Engine
    request: ScanRequest
    logical_time: datetime
    previous_stats: dict[str, object] | None = None
    #: the table's schema when the caller already has it (saves a warehouse round trip)
    schema: pa.Schema | None = None


@dataclass(frozen=True)
class Env:
    """What ``bind`` sees: the context, the columns a check may use (name -> type; the
    source schema minus excluded ones), every excluded name, and the GDPR plan."""

    ctx: CheckContext
    columns: dict[str, pa.DataType]
    excluded: frozenset[str]
    gdpr: GdprPlan | None


@dataclass(frozen=True)
class Scope:
    """Row predicates for the aggregate query: every row of the slice, the rows that
    pass the filter checks (consent), and the rows that will be exported."""

    all: str
    eligible: str
    exported: str


# ------------------------------------------------------------------ SQL helpers


def ident(name: str) -> str:
    """A quoted SQL identifier."""
    return '"' + name.replace('"', '""') + '"'


def text(value: str) -> str:
    """A SQL string literal."""
    return "'" + value.replace("'", "''") + "'"


def num(value: float) -> str:
    """A SQL numeric literal (integral values without a fraction)."""
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def count_where(predicate: str) -> str:
    """An aggregate counting the rows where ``predicate`` is true."""
    return f"coalesce(sum(CASE WHEN {predicate} THEN 1 ELSE 0 END), 0)"


def and_(*predicates: str | None) -> str:
    """The conjunction of the given predicates (``TRUE`` for none)."""
    parts = [p for p in predicates if p and p != "TRUE"]
    if len(parts) <= 1:
        return parts[0] if parts else "TRUE"
    return " AND ".join(f"({p})" for p in parts)


def as_text(column: str, dtype: pa.DataType | None) -> str:
    """The column as SQL text, cast to VARCHAR unless it already is a string."""
    if dtype is not None and (pa.types.is_string(dtype) or pa.types.is_large_string(dtype)):
        return ident(column)
    return f"CAST({ident(column)} AS VARCHAR)"


# ------------------------------------------------------------------ base classes


class Check:
    """One named check of CONTRACT §9, configured by its parsed parameters."""

    name: ClassVar[str]
    summary: ClassVar[str]  # "passes when ..." for documentation and details
    params: ClassVar[dict[str, Param]] = {}
    quarantinable: ClassVar[bool] = False
    #: why ``on_fail: quarantine`` is refused (when not quarantinable)
    no_quarantine_reason: ClassVar[str] = "it judges the slice as a whole, not single rows"

    def __init__(self, params: dict[str, Any], severity: str, on_fail: str) -> None:
        self.p = params
        self.severity = severity
        self.on_fail = on_fail
        self.error: str | None = None  # cannot run (missing column, ...)
        self.problems: list[str] = []  # why it failed
        self.notes: list[str] = []  # what it saw, when it passed
        self.info: dict[str, object] = {}
        self.rows_checked = 0
        self.rows_failed = 0
        self.rows_dropped = 0
        self.rows_quarantined = 0
        self._finished = False
        self.explicit: frozenset[str] = frozenset()  # parameters the config set

    # -- columns ---------------------------------------------------------------
    def required_columns(self) -> tuple[str, ...]:
        """Source columns the check reads (``column``/``columns`` by default)."""
        cols: tuple[str, ...] = ()
        if "column" in self.p:
            cols += (self.p["column"],)
        if isinstance(self.p.get("columns"), tuple):
            cols += self.p["columns"]
        return cols

    def bind(self, env: Env) -> None:
        """Check the columns exist; sets ``error`` (with a clear detail) if not."""
        self.env = env
        # Warehouse identifiers match case-insensitively: use the table's spelling.
        by_lower = {c.lower(): c for c in env.columns}
        for key in ("column", "by"):
            if isinstance(self.p.get(key), str):
                self.p[key] = by_lower.get(self.p[key].lower(), self.p[key])
        if isinstance(self.p.get("columns"), tuple):
            self.p["columns"] = tuple(by_lower.get(c.lower(), c) for c in self.p["columns"])
        excluded = {c.lower() for c in env.excluded}
        for col in self.required_columns():
            if col.lower() in excluded:
                self.error = f"column {col!r} is excluded from the export"
                return
            if col not in env.columns:
                names = list(env.columns)
                shown = ", ".join(names[:20]) + (", ..." if len(names) > 20 else "")
                self.error = (
                    f"column {col!r} does not exist in {env.ctx.spec.qualified_name}"
                    f" (columns: {shown or 'none'})"
                )
                return
        self.error = self._bind(env)

    def _bind(self, env: Env) -> str | None:
        """Subclass hook after the column check; returns an error detail or ``None``."""
        return None

    @property
    def usable(self) -> bool:
        """Bound without error."""
        return self.error is None

    # -- hooks -----------------------------------------------------------------
    def sql(self, scope: Scope) -> dict[str, str]:
        """Aggregate expressions for the ``before_scan`` query (local names)."""
        return {}

    def sql_done(self, values: dict[str, Any]) -> None:
        """The values of :meth:`sql`'s expressions."""

    #: the folder the observed batch goes to, when the caller split batches by folder
    current_group: str | None = None

    def observe(self, batch: pa.RecordBatch) -> None:
        """A batch exactly as written."""

    @property
    def wants_read_back(self) -> bool:
        """Whether :meth:`after_write` needs the written rows."""
        return False

    def after_write(
        self,
        batches: Iterable[pa.RecordBatch],
        excluded: Sequence[str],
        raw_values: Callable[[str], Iterable[str]] | None,
    ) -> None:
        """The written files, read back and decoded."""

    def stats(self) -> dict[str, object] | None:
        """JSON-able values to remember for the next export of the table."""
        return None

    def previous(self) -> dict[str, Any] | None:
        """This check's entry in the previous export's stats."""
        prev = self.env.ctx.previous_stats if hasattr(self, "env") else None
        entry = prev.get(self.name) if isinstance(prev, dict) else None
        return entry if isinstance(entry, dict) else None

    def finish(self) -> None:
        """Last step before the result (comparisons against the previous export)."""

    # -- result ----------------------------------------------------------------
    def result(self) -> CheckResult:
        """The outcome; a failure is ``failed`` under severity error, else ``warned``."""
        if self.error is None and not self._finished:
            self._finished = True
            self.finish()
        bad = self.error is not None or bool(self.problems)
        status = ("warned" if self.severity == "warn" else "failed") if bad else "passed"
        detail = self.error or "; ".join(self.problems) or "; ".join(self.notes) or "ok"
        return CheckResult(
            name=self.name,
            status=status,
            rows_checked=self.rows_checked,
            rows_failed=self.rows_failed,
            rows_dropped=self.rows_dropped,
            rows_quarantined=self.rows_quarantined,
            detail=detail,
            severity=self.severity,
            info=dict(self.info),
        )


class RowCheck(Check):
    """A check that judges each row by one SQL predicate (:meth:`ok_sql`).

    It counts, in the ``before_scan`` query, the rows it rejects among the rows to be
    exported; with ``on_fail: quarantine`` it counts them among the consenting rows,
    and the run keeps them out of the export and routes them to the quarantine.
    """

    quarantinable = True
    fail_text: ClassVar[str] = "rows fail the check"  # "N of M <fail_text>"

    def failure_text(self) -> str:
        """What the rejected rows have wrong: "N of M <failure_text>"."""
        return self.fail_text

    def ok_sql(self) -> str:
        """Predicate that is true for a good row (NULL counts as bad)."""
        raise NotImplementedError

    def bad_sql(self) -> str:
        """Predicate that is true for a row the check rejects, never NULL."""
        return f"NOT coalesce(({self.ok_sql()}), FALSE)"

    @property
    def quarantines(self) -> bool:
        """Rejected rows are quarantined rather than failing the export."""
        return self.on_fail == "quarantine" and self.usable

    def reason(self) -> str:
        """The ``_dpexport_reason`` text of a row this check quarantined."""
        return f"{self.name}: {self.failure_text()}"

    def sql(self, scope: Scope) -> dict[str, str]:
        base = scope.eligible if self.quarantines else scope.exported
        return {"checked": count_where(base), "bad": count_where(and_(base, self.bad_sql()))}

    def sql_done(self, values: dict[str, Any]) -> None:
        self.rows_checked = int(values["checked"] or 0)
        bad = int(values["bad"] or 0)
        if self.quarantines:
            self.rows_quarantined = bad
            if bad:
                self.notes.append(
                    f"{bad} of {self.rows_checked} {self.failure_text()}; quarantined"
                )
        else:
            self.rows_failed = bad
            if bad:
                self.problems.append(f"{bad} of {self.rows_checked} {self.failure_text()}")
