"""What every command shares: ``-c`` and ``--local-root`` before or after the command
name, the workspace they name, and the RFC 3339 options (``--at``, the hidden ``--now``)."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from dpexport.errors import UsageError
from dpexport.timestamps import parse_rfc3339
from dpexport.workspace import Workspace

if TYPE_CHECKING:
    from dpexport.flow.context import ExportResult

F = TypeVar("F", bound=Callable[..., Any])


def common_options(func: F) -> F:
    """``-c`` and ``--local-root`` are accepted before or after the command name."""
    func = click.option(
        "-c",
        "--config",
        "config_path",
        type=click.Path(dir_okay=False),
        default=None,
        help="Config file (default ./dpexport.yaml or $DPEXPORT_CONFIG).",
    )(func)
    func = click.option(
        "--local-root",
        type=click.Path(file_okay=False),
        default=None,
        help="Map gs:// s3:// az:// URIs and KMS keys to folders under DIR "
        "(or $DPEXPORT_LOCAL_ROOT).",
    )(func)
    return func


class Settings:
    """The group's and the command's ``-c`` / ``--local-root``, the command's winning."""

    def __init__(self) -> None:
        self.config_path: str | None = None
        self.local_root: str | None = None
        self.debug = False

    def merge(self, config_path: str | None, local_root: str | None) -> None:
        self.config_path = config_path or self.config_path
        self.local_root = local_root or self.local_root

    @property
    def config_file(self) -> Path:
        return Path(self.config_path or os.environ.get("DPEXPORT_CONFIG") or "dpexport.yaml")

    @property
    def root(self) -> Path | None:
        value = self.local_root or os.environ.get("DPEXPORT_LOCAL_ROOT")
        return Path(value).resolve() if value else None

    def existing_config(self) -> Path:
        """The config file, which must exist (``UsageError`` saying how to name one)."""
        path = self.config_file
        if not path.exists():
            raise UsageError(
                f"config file {str(path)!r} not found (set -c PATH or $DPEXPORT_CONFIG, "
                "or run 'dpexport init')"
            )
        return path

    def workspace(self) -> Workspace:
        """The config file, loaded, with ``--local-root``."""
        return Workspace.load(self.existing_config(), local_root=self.root)


def settings_of(ctx: click.Context, config_path: str | None, local_root: str | None) -> Settings:
    """The run's settings, with this command's ``-c`` and ``--local-root`` merged in."""
    settings: Settings = ctx.ensure_object(Settings)
    settings.merge(config_path, local_root)
    return settings


def now_option(func: F) -> F:
    """The hidden ``--now TS`` (or ``$DPEXPORT_NOW``): the current time, fixed, so tests
    and replays get the same ages, freshness and ``CURRENT_DATE`` at any wall-clock time."""
    return click.option(
        "--now",
        "now",
        default=None,
        hidden=True,
        envvar="DPEXPORT_NOW",
        help="the current time, RFC 3339 (tests and replays)",
    )(func)


def parse_now(value: str | None, option: str = "--now") -> datetime:
    """``option``'s RFC 3339 time as an aware UTC datetime; none given: now."""
    from dpexport.ops.logs import parse_time

    if not value:
        return datetime.now(UTC)
    parsed = parse_time(value)
    if parsed is None:
        raise UsageError(f"{option}: {value!r} is not an RFC 3339 time")
    return parsed


def parse_at(at: str | None) -> datetime | None:
    """``--at``: the logical run time (RFC 3339, UTC when it names no zone), or None."""
    if not at:
        return None
    try:
        return parse_rfc3339(at)
    except ValueError:
        raise UsageError(
            f"--at: {at!r} is not an RFC 3339 time (e.g. 2025-09-16T14:30:22Z)"
        ) from None


def json_option(shape: str) -> Callable[[F], F]:
    """``--json``: print ``shape`` (its help, docs/json.md its full form) on stdout, one
    line ending in a newline, instead of the text report."""
    return click.option("--json", "as_json", is_flag=True, help=f"print {shape} (one line)")


def echo_json(doc: Any) -> None:
    """Print ``doc`` on stdout as one compact JSON line and a newline (the ``--json``
    shapes of docs/json.md); values JSON has no type for (times, paths) as text."""
    click.echo(json.dumps(doc, default=str, separators=(",", ":")))


def echo_err(message: str, level: int = logging.INFO, text_prefix: str = "") -> None:
    """A line for people on stderr; under ``--log-format json`` a record of the
    ``dpexport.cli`` logger instead, so that every line on stderr parses."""
    from dpexport.cli.logfmt import JsonFormatter

    handlers = logging.getLogger("dpexport").handlers
    if any(isinstance(h.formatter, JsonFormatter) for h in handlers):
        logging.getLogger("dpexport.cli").log(level, "%s", message)
    else:
        click.echo(text_prefix + message, err=True)


def report_results(results: Sequence[ExportResult], as_json: bool) -> None:
    """Export results: a JSON array on stdout, or a line each on stderr (CONTRACT §2)."""
    if as_json:
        echo_json([r.to_json() for r in results])
        return
    for r in results:
        line = f"{r.status:8} {r.table:32} rows={r.rows:<10} files={r.files:<4}"
        if r.error:
            line += f" error: {r.error}"
        if r.reason:
            line += f" ({r.reason})"
        echo_err(line, logging.ERROR if r.status == "FAILURE" else logging.INFO)


def exit_code(results: Sequence[ExportResult]) -> int:
    """0 when every export succeeded or was skipped, 1 when one failed."""
    return 0 if all(r.status != "FAILURE" for r in results) else 1
