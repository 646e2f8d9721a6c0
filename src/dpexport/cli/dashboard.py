"""``dpexport dashboard [--host H] [--port P]`` (CONTRACT §2, issue 23): serves the
read-only dashboard (:mod:`dpexport.dashboard`) until stopped.

It prints the page's address on stderr once the socket is bound (``--port 0`` takes a
free port); with ``--json`` also as one JSON line on stdout, for a supervisor. Bound to
a non-loopback address it needs a token: ``--token`` or ``$DPEXPORT_DASHBOARD_TOKEN``,
else one is generated and printed in that address, once.
SIGINT stops it with exit 130, SIGTERM with 0 (a service stopped on purpose), as
``schedule`` does.
"""

from __future__ import annotations

import secrets
import signal
import sys
import threading
from collections.abc import Callable
from types import FrameType
from typing import Any

import click

from dpexport.cli.common import (
    common_options,
    echo_json,
    json_option,
    now_option,
    parse_now,
    settings_of,
)
from dpexport.errors import UsageError


@click.command("dashboard")
@common_options
@click.option("--host", default="127.0.0.1", show_default=True, help="address to listen on")
@click.option(
    "--port", type=click.IntRange(0, 65535), default=8050, show_default=True, help="0: a free one"
)
@click.option(
    "--token",
    default=None,
    envvar="DPEXPORT_DASHBOARD_TOKEN",
    help="require this token (default: generated when --host is not loopback)",
)
@click.option(
    "--refresh",
    type=click.IntRange(min=1),
    default=30,
    show_default=True,
    help="seconds between the page's reloads of its figures",
)
@now_option
@json_option("the page's address once listening: {url, host, port, token_required}")
@click.pass_context
def dashboard_command(
    ctx: click.Context,
    config_path: str | None,
    local_root: str | None,
    host: str,
    port: int,
    token: str | None,
    refresh: int,
    now: str | None,
    as_json: bool,
) -> None:
    """Serve a read-only web page of every table's exports, freshness, failures, DLQ
    items and alerts, until stopped."""
    from dpexport.dashboard.server import is_loopback
    from dpexport.service import dashboard

    ws = settings_of(ctx, config_path, local_root).workspace()
    generated = token is None and not is_loopback(host)
    if generated:
        token = secrets.token_urlsafe(24)
    if token is not None and not token.strip():
        raise UsageError("--token: an empty token would let anyone in")
    fixed = parse_now(now) if now else None
    server = dashboard(ws, host=host, port=port, token=token, refresh=refresh, now=fixed)
    bound = server.server_address[1]
    url = f"http://{_url_host(host)}:{bound}/{f'?token={token}' if generated else ''}"

    def announce() -> None:
        if as_json:  # for a supervisor that reads the address (a generated token, once)
            doc = {"url": url, "host": host, "port": bound, "token_required": token is not None}
            echo_json(doc)
            sys.stdout.flush()
        click.echo(f"dashboard: {url}", err=True)
        if token is not None and not generated:
            click.echo("dashboard: requests need the token given (--token)", err=True)
        sys.stderr.flush()

    ctx.exit(_serve(server, announce))


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def _serve(server: Any, announce: Callable[[], None]) -> int:
    """Serve in a thread until SIGINT (130) or SIGTERM (0); then close the socket. The
    address is announced once the signals are handled: a supervisor may stop the
    dashboard as soon as it reads it."""
    stopped = threading.Event()
    code = {"exit": 0}

    def on_signal(signum: int, frame: FrameType | None) -> None:
        code["exit"] = 130 if signum == signal.SIGINT else 0
        stopped.set()

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    thread = threading.Thread(target=server.serve_forever, name="dashboard", daemon=True)
    thread.start()
    try:
        announce()
        while not stopped.wait(0.5):
            pass
    finally:
        server.shutdown()
        server.server_close()
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    click.echo("dashboard stopped", err=True)
    return code["exit"]


COMMANDS = (dashboard_command,)
