"""Which table each part of the file speaks about (CONTRACT §3).

An ``exports`` item names its table by ``source``. A section entry (spec 4.1-4.3's
``append_only`` / ``full_refresh`` / ``incremental``, spec 3.2's ``high_volume``) is
keyed by its entity:

- ``dataset.table`` (or ``project.dataset.table``) names that table;
- a bare ``table`` attaches to the one table of that name the file names elsewhere (an
  ``exports`` item or a qualified entry), whatever its dataset; when the file names
  none, it is a table of its own in ``warehouse.dataset``; when it names two, the
  entry is refused, naming both.

So ``append_only: {sessions: ...}`` adds its settings to the ``exports`` item reading
``analytics.sessions``, never a second table ``diagnosticpro_prod.sessions``. The
``replication`` lists name tables the same way (:func:`check_replication`), and
:func:`column_paths` says where an item names each column, so a check made later
against the warehouse reports a missing one at its own path.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from dpexport.config.issues import Issues, closest
from dpexport.config.loader import Path, format_path
from dpexport.config.models import DpexportConfig, ExportItem

#: The sections whose entries are keyed by entity, in precedence order (CONTRACT §3).
SECTIONS = ("append_only", "full_refresh", "incremental", "high_volume")


@dataclass
class TableSources:
    """Everything the file says about one table, with where it says it."""

    dataset: str
    table: str
    item: ExportItem | None = None
    item_path: Path = ()
    #: section name -> its entry for this table
    entries: dict[str, Any] = field(default_factory=dict)
    #: section name -> the entry's path (``("append_only", "sessions")``)
    paths: dict[str, Path] = field(default_factory=dict)

    @property
    def qualified_name(self) -> str:
        return f"{self.dataset}.{self.table}"

    @property
    def path(self) -> Path:
        """Where the file names the table: its exports item, else its first entry."""
        return self.item_path if self.item is not None else self.paths[next(iter(self.paths))]


def split_name(name: str, default_dataset: str) -> tuple[str, str]:
    """``dataset.table`` -> (dataset, table); ``table`` gets ``default_dataset``;
    ``project.dataset.table`` drops the project."""
    parts = name.split(".")
    if len(parts) == 1:
        return default_dataset, parts[0]
    return parts[-2], parts[-1]


def collect_tables(model: DpexportConfig, issues: Issues) -> dict[str, TableSources]:
    """Every table the file names, by ``dataset.table``, in file order (exports items
    first); problems (a table exported twice, an ambiguous or repeated entry) go to
    ``issues``."""
    default = model.warehouse.dataset
    tables: dict[str, TableSources] = {}
    for index, item in enumerate(model.exports):
        dataset, table = split_name(item.source, default)
        key = f"{dataset}.{table}"
        if key in tables:
            issues.add(("exports", index, "source"), "table exported twice", value=item.source)
            continue
        tables[key] = TableSources(dataset, table, item, ("exports", index))
    named = _qualified_names(model, tables)
    for section in SECTIONS:
        for name, entry in getattr(model, section).items():
            owner = _entry_table(section, name, named, default, issues)
            if owner is None:
                continue
            src = tables.get(owner)
            if src is None:
                src = tables[owner] = TableSources(*split_name(owner, default))
            if section in src.entries:
                issues.add(
                    (section, name),
                    f"a second {section} entry for {owner} (the first is "
                    f"{format_path(issues.original(src.paths[section]))})",
                    expected=f"one {section} entry per table",
                )
                continue
            src.entries[section] = entry
            src.paths[section] = (section, name)
    return tables


def _qualified_names(model: DpexportConfig, tables: dict[str, TableSources]) -> dict[str, Path]:
    """``dataset.table`` -> where the file first names it, for every table named with
    its dataset: the exports items and the qualified section keys."""
    named: dict[str, Path] = {key: src.item_path for key, src in tables.items()}
    for section in SECTIONS:
        for name in getattr(model, section):
            if "." in name:
                dataset, table = split_name(name, model.warehouse.dataset)
                named.setdefault(f"{dataset}.{table}", (section, name))
    return named


def _entry_table(
    section: str, name: str, named: dict[str, Path], default: str, issues: Issues
) -> str | None:
    """The table a section entry keyed ``name`` belongs to; ``None`` (and an issue
    naming the candidates) when a bare name matches more than one."""
    if "." in name:
        dataset, table = split_name(name, default)
        return f"{dataset}.{table}"
    matches = [key for key in named if key.rsplit(".", 1)[-1] == name]
    if len(matches) <= 1:
        return matches[0] if matches else f"{default}.{name}"
    where = ", ".join(f"{key} ({format_path(issues.original(named[key]))})" for key in matches)
    issues.add(
        (section, name),
        f"{name!r} names {len(matches)} tables: {where}",
        expected="the entry keyed by the table's dataset.table, e.g. " + repr(matches[0]),
    )
    return None


def column_paths(item: ExportItem | None, ip: Path) -> dict[str, Path]:
    """Where the item names each column of its ``validation``, ``column_encoding`` and
    ``gdpr_compliance`` settings, so a missing one is reported at its own path."""
    if item is None:
        return {}
    out: dict[str, Path] = {"validation": (*ip, "validation")}
    encoding = item.optimization.column_encoding if item.optimization else None
    for column in encoding if isinstance(encoding, dict) else ():
        out[f"column_encoding.{column}"] = (*ip, "optimization", "column_encoding", column)
    gdpr = item.gdpr_compliance
    if gdpr is None:
        return out
    where = (*ip, "gdpr_compliance")
    rules = gdpr.anonymization
    if isinstance(rules, dict):
        for column in rules:
            out[f"gdpr.anonymization.{column}"] = (*where, "anonymization", column)
    else:
        for index, rule in enumerate(rules):
            for column in rule:
                out[f"gdpr.anonymization.{column}"] = (*where, "anonymization", index, column)
    for index, column in enumerate(gdpr.excluded_fields):
        out[f"gdpr.excluded_fields.{column}"] = (*where, "excluded_fields", index)
    return out


def check_replication(
    model: DpexportConfig, issues: Issues, tables: dict[str, TableSources]
) -> None:
    """Each ``replication`` table is an exported one: ``dataset.table``, or a bare entity
    name that names exactly one (as ``--table`` takes it)."""
    names = list(tables) + [src.table for src in tables.values()]
    for index, rep in enumerate(model.replication):
        for pos, name in enumerate(rep.tables):
            path = ("replication", index, "tables", pos)
            if "." in name:
                dataset, table = split_name(name, model.warehouse.dataset)
                matches = [f"{dataset}.{table}"] if f"{dataset}.{table}" in tables else []
            else:
                matches = [key for key, src in tables.items() if src.table == name]
            if not matches:
                issues.add(
                    path, "not an exported table", value=name, suggestion=closest(name, names)
                )
            elif len(matches) > 1:
                issues.add(
                    path,
                    f"{name!r} names {len(matches)} tables: {', '.join(matches)}",
                    expected="the table's dataset.table",
                )
