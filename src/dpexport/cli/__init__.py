"""The ``dpexport`` command line (CONTRACT §2): thin commands over :mod:`dpexport.api`.

Each command parses its options, calls the library function of the same name and
prints what it returns; ``main`` maps errors to exit codes. The commands live by
family in :mod:`.exports` (check, plan, run, compact, verify, decrypt, init, demo),
:mod:`.ops` (logs, status, dlq), :mod:`.storage` (replicate, lifecycle),
:mod:`.schedule`, :mod:`.alerts` (test, list), :mod:`.iam` (render), :mod:`.files`
and :mod:`.dashboard`; :mod:`.common`
holds what they share.
Heavy modules load inside the commands.
"""

from __future__ import annotations

import logging
import signal
import sys
from types import FrameType

import click

from dpexport.cli import alerts, dashboard, exports, files, iam, ops, schedule, storage
from dpexport.cli.common import common_options, settings_of
from dpexport.errors import DpexportError

__all__ = ["cli", "main"]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@common_options
@click.option("--debug", is_flag=True, help="Show tracebacks and debug logs.")
@click.version_option(package_name="dpexport")
@click.pass_context
def cli(ctx: click.Context, config_path: str | None, local_root: str | None, debug: bool) -> None:
    """Export warehouse tables to object storage, exactly once (spec: DiagnosticPro S3)."""
    settings = settings_of(ctx, config_path, local_root)
    settings.debug = debug
    _setup_logging(debug)


for _command in (
    exports.COMMANDS
    + ops.COMMANDS
    + storage.COMMANDS
    + schedule.COMMANDS
    + alerts.COMMANDS
    + iam.COMMANDS
    + files.COMMANDS
    + dashboard.COMMANDS
):
    cli.add_command(_command)


def _setup_logging(debug: bool) -> None:
    level = logging.DEBUG if debug else logging.INFO
    handler: logging.Handler
    if sys.stderr.isatty():
        from rich.logging import RichHandler

        from dpexport.flow.progress import stderr_console

        handler = RichHandler(console=stderr_console(), show_path=False, show_time=False)
        handler.setFormatter(logging.Formatter("%(message)s"))
    else:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(
            logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%Y-%m-%dT%H:%M:%SZ")
        )
    root = logging.getLogger("dpexport")
    root.handlers[:] = [handler]
    root.setLevel(level)
    root.propagate = False


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> None:
    """Entry point: maps errors to exit codes (0 ok, 1 failed, 2 bad input, 130 interrupted)."""
    signal.signal(signal.SIGTERM, _on_sigterm)
    debug = "--debug" in (argv if argv is not None else sys.argv[1:])
    try:
        code = cli.main(args=argv, prog_name="dpexport", standalone_mode=False)
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(130)
    except click.exceptions.Abort:
        click.echo("interrupted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(2)
    except DpexportError as exc:
        if debug:
            raise
        click.echo(f"error: {exc}", err=True)
        sys.exit(exc.exit_code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    sys.exit(code if isinstance(code, int) else 0)
