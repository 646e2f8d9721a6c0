"""Checks that judge the export as a whole: repeats, ratios, balances, distributions,
and what the written files hold. None of them can quarantine single rows."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from decimal import Decimal
from typing import Any, ClassVar

import pyarrow as pa

from dpexport.checks import params as P
from dpexport.checks.base import Check, Env, Scope, count_where, ident
from dpexport.transforms.gdpr import rule_function


def _is_numeric(dtype: pa.DataType) -> bool:
    return pa.types.is_integer(dtype) or pa.types.is_floating(dtype) or pa.types.is_decimal(dtype)


class UniquePostIds(Check):
    name = "unique_post_ids"
    summary = "no post_id repeats in the slice (NULLs are not repeats)"
    params: ClassVar[dict[str, P.Param]] = {"column": P.Param(P.column, "post_id")}
    no_quarantine_reason = "a repeat is not one bad row; use `deduplication: by post_id`"

    def sql(self, scope: Scope) -> dict[str, str]:
        col, where = ident(self.p["column"]), scope.exported
        return {
            "rows": count_where(where),
            "n": f"count(CASE WHEN {where} THEN {col} END)",
            "d": f"count(DISTINCT CASE WHEN {where} THEN {col} END)",
        }

    def sql_done(self, values: dict[str, Any]) -> None:
        self.rows_checked = int(values["rows"] or 0)
        self.rows_failed = int(values["n"] or 0) - int(values["d"] or 0)
        if self.rows_failed:
            self.problems.append(
                f"{self.rows_failed} of {self.rows_checked} rows repeat an earlier "
                f"{self.p['column']}"
            )


class TranscriptAvailability(Check):
    name = "transcript_availability"
    summary = "at least min_ratio (0.5) of rows have a non-null transcript"
    params: ClassVar[dict[str, P.Param]] = {
        "column": P.Param(P.column, "transcript"),
        "min_ratio": P.Param(P.fraction, 0.5),
    }

    def sql(self, scope: Scope) -> dict[str, str]:
        col, where = ident(self.p["column"]), scope.exported
        return {"rows": count_where(where), "with": f"count(CASE WHEN {where} THEN {col} END)"}

    def sql_done(self, values: dict[str, Any]) -> None:
        rows, with_ = int(values["rows"] or 0), int(values["with"] or 0)
        self.rows_checked = rows
        ratio = with_ / rows if rows else 1.0
        text = f"{with_} of {rows} rows ({ratio:.1%}) have a {self.p['column']}"
        if rows and ratio < self.p["min_ratio"]:
            self.rows_failed = rows - with_
            self.problems.append(f"{text}; at least {self.p['min_ratio']:.1%} required")
        else:
            self.notes.append(text)


class TransactionBalanceCheck(Check):
    """Source side in the ``before_scan`` query, written side from the batches."""

    name = "transaction_balance_check"
    summary = "row count and sum(amount) of the written files equal those of the source slice"
    params: ClassVar[dict[str, P.Param]] = {"column": P.Param(P.column, "amount")}

    def __init__(self, params: dict[str, Any], severity: str, on_fail: str) -> None:
        super().__init__(params, severity, on_fail)
        self.source: tuple[int, Any] | None = None
        self.written_rows = 0
        self.written_sum: Any = None
        self.missing = False

    def _bind(self, env: Env) -> str | None:
        dtype = env.columns[self.p["column"]]
        return None if _is_numeric(dtype) else f"column {self.p['column']!r} is {dtype}"

    def sql(self, scope: Scope) -> dict[str, str]:
        col, where = ident(self.p["column"]), scope.exported
        return {"n": count_where(where), "s": f"sum(CASE WHEN {where} THEN {col} END)"}

    def sql_done(self, values: dict[str, Any]) -> None:
        self.source = (int(values["n"] or 0), values["s"])

    def observe(self, batch: pa.RecordBatch) -> None:
        import pyarrow.compute as pc

        self.written_rows += batch.num_rows
        if self.p["column"] not in batch.schema.names:
            self.missing = self.missing or batch.num_rows > 0
            return
        part = pc.sum(batch.column(self.p["column"])).as_py()
        if part is not None:
            self.written_sum = part if self.written_sum is None else self.written_sum + part

    def finish(self) -> None:
        self.rows_checked = self.written_rows
        if self.source is None:
            self.problems.append("the source slice was not measured (before_scan not run)")
            return
        n, total = self.source
        col = self.p["column"]
        self.rows_failed = abs(self.written_rows - n)
        if self.missing:
            self.problems.append(f"the written rows have no {col} column")
        if self.written_rows != n:
            self.problems.append(f"{self.written_rows} rows written, {n} in the source slice")
        if not _same_sum(total, self.written_sum):
            self.problems.append(f"sum({col}) written {self.written_sum}, source {total}")
        if not self.problems:
            self.notes.append(f"{n} rows, sum({col}) {total}")


def _same_sum(a: Any, b: Any) -> bool:
    if a is None or b is None:
        return (a or 0) == (b or 0)
    if isinstance(a, int | Decimal) and isinstance(b, int | Decimal):
        return Decimal(a) == Decimal(b)
    return math.isclose(float(a), float(b), rel_tol=1e-9, abs_tol=1e-9)


class NullPercentageThreshold(Check):
    """Measured on the written rows: anonymization can turn values into NULL."""

    name = "null_percentage_threshold"
    summary = "each column's null share in the written rows is at most max (5%)"
    params: ClassVar[dict[str, P.Param]] = {
        "max": P.Param(P.fraction, 0.05),
        "columns": P.Param(P.columns, None, "default: every written column"),
    }

    def __init__(self, params: dict[str, Any], severity: str, on_fail: str) -> None:
        super().__init__(params, severity, on_fail)
        self.rows = 0
        self.nulls: dict[str, int] = {}

    def observe(self, batch: pa.RecordBatch) -> None:
        self.rows += batch.num_rows
        for name in self.p["columns"] or batch.schema.names:
            if name in batch.schema.names:
                self.nulls[name] = self.nulls.get(name, 0) + batch.column(name).null_count

    def finish(self) -> None:
        self.rows_checked = self.rows
        if not self.rows:
            self.notes.append("no rows written")
            return
        over = []
        for name in self.p["columns"] or self.nulls:
            if name not in self.nulls:
                self.problems.append(f"column {name!r} is not in the written rows")
                continue
            share = self.nulls[name] / self.rows
            if share > self.p["max"]:
                over.append(f"{name} {share:.1%}")
                self.rows_failed = max(self.rows_failed, self.nulls[name])
        if over:
            self.problems.append(f"null share above {self.p['max']:.1%}: {', '.join(over)}")
        else:
            self.notes.append(f"every column at most {self.p['max']:.1%} null")


class FeatureValueDistributions(Check):
    """Per-column mean and (population) standard deviation of the written rows,
    compared with the previous export's stats; the first export sets the baseline."""

    name = "feature_value_distributions"
    summary = (
        "each numeric feature's mean is within max_shift (3) standard deviations "
        "of the previous export's"
    )
    params: ClassVar[dict[str, P.Param]] = {
        "columns": P.Param(P.columns, None, "default: numeric columns not named id/*_id"),
        "max_shift": P.Param(P.positive_number, 3.0),
    }

    def __init__(self, params: dict[str, Any], severity: str, on_fail: str) -> None:
        super().__init__(params, severity, on_fail)
        self.rows = 0
        self.moments: dict[str, tuple[int, float, float]] = {}  # count, mean, M2

    def _bind(self, env: Env) -> str | None:
        for name in self.p["columns"] or ():
            if not _is_numeric(env.columns[name]):
                return f"column {name!r} is {env.columns[name]}, not numeric"
        return None

    def _features(self, schema: pa.Schema) -> list[str]:
        if self.p["columns"]:
            return [c for c in self.p["columns"] if c in schema.names]
        return [
            f.name
            for f in schema
            if _is_numeric(f.type)
            and not (f.name == "id" or f.name.endswith("_id") or f.name.endswith("version"))
        ]

    def observe(self, batch: pa.RecordBatch) -> None:
        import pyarrow.compute as pc

        self.rows += batch.num_rows
        for name in self._features(batch.schema):
            values = pc.cast(batch.column(name), pa.float64())
            values = pc.filter(values, pc.is_finite(values))  # drops NULL, NaN, ±inf
            n = len(values)
            if not n:
                continue
            mean = pc.mean(values).as_py()
            m2 = pc.variance(values, ddof=0).as_py() * n
            count, mean0, m20 = self.moments.get(name, (0, 0.0, 0.0))
            total = count + n
            delta = mean - mean0
            self.moments[name] = (
                total,
                mean0 + delta * n / total,
                m20 + m2 + delta * delta * count * n / total,
            )

    def stats(self) -> dict[str, object] | None:
        cols = {
            name: {"count": n, "mean": mean, "std": math.sqrt(m2 / n)}
            for name, (n, mean, m2) in self.moments.items()
        }
        return {"columns": cols}

    def finish(self) -> None:
        self.rows_checked = self.rows
        prev = self.previous()
        before = prev.get("columns") if prev else None
        if not isinstance(before, dict):
            self.notes.append("no previous export to compare with; baseline recorded")
            return
        shifted, compared = [], 0
        for name, (_n, mean, _m2) in self.moments.items():
            old = before.get(name)
            if not isinstance(old, dict) or old.get("mean") is None:
                continue
            compared += 1
            m0, s0 = float(old["mean"]), float(old.get("std") or 0.0)
            shift = abs(mean - m0)
            allowed = self.p["max_shift"] * s0
            if shift > allowed + 1e-12 * max(1.0, abs(m0)):
                sds = f"{shift / s0:.2f} std" if s0 else "any shift (previous std 0)"
                shifted.append(f"{name} mean {mean:.6g} vs {m0:.6g} ({sds})")
        if shifted:
            self.problems.append(
                f"mean moved more than {self.p['max_shift']:g} std: {'; '.join(shifted)}"
            )
        else:
            self.notes.append(f"{compared} feature(s) within {self.p['max_shift']:g} std")


