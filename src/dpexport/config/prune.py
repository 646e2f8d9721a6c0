"""A config the models refuse, made checkable: the refused parts taken out.

``check`` reports every problem in one pass, those only the warehouse shows too. When
the models refuse part of the file (a wrong type, a value out of range, a missing
key), that part is already reported; :func:`checkable_model` takes it out (the
offending key, or the entry or ``exports`` item that lacks a required key) and
validates the rest again, so the other tables are still resolved and held against the
warehouse. Taking out an ``exports`` item moves the later ones up: their paths are
mapped back (``Issues.rewrites``), so every later issue names the item as the file
numbers it. A refused ``warehouse`` block gives no model: holding the tables against
a warehouse the file does not name right would mislead.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from typing import Any

from pydantic import ValidationError

from dpexport.config.issues import Issues
from dpexport.config.loader import Path, format_path
from dpexport.config.models import DpexportConfig

#: Each round takes out what one validation refused; nested refusals surface in turn.
MAX_ROUNDS = 5


def checkable_model(
    data: object, exc: ValidationError, issues: Issues
) -> tuple[DpexportConfig | None, list[str]]:
    """``data`` without what ``exc`` refused, validated, and the paths taken out (as
    the file writes them); no model when nothing useful is left (the root or the
    warehouse block refused, or refusals keep coming)."""
    taken: list[str] = []
    if not isinstance(data, dict):
        return None, taken
    data = copy.deepcopy(data)
    for _ in range(MAX_ROUNDS):
        if not _take_out(data, exc, issues, taken):
            return None, taken
        try:
            return DpexportConfig.model_validate(data), taken
        except ValidationError as again:
            exc = again
    return None, taken


def entangled(path: str, taken: Iterable[str]) -> bool:
    """Whether ``path`` is a path taken out, or holds one, or lies in one: a problem
    found there after the removal may be the removal's doing, not the file's."""
    for other in taken:
        inner, outer = (path, other) if len(path) >= len(other) else (other, path)
        if inner == outer or (inner.startswith(outer) and inner[len(outer)] in ".["):
            return True
    return False


def _take_out(data: dict[str, Any], exc: ValidationError, issues: Issues, taken: list[str]) -> bool:
    """Remove every refused part of ``data`` (noting each in ``taken``); False when
    one cannot be removed."""
    keys: set[Path] = set()
    items: set[int] = set()
    for err in exc.errors(include_url=False):
        target = _present(tuple(err["loc"]), data)
        while target and isinstance(target[-1], int) and target[:-1] != ("exports",):
            target = target[:-1]  # a list element: the setting holding the list goes
        if not target or target[0] == "warehouse":
            return False
        if target[:-1] == ("exports",):
            items.add(int(target[-1]))
        else:
            keys.add(target)
    removed = False
    for path in sorted(keys, key=len, reverse=True):
        parent = _get(data, path[:-1])
        if isinstance(parent, dict) and path[-1] in parent:
            del parent[path[-1]]
            taken.append(format_path(issues.original(path)))
            removed = True
    exports = data.get("exports")
    if items and isinstance(exports, list):
        taken += [format_path(issues.original(("exports", i))) for i in sorted(items)]
        _drop_items(exports, items, issues)
        removed = True
    return removed


def _present(loc: tuple[Any, ...], data: object) -> Path:
    """The longest part of ``loc`` present in ``data`` (union tags skipped)."""
    out: list[str | int] = []
    for part in loc:
        if _has(data, part):
            out.append(part)
            data = data[part]  # type: ignore[index]
    return tuple(out)


def _get(data: object, path: Path) -> object:
    for part in path:
        if not _has(data, part):
            return None
        data = data[part]  # type: ignore[index]
    return data


def _has(container: object, part: object) -> bool:
    if isinstance(container, dict):
        return part in container
    return isinstance(container, list) and isinstance(part, int) and 0 <= part < len(container)


def _drop_items(exports: list[Any], drop: set[int], issues: Issues) -> None:
    """Remove the ``exports`` items at ``drop``; map each later item's new index to
    the path the file gives it."""
    kept = [index for index in range(len(exports)) if index not in drop]
    origins = [issues.original(("exports", index)) for index in kept]
    for index in range(len(exports)):
        issues.rewrites.pop(("exports", index), None)
    for new, origin in enumerate(origins):
        if origin != ("exports", new):
            issues.rewrites[("exports", new)] = origin
    exports[:] = [exports[index] for index in kept]
