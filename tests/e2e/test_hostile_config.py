"""Hostile config files (issue 18: cases 1, 2, 6, 13): refused in one line each, exit 2,
no traceback, nothing written."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.cli import Result, dpexport

ROOT = Path(__file__).resolve().parents[2]
SPEC = (ROOT / "examples" / "diagnosticpro.yaml").read_text(encoding="utf-8")


def _bomb() -> str:
    """Nine levels of nine-fold aliases: 9**9 strings once expanded, ~400 bytes."""
    lines = ["a: &a [" + ", ".join(['"lol"'] * 9) + "]"]
    for prev, name in zip("abcdefgh", "bcdefghi", strict=True):
        lines.append(f"{name}: &{name} [" + ", ".join([f"*{prev}"] * 9) + "]")
    return "\n".join(lines) + "\n"


def _check(tmp_path: Path, text: str | bytes, *command: str) -> Result:
    config = tmp_path / "dpexport.yaml"
    if isinstance(text, bytes):
        config.write_bytes(text)
    else:
        config.write_text(text, encoding="utf-8")
    root = tmp_path / "root"
    # the timeout is a safety net only: a bomb expanded ran for minutes
    result = dpexport("-c", config, "--local-root", root, *(command or ("check",)), timeout=60)
    assert "Traceback" not in result.err, result.err
    assert not root.exists()  # nothing written
    return result


def _problem(result: Result) -> str:
    """The one line naming the problem."""
    assert result.code == 2, result.err
    found = [line for line in result.err.splitlines() if line.startswith("  - ")]
    assert len(found) == 1, result.err
    return found[0]


@pytest.mark.parametrize("command", [("check",), ("plan",), ("run",)])
def test_an_alias_bomb_is_refused_naming_its_anchor(tmp_path: Path, command: tuple[str]) -> None:
    text = _bomb()
    assert len(text) < 500
    line = _problem(_check(tmp_path, text, *command))
    assert "alias bomb" in line
    assert "anchor &e" in line  # the alias that crosses the expansion limit
    assert "dpexport.yaml:6: f[0]:" in line


def test_an_alias_containing_itself_is_refused(tmp_path: Path) -> None:
    line = _problem(_check(tmp_path, "a: &a [1, *a]\n"))
    assert "alias *a contains itself" in line
    assert "dpexport.yaml:1: a[1]:" in line


def test_a_config_that_is_not_utf8_names_the_byte_offset(tmp_path: Path) -> None:
    text = SPEC.replace("path: warehouse.duckdb", "path: w\udcff.duckdb", 1)
    raw = text.encode("utf-8", "surrogateescape")
    offset = raw.index(b"\xff")
    line = _problem(_check(tmp_path, raw))
    expected_line = raw[:offset].count(b"\n") + 1
    assert f"dpexport.yaml:{expected_line}:" in line
    assert f"not UTF-8 text: byte 0xff at byte offset {offset}" in line


def test_a_config_nested_5000_lists_deep_names_where(tmp_path: Path) -> None:
    text = SPEC + "extra:\n  deep: " + "[" * 5000 + "]" * 5000 + "\n"
    deep_line = text.count("\n", 0, text.index("[[[")) + 1
    line = _problem(_check(tmp_path, text))
    assert f"dpexport.yaml:{deep_line}: extra.deep[0]: nested deeper than 64 levels" in line


@pytest.mark.parametrize("command", [("check",), ("plan",), ("run",)])
def test_a_warehouse_path_naming_a_folder_is_a_config_error(
    tmp_path: Path, command: tuple[str]
) -> None:
    (tmp_path / "whdir").mkdir()
    text = SPEC.replace("path: warehouse.duckdb", "path: whdir", 1)
    line = _problem(_check(tmp_path, text, *command))
    assert "warehouse.path: names a folder, not a DuckDB database file" in line
    assert str(tmp_path / "whdir") in line


def test_a_warehouse_path_too_long_for_the_file_system_is_a_config_error(tmp_path: Path) -> None:
    text = SPEC.replace("path: warehouse.duckdb", "path: " + "w" * 5000, 1)
    line = _problem(_check(tmp_path, text, "run"))
    assert "warehouse.path: cannot name a file: File name too long" in line
