"""Holding a resolved config against an open warehouse: what only the tables show.

Only the :class:`~dpexport.engines.base.Engine` interface is asked (``table_exists``,
``schema``); nothing is written. Two depths:

- :func:`schema_issues`, before ``plan`` and ``run``: the columns every setting names,
  the names dpexport reserves, the cursor of every APPEND table
  (:func:`~dpexport.config.schema_check.check_against_schemas`) for the tables that
  exist (a missing table is the export's own pre-check, spec 5.2).
- :func:`warehouse_issues`, ``check``'s pass: the same, and every source table must
  exist (a missing one names the tables of its name in the config's other datasets);
  each explicit Parquet column encoding is tried on its column's type by the writer
  itself; each ``validation`` check is bound to the table as a run binds it, so a
  column it needs (or its reference table) is missing, or of a type it cannot judge,
  is reported at the check's own path.

:func:`offline_issues` is what ``check`` can still add when the warehouse cannot be
asked: APPEND tables without a cursor.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

from dpexport.config.schema_check import Columns, check_against_schemas
from dpexport.errors import ConfigError, ConfigIssue

if TYPE_CHECKING:
    import pyarrow as pa

    from dpexport.config.spec import ResolvedConfig, TableSpec
    from dpexport.engines.base import Engine


def schema_issues(config: ResolvedConfig, engine: Engine) -> list[ConfigIssue]:
    """What the warehouse shows wrong in the config's settings, for the tables it has."""
    schemas = _schemas(config, engine)
    return check_against_schemas(config, {k: Columns.of(v) for k, v in schemas.items()})


def offline_issues(config: ResolvedConfig) -> list[ConfigIssue]:
    """What ``check`` adds without a warehouse: APPEND tables without a cursor (their
    candidate columns unknown)."""
    return check_against_schemas(config, {})


def warehouse_issues(config: ResolvedConfig, engine: Engine) -> list[ConfigIssue]:
    """``check``'s pass over the warehouse (see the module docstring)."""
    schemas = _schemas(config, engine)
    missing = [spec for spec in config.tables if spec.qualified_name not in schemas]
    issues = check_against_schemas(
        config,
        {k: Columns.of(v) for k, v in schemas.items()},
        require_tables=True,
        elsewhere=_elsewhere(config, engine, missing),
    )
    for spec in config.tables:
        schema = schemas.get(spec.qualified_name)
        if schema is not None:
            issues += _encoding_issues(config, spec, schema)
            issues += _binding_issues(config, spec, schema, engine)
    return issues


def _schemas(config: ResolvedConfig, engine: Engine) -> dict[str, pa.Schema]:
    return {
        spec.qualified_name: engine.schema(spec.dataset, spec.table)
        for spec in config.tables
        if engine.table_exists(spec.dataset, spec.table)
    }


def _elsewhere(
    config: ResolvedConfig, engine: Engine, missing: list[TableSpec]
) -> dict[str, list[str]]:
    """For each missing table, the tables of its name in the other datasets the config
    names (the warehouse is asked by name only: the interface lists no tables)."""
    datasets = list(dict.fromkeys([config.warehouse.dataset, *(t.dataset for t in config.tables)]))
    return {
        spec.qualified_name: [
            f"{dataset}.{spec.table}"
            for dataset in datasets
            if dataset != spec.dataset and engine.table_exists(dataset, spec.table)
        ]
        for spec in missing
    }


def _encoding_issues(
    config: ResolvedConfig, spec: TableSpec, schema: pa.Schema
) -> list[ConfigIssue]:
    """Each ``column_encoding`` naming a column, tried on that column by the writer."""
    if spec.format != "PARQUET":
        return []
    issues: list[ConfigIssue] = []
    for column, encoding in spec.parquet.column_encoding.items():
        if column == "*" or column not in schema.names:
            continue  # "*" applies where the type allows; a missing column is named already
        field = schema.field(column)
        problem = _encoding_problem(field, encoding)
        if problem is None:
            continue
        path = spec.origins.get(f"column_encoding.{column}") or spec.qualified_name
        issues.append(
            ConfigIssue(
                path=path,
                message=f"{encoding} cannot encode column {column!r} of {spec.qualified_name}, "
                f"which is {str(field.type).upper()}: {problem}",
                value=repr(encoding),
                expected="an encoding its type allows (DELTA_BINARY_PACKED: integer, date "
                "and timestamp columns), or none",
                line=config.lines.get(path),
            )
        )
    return issues


def _encoding_problem(field: pa.Field, encoding: str) -> str | None:
    """Why the Parquet writer refuses ``encoding`` for ``field`` (``None``: it takes it),
    found by writing no rows of that one column to memory."""
    import io

    import pyarrow as pa
    import pyarrow.parquet as pq

    from dpexport.config.spec import ParquetOptions
    from dpexport.errors import InvalidArgument
    from dpexport.formats.parquet import writer_properties

    schema = pa.schema([field])
    options = ParquetOptions(column_encoding={field.name: encoding})
    try:
        props = writer_properties(schema, "NONE", options)
        with pq.ParquetWriter(io.BytesIO(), schema, **props) as writer:
            writer.write_table(schema.empty_table())
    except (OSError, pa.ArrowException, InvalidArgument) as exc:
        return str(exc)
    return None


def _binding_issues(
    config: ResolvedConfig, spec: TableSpec, schema: pa.Schema, engine: Engine
) -> list[ConfigIssue]:
    """Each check of the table bound to it as a run binds it (:class:`CheckRun`): a
    check that could not run names why, at its place in the list."""
    if not spec.validation:
        return []
    from dpexport.checks import CheckContext, CheckRun
    from dpexport.engines.base import ScanRequest

    request = ScanRequest(spec.dataset, spec.table)
    context = CheckContext(spec, engine, request, datetime.now(UTC), schema=schema)
    try:
        checks = CheckRun(context).checks
    except ConfigError:
        return []  # the list (or the gdpr block) is refused: the file pass reports it
    where = spec.origins.get("validation") or f"{spec.qualified_name}.validation"
    issues: list[ConfigIssue] = []
    for index, check in enumerate(checks):
        if check.error is not None:
            path = f"{where}[{index}]"
            issues.append(
                ConfigIssue(
                    path=path,
                    message=f"{check.name} cannot run on {spec.qualified_name}: {check.error}",
                    expected="the columns the check reads (set its column/columns parameter)",
                    line=config.lines.get(path),
                )
            )
    return issues
