"""BigQuery SQL for the BigQuery engine: rendering a ScanRequest, literals, transpiling.

The rest of dpexport writes SQL expressions in DuckDB's dialect (partition keys from
:mod:`dpexport.storage.layout`, filters, aggregates of the named checks). This module turns
them into GoogleSQL with sqlglot, fixing the few places where a plain transpile does
not mean the same thing on BigQuery:

- ``strftime(CAST(x AS TIMESTAMP), fmt)`` becomes ``FORMAT_DATETIME(fmt, CAST(x AS
  DATETIME))``: the UTC wall-clock time of a TIMESTAMP, a DATETIME as it is, a DATE at
  midnight, exactly the folder text DuckDB computes (sqlglot alone writes
  ``FORMAT_DATE``, which drops the hour);
- ``regexp_full_match(s, p)`` becomes ``REGEXP_CONTAINS(s, '^(?:p)$')`` (both are RE2).

Slice bounds are rendered as typed literals (``TIMESTAMP '...'``), never as text
pasted from outside: the Storage Read API's row restriction takes no parameters, and
one rendering for both paths keeps them identical.
"""

from __future__ import annotations

import functools
import math
from datetime import UTC, date, datetime, time
from decimal import Decimal
from typing import Any

from dpexport.engines.base import ScanRequest
from dpexport.errors import InvalidArgument

__all__ = [
    "literal",
    "quote_identifier",
    "render_distinct",
    "render_select",
    "slice_predicate",
    "table_ref",
    "to_bigquery",
]

_SOURCE_ALIAS = "`_dpexport_src`"


def quote_identifier(name: str) -> str:
    """Quote one identifier with backticks (``a`b`` -> ```a\\`b```)."""
    if not isinstance(name, str) or not name or "\x00" in name or "\n" in name:
        raise InvalidArgument(f"invalid identifier {name!r}")
    return "`" + name.replace("\\", "\\\\").replace("`", "\\`") + "`"


def table_ref(project: str | None, dataset: str, table: str) -> str:
    """```project`.`dataset`.`table```, the project part only when given."""
    parts = [p for p in (project, dataset, table) if p]
    return ".".join(quote_identifier(p) for p in parts)


def _string_literal(text: str) -> str:
    escaped = (
        text.replace("\\", "\\\\")
        .replace("'", "\\'")
        .replace("\n", "\\n")
        .replace("\r", "\\r")
        .replace("\t", "\\t")
    )
    return f"'{escaped}'"


def literal(value: Any) -> str:
    """A typed GoogleSQL literal for a slice bound.

    An aware datetime is a ``TIMESTAMP`` (UTC), a naive one a ``DATETIME``; ``date``,
    ``time``, ``Decimal`` (``NUMERIC``), ``int``, ``float``, ``bool`` and ``str`` map to
    their own literals. Anything else is refused, so no text reaches the SQL unrendered.
    """
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            utc = value.astimezone(UTC).replace(tzinfo=None)
            return f"TIMESTAMP '{utc.isoformat(sep=' ')}+00:00'"
        return f"DATETIME '{value.isoformat(sep=' ')}'"
    if isinstance(value, date):
        return f"DATE '{value.isoformat()}'"
    if isinstance(value, time):
        return f"TIME '{value.isoformat()}'"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            word = "NaN" if math.isnan(value) else ("inf" if value > 0 else "-inf")
            return f"CAST('{word}' AS FLOAT64)"
        return repr(value)
    if isinstance(value, Decimal):
        return f"NUMERIC '{value}'"
    if isinstance(value, str):
        return _string_literal(value)
    raise InvalidArgument(f"cannot render a slice bound of type {type(value).__name__}")


@functools.lru_cache(maxsize=1024)
def to_bigquery(expression: str) -> str:
    """Transpile one DuckDB-dialect SQL expression (or predicate) to GoogleSQL."""
    import sqlglot
    from sqlglot import exp
    from sqlglot.errors import SqlglotError

    try:
        tree = sqlglot.parse_one(expression, read="duckdb")
    except SqlglotError as exc:
        raise InvalidArgument(f"cannot parse SQL expression {expression!r}: {exc}") from exc

    def fix(node: exp.Expression) -> exp.Expression:
        if isinstance(node, exp.TimeToStr):
            inner = node.this
            if isinstance(inner, exp.Cast) and inner.to.is_type(
                exp.DataType.Type.TIMESTAMP,
                exp.DataType.Type.TIMESTAMPNTZ,
                exp.DataType.Type.TIMESTAMPTZ,
                exp.DataType.Type.DATETIME,
            ):
                inner = inner.this
            as_datetime = exp.cast(inner, exp.DataType.build("DATETIME", dialect="bigquery"))
            node.set("this", exp.TsOrDsToDatetime(this=as_datetime))
            return node
        if isinstance(node, exp.RegexpFullMatch):
            pattern = node.expression
            if isinstance(pattern, exp.Literal) and pattern.is_string:
                anchored: Any = exp.Literal.string(f"^(?:{pattern.this})$")
            else:
                anchored = exp.func(
                    "CONCAT", exp.Literal.string("^(?:"), pattern, exp.Literal.string(")$")
                )
            return exp.Anonymous(this="REGEXP_CONTAINS", expressions=[node.this, anchored])
        return node

    tree = tree.transform(fix)
    return tree.sql(dialect="bigquery")


