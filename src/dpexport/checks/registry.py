"""The named checks by name, and parsing a ``validation:`` list into check objects.

An item is a check's name, or ``{name: {param: value}}``; every check also takes
``severity`` (``error``/``warn``) and ``on_fail`` (``fail``/``quarantine``). Every
problem is reported in one pass, each at its YAML path, with the nearest valid choice:
the closest check or parameter name, or a parameter's value in the form it takes.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from dpexport.checks import params as P
from dpexport.checks.base import Check
from dpexport.checks.dataset import DATASET_CHECKS
from dpexport.checks.rows import ROW_CHECKS
from dpexport.errors import ConfigIssue

#: Every named check of CONTRACT §9, by name.
CHECKS: dict[str, type[Check]] = {c.name: c for c in (*ROW_CHECKS, *DATASET_CHECKS)}

#: "no value to show" (``None`` is a value a user can write)
NO_VALUE: Any = object()


@dataclass(frozen=True)
class ItemProblem:
    """One problem of one ``validation:`` item. ``where`` is the path below the item
    (``()``, ``(name,)`` or ``(name, param)``); ``value`` is the raw value, or
    :data:`NO_VALUE`. ``shape`` marks an item that is neither a name nor
    ``{name: {param: value}}``, which the config's model reports as well."""

    where: tuple[str, ...]
    message: str
    value: object = NO_VALUE
    expected: str | None = None
    suggestion: str | None = None
    shape: bool = False


def _nearest(name: str, choices: Sequence[str]) -> str | None:
    found = difflib.get_close_matches(name, list(choices), n=1, cutoff=0.6)
    return found[0] if found else None


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def item_problems(item: object) -> tuple[Check | None, list[ItemProblem]]:
    """One ``validation:`` item as a check, or None and every problem it has."""
    raw_params: object = None
    if isinstance(item, str):
        name = item
    elif isinstance(item, dict) and len(item) == 1:
        ((name, raw_params),) = item.items()
        if not isinstance(name, str):
            return None, [ItemProblem((), "a check name must be a string", name, shape=True)]
    else:
        return None, [
            ItemProblem((), "must be a check name or {name: {param: value}}", item, shape=True)
        ]
    cls = CHECKS.get(name)
    if cls is None:
        return None, [
            ItemProblem(
                (),
                "unknown check",
                name,
                "one of " + ", ".join(sorted(CHECKS)),
                _nearest(name, list(CHECKS)),
            )
        ]
    under = (name,) if isinstance(item, dict) else ()
    return _build(cls, raw_params, under)


def _build(
    cls: type[Check], raw: object, under: tuple[str, ...]
) -> tuple[Check | None, list[ItemProblem]]:
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        return None, [ItemProblem(under, "parameters must be a mapping", raw, shape=True)]
    known: dict[str, P.Param] = {**cls.params, **P.COMMON}
    values: dict[str, Any] = {}
    problems: list[ItemProblem] = []
    for key, value in raw.items():
        spec = known.get(str(key))
        if spec is None:
            problems.append(
                ItemProblem(
                    (*under, str(key)),
                    f"unknown parameter of {cls.name}",
                    expected=", ".join(known),
                    suggestion=_nearest(str(key), list(known)),
                )
            )
            continue
        try:
            values[str(key)] = spec.parse(value)
        except ValueError as exc:
            problems.append(
                ItemProblem(
                    (*under, str(key)),
                    "invalid value",
                    value,
                    str(exc),
                    P.nearest_value(spec, value),
                )
            )
    for key, spec in known.items():
        values.setdefault(key, spec.default)
    failed = {problem.where[-1] for problem in problems}
    problems.extend(_cross_params(cls, values, raw, under, failed))
    if problems:
        return None, problems
    severity, on_fail = values.pop("severity"), values.pop("on_fail")
    check = cls(values, severity, on_fail)
    check.explicit = frozenset(str(k) for k in raw)
    return check, problems


def _cross_params(
    cls: type[Check],
    values: dict[str, Any],
    raw: dict[Any, Any],
    under: tuple[str, ...],
    failed: set[str],
) -> list[ItemProblem]:
    """Rules between parameters: quarantine only where rows can be kept out; a
    ``min`` not above the ``max`` (when both parsed)."""
    out: list[ItemProblem] = []
    if values["on_fail"] == "quarantine" and not cls.quarantinable:
        out.append(
            ItemProblem(
                (*under, "on_fail"),
                f"{cls.name} cannot quarantine: {cls.no_quarantine_reason}",
                "quarantine",
                suggestion="fail",
            )
        )
    low, high = values.get("min"), values.get("max")
    if (
        isinstance(low, int | float)
        and isinstance(high, int | float)
        and low > high
        and ("min" in raw or "max" in raw)
        and not failed & {"min", "max"}
    ):
        key = "min" if "min" in raw else "max"
        out.append(
            ItemProblem(
                (*under, key),
                f"{cls.name}: min ({low}) is above max ({high}), so every row would fail",
                raw[key],
                "min <= max",
                str(high if key == "min" else low),
            )
        )
    return out


def _render_path(path: str, index: int, where: tuple[str, ...]) -> str:
    return f"{path}[{index}]" + "".join(f".{part}" for part in where)


def parse_check_items(items: Sequence[object], path: str) -> tuple[list[Check], list[ConfigIssue]]:
    """The configured checks, and every problem found (checks with problems are left out)."""
    checks: list[Check] = []
    issues: list[ConfigIssue] = []
    if not isinstance(items, list | tuple):
        issues.append(ConfigIssue(path, "must be a list of checks", _short(items)))
        return checks, issues
    for i, item in enumerate(items):
        check, problems = item_problems(item)
        if check is not None:
            checks.append(check)
        for problem in problems:
            issues.append(
                ConfigIssue(
                    _render_path(path, i, problem.where),
                    problem.message,
                    None if problem.value is NO_VALUE else _short(problem.value),
                    problem.expected,
                    problem.suggestion,
                )
            )
    return checks, issues


def validate_check_items(items: Sequence[object], path: str) -> list[ConfigIssue]:
    """Every problem of a ``validation:`` list (``path`` like ``exports[0].validation``):
    unknown check names (with the nearest name), unknown or invalid parameters, bad
    ``severity``/``on_fail``."""
    return parse_check_items(items, path)[1]
