"""Fuzzing the config reader (issue 18): mutations of the spec config (wrong types,
unknown and misspelled keys, broken units and crons, odd unicode, deep nesting, huge
values, garbled text) make ``load_config`` and ``check`` raise ``ConfigError`` naming
a YAML path or line, or succeed; never another exception, never a write.

The examples are bounded for CI (a few seconds each); ``DPEXPORT_FUZZ=long`` runs a
profile a hundred times longer on a workstation.
"""

from __future__ import annotations

import copy
import logging
import os
import tempfile
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dpexport import api
from dpexport.config import load_config
from dpexport.config.resolve import inspect_config_text
from dpexport.errors import ConfigError

ROOT = Path(__file__).resolve().parents[3]
SPEC_TEXT = (ROOT / "examples" / "diagnosticpro.yaml").read_text(encoding="utf-8")
SPEC: Any = yaml.safe_load(SPEC_TEXT)

settings.register_profile(
    "ci",
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile("long", parent=settings.get_profile("ci"), max_examples=6000)
PROFILE = "long" if os.environ.get("DPEXPORT_FUZZ") == "long" else "ci"
FUZZ = settings.get_profile(PROFILE)

Key = str | int


def _paths(node: Any, prefix: tuple[Key, ...] = ()) -> list[tuple[Key, ...]]:
    out = [prefix]
    if isinstance(node, dict):
        for k, v in node.items():
            out += _paths(v, (*prefix, str(k)))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out += _paths(v, (*prefix, i))
    return out


#: every place in the spec config (the root excluded): where a mutation lands
PATHS = _paths(SPEC)[1:]


def _deep(depth: int) -> Any:
    value: Any = "x"
    for _ in range(depth):
        value = [value]
    return value


ODD_TEXT = st.text(alphabet=st.characters(codec="utf-8"), max_size=30) | st.sampled_from(
    ["\u202etxt.exe", "a\u0000b", "\ufeff", "ｄａｙｓ", "7\u00a0days", "🙂", ""]
)
UNITS = st.sampled_from(
    ["7 dayz", "-5 days", "1e999 GB", "0 s", "999999999999999999999 years", "10 parsecs",
     "5GB5GB", "nan", "inf hours", "P1D", "1.5.2 MB", "7days ago", "30 d ", "   "]
)  # fmt: skip
CRONS = st.sampled_from(
    ["61 * * * *", "* * *", "*/0 * * * *", "0 0 31 2 *", "@every", "0 25 * * *",
     "* * * * * * *", "1-0 * * * *", "0 0 * * 8", "@reboot", "0 2 * * * extra"]
)  # fmt: skip
HUGE = st.sampled_from([10**100, -(10**30), 1e308, float("inf"), float("nan"), "<HUGE>"])
VALUES: st.SearchStrategy[Any] = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(),
    ODD_TEXT,
    UNITS,
    CRONS,
    HUGE,
    st.integers(min_value=1, max_value=200).map(_deep),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(ODD_TEXT, st.integers(), max_size=2),
)


def _misspell(key: str, i: int) -> str:
    if not key:
        return "_"
    i %= len(key)
    return key[:i] + key[i + 1 :] if i % 2 else key[:i] + key[i] * 2 + key[i + 1 :]


def _at(data: Any, path: tuple[Key, ...]) -> Any:
    for part in path:
        in_list = isinstance(data, list) and isinstance(part, int) and part < len(data)
        if not (in_list or (isinstance(data, dict) and part in data)):
            return None
        data = data[part]
    return data


@st.composite
def mutated(draw: st.DrawFn) -> Any:
    """The spec config with one to four mutations."""
    data = copy.deepcopy(SPEC)
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        path = draw(st.sampled_from(PATHS))
        parent = _at(data, path[:-1])  # None: an earlier mutation took it away
        last = path[-1]
        if isinstance(parent, dict) and last in parent:
            kind = draw(st.sampled_from(["value", "value", "misspell", "unknown", "drop"]))
            if kind == "misspell":
                parent[_misspell(str(last), draw(st.integers(0, 40)))] = parent.pop(last)
            elif kind == "unknown":
                parent[draw(ODD_TEXT)] = draw(VALUES)
            elif kind == "drop":
                del parent[last]
            else:
                parent[last] = draw(VALUES)
        elif isinstance(parent, list) and isinstance(last, int) and last < len(parent):
            parent[last] = draw(VALUES)
    return data


def _dump(data: Any) -> str:
    """YAML text; ``<HUGE>`` becomes a 100 kB string (drawn as a marker: hypothesis
    warns when it prints a falsifying example that large)."""
    text = yaml.safe_dump(data, allow_unicode=True, sort_keys=False, width=10_000)
    return text.replace("<HUGE>", "x" * 100_000)


def _assert_named(exc: ConfigError) -> None:
    assert exc.issues
    for issue in exc.issues:
        assert issue.path or issue.line, issue  # a YAML path, or at least its line
        assert "Traceback" not in issue.message


def _load_and_check(text: str) -> None:
    """``load_config`` and ``check`` of ``text``: a config or ``ConfigError``, and the
    two agree; nothing is written next to the file or under the local root."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        config = folder / "dpexport.yaml"
        config.write_text(text, encoding="utf-8")
        failed = []
        try:
            load_config(config)
        except ConfigError as exc:
            _assert_named(exc)
            failed.append("load")
        try:
            api.check(config, local_root=folder / "root")
        except ConfigError as exc:
            _assert_named(exc)
            failed.append("check")
        if "load" in failed:
            assert "check" in failed  # what a run refuses, check refuses too
        assert sorted(p.name for p in folder.iterdir()) == ["dpexport.yaml"]


@FUZZ
@given(mutated())
def test_mutated_spec_configs_fail_only_with_config_errors(data: Any) -> None:
    logging.getLogger("dpexport").setLevel(logging.ERROR)  # check's notes, not wanted here
    _load_and_check(_dump(data))


@FUZZ
@given(st.integers(min_value=0, max_value=len(SPEC_TEXT)), st.text(max_size=20))
def test_garbled_spec_text_fails_only_with_config_errors(at: int, junk: str) -> None:
    text = SPEC_TEXT[:at] + junk + SPEC_TEXT[at:]
    found = inspect_config_text(text, "c.yaml")
    for issue in found.issues:
        assert issue.path or issue.line, issue


@FUZZ
@given(st.integers(min_value=1, max_value=3000), st.sampled_from(["[", "{a: ", "- "]))
def test_deep_nesting_is_refused_by_path(depth: int, opener: str) -> None:
    closer = {"[": "]", "{a: ": "}", "- ": ""}[opener]
    if opener == "- ":
        body = "".join("\n" + "  " * i + "- " for i in range(depth)) + "x"
    else:
        body = opener * depth + "x" + closer * depth
    found = inspect_config_text(SPEC_TEXT + "extra: " + body + "\n", "c.yaml")
    assert found.issues and all(i.path or i.line for i in found.issues)
    if depth > 64:
        assert any("nested deeper than 64 levels" in i.message for i in found.issues)
