"""What ``DPEXPORT_MALLOC`` preloads, and the environment a re-executed process restores."""

from __future__ import annotations

from pathlib import Path

import pytest

from dpexport import allocator
from dpexport.allocator import ENV, UsageError, preload, reexec


@pytest.fixture
def jemalloc(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    lib = tmp_path / "libjemalloc.so.2"
    lib.write_bytes(b"\x7fELF")
    monkeypatch.setattr(allocator, "JEMALLOC", (str(tmp_path / "absent.so"), str(lib)))
    return str(lib)


def test_auto_preloads_the_first_jemalloc_found_on_linux_only(jemalloc: str) -> None:
    assert preload({}, "linux") == jemalloc
    assert preload({ENV: "auto"}, "linux") == jemalloc
    assert preload({ENV: ""}, "linux") == jemalloc
    assert preload({}, "darwin") is None


def test_auto_without_jemalloc_runs_as_started(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(allocator, "JEMALLOC", ("/nonexistent/libjemalloc.so.2",))
    assert preload({}, "linux") is None


def test_system_a_users_preload_and_a_reexecuted_process_preload_nothing(jemalloc: str) -> None:
    assert preload({ENV: "system"}, "linux") is None
    assert preload({"LD_PRELOAD": "/opt/libtcmalloc.so"}, "linux") is None
    assert preload({allocator._MARK: ""}, "linux") is None


def test_a_path_is_preloaded_on_any_platform_and_a_missing_one_refused(
    tmp_path: Path, jemalloc: str
) -> None:
    assert preload({ENV: jemalloc}, "darwin") == jemalloc
    with pytest.raises(UsageError) as exc:
        preload({ENV: str(tmp_path / "libnope.so")}, "linux")
    assert f"DPEXPORT_MALLOC='{tmp_path / 'libnope.so'}': no such file" in str(exc.value)


@pytest.mark.parametrize("before", ["", "/opt/libfoo.so"])
def test_the_reexecuted_process_gives_its_children_the_environment_it_was_started_with(
    before: str,
) -> None:
    env = {"LD_PRELOAD": "/usr/lib/libjemalloc.so.2", allocator._MARK: before, "X": "1"}
    reexec(env)  # returns: this is the re-executed process
    assert env == ({"LD_PRELOAD": before, "X": "1"} if before else {"X": "1"})


def test_reexec_execs_this_interpreter_with_the_same_arguments(
    jemalloc: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[tuple[str, list[str], dict[str, str]]] = []
    monkeypatch.setattr(allocator.sys, "platform", "linux")
    monkeypatch.setattr(allocator.sys, "orig_argv", ["py", "/bin/dpexport", "run", "--json"])
    monkeypatch.setattr(allocator.os, "execve", lambda p, a, e: calls.append((p, a, e)))
    reexec({"HOME": "/root"})
    [(program, argv, env)] = calls
    assert program == allocator.sys.executable
    assert argv == ["py", "/bin/dpexport", "run", "--json"]
    assert env == {"HOME": "/root", "LD_PRELOAD": jemalloc, allocator._MARK: ""}