def slice_predicate(request: ScanRequest) -> list[str]:
    """The WHERE conjuncts of the request's slice and filter, in GoogleSQL."""
    table = f"{request.dataset}.{request.table}"
    where: list[str] = []
    sl = request.slice
    if sl.lower is not None or sl.upper is not None:
        if not sl.cursor:
            raise InvalidArgument("a slice with bounds needs a cursor expression", table=table)
        cursor = to_bigquery(sl.cursor)
        if sl.lower is not None:
            op = ">=" if sl.lower_inclusive else ">"
            where.append(f"({cursor}) {op} {literal(sl.lower)}")
        if sl.upper is not None:
            where.append(f"({cursor}) <= {literal(sl.upper)}")
    if request.filter:
        where.append(f"({to_bigquery(request.filter)})")
    return where


def _keys(names: tuple[str, ...]) -> str:
    return ", ".join(quote_identifier(n) for n in names)


def _projection(request: ScanRequest, wrap: dict[str, str]) -> str:
    """The SELECT list; ``wrap`` maps a column to a function that makes it portable
    (``ST_ASTEXT`` for GEOGRAPHY, ``TO_JSON_STRING`` for JSON)."""
    parts: list[str] = []
    if request.columns is None:
        parts.append(f"* EXCEPT ({_keys(request.exclude)})" if request.exclude else "*")
        if wrap:
            raise InvalidArgument(
                "a request for all columns cannot convert GEOGRAPHY/JSON columns; name them",
                table=f"{request.dataset}.{request.table}",
            )
    else:
        drop = set(request.exclude)
        for c in request.columns:
            if c in drop:
                continue
            col = quote_identifier(c)
            parts.append(f"{wrap[c]}({col}) AS {col}" if c in wrap else col)
    for name, expr in request.extra.items():
        parts.append(f"({to_bigquery(expr)}) AS {quote_identifier(name)}")
    if not parts:
        raise InvalidArgument(
            "the request selects no column", table=f"{request.dataset}.{request.table}"
        )
    return ", ".join(parts)


def render_select(
    request: ScanRequest,
    *,
    project: str | None = None,
    wrap: dict[str, str] | None = None,
    order: bool = True,
) -> str:
    """Render a scan request as one GoogleSQL SELECT, with the DuckDB engine's meaning.

    Shape: ``SELECT <columns>, (<extra>) AS `name` FROM `p`.`ds`.`t` WHERE <slice>
    AND (<filter>) QUALIFY row_number() OVER (...) = 1 ORDER BY ...``; ``dedupe_by``
    keeps the first row per key by the slice cursor, ``newest_by`` the row with the
    greatest ``newest_order`` (default: the cursor); both: de-duplication first, in a
    sub-query. BigQuery needs a WHERE beside QUALIFY, so ``WHERE TRUE`` stands in.
    """
    table = f"{request.dataset}.{request.table}"
    source = table_ref(project, request.dataset, request.table)
    where = slice_predicate(request)
    sl = request.slice

    dedupe = newest = ""
    if request.dedupe_by:
        order_by = f" ORDER BY ({to_bigquery(sl.cursor)})" if sl.cursor else ""
        dedupe = f"row_number() OVER (PARTITION BY {_keys(request.dedupe_by)}{order_by}) = 1"
    if request.newest_by:
        newest_order = request.newest_order or sl.cursor
        if not newest_order:
            raise InvalidArgument("newest_by needs newest_order or a slice cursor", table=table)
        newest = (
            f"row_number() OVER (PARTITION BY {_keys(request.newest_by)} "
            f"ORDER BY ({to_bigquery(newest_order)}) DESC) = 1"
        )
    if (dedupe or newest) and not where:
        where = ["TRUE"]
    where_sql = f" WHERE {' AND '.join(where)}" if where else ""

    projection = _projection(request, wrap or {})
    if dedupe and newest:
        inner = f"SELECT * FROM {source}{where_sql} QUALIFY {dedupe}"
        sql = f"SELECT {projection} FROM ({inner}) AS {_SOURCE_ALIAS} WHERE TRUE QUALIFY {newest}"
    else:
        qualify = f" QUALIFY {dedupe or newest}" if (dedupe or newest) else ""
        sql = f"SELECT {projection} FROM {source}{where_sql}{qualify}"
    if order and request.order_by:
        sql += f" ORDER BY {_keys(request.order_by)}"
    if request.batch_rows <= 0:
        raise InvalidArgument(f"batch_rows must be positive (got {request.batch_rows})")
    return sql


def render_aggregate(
    request: ScanRequest, expressions: dict[str, str], *, project: str | None = None
) -> str:
    """``SELECT (<agg>) AS `name`, ... FROM (<request>)``, the aggregates transpiled."""
    import dataclasses

    inner = render_select(dataclasses.replace(request, order_by=()), project=project)
    items = ", ".join(
        f"({to_bigquery(e)}) AS {quote_identifier(n)}" for n, e in expressions.items()
    )
    return f"SELECT {items} FROM ({inner}) AS {_SOURCE_ALIAS}"


def render_distinct(
    request: ScanRequest, columns: tuple[str, ...], limit: int, *, project: str | None = None
) -> str:
    """``SELECT DISTINCT <columns> FROM (<request>) ORDER BY ... LIMIT n``, NULLs last."""
    import dataclasses

    inner = render_select(dataclasses.replace(request, order_by=()), project=project)
    keys = ", ".join(quote_identifier(c) for c in columns)
    order = ", ".join(f"{quote_identifier(c)} NULLS LAST" for c in columns)
    sql = f"SELECT DISTINCT {keys} FROM ({inner}) AS {_SOURCE_ALIAS} ORDER BY {order}"
    return f"{sql} LIMIT {int(limit)}"
