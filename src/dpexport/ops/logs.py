"""SQL over the export logs (spec 9.2, CONTRACT §2): ``dpexport logs query``.

Every export attempt leaves one JSON record under ``export-logs/{yyyy}/{MM}/{dd}/`` in
the bucket it wrote to. :func:`query` loads them into a DuckDB table ``export_logs``
and runs BigQuery-dialect SQL over it: sqlglot transpiles (``read='bigquery'``,
``write='duckdb'``; ``DATETIME_DIFF(a, b, HOUR)`` becomes ``DATE_DIFF('HOUR', b, a)``,
which counts hour boundaries as BigQuery does), and the clock functions
(``CURRENT_DATE``, ``CURRENT_DATETIME()``, ``CURRENT_TIMESTAMP()``, ``CURRENT_TIME()``)
are replaced by literals of the injected ``now``, so ``CURRENT_DATE - 7`` and the
spec's two dashboard queries run verbatim and answer the same at any wall-clock time.
A dataset- or project-qualified ``export_logs`` (```p.d.export_logs```) names the same
table. Times are UTC, stored as plain ``TIMESTAMP``.

The SQL comes from whoever runs the command, and DuckDB can read, write and attach files,
so only read-only queries over ``export_logs`` run (issue 15): every statement must be a
``SELECT`` or ``WITH`` query whose tables are ``export_logs`` or its own ``WITH`` names,
with no table function; and DuckDB runs it with external access disabled and its
configuration locked, so whatever the check misses still reaches no file or network.
A refused query is a :class:`UsageError` naming what was refused.
"""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, date, datetime, time
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from dpexport.config.spec import ResolvedConfig
from dpexport.errors import UsageError
from dpexport.storage import layout
from dpexport.storage.base import Store
from dpexport.timestamps import parse_rfc3339

if TYPE_CHECKING:
    import duckdb
    from sqlglot import exp

log = logging.getLogger(__name__)

TABLE = "export_logs"

#: the ``export_logs`` columns and their DuckDB types, in order
COLUMNS: tuple[tuple[str, str], ...] = (
    ("export_id", "VARCHAR"),
    ("table_name", "VARCHAR"),
    ("dataset", "VARCHAR"),
    ("status", "VARCHAR"),
    ("export_timestamp", "TIMESTAMP"),
    ("logical_time", "TIMESTAMP"),
    ("mode", "VARCHAR"),
    ("format", "VARCHAR"),
    ("compression", "VARCHAR"),
    ("destination", "VARCHAR"),
    ("rows", "BIGINT"),
    ("files", "BIGINT"),
    ("duration_ms", "BIGINT"),
    ("trigger", "VARCHAR"),
    ("error", "VARCHAR"),
    ("retry_count", "BIGINT"),
    #: the record's ``cost_usd.total`` (``dpexport.ops.cost``); NULL in older records
    ("cost_usd", "DOUBLE"),
    #: the principal the export acted as (CONTRACT §11); NULL in older records
    ("principal", "VARCHAR"),
)

Result = tuple[list[str], list[tuple[Any, ...]]]

#: how a statement may begin: a query, never a command that writes, attaches or configures
_QUERY_STARTS = frozenset({"SELECT", "WITH", "("})
#: DuckDB table-function names that are also BigQuery functions, or read no file
_HARMLESS_CALLS = frozenset({"unnest", "repeat", "range", "generate_series"})


def config_stores(config: ResolvedConfig, local_root: Path | None) -> list[Store]:
    """The stores of the config's destinations (and of ``dlq_configuration.
    storage_location`` when set), one per bucket, in config order."""
    from dpexport.storage.uri import StoreResolver

    resolver = StoreResolver(local_root)
    uris = [t.destination for t in config.tables]
    location = config.dlq_configuration.storage_location
    if location:
        uris.append(location)
    stores: dict[str, Store] = {}
    for uri in uris:
        store, _ = resolver.resolve(uri)
        stores.setdefault(store.url, store)
    return list(stores.values())


def load_records(stores: Iterable[Store]) -> list[dict[str, Any]]:
    """Every export-log record of the stores, by ``export_timestamp`` then id; a
    record found twice (same ``export_id``) counts once."""
    seen: dict[str, dict[str, Any]] = {}
    for store in stores:
        for obj in store.list(layout.LOGS_PREFIX):
            if not layout.is_export_log_key(obj.key):
                continue
            try:
                record = json.loads(store.get(obj.key))
            except ValueError:
                log.warning("skipping unreadable export log %s", store.uri(obj.key))
                continue
            if isinstance(record, dict):
                seen.setdefault(str(record.get("export_id") or obj.key), record)
    return sorted(
        seen.values(), key=lambda r: (str(r.get("export_timestamp")), str(r.get("export_id")))
    )


