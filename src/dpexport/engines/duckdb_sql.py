"""DuckDB SQL for the DuckDB engine: a ScanRequest as one SELECT, checked first.

Pure functions, no connection: :func:`render_select` turns a request into SQL text and
its parameters (slice bounds are bound, never written into the text);
:func:`check_columns` names every unknown column of a request against the table's
columns, with the nearest existing one; :func:`expression_probes` lists one small query
per config expression, so a failed read can say which expression is at fault.
"""

from __future__ import annotations

import dataclasses
import difflib
from datetime import UTC, datetime
from typing import Any

from dpexport.engines.base import ScanRequest, quote_identifier
from dpexport.errors import InvalidArgument

__all__ = [
    "SOURCE_ALIAS",
    "aggregate_sql",
    "check_columns",
    "distinct_sql",
    "expression_probes",
    "qualified_name",
    "render_select",
]

#: the alias of a sub-query read as a table
SOURCE_ALIAS = '"_dpexport_src"'


def qualified_name(dataset: str, table: str) -> str:
    """``"dataset"."table"``, each part quoted."""
    return f"{quote_identifier(dataset)}.{quote_identifier(table)}"


def _param(value: Any) -> Any:
    # The session time zone is UTC and the warehouse's TIMESTAMP columns hold UTC
    # wall-clock times, so an aware bound compares as its naive UTC value.
    if isinstance(value, datetime) and value.tzinfo is not None:
        return value.astimezone(UTC).replace(tzinfo=None)
    return value


def _keys(names: tuple[str, ...]) -> str:
    return ", ".join(quote_identifier(n) for n in names)


def _projection(request: ScanRequest) -> str:
    parts: list[str] = []
    if request.columns is None:
        parts.append("*")
        if request.exclude:
            parts[0] = f"* EXCLUDE ({_keys(request.exclude)})"
    else:
        drop = set(request.exclude)
        parts.extend(quote_identifier(c) for c in request.columns if c not in drop)
    for name, expr in request.extra.items():
        parts.append(f"({expr}) AS {quote_identifier(name)}")
    if not parts:
        raise InvalidArgument(
            "the request selects no column", table=f"{request.dataset}.{request.table}"
        )
    return ", ".join(parts)


def render_select(request: ScanRequest) -> tuple[str, list[Any]]:
    """Render a scan request as one DuckDB SELECT and its parameter values.

    Shape: ``SELECT <columns>, (<extra>) AS "name" FROM "ds"."t" WHERE (<cursor>) > ?
    AND (<cursor>) <= ? AND (<filter>) QUALIFY row_number() OVER (...) = 1 ORDER BY ...``.
    ``dedupe_by`` keeps the first row per key by the slice cursor; ``newest_by`` keeps
    the row with the greatest ``newest_order`` (default: the cursor) per key; when both
    are asked, de-duplication happens first, in a sub-query. Pure: no connection needed.
    """
    table = f"{request.dataset}.{request.table}"
    source = qualified_name(request.dataset, request.table)
    params: list[Any] = []
    where: list[str] = []
    sl = request.slice
    if sl.lower is not None or sl.upper is not None:
        if not sl.cursor:
            raise InvalidArgument("a slice with bounds needs a cursor expression", table=table)
        if sl.lower is not None:
            where.append(f"({sl.cursor}) {'>=' if sl.lower_inclusive else '>'} ?")
            params.append(_param(sl.lower))
        if sl.upper is not None:
            where.append(f"({sl.cursor}) <= ?")
            params.append(_param(sl.upper))
    if request.filter:
        where.append(f"({request.filter})")
    where_sql = f" WHERE {' AND '.join(where)}" if where else ""

    dedupe = newest = ""
    if request.dedupe_by:
        order = f" ORDER BY ({sl.cursor})" if sl.cursor else ""
        dedupe = f"row_number() OVER (PARTITION BY {_keys(request.dedupe_by)}{order}) = 1"
    if request.newest_by:
        newest_order = request.newest_order or sl.cursor
        if not newest_order:
            raise InvalidArgument("newest_by needs newest_order or a slice cursor", table=table)
        newest = (
            f"row_number() OVER (PARTITION BY {_keys(request.newest_by)} "
            f"ORDER BY ({newest_order}) DESC) = 1"
        )

    projection = _projection(request)
    if dedupe and newest:
        inner = f"SELECT * FROM {source}{where_sql} QUALIFY {dedupe}"
        sql = f"SELECT {projection} FROM ({inner}) AS {SOURCE_ALIAS} QUALIFY {newest}"
    else:
        qualify = f" QUALIFY {dedupe or newest}" if (dedupe or newest) else ""
        sql = f"SELECT {projection} FROM {source}{where_sql}{qualify}"
    if request.order_by:
        sql += f" ORDER BY {_keys(request.order_by)}"
    if request.batch_rows <= 0:
        raise InvalidArgument(f"batch_rows must be positive (got {request.batch_rows})")
    return sql, params


