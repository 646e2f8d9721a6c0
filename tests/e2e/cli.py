"""Run the dpexport CLI as a user does: a subprocess, its exit code, stdout and stderr."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb

#: the repository: ``tests.e2e.stop_child`` is run from it
REPO = Path(__file__).resolve().parents[2]


@dataclass
class Result:
    code: int
    out: str
    err: str


def dpexport(
    *args: str | Path,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    timeout: float = 300,
) -> Result:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("DPEXPORT_")}
    full_env.update(env or {})
    proc = subprocess.run(
        [sys.executable, "-m", "dpexport", *map(str, args)],
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    return Result(proc.returncode, proc.stdout, proc.stderr)


def stopped(hook: list[str], *args: str | Path) -> Result:
    """The CLI with ``args`` run through ``tests.e2e.stop_child``, stopped as ``hook``
    says (``signal SIGINT STEP N TIMES`` or ``fail OP KEY_PART``)."""
    proc = subprocess.run(
        [sys.executable, "-m", "tests.e2e.stop_child", *hook, "--", *map(str, args)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    return Result(proc.returncode, proc.stdout, proc.stderr)


def run_ok(config: Path, local_root: Path, at: str, *args: str) -> Result:
    """``dpexport -c CONFIG --local-root ROOT run --at AT ARGS``, which must succeed."""
    result = dpexport("-c", config, "--local-root", local_root, "run", "--at", at, *args)
    assert result.code == 0, result.out + result.err
    return result


def plan_paths(config: Path, local_root: Path, at: str) -> dict[str, str]:
    """``dpexport plan --json``, which must succeed: each table's path (who writes the
    files, and why)."""
    import json

    result = dpexport("-c", config, "--local-root", local_root, "plan", "--at", at, "--json")
    assert result.code == 0, result.err
    return {p["table"]: p["path"] for p in json.loads(result.out)}


def kill_at_step(config: Path, local_root: Path, table: str, at: str, step: str, nth: int) -> None:
    """Run one export in ``tests.e2e.crash_child`` and assert it SIGKILLed itself at the
    ``nth`` occurrence of commit step ``step``."""
    repo = Path(__file__).resolve().parents[2]
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "tests.e2e.crash_child",
            str(config),
            str(local_root),
            table,
            at,
            step,
            str(nth),
        ],
        cwd=repo,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == -9, (step, nth, proc.returncode, proc.stdout, proc.stderr)


def warehouse_sql(base: Path, sql: str) -> list[tuple[Any, ...]]:
    """Run SQL on ``base/warehouse.duckdb`` (read-write: set up or change the source
    between exports, check what it holds) and return its rows."""
    con = duckdb.connect(str(base / "warehouse.duckdb"))
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()
