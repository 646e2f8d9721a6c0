"""Each table's destination is its own (issue 15, "exactly once on every path").

A destination must not lie under a prefix dpexport keeps at the bucket root (CONTRACT
§4): a run rolls back what it finds under ``_staging/``, retention sweeps the others, so
an export published there would be deleted. And no two tables may publish into the same
folder, or one into the other's: a FULL_REFRESH of the outer one, a rollback or
retention would delete the inner one's files, and a reader of the outer one would read
both. ``compact``'s snapshot sits beside a destination (``{destination}__snapshot/``).

Destinations are compared as resolved (the default ``{bucket}/{env}/{dataset}/{entity}/``
applied), each as a folder with a trailing ``/``; a local path by its absolute form.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from dpexport.config.issues import Issues
from dpexport.config.loader import Path
from dpexport.storage.uri import Location, parse_uri, uri_problem

if TYPE_CHECKING:
    from dpexport.config.models import DpexportConfig


@dataclass(frozen=True)
class Published:
    """One table's destination, with where the file says it."""

    table: str
    #: the resolved destination (ends with ``/``)
    destination: str
    #: where to report: the item's ``destination`` key, or the table's own path when
    #: the destination is the default one
    path: Path
    #: what the file wrote there (the resolved destination for a default one)
    written: str


def reserved_prefixes() -> dict[str, str]:
    """Prefix at a bucket root -> what dpexport keeps there."""
    # dpexport.storage.layout loads pyarrow: only when a config with tables is checked
    from dpexport.storage import layout
    from dpexport.storage.local import _LOCKS

    return {
        layout.STAGING_PREFIX: "work in progress, which a run rolls back",
        layout.STATE_PREFIX: "watermarks, schema history and check state",
        layout.TOKENS_PREFIX: "idempotency tokens and leases",
        layout.DLQ_PREFIX: "the dead-letter queue",
        layout.LOGS_PREFIX: "one record per export attempt",
        f"{_LOCKS}/": "store locks",
    }


def folder_of(loc: Location) -> str:
    """A destination as a comparable folder: ``gs://b/a/b/``, ``/abs/path/``."""
    if loc.scheme == "file":
        return os.path.abspath(loc.bucket).rstrip("/") + "/"
    key = loc.key.strip("/")
    return f"{loc.scheme}://{loc.bucket}/" + (f"{key}/" if key else "")


def check_destinations(tables: Sequence[Published], issues: Issues) -> None:
    """Report destinations under a reserved prefix, and each table whose destination
    equals, holds or lies in an earlier table's (at the later table's path)."""
    reserved = reserved_prefixes() if tables else {}
    seen: list[tuple[Published, str]] = []
    for table in tables:
        if not table.destination or uri_problem(table.destination) is not None:
            continue  # reported where it was written (the item, buckets.exports)
        loc = parse_uri(table.destination)
        if loc.scheme != "file":
            key = loc.key.strip("/") + "/"
            for prefix, holds in reserved.items():
                if key.startswith(prefix):
                    issues.add(
                        table.path,
                        f"{table.table}: destination under the reserved prefix {prefix!r} "
                        f"at the bucket root ({holds}; dpexport deletes what it finds there)",
                        value=table.written,
                        expected="a folder outside " + ", ".join(reserved),
                    )
        folder = folder_of(loc)
        folders = [f for _, f in seen]
        for other, other_folder in seen:
            if folder == other_folder:
                how = "the same folder as"
            elif folder.startswith(other_folder):
                how = "a folder inside"
            elif other_folder.startswith(folder):
                how = "a folder holding"
            else:
                continue
            issues.add(
                table.path,
                f"{table.table} exports to {table.destination}, {how} the destination of "
                f"{other.table} ({other.destination}): refreshing, rolling back or sweeping "
                "one would delete the other's files",
                value=table.written,
                expected="a destination that neither equals nor holds nor lies in another table's",
                suggestion=_own_folder(table, loc, folders) if folder == other_folder else None,
            )
        seen.append((table, folder))


def _own_folder(table: Published, loc: Location, taken: Sequence[str]) -> str | None:
    """For a table sharing another's folder, the sibling folder named after its own
    entity (``gs://b/ds/other/`` -> ``gs://b/ds/mine/``), when no table uses or holds it."""
    if loc.scheme == "file" or not loc.key.strip("/"):
        return None  # a local folder is the user's to name; a bucket root has no sibling
    entity = table.table.rsplit(".", 1)[-1]
    parent = folder_of(loc).rstrip("/").rsplit("/", 1)[0]
    mine = f"{parent}/{entity}/"
    if any(mine.startswith(f) or f.startswith(mine) for f in taken):
        return None
    return mine


def state_locations(model: DpexportConfig) -> list[tuple[Path, str, str]]:
    """The configured DLQ and token locations (spec 7.2, 7.3), at their YAML paths."""
    return [
        (
            ("dlq_configuration", "storage_location"),
            model.dlq_configuration.storage_location or "",
            "the dead-letter queue",
        ),
        (
            ("idempotency_design", "storage", "location"),
            model.idempotency_design.storage.location or "",
            "the idempotency tokens",
        ),
    ]


def check_state_locations(
    tables: Sequence[Published], locations: Sequence[tuple[Path, str, str]], issues: Issues
) -> None:
    """Report a DLQ or token location (``(path, uri, what it holds)``) that equals, lies
    in or holds a table's destination: ``lifecycle sweep`` and a FULL_REFRESH of the
    table would delete each other's objects, and readers of the table would read them.
    A location that is not a valid URI is reported by ``validate.check_location``."""
    for path, uri, holds in locations:
        if not uri or uri_problem(uri) is not None:
            continue
        folder = folder_of(parse_uri(uri))
        for table in tables:
            if not table.destination or uri_problem(table.destination) is not None:
                continue
            other = folder_of(parse_uri(table.destination))
            if folder.startswith(other):
                how = "lies in"
            elif other.startswith(folder):
                how = "holds"
            else:
                continue
            issues.add(
                path,
                f"the location of {holds} {how} the destination of {table.table} "
                f"({table.destination}): sweeping one would delete the other's objects, "
                "and readers of the table would read them",
                value=uri,
                expected="a folder outside every export destination, e.g. "
                f"{_beside(parse_uri(uri), holds)}",
            )
            break


def _beside(loc: Location, holds: str) -> str:
    """A folder at the root of the same bucket for a location, as its default is."""
    name = "dead-letter-queue/" if "dead-letter" in holds else "idempotency-tokens/"
    if loc.scheme == "file":
        return str(os.path.join(os.path.dirname(loc.bucket.rstrip("/")), name))
    return f"{loc.scheme}://{loc.bucket}/{name}"
