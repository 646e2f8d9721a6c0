"""Collecting config issues: YAML paths, lines, "did you mean", redaction.

Every check in ``dpexport.config`` reports through an ``Issues`` collector, in the
coordinates of the *normalised* data (spec wrapper keys such as ``export_config``
removed); the collector maps each path back to what the user wrote, finds its line,
and never renders the value of a secret-named key.
"""

from __future__ import annotations

import difflib
import re
import types
import typing
from collections.abc import Iterable
from typing import Any

from pydantic import BaseModel, ValidationError

from dpexport.config.loader import Document, Path, format_path
from dpexport.errors import ConfigIssue

REDACTED = "<redacted>"
_MISSING: Any = object()

#: Key names that hold secrets (CONTRACT §3: secrets are named by env var, never inline).
SECRET_KEY = re.compile(
    r"(^|_)(key|password|passwd|secret|token|connection_string|credentials)$", re.IGNORECASE
)
#: Keys ending in ``_key`` that hold column names, not key material.
NOT_SECRET_KEYS = frozenset(
    {"merge_key", "sort_key", "partition_key", "primary_key", "cluster_key", "dedup_key"}
)


def is_secret_key(key: object) -> bool:
    """True when a mapping key's name says its value is a secret."""
    return isinstance(key, str) and key not in NOT_SECRET_KEYS and bool(SECRET_KEY.search(key))


def closest(value: object, choices: Iterable[str]) -> str | None:
    """The nearest valid choice to ``value`` (case-insensitive), or None."""
    if not isinstance(value, str) or not value:
        return None
    by_lower = {c.lower(): c for c in choices}
    if value.lower() in by_lower:
        return by_lower[value.lower()]
    found = difflib.get_close_matches(value.lower(), list(by_lower), n=1, cutoff=0.6)
    return by_lower[found[0]] if found else None


def render_value(path: Path, value: object) -> str:
    """Short text for a value in a message; secret-named keys render as ``<redacted>``."""
    if any(is_secret_key(part) for part in path):
        return REDACTED
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


class Issues:
    """Collects ``ConfigIssue`` objects for one document."""

    def __init__(self, doc: Document) -> None:
        self.doc = doc
        #: normalised path prefix -> the path the user wrote (wrapper keys put back)
        self.rewrites: dict[Path, Path] = {}
        self.items: list[ConfigIssue] = []

    def original(self, path: Path) -> Path:
        """Map a normalised path back to the file's path (wrapper keys restored)."""
        for end in range(len(path), 0, -1):
            prefix = self.rewrites.get(path[:end])
            if prefix is not None:
                return prefix + path[end:]
        return path

    def add(
        self,
        path: Path,
        message: str,
        *,
        value: object = _MISSING,
        expected: str | None = None,
        suggestion: str | None = None,
    ) -> None:
        """Record one issue at ``path`` (normalised coordinates)."""
        real = self.original(path)
        issue = ConfigIssue(
            path=format_path(real),
            message=message,
            value=None if value is _MISSING else render_value(real, value),
            expected=expected,
            suggestion=suggestion,
            line=self.doc.line_of(real),
        )
        if not any(i.path == issue.path and i.message == issue.message for i in self.items):
            self.items.append(issue)

    def choice(self, path: Path, value: object, choices: Iterable[str], what: str) -> bool:
        """Check ``value`` is one of ``choices`` (compared upper-case); report if not."""
        options = list(choices)
        if isinstance(value, str) and value.upper() in {c.upper() for c in options}:
            return True
        self.add(
            path,
            f"unknown {what}",
            value=value,
            expected="one of " + ", ".join(options),
            suggestion=closest(value, options),
        )
        return False

    def from_pydantic(self, exc: ValidationError, model: type[BaseModel], data: object) -> None:
        """Turn pydantic's errors into issues (paths cleaned, suggestions for unknown keys)."""
        grouped: dict[Path, list[dict[str, Any]]] = {}
        for err in exc.errors(include_url=False):
            loc = tuple(err["loc"])
            path = _clean_loc(loc, data, keep_last=err["type"] == "missing")
            grouped.setdefault(path, []).append(dict(err))
        for path, errs in grouped.items():
            first = errs[0]
            kind = first["type"]
            if kind == "extra_forbidden":
                fields = _fields_at(model, tuple(first["loc"])[:-1])
                self.add(
                    path,
                    f"unknown key {path[-1]!r}" if path else "unknown key",
                    expected=("one of " + ", ".join(sorted(fields))) if fields else None,
                    suggestion=closest(path[-1] if path else None, fields),
                )
            elif kind == "missing":
                self.add(path, "missing required key")
            elif kind == "unit":
                ctx = first.get("ctx") or {}
                self.add(path, first["msg"], value=first["input"], expected=ctx.get("expected"))
            elif kind == "literal_error":
                ctx = first.get("ctx") or {}
                options = re.findall(r"'([^']*)'", str(ctx.get("expected", "")))
                self.add(
                    path,
                    "not an allowed value",
                    value=first["input"],
                    expected="one of " + ", ".join(options),
                    suggestion=closest(first["input"], options),
                )
            else:
                # A union reports once per member; one issue says all that was accepted.
                messages = list(dict.fromkeys(e["msg"] for e in errs))
                self.add(
                    path, "wrong type or value: " + " or ".join(messages), value=first["input"]
                )


def _clean_loc(loc: tuple[Any, ...], data: object, *, keep_last: bool) -> Path:
    """Keep the loc parts that exist in ``data``; drop union tags and synthetic fields."""
    out: list[str | int] = []
    current = data
    for i, part in enumerate(loc):
        if (isinstance(current, dict) and part in current) or (
            isinstance(current, list) and isinstance(part, int) and 0 <= part < len(current)
        ):
            out.append(part)
            current = current[part]
        elif keep_last and i == len(loc) - 1 and isinstance(part, str):
            out.append(part)
    return tuple(out)


def _fields_at(model: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    """The keys allowed where ``loc`` points, walking the model's type annotations."""
    tp: Any = model
    for part in loc:
        tp = _descend(tp, part)
        if tp is None:
            return []
    return sorted(_model_fields(tp))


def _model_fields(tp: Any) -> set[str]:
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return {f.alias or name for name, f in tp.model_fields.items()}
    if _is_union(tp):
        out: set[str] = set()
        for arg in typing.get_args(tp):
            out |= _model_fields(arg)
        return out
    return set()


def _is_union(tp: Any) -> bool:
    return typing.get_origin(tp) in (typing.Union, types.UnionType)


def _descend(tp: Any, part: Any) -> Any:
    if typing.get_origin(tp) is typing.Annotated:
        tp = typing.get_args(tp)[0]
    if _is_union(tp):
        members = [a for a in typing.get_args(tp) if a is not type(None)]
        for member in members:
            if isinstance(member, type) and issubclass(member, BaseModel):
                if part in member.model_fields:
                    return member.model_fields[part].annotation
            elif typing.get_origin(member) in (list, dict) and isinstance(
                part, int if typing.get_origin(member) is list else str
            ):
                return _descend(member, part)
        return tp  # a union tag in the loc: stay on the union
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        field = tp.model_fields.get(part)
        return field.annotation if field is not None else None
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (list, tuple) and args:
        return args[0]
    if origin is dict and len(args) == 2:
        return args[1]
    return None
