"""The ``dpexport`` command line (CONTRACT §2): thin commands over :mod:`dpexport.api`.

Each command parses its options, calls the library function of the same name and
prints what it returns; ``main`` maps errors to exit codes. The commands live by
family in :mod:`.exports` (check, plan, run, compact, reconcile, verify, decrypt),
:mod:`.ops` (logs, status, dlq), :mod:`.storage` (replicate, lifecycle),
:mod:`.schedule`, :mod:`.alerts` (test, list), :mod:`.iam` (render), :mod:`.start`
(init, demo), :mod:`.files` and :mod:`.dashboard`; :mod:`.common` holds what they share,
:mod:`.logfmt` where logs go. Every command's ``--json`` prints one JSON document on
stdout as one line (docs/json.md).
A family's module loads when one of its commands is asked for (or ``--help`` lists
them all), and heavy modules load inside the commands.
"""

from __future__ import annotations

import importlib
import os
import signal
import sys
from types import FrameType

import click

from dpexport.cli.common import common_options, settings_of
from dpexport.cli.logfmt import ENV_VAR, LOG_FORMATS, error_line, json_logs_asked, setup_logging
from dpexport.errors import DpexportError

__all__ = ["cli", "main"]

#: each family's commands (its module's ``COMMANDS``), by the module under dpexport.cli
FAMILIES = {
    "exports": ("check", "plan", "run", "compact", "reconcile", "verify", "decrypt"),
    "ops": ("logs", "status", "dlq"),
    "storage": ("replicate", "lifecycle"),
    "schedule": ("schedule",),
    "alerts": ("alerts",),
    "iam": ("iam",),
    "start": ("init", "demo"),
    "files": ("files",),
    "dashboard": ("dashboard",),
}
_FAMILY_OF = {name: family for family, names in FAMILIES.items() for name in names}


class _Commands(click.Group):
    """The top-level group, whose commands load with their family's module when asked
    for: ``dpexport run`` does not import the dashboard's, the scheduler's or the alerts'."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*self.commands, *_FAMILY_OF})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        family = _FAMILY_OF.get(cmd_name)
        if cmd_name not in self.commands and family is not None:
            for command in importlib.import_module(f"dpexport.cli.{family}").COMMANDS:
                self.add_command(command)
        return self.commands.get(cmd_name)


@click.group(cls=_Commands, context_settings={"help_option_names": ["-h", "--help"]})
@common_options
@click.option("--debug", is_flag=True, help="Show tracebacks and debug logs.")
@click.option(
    "--log-format",
    type=click.Choice(LOG_FORMATS),
    default="text",
    envvar=ENV_VAR,
    show_default=True,
    help="Logs on stderr as text, or one JSON object a line: ts, level, logger, message, "
    f"exception (or ${ENV_VAR}).",
)
@click.version_option(package_name="dpexport")
@click.pass_context
def cli(
    ctx: click.Context,
    config_path: str | None,
    local_root: str | None,
    debug: bool,
    log_format: str,
) -> None:
    """Export warehouse tables to object storage, exactly once (spec: DiagnosticPro S3).

    Every command takes --json: one JSON document on stdout, a line (docs/json.md)."""
    settings = settings_of(ctx, config_path, local_root)
    settings.debug = debug
    setup_logging(debug, log_format)


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> None:
    """Entry point: maps errors to exit codes (0 ok, 1 failed, 2 bad input, 130 interrupted);
    under ``--log-format json`` its error line is a JSON log line too."""
    signal.signal(signal.SIGTERM, _on_sigterm)
    # pyarrow imports numpy, whose OpenBLAS starts a thread per core that spins for
    # ~0.15 s of CPU; dpexport does no linear algebra (a user's own setting stands)
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    args = argv if argv is not None else sys.argv[1:]
    debug = "--debug" in args
    as_json = json_logs_asked(args)
    try:
        code = cli.main(args=argv, prog_name="dpexport", standalone_mode=False)
    except (KeyboardInterrupt, click.exceptions.Abort):
        click.echo(error_line("interrupted", as_json, prefix=""), err=True)
        sys.exit(130)
    except click.ClickException as exc:
        if not as_json:
            exc.show()
        else:
            click.echo(error_line(exc.format_message(), as_json), err=True)
        sys.exit(2)
    except DpexportError as exc:
        if debug and not as_json:
            raise
        click.echo(error_line(str(exc), as_json, exc if debug else None), err=True)
        sys.exit(exc.exit_code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    sys.exit(code if isinstance(code, int) else 0)