class DataMinimizationVerify(Check):
    """The written files, read back: no excluded column, and no raw value of an
    anonymized column left in that column (a value the rule leaves unchanged, such as
    an IPv4 address already ending in ``.0``, is not a leak). Values are never put in
    the detail."""

    name = "data_minimization_verify"
    summary = "the written files hold no excluded column and no raw value of an anonymized one"
    params: ClassVar[dict[str, P.Param]] = {}

    def __init__(self, params: dict[str, Any], severity: str, on_fail: str) -> None:
        super().__init__(params, severity, on_fail)
        self.verified = False

    @property
    def wants_read_back(self) -> bool:
        return True

    def after_write(
        self,
        batches: Iterable[pa.RecordBatch],
        excluded: Sequence[str],
        raw_values: Callable[[str], Iterable[str]] | None,
    ) -> None:
        self.verified = True
        banned = set(excluded) | set(self.env.excluded)
        rules = self.env.gdpr.rules if self.env.gdpr else ()
        if rules and raw_values is None:
            self.problems.append("raw values of anonymized columns were not available")
        watched: dict[str, _Leaks] = {}
        for col, rule in rules if raw_values is not None else ():
            assert raw_values is not None
            watched[col] = _Leaks(_leak_values(raw_values(col), rule))
        present: set[str] = set()
        for batch in batches:
            self.rows_checked += batch.num_rows
            present |= banned & set(batch.schema.names)
            for col, leaks in watched.items():
                if col in batch.schema.names:
                    leaks.add(batch.column(col))
        if present:
            self.problems.append(f"excluded column(s) written: {', '.join(sorted(present))}")
        for col, leaks in watched.items():
            if hits := leaks.count():
                self.rows_failed += hits
                self.problems.append(f"{hits} written rows hold a raw {col} value")
        if not self.problems:
            self.notes.append(
                f"no excluded column; {len(watched)} anonymized column(s) hold no raw value"
            )

    def finish(self) -> None:
        if not self.verified:
            self.problems.append("the written files were not read back")


