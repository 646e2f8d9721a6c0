"""The ``dpexport`` process on jemalloc: re-executed in its own PID with jemalloc mapped,
on glibc's malloc when ``DPEXPORT_MALLOC=system``, and refused a library that is not there."""

from __future__ import annotations

import signal
import sys
from pathlib import Path

import pytest

from dpexport.allocator import find_jemalloc
from tests.e2e.cli import dpexport
from tests.e2e.test_dashboard_cli import _start, _stop

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux only")


def _jemalloc() -> str:
    found = find_jemalloc()
    if found is None:
        pytest.skip("no libjemalloc.so.2 (./dev test installs Debian's libjemalloc2)")
    return found


def _mapped(pid: int) -> set[str]:
    """The files mapped into process ``pid``."""
    lines = Path(f"/proc/{pid}/maps").read_text().splitlines()
    return {Path(line.split()[-1]).name for line in lines if line.split()[-1].startswith("/")}


@pytest.mark.parametrize(("choice", "on_jemalloc"), [(None, True), ("system", False)])
def test_a_command_runs_on_jemalloc_unless_told_otherwise(
    tmp_path: Path, choice: str | None, on_jemalloc: bool
) -> None:
    library = _jemalloc()
    proc, line = _start(tmp_path, env={"DPEXPORT_MALLOC": choice} if choice else None)
    try:
        assert line.startswith("dashboard: http://127.0.0.1:"), line
        mapped = _mapped(proc.pid)  # the PID we started: the re-exec kept it
        assert (Path(library).name in mapped) is on_jemalloc, sorted(mapped)
    finally:
        code, rest = _stop(proc, signal.SIGTERM)
    assert code == 0, rest


def test_a_library_that_is_not_there_is_refused_before_anything_runs(tmp_path: Path) -> None:
    missing = tmp_path / "libjemalloc.so.2"
    result = dpexport("--version", env={"DPEXPORT_MALLOC": str(missing)})
    assert result.code == 2
    assert f"DPEXPORT_MALLOC='{missing}': no such file" in result.err
    assert result.out == ""