def aggregate_sql(request: ScanRequest, expressions: dict[str, str]) -> tuple[str, list[Any]]:
    """One SELECT of the aggregate ``expressions`` over the request's output rows (its
    order dropped: it changes no aggregate), and its parameter values."""
    inner, params = render_select(dataclasses.replace(request, order_by=()))
    items = ", ".join(f"({e}) AS {quote_identifier(n)}" for n, e in expressions.items())
    return f"SELECT {items} FROM ({inner}) AS {SOURCE_ALIAS}", params


def distinct_sql(
    request: ScanRequest, columns: tuple[str, ...], limit: int
) -> tuple[str, list[Any]]:
    """The first ``limit`` distinct value tuples of output ``columns``, in order (NULLs
    last), and the parameter values."""
    inner, params = render_select(dataclasses.replace(request, order_by=()))
    keys = ", ".join(quote_identifier(c) for c in columns)
    order = ", ".join(f"{quote_identifier(c)} NULLS LAST" for c in columns)
    sql = f"SELECT DISTINCT {keys} FROM ({inner}) AS {SOURCE_ALIAS} ORDER BY {order}"
    return f"{sql} LIMIT {int(limit)}", params


def check_columns(request: ScanRequest, names: list[str]) -> None:
    """Name every column of ``request`` that the table (columns ``names``) lacks, with
    the nearest existing one; refuse an extra column named like a selected one."""
    table = f"{request.dataset}.{request.table}"
    known = {n.lower() for n in names}
    selected = [
        n
        for n in (request.columns if request.columns is not None else names)
        if n not in set(request.exclude)
    ]
    groups: list[tuple[str, tuple[str, ...]]] = [
        ("columns", request.columns or ()),
        ("exclude", request.exclude),
        ("dedupe_by", request.dedupe_by),
        ("newest_by", request.newest_by),
    ]
    for role, group in groups:
        for col in group:
            if col.lower() not in known:
                raise InvalidArgument(
                    f"{role}: unknown column {col!r}{_did_you_mean(col, names)}", table=table
                )
    output = {n.lower() for n in selected}
    for name in request.extra:
        if name.lower() in output:
            raise InvalidArgument(
                f"extra column {name!r} has the name of a selected column", table=table
            )
        output.add(name.lower())
    for col in request.order_by:
        if col.lower() not in output and col.lower() not in known:
            candidates = [*selected, *request.extra]
            raise InvalidArgument(
                f"order_by: unknown column {col!r}{_did_you_mean(col, candidates)}",
                table=table,
            )


def _did_you_mean(name: str, candidates: list[str]) -> str:
    close = difflib.get_close_matches(name, candidates, n=1)
    return f"; did you mean {close[0]!r}?" if close else ""


def expression_probes(
    request: ScanRequest, aggregates: dict[str, str]
) -> list[tuple[str, str, str]]:
    """(role, expression, probe SQL) for each config expression of the request, in the
    order a failed read is explained: the first probe that fails names the culprit."""
    source = qualified_name(request.dataset, request.table)
    probes: list[tuple[str, str, str]] = []
    for name, expr in request.extra.items():
        probes.append((f"extra column {name!r}", expr, f"SELECT ({expr}) FROM {source}"))
    if request.slice.cursor:
        cur_expr = request.slice.cursor
        probes.append(("slice cursor", cur_expr, f"SELECT ({cur_expr}) FROM {source}"))
    if request.filter:
        probes.append(
            ("filter", request.filter, f"SELECT 1 FROM {source} WHERE ({request.filter})")
        )
    if request.newest_order:
        order = request.newest_order
        probes.append(("newest_order", order, f"SELECT ({order}) FROM {source}"))
    if aggregates:
        inner, _ = render_select(
            dataclasses.replace(
                request,
                order_by=(),
                slice=dataclasses.replace(request.slice, lower=None, upper=None),
            )
        )
        for name, expr in aggregates.items():
            probes.append(
                (
                    f"aggregate {name!r}",
                    expr,
                    f"SELECT ({expr}) FROM ({inner}) AS {SOURCE_ALIAS}",
                )
            )
    return probes