def _leak_values(values: Iterable[str | None], rule: str) -> pa.Array:
    """The distinct raw ``values`` that ``rule`` changes: finding one written is a leak
    (each judged once, however often it repeats in the table)."""
    fn = None if rule == "hash_sha256" else rule_function(rule, None)
    distinct = {v for v in values if v is not None}
    leaks = distinct if fn is None else {v for v in distinct if fn(v) != v}
    return pa.array(sorted(leaks), type=pa.string())


class _Leaks:
    """Counts a written column's values found among ``values``. ``is_in`` hashes its
    value set on every call, so the column's chunks are looked up together once they hold
    as many rows as the set (at least 64Ki): a table costs its rows, not its batches
    times the set, and what is held stays within the set's own size."""

    def __init__(self, values: pa.Array) -> None:
        self.values = values
        #: hits among the rows looked up so far (:meth:`count` looks up the rest)
        self.hits = 0
        self._pending: list[pa.Array] = []
        self._rows = 0

    def add(self, column: pa.Array) -> None:
        if not len(self.values):
            return
        self._pending.append(column)
        self._rows += len(column)
        if self._rows >= max(len(self.values), 1 << 16):
            self._look_up()

    def count(self) -> int:
        self._look_up()
        return self.hits

    def _look_up(self) -> None:
        import pyarrow.compute as pc

        if not self._pending:
            return
        chunks = [
            c if pa.types.is_string(c.type) else pc.cast(c, pa.string()) for c in self._pending
        ]
        self._pending, self._rows = [], 0
        self.hits += pc.sum(pc.is_in(pa.chunked_array(chunks), value_set=self.values)).as_py() or 0


DATASET_CHECKS: tuple[type[Check], ...] = (
    UniquePostIds,
    TranscriptAvailability,
    TransactionBalanceCheck,
    NullPercentageThreshold,
    FeatureValueDistributions,
    DataMinimizationVerify,
)
