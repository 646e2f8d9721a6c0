"""The exception tree of dpexport.

::

    DpexportError                     every error we raise; `.exit_code` is the CLI's
    ├── ConfigError                   bad config: a list of ConfigIssue (exit 2)
    ├── UsageError                    bad arguments, on the command line or to a call (exit 2)
    │   └── UnknownTable              a table name the config does not have; names the choices
    ├── ExportError                   an export could not finish (exit 1)
    │   ├── TransientError            retryable (spec 7.1 retry_conditions)
    │   └── TerminalError             not retryable (spec 7.1 non_retryable)
    │       ├── NotFound
    │       ├── AlreadyExists         conditional create lost
    │       ├── PreconditionFailed    compare-and-swap on a stale version
    │       ├── PermissionDenied
    │       └── InvalidArgument
    ├── ExportFailed                  a run finished with a FAILURE; carries every result (exit 1)
    ├── VerificationError             a file does not match what its manifest states (exit 1)
    └── DecryptionError               an encrypted file fails authentication or its key is missing

Retry logic asks ``isinstance(err, TransientError)``; it never parses messages.
Each error carries its context (table, URI, YAML path) as attributes and writes its
own message, never including secret values.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from dpexport.flow.context import ExportResult


class DpexportError(Exception):
    """Base of every dpexport error."""

    exit_code: int = 1


@dataclass(frozen=True)
class ConfigIssue:
    """One problem in a config file.

    ``path`` is the YAML path (``exports[2].compression``), ``value`` the offending
    value (already rendered as short text; secrets are never rendered), ``expected``
    what would be valid, ``suggestion`` the nearest valid choice, ``line`` the
    1-based line in the file when known.
    """

    path: str
    message: str
    value: str | None = None
    expected: str | None = None
    suggestion: str | None = None
    line: int | None = None

    def render(self, source: str | None = None) -> str:
        where = self.path or "<root>"
        loc = (
            f"{source}:{self.line}: "
            if source and self.line
            else (f"line {self.line}: " if self.line else "")
        )
        text = f"{loc}{where}: {self.message}"
        if self.value is not None:
            text += f" (got {self.value})"
        if self.expected:
            text += f"; expected {self.expected}"
        if self.suggestion:
            text += f"; did you mean {self.suggestion!r}?"
        return text


class ConfigError(DpexportError):
    """The config is invalid; every problem found in one pass is in ``issues``."""

    exit_code = 2

    def __init__(self, issues: list[ConfigIssue], source: str | None = None) -> None:
        self.issues = list(issues)
        self.source = source
        lines = [i.render(source) for i in self.issues]
        head = f"{len(self.issues)} problem(s) in {source or 'config'}"
        super().__init__(head + ":\n" + "\n".join("  - " + line for line in lines))


class UsageError(DpexportError):
    """Bad arguments: on the command line, or to a ``dpexport`` function."""

    exit_code = 2


class UnknownTable(UsageError):
    """A table name (``--table``, ``tables=``) that is not in the config."""

    def __init__(self, name: str, choices: Sequence[str], suggestion: str | None = None) -> None:
        self.name = name
        self.choices = list(choices)
        self.suggestion = suggestion
        hint = f"; did you mean {suggestion!r}?" if suggestion else ""
        super().__init__(
            f"no such table {name!r} in the config{hint} (tables: {', '.join(self.choices)})"
        )


class ExportError(DpexportError):
    """An export could not finish. ``code`` is a spec 7.1 class when known."""

    code: str = "INTERNAL_ERROR"

    def __init__(
        self,
        message: str,
        *,
        table: str | None = None,
        uri: str | None = None,
        code: str | None = None,
    ) -> None:
        self.table = table
        self.uri = uri
        if code:
            self.code = code
        parts = [message]
        if table:
            parts.append(f"table={table}")
        if uri:
            parts.append(f"uri={uri}")
        super().__init__(
            " ".join([parts[0]] + ([f"({', '.join(parts[1:])})"] if parts[1:] else []))
        )


class TransientError(ExportError):
    """Retryable: RATE_LIMIT_EXCEEDED, QUOTA_EXCEEDED, TIMEOUT, INTERNAL_ERROR,
    SERVICE_UNAVAILABLE."""

    code = "SERVICE_UNAVAILABLE"


class TerminalError(ExportError):
    """Not retryable: PERMISSION_DENIED, INVALID_ARGUMENT, NOT_FOUND, ALREADY_EXISTS."""

    code = "INVALID_ARGUMENT"


class NotFound(TerminalError):
    code = "NOT_FOUND"


class AlreadyExists(TerminalError):
    code = "ALREADY_EXISTS"


class PreconditionFailed(TerminalError):
    code = "FAILED_PRECONDITION"


class PermissionDenied(TerminalError):
    code = "PERMISSION_DENIED"


class InvalidArgument(TerminalError):
    code = "INVALID_ARGUMENT"


class ExportFailed(DpexportError):
    """At least one export of a run failed (its FAILURE marker and DLQ entry exist).

    ``results`` holds every export's result, the successful ones too; ``failed`` the
    failed ones. ``dpexport.run(..., raise_on_failure=False)`` returns them instead.
    """

    def __init__(self, results: Sequence[ExportResult]) -> None:
        self.results = list(results)
        self.failed = [r for r in self.results if r.status == "FAILURE"]
        what = "; ".join(f"{r.table}: {r.error}" for r in self.failed)
        super().__init__(f"{len(self.failed)} of {len(self.results)} export(s) failed: {what}")


@dataclass
class Mismatch:
    """One thing ``verify`` found wrong: the file (relative to the manifest) and what."""

    file: str
    problem: str


class VerificationError(DpexportError):
    """An export does not match its manifest."""

    def __init__(self, uri: str, mismatches: list[Mismatch]) -> None:
        self.uri = uri
        self.mismatches = mismatches
        body = "\n".join(f"  - {m.file}: {m.problem}" for m in mismatches)
        super().__init__(f"verification failed for {uri}:\n{body}")


class DecryptionError(DpexportError):
    """A client-side encrypted file cannot be decrypted: tampered, truncated, or wrong key."""

    def __init__(self, message: str, *, path: str | None = None) -> None:
        self.path = path
        super().__init__(f"{message}" + (f" ({path})" if path else ""))
