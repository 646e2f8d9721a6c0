"""``dpexport dashboard`` as a user starts it: the address it prints, the token it
generates when bound beyond loopback (and asks on every request), a given token that is
never printed, a port in use, and how SIGINT and SIGTERM stop it."""

from __future__ import annotations

import os
import re
import selectors
import signal
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

from tests.e2e.cli import dpexport
from tests.unit.dashboard.site import build


def _start(
    tmp_path: Path, *args: str, env: dict[str, str] | None = None
) -> tuple[subprocess.Popen[str], str]:
    """The dashboard over the crafted site, and the first line it printed."""
    build(tmp_path)
    full = {k: v for k, v in os.environ.items() if not k.startswith("DPEXPORT_")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "dpexport", "-c", str(tmp_path / "dpexport.yaml"),
         "--local-root", str(tmp_path / "out"), "dashboard", "--port", "0", *args],
        env={**full, **(env or {})}, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert proc.stderr is not None
    with selectors.DefaultSelector() as sel:
        sel.register(proc.stderr, selectors.EVENT_READ)
        assert sel.select(timeout=60), "no address printed in 60 s"
    return proc, proc.stderr.readline().strip()


def _stop(proc: subprocess.Popen[str], signum: int) -> tuple[int, str]:
    proc.send_signal(signum)
    _, rest = proc.communicate(timeout=30)
    return proc.returncode, rest


def _code(url: str, token: str | None = None) -> int:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=30) as r:
            return int(r.status)
    except urllib.error.HTTPError as exc:
        exc.close()
        return exc.code


def test_bound_beyond_loopback_it_generates_a_token_and_asks_for_it(tmp_path: Path) -> None:
    proc, line = _start(tmp_path, "--host", "0.0.0.0")
    try:
        found = re.fullmatch(r"dashboard: http://0\.0\.0\.0:(\d+)/\?token=([\w-]{20,})", line)
        assert found, line
        url = f"http://127.0.0.1:{found.group(1)}/api/status"
        assert _code(url) == 401
        assert _code(url, "not-it") == 401
        assert _code(url, found.group(2)) == 200
    finally:
        code, rest = _stop(proc, signal.SIGTERM)
    assert code == 0 and "dashboard stopped" in rest  # a service stopped on purpose
    assert found.group(2) not in rest  # printed once


def test_a_given_token_is_asked_and_never_printed(tmp_path: Path) -> None:
    proc, line = _start(tmp_path, env={"DPEXPORT_DASHBOARD_TOKEN": "from-the-environment"})
    try:
        found = re.fullmatch(r"dashboard: (http://127\.0\.0\.1:\d+/)", line)
        assert found, line
        assert _code(found.group(1)) == 401
        assert _code(found.group(1), "from-the-environment") == 200
    finally:
        code, rest = _stop(proc, signal.SIGINT)
    assert code == 130 and "from-the-environment" not in line + rest


def test_a_port_in_use_is_a_usage_error(tmp_path: Path) -> None:
    build(tmp_path)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = dpexport(
            "-c", tmp_path / "dpexport.yaml", "--local-root", tmp_path / "out",
            "dashboard", "--port", str(port),
        )  # fmt: skip
    assert result.code == 2
    assert f"--port {port}: cannot listen there" in result.err
    empty = dpexport("-c", tmp_path / "dpexport.yaml", "dashboard", "--token", " ")
    assert empty.code == 2 and "empty token" in empty.err


def test_the_python_function_serves_what_the_command_serves(tmp_path: Path) -> None:
    import json
    import threading

    import pytest

    import dpexport as api
    from dpexport.errors import UsageError

    build(tmp_path)
    config = tmp_path / "dpexport.yaml"
    with pytest.raises(UsageError, match=r"--host 0\.0\.0\.0 is not loopback: give a --token"):
        api.dashboard(config, host="0.0.0.0", port=0, local_root=tmp_path / "out")
    server = api.dashboard(config, port=0, token="t0k", local_root=tmp_path / "out")
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/api/status"
        assert _code(url) == 401
        request = urllib.request.Request(url, headers={"Authorization": "Bearer t0k"})
        with urllib.request.urlopen(request, timeout=30) as r:
            shown = json.loads(r.read())
    finally:
        server.shutdown()
        server.server_close()
    status = dpexport("-c", config, "--local-root", tmp_path / "out", "status", "--json")
    tables = {row["table"] for row in json.loads(status.out)}
    assert tables and tables <= {str(t.get("table")) for t in _tables(shown)}


def _tables(shown: object) -> list[dict[str, object]]:
    """The per-table rows of the dashboard's /api/status answer."""
    assert isinstance(shown, dict)
    rows = shown.get("tables")
    assert isinstance(rows, list)
    return rows


def test_json_prints_the_address_as_one_line_on_stdout(tmp_path: Path) -> None:
    import json

    build(tmp_path)
    env = {k: v for k, v in os.environ.items() if not k.startswith("DPEXPORT_")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "dpexport", "-c", str(tmp_path / "dpexport.yaml"),
         "--local-root", str(tmp_path / "out"), "dashboard", "--port", "0", "--json"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert proc.stdout is not None
    try:
        with selectors.DefaultSelector() as sel:
            sel.register(proc.stdout, selectors.EVENT_READ)
            assert sel.select(timeout=60), "no JSON line in 60 s"
        doc = json.loads(proc.stdout.readline())
        assert set(doc) == {"url", "host", "port", "token_required"}
        assert doc["host"] == "127.0.0.1" and doc["token_required"] is False
        assert doc["url"] == f"http://127.0.0.1:{doc['port']}/"
        assert _code(doc["url"] + "api/status") == 200
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0 and out == ""  # nothing more on stdout


def test_a_sigterm_as_soon_as_the_address_is_printed_stops_it_cleanly(tmp_path: Path) -> None:
    """A supervisor may stop the dashboard the moment it reads the address: the signals
    are handled before the address is printed (they were not: exit 130, 'interrupted')."""
    for i in range(3):
        (tmp_path / str(i)).mkdir()
        proc, line = _start(tmp_path / str(i))
        code, rest = _stop(proc, signal.SIGTERM)
        assert line.startswith("dashboard: http://127.0.0.1:"), line
        assert (code, rest.strip()) == (0, "dashboard stopped")
