"""Every leaf key of the shipped configs is documentation, not enforced yet (with its
issue), or has an effect proved by a named test that exists (issue 17)."""

from __future__ import annotations

import ast
from functools import cache
from pathlib import Path

import pytest
import yaml

from dpexport.config.coverage import EFFECTS, leaf_keys, tables_of, uncovered

ROOT = Path(__file__).resolve().parents[3]
CONFIGS = [ROOT / "examples/diagnosticpro.yaml", ROOT / "src/dpexport/demo/diagnosticpro.yaml"]


@cache
def _test_names(path: Path) -> frozenset[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return frozenset(
        n.name for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)
    )


@pytest.mark.parametrize("config", CONFIGS, ids=lambda p: p.parent.name)
def test_every_leaf_key_is_in_exactly_one_table(config: Path) -> None:
    doc = yaml.safe_load(config.read_text(encoding="utf-8"))
    assert uncovered(doc) == []


@pytest.mark.parametrize("pattern", sorted(EFFECTS))
def test_each_effect_names_a_test_that_exists(pattern: str) -> None:
    file, _, name = EFFECTS[pattern].partition("::")
    path = ROOT / file
    assert path.is_file(), f"{pattern}: {file} does not exist"
    assert name in _test_names(path), f"{pattern}: {file} defines no {name}"


def test_a_new_unknown_key_is_reported() -> None:
    doc = yaml.safe_load(CONFIGS[0].read_text(encoding="utf-8"))
    doc["formats"]["CSV"]["format_config"]["brand_new_setting"] = True
    doc["exports"][0]["shiny"] = 1
    assert uncovered(doc) == [
        "formats.CSV.format_config.brand_new_setting: covered by no table",
        "exports[].shiny: covered by no table",
    ]


def test_export_config_is_read_as_the_item_and_a_value_pattern_wins() -> None:
    nested = {"exports": [{"export_config": {"format": "CSV"}}]}
    assert [p for p, _ in leaf_keys(nested)] == [("exports[]", "format")]
    steps = ("validation_checks", "failure_handling[]")
    assert [t for t, _ in tables_of(steps, "trigger_alert")] == ["EFFECTS"]
    assert [t for t, _ in tables_of(steps, "create_failure_marker")] == ["EFFECTS"]
