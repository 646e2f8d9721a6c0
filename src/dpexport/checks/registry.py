"""The named checks by name, and parsing a ``validation:`` list into check objects.

An item is a check's name, or ``{name: {param: value}}``; every check also takes
``severity`` (``error``/``warn``) and ``on_fail`` (``fail``/``quarantine``). Every
problem is reported in one pass, each at its YAML path, with the nearest valid name.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from typing import Any

from dpexport.checks import params as P
from dpexport.checks.base import Check
from dpexport.checks.dataset import DATASET_CHECKS
from dpexport.checks.rows import ROW_CHECKS
from dpexport.errors import ConfigIssue

#: Every named check of CONTRACT §9, by name.
CHECKS: dict[str, type[Check]] = {c.name: c for c in (*ROW_CHECKS, *DATASET_CHECKS)}


def _nearest(name: str, choices: Sequence[str]) -> str | None:
    found = difflib.get_close_matches(name, list(choices), n=1, cutoff=0.6)
    return found[0] if found else None


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def parse_check_items(items: Sequence[object], path: str) -> tuple[list[Check], list[ConfigIssue]]:
    """The configured checks, and every problem found (checks with problems are left out)."""
    checks: list[Check] = []
    issues: list[ConfigIssue] = []
    if not isinstance(items, list | tuple):
        issues.append(ConfigIssue(path, "must be a list of checks", _short(items)))
        return checks, issues
    for i, item in enumerate(items):
        where = f"{path}[{i}]"
        raw_params: object = None
        if isinstance(item, str):
            name = item
        elif isinstance(item, dict) and len(item) == 1:
            ((name, raw_params),) = item.items()
            if not isinstance(name, str):
                issues.append(ConfigIssue(where, "a check name must be a string", _short(name)))
                continue
        else:
            issues.append(
                ConfigIssue(
                    where,
                    "must be a check name or {name: {param: value}}",
                    _short(item),
                )
            )
            continue
        cls = CHECKS.get(name)
        if cls is None:
            issues.append(
                ConfigIssue(
                    where,
                    "unknown check",
                    repr(name),
                    "one of " + ", ".join(sorted(CHECKS)),
                    _nearest(name, list(CHECKS)),
                )
            )
            continue
        check = _build(
            cls, raw_params, f"{where}.{name}" if isinstance(item, dict) else where, issues
        )
        if check is not None:
            checks.append(check)
    return checks, issues


def _build(cls: type[Check], raw: object, where: str, issues: list[ConfigIssue]) -> Check | None:
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        issues.append(ConfigIssue(where, "parameters must be a mapping", _short(raw)))
        return None
    known: dict[str, P.Param] = {**cls.params, **P.COMMON}
    values: dict[str, Any] = {}
    before = len(issues)
    for key, value in raw.items():
        spec = known.get(str(key))
        if spec is None:
            issues.append(
                ConfigIssue(
                    f"{where}.{key}",
                    f"unknown parameter of {cls.name}",
                    expected=", ".join(known),
                    suggestion=_nearest(str(key), list(known)),
                )
            )
            continue
        try:
            values[str(key)] = spec.parse(value)
        except ValueError as exc:
            issues.append(ConfigIssue(f"{where}.{key}", "invalid value", _short(value), str(exc)))
    for key, spec in known.items():
        values.setdefault(key, spec.default)
    if values["on_fail"] == "quarantine" and not cls.quarantinable:
        issues.append(
            ConfigIssue(
                f"{where}.on_fail",
                f"{cls.name} cannot quarantine: {cls.no_quarantine_reason}",
                "'quarantine'",
                "fail",
            )
        )
    if len(issues) > before:
        return None
    severity, on_fail = values.pop("severity"), values.pop("on_fail")
    check = cls(values, severity, on_fail)
    check.explicit = frozenset(str(k) for k in raw)
    return check


def validate_check_items(items: Sequence[object], path: str) -> list[ConfigIssue]:
    """Every problem of a ``validation:`` list (``path`` like ``exports[0].validation``):
    unknown check names (with the nearest name), unknown or invalid parameters, bad
    ``severity``/``on_fail``."""
    return parse_check_items(items, path)[1]
