"""Config checks that need the warehouse: do the named columns exist, and are the
source's own names free?

The CLI calls ``check_against_schemas`` with each table's column names from the
engine (``check``, ``plan``, ``run``, ``schedule``); every column the config names
(partition expressions, cursors, keys, anonymised and encoded columns) must be one of
them, and no source column may carry a name dpexport gives its own columns
(:func:`reserved_column_issues`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

from dpexport.config.spec import ResolvedConfig, TableSpec
from dpexport.errors import ConfigIssue

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


def check_against_schemas(
    resolved: ResolvedConfig,
    schemas: dict[str, list[str]],
    *,
    require_tables: bool = False,
) -> list[ConfigIssue]:
    """Issues for columns the config names that ``schemas`` (``dataset.table`` -> column
    names) lacks. Tables missing from ``schemas`` are skipped, or reported when
    ``require_tables``."""
    issues: list[ConfigIssue] = []
    for spec in resolved.tables:
        columns = schemas.get(spec.qualified_name)
        if columns is not None:
            issues += reserved_column_issues(spec, columns, resolved.lines)
        if columns is None:
            if require_tables:
                issues.append(
                    _issue(
                        resolved,
                        spec,
                        "source",
                        "table not found in the warehouse",
                        spec.qualified_name,
                        None,
                    )
                )
            continue
        for setting, names in _named_columns(spec):
            for name in names:
                if name not in columns:
                    issues.append(
                        _issue(
                            resolved,
                            spec,
                            setting,
                            f"no column {name!r} in {spec.qualified_name}",
                            name,
                            columns,
                        )
                    )
    return issues


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
    dedup = _dedup_column(spec.deduplication)
    if dedup:
        out.append(("deduplication", [dedup]))
    columns = [c for c in spec.parquet.column_encoding if c != "*"]
    if columns:
        out.append(("column_encoding", columns))
    if spec.gdpr is not None:
        anonymization = spec.gdpr.anonymization
        if isinstance(anonymization, dict):
            out.append(("gdpr", list(anonymization)))
        else:
            out.append(("gdpr", [c for rule in anonymization for c in rule]))
    return out


def _dedup_column(text: str | None) -> str | None:
    """``by post_id`` / ``by event_id on consumer side`` -> the key column."""
    match = re.match(r"^\s*by\s+(\w+)", text or "")
    return match.group(1) if match else None


def _issue(
    resolved: ResolvedConfig,
    spec: TableSpec,
    setting: str,
    message: str,
    value: str,
    columns: list[str] | None,
) -> ConfigIssue:
    import difflib

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
