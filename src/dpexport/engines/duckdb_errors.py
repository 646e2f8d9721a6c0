"""DuckDB errors as dpexport errors (spec 7.1 classes).

==============================================  ====================================
DuckDB exception                                dpexport error (code)
==============================================  ====================================
OutOfMemoryException                            TransientError INTERNAL_ERROR
InterruptException                              TransientError TIMEOUT
IOException                                     TransientError SERVICE_UNAVAILABLE
IOException, the file locked by another writer  the same, naming the lock holder
CatalogException, the table missing             NotFound
Parser/Binder/Catalog/Conversion/InvalidInput   InvalidArgument, naming the expression
DataError, ProgrammingError                     InvalidArgument
anything else                                   TerminalError INTERNAL_ERROR
==============================================  ====================================

A read's expressions come from the config, so :func:`translate_read` says which one
is at fault when it can (the engine probes each, see ``duckdb_sql.expression_probes``).
"""

from __future__ import annotations

import re
from collections.abc import Callable

import duckdb

from dpexport.engines.base import ScanRequest
from dpexport.errors import (
    ExportError,
    InvalidArgument,
    NotFound,
    TerminalError,
    TransientError,
)

__all__ = ["CopyOutOfMemory", "first_line", "locked_by", "translate_plain", "translate_read"]

#: (role, expression, DuckDB's reason) of the config expression a read failed on
Culprit = tuple[str, str, str]

#: errors in the request's SQL: one of its expressions may be at fault
_BAD_REQUEST = (
    duckdb.ParserException,
    duckdb.BinderException,
    duckdb.CatalogException,
    duckdb.ConversionException,
    duckdb.InvalidInputException,
)


def first_line(text: str) -> str:
    """The first line of an error message (DuckDB's go on with hints and carets)."""
    return text.strip().splitlines()[0] if text.strip() else text


def translate_read(
    exc: duckdb.Error,
    request: ScanRequest,
    *,
    path: str,
    table_exists: Callable[[], bool],
    culprit: Callable[[], Culprit | None],
) -> ExportError:
    """Map a failed read of ``request`` to our errors, naming the expression at fault.

    ``table_exists`` and ``culprit`` are asked only when the exception calls for them
    (a catalog error; an error in the request's SQL)."""
    table = f"{request.dataset}.{request.table}"
    if isinstance(exc, duckdb.CatalogException) and not table_exists():
        return NotFound(f"table {table} does not exist in {path}", table=table)
    if isinstance(exc, _BAD_REQUEST):
        found = culprit()
        if found is not None:
            role, expr, reason = found
            return InvalidArgument(
                f"invalid SQL expression {expr!r} ({role}): {first_line(reason)}",
                table=table,
            )
        return InvalidArgument(f"invalid request: {first_line(str(exc))}", table=table)
    return translate_plain(exc, f"read of {table}", table=table)


#: DuckDB's words when another process holds the database file open for writing
_LOCK_HELD = re.compile(r"Conflicting lock is held in (?P<program>.+?) \(PID (?P<pid>\d+)\)")


def locked_by(exc: duckdb.Error) -> str | None:
    """``program (PID n)`` of the process holding the database file's lock, when
    ``exc`` says another process holds it (DuckDB allows one writer per file)."""
    if not isinstance(exc, duckdb.IOException):
        return None
    found = _LOCK_HELD.search(str(exc))
    if found is None:
        return "another process" if "Could not set lock" in str(exc) else None
    program = found.group("program").rsplit("/", 1)[-1]
    return f"{program} (PID {found.group('pid')})"


class CopyOutOfMemory(TransientError):
    """DuckDB's ``COPY`` ran out of its memory limit: it holds a row group (122,880
    rows) per thread, which wide rows can make larger than the limit; the same rows
    still stream (``duckdb_copy.copy_parquet`` says so instead of failing)."""

    code = "INTERNAL_ERROR"


def translate_plain(exc: duckdb.Error, what: str, *, table: str | None = None) -> ExportError:
    """Map a DuckDB error that no expression explains: transient or terminal by type."""
    holder = locked_by(exc)
    if holder is not None:  # unavailable for now: retryable, and the way out is named
        return TransientError(
            f"{what}: it is locked by {holder}, which has it open for writing; wait "
            "for that process to finish (or stop it), then run again or `dpexport dlq "
            "retry`",
            table=table,
            code="SERVICE_UNAVAILABLE",
        )
    message = f"{what}: {first_line(str(exc))}"
    if isinstance(exc, duckdb.OutOfMemoryException):
        return TransientError(message, table=table, code="INTERNAL_ERROR")
    if isinstance(exc, duckdb.InterruptException):
        return TransientError(message, table=table, code="TIMEOUT")
    if isinstance(exc, duckdb.IOException):
        return TransientError(message, table=table, code="SERVICE_UNAVAILABLE")
    if isinstance(exc, duckdb.CatalogException):
        return NotFound(message, table=table)
    if isinstance(exc, duckdb.DataError | duckdb.ProgrammingError):
        return InvalidArgument(message, table=table)
    return TerminalError(message, table=table, code="INTERNAL_ERROR")
