"""One export's data checks, from parsing ``validation:`` to the manifest entries.

The export drives a :class:`CheckRun` through these steps::

    run = CheckRun(ctx)                      # parse spec.validation, look at the columns
    request = run.prepare(ctx.request)        # AND row_filter() into the scan's filter
    run.before_scan()                         # ONE aggregate query for every SQL check
    q = run.quarantine_request()              # scan it into the quarantine file (if any)
    for batch in scan(request): run.observe(anonymize(batch))
    run.after_write(read_back, excluded, raw_values)
    run.results(); run.failures(); run.stats()

Rows are judged in three scopes: every row of the slice (consent is counted there);
the *eligible* rows, which have consent (quarantine checks count there: a row without
consent is dropped, never copied to the quarantine); and the *exported* rows, which
also pass every quarantine check (all other checks count there).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Sequence

import pyarrow as pa

from dpexport.checks.base import Check, CheckContext, CheckResult, Env, RowCheck, Scope, and_, text
from dpexport.checks.registry import parse_check_items
from dpexport.checks.rows import ConsentFlagCheck, TimestampOrdering
from dpexport.engines.base import ScanRequest
from dpexport.errors import ConfigError
from dpexport.transforms.gdpr import gdpr_plan

#: The extra column of :meth:`CheckRun.quarantine_request` naming why a row was kept out.
REASON_COLUMN = "_dpexport_reason"


class CheckRun:
    """The named checks of one export (CONTRACT §9).

    Raises :class:`~dpexport.errors.ConfigError` when ``spec.validation`` is invalid.
    A check whose column is missing does not raise: it reports ``failed`` (``warned``
    under severity warn) with a detail naming the column.
    """

    def __init__(self, ctx: CheckContext) -> None:
        spec = ctx.spec
        checks, issues = parse_check_items(
            list(spec.validation), f"{spec.qualified_name}.validation"
        )
        if issues:
            raise ConfigError(issues)
        self.ctx = ctx
        self.checks: list[Check] = checks
        plan = gdpr_plan(spec)
        excluded = set(ctx.request.exclude) | set(plan.excluded if plan else ())
        if not checks:
            schema = pa.schema([])
        else:
            schema = ctx.schema or ctx.engine.schema(spec.dataset, spec.table)
        selected = set(ctx.request.columns if ctx.request.columns is not None else schema.names)
        columns = {f.name: f.type for f in schema if f.name in selected - excluded}
        env = Env(ctx, columns, frozenset(excluded), plan)
        consent_column = spec.gdpr.consent_column if spec.gdpr is not None else None
        for check in checks:
            if (
                isinstance(check, ConsentFlagCheck)
                and "column" not in check.explicit
                and isinstance(consent_column, str)
                and consent_column
            ):
                check.p["column"] = consent_column  # gdpr_compliance.consent_column
            check.bind(env)
        self._consent = [c for c in checks if isinstance(c, ConsentFlagCheck)]
        self._quarantine = [
            c for c in checks if isinstance(c, RowCheck) and not isinstance(c, ConsentFlagCheck)
            and c.quarantines
        ]  # fmt: skip

    # -- what the scan must do ------------------------------------------------------
    def scope(self) -> Scope:
        """The row predicates of the three scopes (see the module docstring)."""
        eligible = and_(*(c.filter_sql() for c in self._consent))
        keep = (f"coalesce(({c.ok_sql()}), FALSE)" for c in self._quarantine)
        return Scope(all="TRUE", eligible=eligible, exported=and_(eligible, *keep))

    def row_filter(self) -> str | None:
        """The predicate the export scan must AND into its filter: consent, and every
        quarantine check's good rows. ``None`` when nothing is filtered."""
        exported = self.scope().exported
        return None if exported == "TRUE" else exported

    def prepare(self, request: ScanRequest) -> ScanRequest:
        """``request`` with :meth:`row_filter` ANDed in and, when ``timestamp_ordering``
        runs, its column appended to ``order_by`` so rows are written in that order."""
        flt = _and_or_none(request.filter, self.row_filter())
        order = request.order_by
        for check in self.checks:
            if isinstance(check, TimestampOrdering) and check.usable:
                col = check.p["column"]
                if col not in order:
                    order = (*order, col)
        return dataclasses.replace(request, filter=flt, order_by=order)

    def quarantine_request(self) -> ScanRequest | None:
        """The scan of the quarantined rows (consenting rows that fail a quarantine
        check), with an extra ``_dpexport_reason`` column naming every check each row
        failed, ``; ``-separated. ``None`` when no check quarantines."""
        if not self._quarantine:
            return None
        req = self.ctx.request
        bad = [c.bad_sql() for c in self._quarantine]
        any_bad = " OR ".join(f"({b})" for b in bad)
        reasons = ", ".join(
            f"CASE WHEN {b} THEN {text(c.reason())} END"
            for b, c in zip(bad, self._quarantine, strict=True)
        )
        return dataclasses.replace(
            req,
            filter=_and_or_none(req.filter, and_(self.scope().eligible, any_bad)),
            extra={**req.extra, REASON_COLUMN: f"concat_ws('; ', {reasons})"},
        )

    # -- measuring ----------------------------------------------------------------
    def before_scan(self) -> None:
        """Evaluate every SQL check in one ``engine.aggregate`` query over the slice."""
        scope = self.scope()
        exprs: dict[str, str] = {}
        owners: list[tuple[Check, dict[str, str]]] = []
        for i, check in enumerate(self.checks):
            if not check.usable:
                continue
            local = check.sql(scope)
            if local:
                names = {k: f"c{i}_{k}" for k in local}
                exprs.update({names[k]: e for k, e in local.items()})
                owners.append((check, names))
        if not exprs:
            return
        values = self.ctx.engine.aggregate(self.ctx.request, exprs)
        for check, names in owners:
            check.sql_done({k: values[n] for k, n in names.items()})

    def observe(self, batch: pa.RecordBatch, group: str | None = None) -> None:
        """A batch exactly as written (after anonymization). ``group`` names the folder
        the batch goes to when the caller has already split batches by folder (the key
        columns are gone then); order-sensitive checks judge order within a group."""
        for check in self.checks:
            if check.usable:
                check.current_group = group
                check.observe(batch)

    def after_write(
        self,
        read_back: Callable[[], Iterable[pa.RecordBatch]],
        excluded: Sequence[str],
        anonymized_raw_values: Callable[[str], Iterable[str]] | None,
    ) -> None:
        """Checks of the written files: ``read_back`` yields their rows decoded,
        ``anonymized_raw_values(column)`` the raw source values of an anonymized column.
        ``read_back`` is called at most once, and only if a check needs it."""
        wanting = [c for c in self.checks if c.usable and c.wants_read_back]
        if not wanting:
            return
        batches: Iterable[pa.RecordBatch] = read_back()
        if len(wanting) > 1:
            batches = list(batches)
        for check in wanting:
            check.after_write(batches, excluded, anonymized_raw_values)

    # -- outcome ------------------------------------------------------------------
    def results(self) -> list[CheckResult]:
        """Every check's result, in config order."""
        return [c.result() for c in self.checks]

    def failures(self) -> list[CheckResult]:
        """The results with status ``failed`` (severity error); the export must fail."""
        return [r for r in self.results() if r.status == "failed"]

    def stats(self) -> dict[str, object]:
        """JSON-able values for the next export's ``previous_stats``, by check name
        (feature means and standard deviations, feature versions)."""
        out: dict[str, object] = {}
        for check in self.checks:
            value = check.stats() if check.usable else None
            if value is not None:
                out[check.name] = value
        return out


def _and_or_none(*predicates: str | None) -> str | None:
    joined = and_(*predicates)
    return None if joined == "TRUE" else joined
