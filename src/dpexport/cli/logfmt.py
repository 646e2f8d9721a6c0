"""Where the CLI's logs go: stderr, as text (a rich handler on a terminal) or, with
``--log-format json`` (or ``$DPEXPORT_LOG_FORMAT=json``), one JSON object per line that a
log shipper reads without parsing text: ``ts`` (RFC 3339, UTC, milliseconds),
``level``, ``logger``, ``message``, and ``exception`` (the traceback) when there is one.

The error line ``main`` prints before exiting goes the same way, so under
``--log-format json`` every line on stderr parses."""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Sequence
from datetime import UTC, datetime

LOG_FORMATS = ("text", "json")
ENV_VAR = "DPEXPORT_LOG_FORMAT"


class JsonFormatter(logging.Formatter):
    """A log record as one JSON line: ``ts``, ``level``, ``logger``, ``message`` and,
    when the record carries one, ``exception`` (and ``stack``)."""

    def format(self, record: logging.LogRecord) -> str:
        ts = datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")
        doc: dict[str, object] = {
            "ts": ts.replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            doc["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            doc["exception"] = record.exc_text
        if record.stack_info:
            doc["stack"] = self.formatStack(record.stack_info)
        return json.dumps(doc, default=str, separators=(",", ":"))


def setup_logging(debug: bool, log_format: str) -> None:
    """The ``dpexport`` logger's one handler, on stderr, at DEBUG or INFO."""
    handler: logging.Handler
    if log_format == "json":
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(JsonFormatter())
    elif sys.stderr.isatty():
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
    root.setLevel(logging.DEBUG if debug else logging.INFO)
    root.propagate = False


def json_logs_asked(argv: Sequence[str]) -> bool:
    """Whether ``argv`` (or the environment) asks for JSON logs: ``main`` must know before
    click has parsed anything, to print its own errors the same way."""
    value = os.environ.get(ENV_VAR, "")
    for i, arg in enumerate(argv):
        if arg == "--log-format" and i + 1 < len(argv):
            value = argv[i + 1]
        elif arg.startswith("--log-format="):
            value = arg.partition("=")[2]
    return value == "json"


def error_line(
    message: str, as_json: bool, exc: BaseException | None = None, prefix: str = "error: "
) -> str:
    """``main``'s last word on stderr: ``error: MESSAGE``, or a JSON log line of level
    ERROR from logger ``dpexport.cli`` (with the traceback of ``exc`` when given)."""
    if not as_json:
        return prefix + message
    exc_info = (type(exc), exc, exc.__traceback__) if exc is not None else None
    record = logging.LogRecord("dpexport.cli", logging.ERROR, "", 0, message, None, exc_info)
    return JsonFormatter().format(record)
