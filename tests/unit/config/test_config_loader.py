"""The YAML reader gives the same documents and errors with libyaml as without it."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from dpexport.config import loader
from dpexport.errors import ConfigError

ROOT = Path(__file__).resolve().parents[3]
CONFIGS = [
    ROOT / "examples" / "diagnosticpro.yaml",
    ROOT / "src/dpexport/demo/diagnosticpro.yaml",
]

pytestmark = pytest.mark.skipif(
    not getattr(yaml, "__with_libyaml__", False), reason="PyYAML without libyaml"
)


def _outcome(text: str, monkeypatch: pytest.MonkeyPatch, *, fast: bool) -> object:
    with monkeypatch.context() as m:
        if not fast:
            m.setattr(loader, "_FAST_LOADER", None)
        try:
            doc = loader.parse_yaml(text, "c.yaml")
        except ConfigError as exc:
            return [(i.path, i.line, i.message) for i in exc.issues]
        return doc.data, doc.lines, doc.duplicates


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.parent.name)
def test_spec_configs_read_the_same(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    text = path.read_text(encoding="utf-8")
    fast = _outcome(text, monkeypatch, fast=True)
    assert fast == _outcome(text, monkeypatch, fast=False)
    assert isinstance(fast, tuple) and fast[1]  # parsed, lines mapped


@pytest.mark.parametrize(
    "text",
    [
        "a: 1\nb: [x, y]\nc: {d: 2025-01-01, e: '12:30'}\n",
        "a: 1\na: 2\n",  # duplicate key
        '{"warehouse": {"engine": "duckdb"}, "exports": [{"source": "s.t"}]}',
        "base: &b {x: 1}\nderived:\n  <<: *b\n  y: 2\n",
        "a: [1, 2\nb: 3\n",  # malformed: libyaml refuses, PyYAML words the error
        "a: 1\n---\nb: 2\n",  # two documents
        "a:\tb\n",  # a tab libyaml accepts and PyYAML refuses
        "tables: [a? b]\n",  # `?` in a flow sequence: the same
        "a: 1\n\ufeffb: 2\n",
        "a: \x07\n",
        "a: 2025-13-45\n",
    ],
)
def test_same_documents_and_errors(text: str, monkeypatch: pytest.MonkeyPatch) -> None:
    try:
        fast = _outcome(text, monkeypatch, fast=True)
    except ValueError as exc:  # the constructor's own error, in both readers
        with pytest.raises(ValueError, match=str(exc)):
            _outcome(text, monkeypatch, fast=False)
        return
    assert fast == _outcome(text, monkeypatch, fast=False)
