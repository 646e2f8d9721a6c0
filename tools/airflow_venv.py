#!/usr/bin/env python3
"""Create the venv the Airflow integration is tested in: ``.airflow-venv`` at the project
root, with ``apache-airflow`` and dpexport (editable) installed side by side.

    python tools/airflow_venv.py            # install once; print the venv's path
    python tools/airflow_venv.py --freeze   # a fresh venv from the project's pins; rewrite
                                            # tools/airflow-constraints.txt from it

Airflow is an optional integration, not a dependency of dpexport, so it gets a venv of its
own rather than the dev extra: Airflow pins a hundred packages of its own, and the project's
venv stays what its users install. ``tools/airflow-constraints.txt`` pins every package of
the venv (``pip freeze`` of one that passed the Airflow test), so CI installs exactly that;
``--freeze`` makes it again from ``constraints.txt`` (dpexport's pins, which install beside
Airflow's: dpexport's own requirements are lower bounds for that reason) when either moves.

A stamp inside the venv names what it was installed from; a second call with the same
files returns at once. A lock file lets two test workers call it together. Only the
standard library is used: this runs before the venv exists.
"""

from __future__ import annotations

import argparse
import fcntl
import hashlib
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / ".airflow-venv"
AIRFLOW = "apache-airflow==3.3.2"
PINS = ROOT / "tools" / "airflow-constraints.txt"
STAMP = ".dpexport-stamp"


def log(message: str) -> None:
    print(f"[airflow-venv] {message}", file=sys.stderr, flush=True)


def _want() -> str:
    """What the venv is installed from: Airflow's version, every pin, dpexport's
    requirements (the package itself is editable, so its code needs no reinstall)."""
    h = hashlib.sha256(AIRFLOW.encode())
    for path in (PINS, ROOT / "pyproject.toml"):
        h.update(path.read_bytes())
    return h.hexdigest()[:16]


def _pip(venv: Path, *args: str) -> None:
    python = str(venv / "bin" / "python")
    subprocess.run([python, "-m", "pip", "--disable-pip-version-check", "-q", *args], check=True)


def _create(venv: Path) -> None:
    if not (venv / "bin" / "python").exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    _pip(venv, "install", "pip>=24")


def ensure(venv: Path = VENV) -> Path:
    """The venv, installed from the pins unless its stamp says it already is."""
    venv.parent.mkdir(parents=True, exist_ok=True)
    with open(venv.parent / f"{venv.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # a second caller waits, then finds the stamp
        stamp = venv / STAMP
        want = _want()
        if stamp.is_file() and stamp.read_text().strip() == want:
            return venv
        started = time.monotonic()
        log(f"installing {AIRFLOW} and dpexport into {venv} (pins: {PINS.name})")
        stamp.unlink(missing_ok=True)
        _create(venv)
        _pip(venv, "install", "-c", str(PINS), AIRFLOW, "-e", str(ROOT))
        stamp.write_text(want + "\n")
        log(f"installed in {time.monotonic() - started:.0f} s")
    return venv


def freeze(venv: Path = VENV) -> None:
    """A fresh venv from Airflow's and the project's pins, frozen into ``PINS``."""
    shutil.rmtree(venv, ignore_errors=True)
    _create(venv)
    _pip(venv, "install", "-c", str(ROOT / "constraints.txt"), AIRFLOW, "-e", str(ROOT))
    python = str(venv / "bin" / "python")
    frozen = subprocess.run(
        [python, "-m", "pip", "freeze", "--exclude-editable", "--disable-pip-version-check"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    header = (
        f"# pip freeze of .airflow-venv ({AIRFLOW} + dpexport with constraints.txt),\n"
        "# made by `python tools/airflow_venv.py --freeze`; the Airflow test installs from it\n"
    )
    PINS.write_text(header + frozen)
    (venv / STAMP).write_text(_want() + "\n")
    log(f"wrote {PINS.relative_to(ROOT)} ({len(frozen.splitlines())} packages)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--freeze", action="store_true", help="rebuild and rewrite the pins")
    args = parser.parse_args()
    if args.freeze:
        freeze()
    else:
        print(ensure())


if __name__ == "__main__":
    main()
