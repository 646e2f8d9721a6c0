"""Config checks that need the tables' columns: do the named columns exist, are the
source's own names free, has every APPEND table a cursor?

:mod:`dpexport.config.warehouse` calls ``check_against_schemas`` with each table's
columns from the engine (``check``, ``plan``, ``run``, ``schedule``); every column the
config names (partition expressions, cursors, merge and dedup keys, anonymised,
excluded and encoded columns) must be one of them, each reported at the path that
names it; no source column may carry a name dpexport gives its own columns
(:func:`reserved_column_issues`); an APPEND or INCREMENTAL table without a cursor is
reported with its TIMESTAMP and DATE columns as candidates (CONTRACT §8).
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from dpexport.config.spec import ResolvedConfig, TableSpec
from dpexport.errors import ConfigIssue

if TYPE_CHECKING:
    import pyarrow as pa

#: The column dpexport adds when ``schema_evolution`` is enabled (CONTRACT §4), under its
#: default name: reserved whatever the table's setting, so a reader never mistakes a
#: source column for it.
VERSION_COLUMN = "_schema_version"
#: dpexport's computed columns (partition keys ``__dp_k0``..., DuckDB's ``__dp_p1``...):
#: dropped before files are written, so a source column so named would vanish or clash.
INTERNAL_PREFIX = "__dp_"

#: Words in partition expressions that are SQL, not columns.
SQL_WORDS = frozenset(
    [
        "and",
        "or",
        "not",
        "null",
        "is",
        "in",
        "between",
        "like",
        "case",
        "when",
        "then",
        "else",
        "end",
        "as",
        "cast",
        "extract",
        "from",
        "interval",
        "true",
        "false",
        "distinct",
        "div",
        "mod",
        "at",
        "time",
        "zone",
        "date",
        "datetime",
        "timestamp",
        "time",
        "hour",
        "day",
        "week",
        "month",
        "quarter",
        "year",
        "minute",
        "second",
        "int",
        "int64",
        "integer",
        "bigint",
        "smallint",
        "float",
        "float64",
        "double",
        "numeric",
        "decimal",
        "string",
        "varchar",
        "text",
        "bool",
        "boolean",
        "bytes",
    ]
)
_STRING = re.compile(r"'(?:[^'\\]|\\.)*'")
_QUOTED = re.compile(r'"([^"]+)"|`([^`]+)`')
_WORD = re.compile(r"(?<![\w.])([A-Za-z_]\w*)(\s*\()?")


def identifiers(expression: str) -> list[str]:
    """Column names used by a SQL expression, in order, without repeats.

    Function names (a word before ``(``), SQL keywords, type names, numbers and
    string literals are skipped: ``date(created_at)`` -> ``["created_at"]``,
    ``equipment_id % 100`` -> ``["equipment_id"]``.
    """
    text = _STRING.sub(" ", expression)
    found: list[str] = []
    for match in _QUOTED.finditer(text):
        found.append(match.group(1) or match.group(2))
    text = _QUOTED.sub(" ", text)
    for match in _WORD.finditer(text):
        word, call = match.group(1), match.group(2)
        if call or word.lower() in SQL_WORDS:
            continue
        found.append(word)
    return list(dict.fromkeys(found))


@dataclass(frozen=True)
class Columns:
    """A source table's columns as the warehouse reports them: the names in table
    order and, when known, each one's SQL type (``TIMESTAMP``, ``DATE``, ...)."""

    names: tuple[str, ...]
    types: Mapping[str, str] = field(default_factory=dict)
    #: columns of a type no format can write (a UNION, at any depth) -> that type
    unwritable: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def of(cls, schema: pa.Schema) -> Columns:
        """The columns of an Arrow schema (an engine's ``schema()``)."""
        import pyarrow as pa

        def sql_type(t: pa.DataType) -> str:
            if pa.types.is_timestamp(t):
                return "TIMESTAMP"
            if pa.types.is_date(t):
                return "DATE"
            return str(t).upper()

        def holds_union(t: pa.DataType) -> bool:
            if pa.types.is_dictionary(t):
                return holds_union(t.value_type)
            return pa.types.is_union(t) or any(
                holds_union(t.field(i).type) for i in range(t.num_fields)
            )

        unwritable = {f.name: str(f.type) for f in schema if holds_union(f.type)}
        return cls(tuple(schema.names), {f.name: sql_type(f.type) for f in schema}, unwritable)

    def cursor_candidates(self) -> list[str]:
        """The TIMESTAMP and DATE columns, each with its type: ``created_at (TIMESTAMP)``."""
        return [
            f"{name} ({self.types[name]})"
            for name in self.names
            if self.types.get(name) in ("TIMESTAMP", "DATE")
        ]


def check_against_schemas(
    resolved: ResolvedConfig,
    schemas: Mapping[str, Sequence[str] | Columns],
    *,
    require_tables: bool = False,
    elsewhere: Mapping[str, Sequence[str]] | None = None,
) -> list[ConfigIssue]:
    """Issues for what ``schemas`` (``dataset.table`` -> its columns) shows wrong in
    the config: a column a setting names that the table lacks, a source column named
    like dpexport's own, an APPEND or INCREMENTAL table without a cursor (with its
    TIMESTAMP and DATE columns as candidates when its columns are known).

    Tables missing from ``schemas`` are skipped, or reported when ``require_tables``,
    naming the tables of the same name in other datasets that ``elsewhere``
    (``dataset.table`` -> ``other_dataset.table``...) lists."""
    issues: list[ConfigIssue] = []
    for spec in resolved.tables:
        given = schemas.get(spec.qualified_name)
        columns = _columns(given) if given is not None else None
        issues += _cursor_issues(resolved, spec, columns)
        if columns is None:
            if require_tables:
                found = list((elsewhere or {}).get(spec.qualified_name, ()))
                issues.append(_missing_table(resolved, spec, found))
            continue
        issues += reserved_column_issues(spec, columns.names, resolved.lines)
        issues += _union_issues(resolved, spec, columns)
        issues += _hive_key_issues(resolved, spec, columns.names)
        for setting, names in _named_columns(spec):
            for name in names:
                if name not in columns.names:
                    issues.append(
                        _issue(
                            resolved,
                            spec,
                            setting,
                            f"no column {name!r} in {spec.qualified_name}",
                            name,
                            list(columns.names),
                        )
                    )
    return issues


def _hive_key_issues(
    resolved: ResolvedConfig, spec: TableSpec, columns: Sequence[str]
) -> list[ConfigIssue]:
    """A hive-style ``path_pattern`` key naming a column the files hold (see
    :func:`dpexport.config.path_pattern.key_collisions`)."""
    from dpexport.config.path_pattern import hive_keys, key_collisions

    part = spec.partitioning
    keys = hive_keys(part.time_layout, (s.key for s in part.sub_partitions))
    written = list(columns)
    if spec.schema_evolution.enabled:
        written.append(spec.schema_evolution.version_column)
    path = spec.origins.get("partitioning.path_pattern") or spec.qualified_name
    return [
        ConfigIssue(
            path=path,
            message=(
                f"hive key {key!r} names the column {column!r}, which the files hold too: "
                "DuckDB's hive_partitioning replaces its values with the folder's, pyarrow "
                "and polars refuse the two"
            ),
            value=repr(key),
            expected=f"a key that is not a column of {spec.qualified_name}",
            suggestion=f"{key}_part",
            line=resolved.lines.get(path),
        )
        for key, column in key_collisions(keys, written)
    ]


def _union_issues(resolved: ResolvedConfig, spec: TableSpec, columns: Columns) -> list[ConfigIssue]:
    """A UNION column (DuckDB's tagged union), which neither Arrow's Parquet writer nor
    dpexport's JSONL/CSV writers can write: refused by name before a byte is written."""
    excluded = set(spec.gdpr.excluded_fields) if spec.gdpr is not None else set()
    path = spec.origins.get("source") or spec.qualified_name
    return [
        ConfigIssue(
            path=path,
            message=f"column {name!r} of {spec.qualified_name} is a UNION ({type_}), "
            "which no export format can write",
            value=repr(name),
            expected=f"a source without it: a view that casts it (SELECT * REPLACE "
            f"(CAST({name} AS VARCHAR) AS {name}) FROM {spec.qualified_name}), or the column "
            "listed in gdpr_compliance.excluded_fields",
            line=resolved.lines.get(path),
        )
        for name, type_ in columns.unwritable.items()
        if name not in excluded
    ]


def _columns(given: Sequence[str] | Columns) -> Columns:
    return given if isinstance(given, Columns) else Columns(tuple(given))


def _cursor_issues(
    resolved: ResolvedConfig, spec: TableSpec, columns: Columns | None
) -> list[ConfigIssue]:
    """CONTRACT §8: an APPEND (or INCREMENTAL) table needs a cursor, its
    ``change_column`` or partitioning field, to know which rows are new."""
    if spec.mode not in ("APPEND", "INCREMENTAL"):
        return []
    if spec.change_column or spec.partitioning.time_expression:
        return []
    if columns is None:
        candidates = "its TIMESTAMP and DATE columns would be the candidates (not read here)"
    else:
        found = columns.cursor_candidates()
        candidates = "candidates, its TIMESTAMP and DATE columns: " + (
            ", ".join(found) if found else "none"
        )
    path = spec.origins.get("table") or spec.origins.get("source") or spec.qualified_name
    return [
        ConfigIssue(
            path=path,
            message=f"{spec.qualified_name} is {spec.mode} but has no cursor (no change_column, "
            f"no partitioning field), so nothing says which rows are new; {candidates}",
            expected="change_column: COLUMN (in its exports item or append_only entry) or "
            "partitioning: {field: COLUMN}",
            line=resolved.lines.get(path),
        )
    ]


def _missing_table(resolved: ResolvedConfig, spec: TableSpec, found: list[str]) -> ConfigIssue:
    """The source table is not in the warehouse; ``found`` are tables of its name in
    other datasets, else the nearest name among the config's own tables."""
    path = spec.origins.get("source") or spec.qualified_name
    message = f"table {spec.qualified_name} not found in the warehouse"
    suggestion = None
    if found:
        message += f"; tables named {spec.table!r} there: {', '.join(found)}"
        suggestion = found[0] if len(found) == 1 else None
    else:
        others = [t.table for t in resolved.tables if t is not spec]
        close = difflib.get_close_matches(spec.table, others, n=1)
        suggestion = close[0] if close else None
    return ConfigIssue(
        path=path,
        message=message,
        value=repr(spec.qualified_name),
        expected="a table or view of the warehouse",
        suggestion=suggestion,
        line=resolved.lines.get(path),
    )


def reserved_column_issues(
    spec: TableSpec, columns: Iterable[str], lines: Mapping[str, int] | None = None
) -> list[ConfigIssue]:
    """Issues for source columns of ``spec`` whose names dpexport keeps for its own:
    ``_schema_version`` (and the table's ``version_column`` when schema evolution is on)
    and any ``__dp_*`` name, compared case-insensitively (SQL engines do). A column in
    ``gdpr_compliance.excluded_fields`` is never read, so it may keep its name.

    ``columns`` are the source table's names as the engine reports them; ``lines`` maps
    YAML paths to lines (``ResolvedConfig.lines``). A run calls this before it writes.
    """
    excluded = set(spec.gdpr.excluded_fields) if spec.gdpr is not None else set()
    version = {VERSION_COLUMN.lower()}
    if spec.schema_evolution.enabled:
        version.add(spec.schema_evolution.version_column.lower())
    path = spec.origins.get("source") or spec.qualified_name
    issues: list[ConfigIssue] = []
    for name in columns:
        if name in excluded:
            continue
        if name.lower() in version:
            why = "dpexport's schema version column (schema_evolution.version_column)"
        elif name.lower().startswith(INTERNAL_PREFIX):
            why = f"the {INTERNAL_PREFIX}* names of dpexport's computed columns"
        else:
            continue
        issues.append(
            ConfigIssue(
                path=path,
                message=f"{spec.qualified_name} has a column named {name!r}, which is "
                f"reserved: {why}",
                value=repr(name),
                expected="rename the column in the source (or a view), or list it in "
                "gdpr_compliance.excluded_fields",
                line=(lines or {}).get(path),
            )
        )
    return issues


def _named_columns(spec: TableSpec) -> list[tuple[str, list[str]]]:
    """Each setting naming columns (an ``origins`` key) with the columns it names."""
    out: list[tuple[str, list[str]]] = []
    part = spec.partitioning
    if part.time_expression:
        out.append(("partitioning.time", identifiers(part.time_expression)))
    for sub in part.sub_partitions:
        out.append((f"partitioning.sub.{sub.name}", identifiers(sub.expression)))
    if spec.change_column:
        out.append(("change_column", [spec.change_column]))
    if spec.merge_key:
        out.append(("merge_key", list(spec.merge_key)))
    dedup = dedup_columns(spec.deduplication)
    if dedup:
        out.append(("deduplication", dedup))
    for column in spec.parquet.column_encoding:
        if column != "*":
            out.append((f"column_encoding.{column}", [column]))
    if spec.gdpr is not None:
        rules = spec.gdpr.anonymization
        named = list(rules) if isinstance(rules, dict) else [c for rule in rules for c in rule]
        out += [(f"gdpr.anonymization.{column}", [column]) for column in named]
        out += [(f"gdpr.excluded_fields.{c}", [c]) for c in spec.gdpr.excluded_fields]
    return out


def dedup_columns(text: str | None) -> list[str]:
    """The key columns ``deduplication`` names: ``by post_id`` -> ``[post_id]``,
    ``by event_id on consumer side`` -> ``[event_id]`` (the consumer's key must be
    exported too), ``by a, b and c`` -> ``[a, b, c]``; other text names none."""
    match = re.match(r"^\s*by\s+(.+?)(?:\s+on\s+consumer\s+side)?\s*$", text or "", re.I)
    if not match:
        return []
    parts = re.split(r",|\s+and\s+", match.group(1))
    return [p.strip() for p in parts if p.strip()]


def _issue(
    resolved: ResolvedConfig,
    spec: TableSpec,
    setting: str,
    message: str,
    value: str,
    columns: list[str] | None,
) -> ConfigIssue:
    path = spec.origins.get(setting) or spec.origins.get("source") or spec.qualified_name
    suggestion = None
    if columns:
        close = difflib.get_close_matches(value, columns, n=1)
        suggestion = close[0] if close else None
    return ConfigIssue(
        path=path,
        message=message,
        value=repr(value),
        expected=f"a column of {spec.qualified_name}" if columns is not None else None,
        suggestion=suggestion,
        line=resolved.lines.get(path),
    )
