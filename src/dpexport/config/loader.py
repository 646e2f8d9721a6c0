"""Read YAML keeping the line of every node, so each config issue can name its line.

The document is composed into nodes with ``yaml.SafeLoader`` (safe: no Python tags),
walked once to map each path (a tuple of keys and list indices) to its 1-based line,
then constructed into plain Python data. Composing uses libyaml (``CSafeLoader``) when
PyYAML has it, ~15x faster than the pure-Python scanner on a 500-line config: the same
nodes, marks and constructor. A document libyaml refuses is parsed again by the
pure-Python loader, so every error (its wording and line) is the one PyYAML gives, and
text where the two scanners are known to disagree skips libyaml (``_PYTHON_ONLY``).

Hostile text is refused before any node is built (:class:`_Guard`, one pass over the
parser's events, no recursion): nesting deeper than ``MAX_DEPTH`` (the composer and
every walker recurse), aliases that would add more than ``MAX_ALIAS_NODES`` nodes
(an alias bomb: 400 bytes that expand to billions) or that contain themselves.
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


#: levels of lists and mappings a config may nest (the spec's config nests 6)
MAX_DEPTH = 64
#: nodes that aliases may add to a document, all aliases together
MAX_ALIAS_NODES = 100_000


@dataclass
class _Frame:
    """A list or mapping being read: its path, anchor, nodes (aliases expanded) and
    height, and where its next child goes."""

    path: Path
    anchor: str | None
    mapping: bool
    size: int = 1
    height: int = 1
    children: int = 0
    key: str | int = "?"


class _Guard:
    """One pass over the parser's events: the expanded size and height of each anchor,
    so an alias bomb, a self-containing alias or deep nesting is refused by name."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.stack: list[_Frame] = []
        self.sizes: dict[str, tuple[int, int]] = {}  # anchor -> (nodes, height)
        self.added = 0  # nodes added by aliases

    def scan(self, loader: yaml.SafeLoader) -> None:
        while True:
            event = loader.get_event()
            if event is None or isinstance(event, yaml.StreamEndEvent):
                return
            if isinstance(event, yaml.CollectionStartEvent):
                self._start(event)
            elif isinstance(event, yaml.CollectionEndEvent):
                frame = self.stack.pop()
                if frame.anchor is not None:
                    self.sizes[frame.anchor] = (frame.size, frame.height)
                self._done(frame.size, frame.height)
            elif isinstance(event, yaml.ScalarEvent):
                if event.anchor is not None:
                    self.sizes[event.anchor] = (1, 0)
                self._done(1, 0, key=event.value)
            elif isinstance(event, yaml.AliasEvent):
                self._alias(event)

    def _child_path(self) -> Path:
        if not self.stack:
            return ()
        top = self.stack[-1]
        if not top.mapping:
            return (*top.path, top.children)
        return (*top.path, top.key if top.children % 2 else "?")

    def _start(self, event: yaml.CollectionStartEvent) -> None:
        path = self._child_path()
        if len(self.stack) >= MAX_DEPTH:  # named by its outer keys: the full path is huge
            message = f"nested deeper than {MAX_DEPTH} levels of lists or mappings"
            self._refuse(path[:3], event, message)
        mapping = isinstance(event, yaml.MappingStartEvent)
        self.stack.append(_Frame(path, event.anchor, mapping))

    def _alias(self, event: yaml.AliasEvent) -> None:
        anchor = str(event.anchor)
        if any(f.anchor == anchor for f in self.stack):
            self._refuse(self._child_path(), event, f"alias *{anchor} contains itself")
        size, height = self.sizes.get(anchor, (1, 0))  # undefined: the composer says so
        self.added += size
        if self.added > MAX_ALIAS_NODES:
            self._refuse(
                self._child_path(),
                event,
                f"alias *{anchor} (anchor &{anchor}) expands the document beyond "
                f"{MAX_ALIAS_NODES:,} nodes: aliases of aliases (an alias bomb)",
            )
        if len(self.stack) + height > MAX_DEPTH:
            self._refuse(
                self._child_path(),
                event,
                f"alias *{anchor} nests the document deeper than {MAX_DEPTH} levels",
            )
        self._done(size, height)

    def _done(self, size: int, height: int, key: str | None = None) -> None:
        """A node of ``size`` nodes and ``height`` levels is complete in its parent."""
        if not self.stack:
            return
        top = self.stack[-1]
        if top.mapping and top.children % 2 == 0:
            top.key = key if key is not None else "?"
        top.children += 1
        top.size += size
        top.height = max(top.height, height + 1)

    def _refuse(self, path: Path, event: yaml.Event, message: str) -> None:
        line = event.start_mark.line + 1 if event.start_mark is not None else None
        issue = ConfigIssue(path=format_path(path), message=message, line=line)
        raise ConfigError([issue], self.source)


def _compose(text: str, loader_class: type[yaml.SafeLoader], source: str) -> Document:
    guard = loader_class(text)
    try:
        _Guard(source).scan(guard)
    finally:
        guard.dispose()
    loader = loader_class(text)
    try:
        node = loader.get_single_node()
        doc = Document(data=None)
        if node is not None:
            doc.data = _build(node, (), doc, loader)
        return doc
    finally:
        loader.dispose()


def not_utf8(exc: UnicodeDecodeError) -> ConfigIssue:
    """The issue of a config file whose bytes are not UTF-8: the byte, its offset, its line."""
    raw = exc.object if isinstance(exc.object, bytes) else bytes(exc.object)
    line = raw.count(b"\n", 0, exc.start) + 1
    byte = raw[exc.start : exc.start + 1].hex()
    message = f"not UTF-8 text: byte 0x{byte} at byte offset {exc.start} ({exc.reason})"
    return ConfigIssue(path="", message=message, line=line)


def parse_yaml(text: str, source: str = "<string>") -> Document:
    """Parse ``text`` into a ``Document``; malformed YAML raises ``ConfigError`` with its line."""
    if _FAST_LOADER is not None and not any(c in text for c in _PYTHON_ONLY):
        try:
            return _compose(text, _FAST_LOADER, source)
        except yaml.YAMLError:
            pass  # reported below, in the pure-Python loader's words
    try:
        return _compose(text, yaml.SafeLoader, source)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        problem = exc.problem or exc.context or "malformed YAML"
        issue = ConfigIssue(path="", message=f"malformed YAML: {problem}", line=line)
        raise ConfigError([issue], source) from None
    except yaml.reader.ReaderError as exc:  # a control character: unmarked, one line here
        char = exc.character if isinstance(exc.character, int) else ord(exc.character)
        line = text.count("\n", 0, exc.position) + 1
        message = f"malformed YAML: {exc.reason} (character #x{char:04x}, offset {exc.position})"
        raise ConfigError([ConfigIssue(path="", message=message, line=line)], source) from None
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