def parse_time(value: object) -> datetime | None:
    """An RFC 3339 text as an aware UTC datetime (``None`` for anything else)."""
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if not isinstance(value, str) or not value:
        return None
    try:
        return parse_rfc3339(value)
    except ValueError:
        return None


def _cell(value: object, kind: str) -> object:
    if kind == "TIMESTAMP":
        t = parse_time(value)
        return t.replace(tzinfo=None) if t else None
    if kind == "BIGINT":
        return (
            int(value) if isinstance(value, int | float) and not isinstance(value, bool) else None
        )
    if kind == "DOUBLE":
        return usd_total(value)
    return None if value is None else str(value)


def usd_total(value: object) -> float | None:
    """A record's ``cost_usd`` as one number: its breakdown's ``total`` (or a number)."""
    if isinstance(value, dict):
        value = value.get("total")
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _retry_count(record: Mapping[str, Any]) -> object:
    if "retry_count" in record:
        return record["retry_count"]
    retries = record.get("retries")
    return len(retries) if isinstance(retries, list) else 0


def _refused(what: str) -> UsageError:
    return UsageError(f"refused {what}: logs query runs only SELECT or WITH queries over {TABLE}")


@functools.cache
def _table_functions() -> frozenset[str]:
    """DuckDB's table functions (``read_text``, ``glob``, ``query``...), asked of DuckDB
    itself so a new version's functions are refused too."""
    import duckdb

    con = duckdb.connect(":memory:")
    try:
        rows = con.execute(
            "SELECT DISTINCT lower(function_name) FROM duckdb_functions() "
            "WHERE function_type IN ('table', 'table_macro')"
        ).fetchall()
    finally:
        con.close()
    return frozenset(str(r[0]) for r in rows) - _HARMLESS_CALLS


def _check_tokens(sql: str) -> None:
    """Refuse a statement that is not a query, and any call of a DuckDB table function,
    on the tokens: some (``ATTACH``, ``glob(...)``) do not parse as BigQuery SQL, and
    the refusal should name them rather than a parse error."""
    import sqlglot
    from sqlglot.tokens import TokenType

    tokens = sqlglot.tokenize(sql, read="bigquery")
    starts = True
    for i, token in enumerate(tokens):
        after = tokens[i + 1] if i + 1 < len(tokens) else None
        if token.token_type == TokenType.SEMICOLON:
            starts = True
            continue
        if starts and token.text.upper() not in _QUERY_STARTS:
            raise _refused(f"{token.text.upper()} statement")
        starts = False
        if (
            token.token_type != TokenType.STRING
            and after is not None
            and after.token_type == TokenType.L_PAREN
            and token.text.lower() in _table_functions()
        ):
            raise _refused(f"function {token.text}")


def _check_statement(statement: exp.Expr) -> None:
    """Refuse what is not a read-only query over ``export_logs`` and its ``WITH`` names."""
    from sqlglot import exp

    if not isinstance(statement, exp.Query):
        raise _refused(f"{statement.key.upper()} statement")
    for node in statement.walk():
        if isinstance(node, exp.DML | exp.DDL):
            raise _refused(f"{node.key.upper()} statement")
    names = {TABLE} | {cte.alias_or_name.lower() for cte in statement.find_all(exp.CTE)}
    for table in statement.find_all(exp.Table):
        source = table.this
        if isinstance(source, exp.Anonymous):
            raise _refused(f"table function {source.name}")
        if isinstance(source, exp.Func):
            raise _refused(f"table function {source.sql_name().lower()}")
        if table.name.lower() not in names or (table.db and table.name.lower() != TABLE):
            raise _refused(f"table {'.'.join(p.name for p in table.parts)}")


def transpile(sql: str, now: datetime) -> list[str]:
    """BigQuery SQL as DuckDB statements, with the clock functions fixed at ``now``;
    anything but a read-only query over ``export_logs`` is refused."""
    import sqlglot
    from sqlglot import exp
    from sqlglot.errors import SqlglotError

    utc = now.astimezone(UTC).replace(tzinfo=None)
    stamp = utc.isoformat(sep=" ")

    def fix(node: exp.Expr) -> exp.Expr:
        if isinstance(node, exp.CurrentDate):
            return exp.cast(exp.Literal.string(utc.date().isoformat()), "DATE")
        if isinstance(node, exp.CurrentDatetime | exp.CurrentTimestamp):
            return exp.cast(exp.Literal.string(stamp), "TIMESTAMP")
        if isinstance(node, exp.CurrentTime):
            return exp.cast(exp.Literal.string(utc.time().isoformat()), "TIME")
        if isinstance(node, exp.Table) and node.name.lower() == TABLE:
            node.set("db", None)
            node.set("catalog", None)
        return node

    try:
        _check_tokens(sql)
        statements = [s for s in sqlglot.parse(sql, read="bigquery") if s is not None]
    except SqlglotError as exc:
        raise UsageError(f"SQL does not parse as BigQuery SQL: {exc}") from None
    if not statements:
        raise UsageError("no SQL statement given")
    for statement in statements:
        _check_statement(statement)
    return [s.transform(fix).sql(dialect="duckdb") for s in statements]


