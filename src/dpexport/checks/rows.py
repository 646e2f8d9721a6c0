"""Checks that judge each row by one SQL predicate (and so can quarantine rows).

Each is evaluated in the run's single ``before_scan`` aggregate query over the source
slice (before anonymization). A NULL in a checked column fails the row unless the
check says otherwise.
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from typing import Any, ClassVar

import pyarrow as pa

from dpexport.checks import params as P
from dpexport.checks.base import Env, RowCheck, Scope, and_, as_text, count_where, ident, num, text
from dpexport.checks.reference import ISO_4217, SENSOR_RANGES


class SubredditVerification(RowCheck):
    name = "subreddit_verification"
    summary = "subreddit is non-null, matches ^[A-Za-z0-9_]{2,21}$, and is in `allowed` if given"
    params: ClassVar[dict[str, P.Param]] = {
        "column": P.Param(P.column, "subreddit"),
        "allowed": P.Param(P.strings, None, "allowed subreddits (case-insensitive)"),
    }
    fail_text = "rows have an invalid or unlisted subreddit"

    def ok_sql(self) -> str:
        col = as_text(self.p["column"], self.env.columns[self.p["column"]])
        pred = f"regexp_full_match({col}, '[A-Za-z0-9_]{{2,21}}')"
        if self.p["allowed"]:
            names = ", ".join(text(a.lower()) for a in self.p["allowed"])
            pred += f" AND lower({col}) IN ({names})"
        return pred


class ContentLengthCheck(RowCheck):
    name = "content_length_check"
    summary = "length(content) is between min (1) and max (40000) characters"
    params: ClassVar[dict[str, P.Param]] = {
        "column": P.Param(P.column, "content"),
        "min": P.Param(P.non_negative_int, 1),
        "max": P.Param(P.non_negative_int, 40000),
    }

    def failure_text(self) -> str:
        return f"rows have a {self.p['column']} length outside [{self.p['min']}, {self.p['max']}]"

    def ok_sql(self) -> str:
        col = as_text(self.p["column"], self.env.columns[self.p["column"]])
        return f"length({col}) BETWEEN {self.p['min']} AND {self.p['max']}"

    def _bind(self, env: Env) -> str | None:
        if self.p["min"] > self.p["max"]:
            return f"min ({self.p['min']}) is greater than max ({self.p['max']})"
        return None


class VideoIdFormat(RowCheck):
    name = "video_id_format"
    summary = "video_id matches ^[A-Za-z0-9_-]{11}$"
    params: ClassVar[dict[str, P.Param]] = {"column": P.Param(P.column, "video_id")}
    fail_text = "rows have a video id that is not 11 characters of [A-Za-z0-9_-]"

    def ok_sql(self) -> str:
        col = as_text(self.p["column"], self.env.columns[self.p["column"]])
        return f"regexp_full_match({col}, '[A-Za-z0-9_-]{{11}}')"


class NonNullCheck(RowCheck):
    """Rows pass when every one of ``columns`` is non-null."""

    def ok_sql(self) -> str:
        return " AND ".join(f"{ident(c)} IS NOT NULL" for c in self.p["columns"])

    def failure_text(self) -> str:
        return f"rows have a NULL in {', '.join(self.p['columns'])}"


class MetadataCompleteness(NonNullCheck):
    name = "metadata_completeness"
    summary = "title, channel_id, upload_date are non-null"
    params: ClassVar[dict[str, P.Param]] = {
        "columns": P.Param(P.columns, ("title", "channel_id", "upload_date")),
    }


class AuditTrailCompleteness(NonNullCheck):
    name = "audit_trail_completeness"
    summary = "created_by and created_at are non-null"
    params: ClassVar[dict[str, P.Param]] = {
        "columns": P.Param(P.columns, ("created_by", "created_at")),
    }


class CurrencyValidation(RowCheck):
    name = "currency_validation"
    summary = "currency is an active ISO 4217 code (upper case)"
    params: ClassVar[dict[str, P.Param]] = {"column": P.Param(P.column, "currency")}
    fail_text = "rows have a currency that is not an ISO 4217 code"

    def ok_sql(self) -> str:
        col = as_text(self.p["column"], self.env.columns[self.p["column"]])
        return f"{col} IN ({', '.join(text(c) for c in sorted(ISO_4217))})"


class EmailFormatCheck(RowCheck):
    name = "email_format_check"
    summary = "email (before anonymization) looks like an address: local@domain.tld"
    params: ClassVar[dict[str, P.Param]] = {"column": P.Param(P.column, "email")}
    fail_text = "rows have a malformed email address"

    def ok_sql(self) -> str:
        col = as_text(self.p["column"], self.env.columns[self.p["column"]])
        return (
            f"length({col}) <= 254 AND "
            f"regexp_full_match({col}, '[^@\\s]+@[^@\\s.]+(\\.[^@\\s.]+)+')"
        )


class FeatureVersionTracking(RowCheck):
    name = "feature_version_tracking"
    summary = "feature_version is non-null; the versions seen go into the manifest"
    params: ClassVar[dict[str, P.Param]] = {"column": P.Param(P.column, "feature_version")}
    fail_text = "rows have no feature version"

    def __init__(self, params: dict[str, Any], severity: str, on_fail: str) -> None:
        super().__init__(params, severity, on_fail)
        self.versions: set[str] = set()

    def ok_sql(self) -> str:
        return f"{ident(self.p['column'])} IS NOT NULL"

    def observe(self, batch: pa.RecordBatch) -> None:
        import pyarrow.compute as pc

        col = self.p["column"]
        if col in batch.schema.names:
            for v in pc.unique(batch.column(col)).to_pylist():
                if v is not None:
                    self.versions.add(str(v))

    def finish(self) -> None:
        seen = sorted(self.versions)
        self.info["versions"] = seen
        self.notes.append(f"versions seen: {', '.join(seen) or 'none'}")
        prev = self.previous()
        if prev and isinstance(prev.get("versions"), list):
            new = sorted(set(seen) - {str(v) for v in prev["versions"]})
            if new:
                self.notes.append(f"new since the previous export: {', '.join(new)}")

    def stats(self) -> dict[str, object] | None:
        return {"versions": sorted(self.versions)}


class EquipmentIdValidation(RowCheck):
    name = "equipment_id_validation"
    summary = "equipment_id is non-null and present in the reference column"
    params: ClassVar[dict[str, P.Param]] = {
        "column": P.Param(P.column, "equipment_id"),
        "reference": P.Param(
            P.reference, ("diagnosticpro_prod", "equipment_registry", "equipment_id")
        ),
    }

    def failure_text(self) -> str:
        return f"rows have an equipment id missing from {'.'.join(self.p['reference'])}"

    def _bind(self, env: Env) -> str | None:
        dataset, table, column = self.p["reference"]
        engine = env.ctx.engine
        if not engine.table_exists(dataset, table):
            return f"reference table {dataset}.{table} does not exist"
        if column not in engine.schema(dataset, table).names:
            return f"reference column {column!r} does not exist in {dataset}.{table}"
        return None

    def ok_sql(self) -> str:
        dataset, table, column = self.p["reference"]
        ref = f"{ident(dataset)}.{ident(table)}"
        col = ident(self.p["column"])
        return (
            f"{col} IS NOT NULL AND {col} IN "
            f"(SELECT {ident(column)} FROM {ref} WHERE {ident(column)} IS NOT NULL)"
        )


class SensorValueRanges(RowCheck):
    name = "sensor_value_ranges"
    summary = "value is within [min, max] of its sensor_type; an unknown type passes"
    params: ClassVar[dict[str, P.Param]] = {
        "column": P.Param(P.column, "value"),
        "by": P.Param(P.column, "sensor_type"),
        "ranges": P.Param(P.ranges, None, "replaces the built-in SENSOR_RANGES"),
    }

    def required_columns(self) -> tuple[str, ...]:
        return (self.p["column"], self.p["by"])

    def failure_text(self) -> str:
        return f"rows have a {self.p['column']} outside the range of their {self.p['by']}"

    def ok_sql(self) -> str:
        ranges = self.p["ranges"] or SENSOR_RANGES
        col = ident(self.p["column"])
        by = as_text(self.p["by"], self.env.columns[self.p["by"]])
        whens = []
        for sensor, (lo, hi) in sorted(ranges.items()):
            bounds = [f"{col} >= {num(lo)}" if lo is not None else None]
            bounds.append(f"{col} <= {num(hi)}" if hi is not None else None)
            whens.append(f"WHEN {text(sensor)} THEN {and_(f'{col} IS NOT NULL', *bounds)}")
        return f"CASE {by} {' '.join(whens)} ELSE TRUE END"


#: a folder's part of a batch up to this many rows is checked in Python (see below)
_SHORT_GROUP = 256


class TimestampOrdering(RowCheck):
    """Row part in SQL (the range); the ordering of written rows on the batches."""

    name = "timestamp_ordering"
    summary = (
        "created_at is within [2000-01-01, logical time + max_future]; "
        "rows are written in created_at order"
    )
    params: ClassVar[dict[str, P.Param]] = {
        "column": P.Param(P.column, "created_at"),
        "max_future": P.Param(P.duration, P.duration("5 minutes")),
    }
    earliest = datetime(2000, 1, 1, tzinfo=UTC)

    def __init__(self, params: dict[str, Any], severity: str, on_fail: str) -> None:
        super().__init__(params, severity, on_fail)
        self.out_of_order = 0
        self.observed = 0
        self.last: dict[tuple[object, ...], object] = {}

    def failure_text(self) -> str:
        return f"rows have a {self.p['column']} outside [2000-01-01, logical time + max_future]"

    def _bind(self, env: Env) -> str | None:
        dtype = env.columns[self.p["column"]]
        if not (pa.types.is_timestamp(dtype) or pa.types.is_date(dtype)):
            return f"column {self.p['column']!r} is {dtype}, not a date or timestamp"
        return None

    def _literal(self, when: datetime) -> str:
        dtype = self.env.columns[self.p["column"]]
        if pa.types.is_date(dtype):
            return f"DATE '{when.date().isoformat()}'"
        if dtype.tz:
            return f"TIMESTAMPTZ '{when.isoformat(sep=' ')}'"
        return f"TIMESTAMP '{when.replace(tzinfo=None).isoformat(sep=' ')}'"

    def ok_sql(self) -> str:
        logical = self.env.ctx.logical_time
        if logical.tzinfo is None:
            logical = logical.replace(tzinfo=UTC)
        upper = logical.astimezone(UTC) + self.p["max_future"]
        col = ident(self.p["column"])
        return f"{col} BETWEEN {self._literal(self.earliest)} AND {self._literal(upper)}"

    def group_columns(self, batch: pa.RecordBatch) -> list[str]:
        """Columns that name the file a row goes to, as far as the batch shows them."""
        spec, request = self.env.ctx.spec, self.env.ctx.request
        names = [s.name for s in spec.partitioning.sub_partitions] + list(request.order_by)
        keep = [n for n in dict.fromkeys(names) if n != self.p["column"]]
        return [n for n in keep if n in batch.schema.names]

    def observe(self, batch: pa.RecordBatch) -> None:
        import pyarrow.compute as pc

        col = self.p["column"]
        if col not in batch.schema.names or batch.num_rows == 0:
            return
        self.observed += batch.num_rows
        values = batch.column(col)
        if self.current_group is not None:
            self._observe_group(values, self.current_group)
            return
        groups = self.group_columns(batch)
        starts = [0]
        if groups and batch.num_rows > 1:
            changed = None
            for g in groups:
                a = batch.column(g)
                diff = pc.fill_null(pc.not_equal(a[1:], a[:-1]), True)
                changed = diff if changed is None else pc.or_(changed, diff)
            assert changed is not None
            starts += [i + 1 for i in pc.indices_nonzero(changed).to_pylist()]
        else:
            changed = pa.array([False] * max(batch.num_rows - 1, 0))
        if batch.num_rows > 1:
            back = pc.fill_null(pc.less(values[1:], values[:-1]), False)
            self.out_of_order += pc.sum(pc.and_not(back, changed)).as_py() or 0
        if not groups:
            return  # without the file's keys, order is only judged inside the batch
        ends = [*starts[1:], batch.num_rows]
        for s, e in zip(starts, ends, strict=True):
            key = tuple(batch.column(g)[s].as_py() for g in groups)
            first, last = values[s].as_py(), values[e - 1].as_py()
            prev = self.last.get(key)
            if prev is not None and first is not None and first < prev:
                self.out_of_order += 1
            if last is not None:
                self.last[key] = last

    def _observe_group(self, values: pa.Array, group: str) -> None:
        """One folder's rows: in order within the batch and after the folder's last row.

        Compared as the column's integers (epoch units or days). A folder's part of a
        batch is often a few dozen rows (spec 3.2's sub-partitions), where three compute
        calls cost ~5x a Python pass over the list, so short parts take that instead."""
        import pyarrow.compute as pc

        ints = values.view(pa.int32() if pa.types.is_date32(values.type) else pa.int64())
        if len(ints) <= _SHORT_GROUP:
            seq = ints.to_pylist()
            pairs = itertools.pairwise(seq)
            back = sum(1 for a, b in pairs if a is not None and b is not None and b < a)
            first, last = seq[0], seq[-1]
        else:  # sum() skips the nulls less() gives where either side is null
            back = pc.sum(pc.less(ints[1:], ints[:-1])).as_py() or 0
            first, last = ints[0].as_py(), ints[-1].as_py()
        self.out_of_order += back
        prev = self.last.get((group,))
        if prev is not None and first is not None and first < prev:
            self.out_of_order += 1
        if last is not None:
            self.last[(group,)] = last

    def finish(self) -> None:
        if self.out_of_order:
            self.rows_failed += self.out_of_order
            self.problems.append(
                f"{self.out_of_order} of {self.observed} written rows are out of "
                f"{self.p['column']} order"
            )


class ConsentFlagCheck(RowCheck):
    """A filter, not a test: rows without consent are dropped and counted.

    If the consent column is missing the check fails (or warns) and *no* row is
    exported: without the flag, consent cannot be assumed.
    """

    name = "consent_flag_check"
    summary = "only rows with consent_given = true are exported; the others are dropped"
    params: ClassVar[dict[str, P.Param]] = {"column": P.Param(P.column, "consent_given")}
    quarantinable = False
    no_quarantine_reason = (
        "rows without consent are dropped; quarantining them would copy personal data"
    )
    fail_text = "rows without consent"

    def _bind(self, env: Env) -> str | None:
        dtype = env.columns[self.p["column"]]
        if not (pa.types.is_boolean(dtype) or pa.types.is_integer(dtype)):
            return f"column {self.p['column']!r} is {dtype}, not BOOLEAN"
        return None

    def ok_sql(self) -> str:
        dtype = self.env.columns[self.p["column"]]
        return f"{ident(self.p['column'])} = {'TRUE' if pa.types.is_boolean(dtype) else '1'}"

    def filter_sql(self) -> str:
        """What the export keeps: consenting rows, or nothing if the check cannot run."""
        return f"coalesce(({self.ok_sql()}), FALSE)" if self.usable else "FALSE"

    def sql(self, scope: Scope) -> dict[str, str]:
        return {"checked": count_where(scope.all), "bad": count_where(self.bad_sql())}

    def sql_done(self, values: dict[str, Any]) -> None:
        self.rows_checked = int(values["checked"] or 0)
        self.rows_dropped = int(values["bad"] or 0)
        kept = self.rows_checked - self.rows_dropped
        self.notes.append(
            f"{kept} of {self.rows_checked} rows have consent; {self.rows_dropped} dropped"
        )


ROW_CHECKS: tuple[type[RowCheck], ...] = (
    SubredditVerification,
    ContentLengthCheck,
    VideoIdFormat,
    MetadataCompleteness,
    AuditTrailCompleteness,
    CurrencyValidation,
    EmailFormatCheck,
    FeatureVersionTracking,
    EquipmentIdValidation,
    SensorValueRanges,
    TimestampOrdering,
    ConsentFlagCheck,
)
