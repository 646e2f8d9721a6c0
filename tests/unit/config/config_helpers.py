"""Helpers for the config tests: place a spec block in a config, load text, catch issues."""

from __future__ import annotations

import textwrap

import pytest

from dpexport.config import load_config_text
from dpexport.errors import ConfigError, ConfigIssue


def place(text: str, where: str) -> str:
    """YAML text putting a spec block at ``where`` (see spec_blocks.BLOCKS)."""
    if where == "exports[]":
        body = textwrap.indent(text, "    ")
        return "exports:\n  - " + body[4:]
    if where.startswith("formats."):
        return f"formats:\n  {where.split('.')[1]}:\n" + textwrap.indent(text, "    ")
    if text.startswith(where + ":"):
        return text
    return f"{where}:\n" + textwrap.indent(text, "  ")


def unwrap(text: str) -> str:
    """The body of a ``format_config:`` / ``export_config:`` block, dedented."""
    first, _, rest = text.partition("\n")
    assert first.rstrip().endswith(":")
    return textwrap.dedent(rest)


def issues_of(text: str) -> list[ConfigIssue]:
    """The issues ``text`` raises (fails the test if it loads)."""
    with pytest.raises(ConfigError) as info:
        load_config_text(text, "test.yaml")
    return info.value.issues


def by_path(issues: list[ConfigIssue]) -> dict[str, ConfigIssue]:
    return {i.path: i for i in issues}