def connect(records: Sequence[Mapping[str, Any]]) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection holding ``records`` as ``export_logs``, with
    external access disabled and its configuration locked: the second wall behind
    :func:`transpile`'s check, so a query it lets through still reaches no file or
    network and cannot turn the access back on."""
    import duckdb

    con = duckdb.connect(":memory:")
    try:
        con.execute("SET TimeZone = 'UTC'")
        cols = ", ".join(f'"{name}" {kind}' for name, kind in COLUMNS)
        con.execute(f"CREATE TABLE {TABLE} ({cols})")
        if records:
            marks = ", ".join("?" for _ in COLUMNS)
            rows = [
                [
                    _cell(_retry_count(r) if name == "retry_count" else r.get(name), kind)
                    for name, kind in COLUMNS
                ]
                for r in records
            ]
            con.executemany(f"INSERT INTO {TABLE} VALUES ({marks})", rows)
        con.execute("SET enable_external_access = false")
        con.execute("SET lock_configuration = true")
    except BaseException:
        con.close()
        raise
    return con


def query_all(
    source: Store | Sequence[Store] | Sequence[Mapping[str, Any]], sql: str, *, now: datetime
) -> list[Result]:
    """Run every statement of ``sql`` over ``export_logs``; one (columns, rows) each.

    ``source`` is a store, a list of stores, or the log records themselves."""
    import duckdb

    records = _records(source)
    statements = transpile(sql, now)
    con = connect(records)
    try:
        results: list[Result] = []
        for statement in statements:
            try:
                cur = con.execute(statement)
            except duckdb.PermissionException as exc:
                first = str(exc).splitlines()[0]
                raise _refused(f"file or network access ({first})") from None
            except duckdb.Error as exc:
                raise UsageError(f"query failed: {exc} (as DuckDB SQL: {statement})") from None
            names = [d[0] for d in cur.description] if cur.description else []
            results.append((names, [tuple(row) for row in cur.fetchall()] if names else []))
        return results
    finally:
        con.close()


def query(
    source: Store | Sequence[Store] | Sequence[Mapping[str, Any]], sql: str, *, now: datetime
) -> Result:
    """(columns, rows) of the last statement of ``sql`` over ``export_logs``."""
    return query_all(source, sql, now=now)[-1]


def _records(
    source: Store | Sequence[Store] | Sequence[Mapping[str, Any]],
) -> list[Mapping[str, Any]]:
    if isinstance(source, Sequence):
        items = list(source)
        if all(isinstance(i, Mapping) for i in items):
            return [i for i in items if isinstance(i, Mapping)]
        return list(load_records([cast(Store, i) for i in items if not isinstance(i, Mapping)]))
    return list(load_records([source]))


def jsonable(value: object) -> object:
    """A query value as JSON: times RFC 3339 (UTC, ``Z``), decimals as numbers."""
    if isinstance(value, datetime):
        t = value if value.tzinfo else value.replace(tzinfo=UTC)
        return t.astimezone(UTC).isoformat().replace("+00:00", "Z")
    if isinstance(value, date | time):
        return value.isoformat()
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return value


def as_objects(result: Result) -> list[dict[str, object]]:
    """Rows as JSON-ready objects keyed by column name."""
    names, rows = result
    return [{n: jsonable(v) for n, v in zip(names, row, strict=True)} for row in rows]


def render_table(result: Result) -> str:
    """A plain text table (header, rule, rows) for a terminal."""
    names, rows = result
    cells = [[("NULL" if v is None else str(jsonable(v))) for v in row] for row in rows]
    widths = [max([len(n)] + [len(r[i]) for r in cells]) for i, n in enumerate(names)]
    lines = ["  ".join(n.ljust(w) for n, w in zip(names, widths, strict=True)).rstrip()]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in cells]
    lines.append(f"({len(rows)} row{'s' if len(rows) != 1 else ''})")
    return "\n".join(lines)
