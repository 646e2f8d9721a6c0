"""Read YAML keeping the line of every node, so each config issue can name its line.

The document is composed into nodes with ``yaml.SafeLoader`` (safe: no Python tags),
walked once to map each path (a tuple of keys and list indices) to its 1-based line,
then constructed into plain Python data. Composing uses libyaml (``CSafeLoader``) when
PyYAML has it, ~15x faster than the pure-Python scanner on a 500-line config: the same
nodes, marks and constructor. A document libyaml refuses is parsed again by the
pure-Python loader, so every error (its wording and line) is the one PyYAML gives, and
text where the two scanners are known to disagree skips libyaml (``_PYTHON_ONLY``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import yaml

from dpexport.errors import ConfigError, ConfigIssue

Path = tuple[str | int, ...]


@dataclass
class Document:
    """Parsed YAML: ``data`` as plain Python, ``lines`` from path to 1-based line."""

    data: object
    lines: dict[Path, int] = field(default_factory=dict)
    duplicates: list[Path] = field(default_factory=list)

    def line_of(self, path: Path) -> int | None:
        """The line of ``path``, or of its nearest ancestor present in the file."""
        for end in range(len(path), -1, -1):
            line = self.lines.get(path[:end])
            if line is not None:
                return line
        return None


#: libyaml's safe loader, when PyYAML was built with it
_FAST_LOADER: type[yaml.SafeLoader] | None = getattr(yaml, "CSafeLoader", None)
#: where libyaml accepts what PyYAML's own scanner refuses (a tab between tokens, a
#: byte-order mark inside the text, ``?`` in a flow collection): such text is parsed
#: by the pure-Python loader only, so it is refused exactly as before
_PYTHON_ONLY = ("\t", "\ufeff", "?")


def _compose(text: str, loader_class: type[yaml.SafeLoader]) -> Document:
    loader = loader_class(text)
    try:
        node = loader.get_single_node()
        doc = Document(data=None)
        if node is not None:
            doc.data = _build(node, (), doc, loader)
        return doc
    finally:
        loader.dispose()


def parse_yaml(text: str, source: str = "<string>") -> Document:
    """Parse ``text`` into a ``Document``; malformed YAML raises ``ConfigError`` with its line."""
    if _FAST_LOADER is not None and not any(c in text for c in _PYTHON_ONLY):
        try:
            return _compose(text, _FAST_LOADER)
        except yaml.YAMLError:
            pass  # reported below, in the pure-Python loader's words
    try:
        return _compose(text, yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        problem = exc.problem or exc.context or "malformed YAML"
        issue = ConfigIssue(path="", message=f"malformed YAML: {problem}", line=line)
        raise ConfigError([issue], source) from None
    except yaml.YAMLError as exc:
        raise ConfigError(
            [ConfigIssue(path="", message=f"malformed YAML: {exc}")], source
        ) from None


def _build(node: yaml.Node, path: Path, doc: Document, loader: yaml.SafeLoader) -> object:
    doc.lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        loader.flatten_mapping(node)  # resolves `<<: *anchor` merge keys
        out: dict[str, object] = {}
        for key_node, value_node in node.value:
            # Keys stay the text the user wrote (`30_days`, `on`), never YAML ints/bools,
            # so paths in messages read exactly like the file.
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else "?"
            child = (*path, key)
            if key in out:
                doc.duplicates.append(child)
            # The key's own line is the right place for "unknown key" errors.
            doc.lines[child] = key_node.start_mark.line + 1
            out[key] = _build(value_node, child, doc, loader)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_build(item, (*path, i), doc, loader) for i, item in enumerate(node.value)]
    return loader.construct_object(node, deep=True)


def format_path(path: Path) -> str:
    """Render a path as ``exports[2].compression``; odd keys are quoted (``a["x.y"]``)."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part and all(c.isalnum() or c in "_-" for c in part):
            out += f".{part}" if out else part
        else:
            out += f"[{part!r}]".replace("'", '"')
    return out
