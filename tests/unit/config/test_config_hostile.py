"""The YAML reader refuses hostile text before building it (issue 18), with libyaml and
without it alike: alias bombs, self-containing aliases, deep nesting, control
characters, bytes that are not UTF-8."""

from __future__ import annotations

from pathlib import Path

import pytest

from dpexport.config import loader
from dpexport.config.resolve import inspect_config, inspect_config_text
from dpexport.errors import ConfigError, ConfigIssue

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(params=["libyaml", "python"])
def reader(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    if request.param == "python":
        monkeypatch.setattr(loader, "_FAST_LOADER", None)
    return str(request.param)


def _refused(text: str) -> ConfigIssue:
    with pytest.raises(ConfigError) as info:
        loader.parse_yaml(text, "c.yaml")
    (issue,) = info.value.issues
    return issue


def _bomb(levels: int, fold: int) -> str:
    lines = ["l0: &l0 [" + ", ".join(["x"] * fold) + "]"]
    for n in range(1, levels):
        lines.append(f"l{n}: &l{n} [" + ", ".join([f"*l{n - 1}"] * fold) + "]")
    return "\n".join(lines) + "\n"


def test_an_alias_bomb_is_refused_at_the_alias_crossing_the_limit(reader: str) -> None:
    issue = _refused(_bomb(9, 9))
    assert issue.message.startswith("alias *l4 (anchor &l4) expands the document beyond")
    assert (issue.path, issue.line) == ("l5[0]", 6)


def test_a_merge_key_bomb_is_refused(reader: str) -> None:
    lines = ["m0: &m0 {a: 1, b: 2, c: 3}"]
    for n in range(1, 12):
        keys = ", ".join(f"k{i}: *m{n - 1}" for i in range(9))
        lines.append(f"m{n}: &m{n} {{<<: *m{n - 1}, {keys}}}")
    assert "alias bomb" in _refused("\n".join(lines) + "\n").message


def test_anchors_a_config_uses_reasonably_still_read(reader: str) -> None:
    doc = loader.parse_yaml(_bomb(3, 9) + "base: &b {x: 1}\nderived: {<<: *b, y: 2}\n")
    assert isinstance(doc.data, dict)
    assert len(doc.data["l2"]) == 9 and doc.data["derived"] == {"x": 1, "y": 2}


@pytest.mark.parametrize("text", ["a: &a [1, *a]\n", "a: &a {b: [*a]}\n"])
def test_an_alias_inside_its_own_anchor_is_refused(reader: str, text: str) -> None:
    assert _refused(text).message == "alias *a contains itself"


def test_aliases_cannot_stack_depth_past_the_limit(reader: str) -> None:
    lines = ["d0: &d0 " + "[" * 40 + "]" * 40]
    lines += [f"d{n}: &d{n} " + "[" * 30 + f"*d{n - 1}" + "]" * 30 for n in range(1, 4)]
    assert "nests the document deeper than 64 levels" in _refused("\n".join(lines)).message


def test_deep_nesting_is_named_by_its_outer_path_and_line(reader: str) -> None:
    issue = _refused("a: 1\nb:\n  c: " + "[" * 5000 + "]" * 5000 + "\n")
    assert (issue.path, issue.line) == ("b.c[0]", 3)
    assert issue.message == "nested deeper than 64 levels of lists or mappings"


def test_sixty_four_levels_are_allowed(reader: str) -> None:
    loader.parse_yaml("a: " + "[" * 63 + "]" * 63 + "\n")


def test_a_control_character_names_its_line_in_one_line(reader: str) -> None:
    issue = _refused("a: 1\nb: x\x1fy\n")
    assert issue.line == 2 and "\n" not in issue.message
    assert "character #x001f, offset 9" in issue.message


def test_bytes_that_are_not_utf8_name_their_offset(tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_bytes(b"a: 1\nb: caf\xe9\n")
    found = inspect_config(config)
    assert found.config is None
    (issue,) = found.issues
    assert issue.line == 2
    assert issue.message.startswith("not UTF-8 text: byte 0xe9 at byte offset 11")


def test_an_encoding_holding_a_nul_is_an_unknown_encoding() -> None:
    text = (ROOT / "examples" / "diagnosticpro.yaml").read_text(encoding="utf-8")
    found = inspect_config_text(text + 'formats: {JSONL: {encoding: "\\0"}}\n', "c.yaml")
    assert any(
        i.path.endswith("JSONL.encoding") and i.message == "unknown text encoding"
        for i in found.issues
    ), found.issues
