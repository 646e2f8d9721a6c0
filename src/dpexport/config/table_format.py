"""A table's ``table_format`` (CONTRACT §13): ``FILES`` (the spec layout alone, the
default) or ``DELTA``, which makes its destination a Delta Lake table as well.

Set on an ``exports`` item, or at the top level for every Parquet table. ``check``
refuses DELTA where no Delta reader could read what dpexport writes: a JSONL or CSV
table, client-side encrypted files (``.enc``: a Delta reader cannot decrypt them), and
``archive_after`` (archiving moves committed files away from under the log). Stores:
see :func:`delta_store_issues`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from dpexport.config.issues import Issues
from dpexport.config.loader import Path
from dpexport.errors import ConfigIssue

if TYPE_CHECKING:
    from dpexport.config.models import AppendOnlyEntry, DpexportConfig, ExportItem
    from dpexport.config.spec import Encryption, ResolvedConfig, TableFormat

FORMATS = ("FILES", "DELTA")
#: the URI schemes a Delta log is written to (delta-rs's object stores that dpexport
#: tests: a local folder and S3); ``gs://`` and ``az://`` only under ``--local-root``
DELTA_SCHEMES = ("file", "s3")


def table_format(
    model: DpexportConfig,
    item: ExportItem | None,
    ip: Path,
    fmt: str,
    encryption: Encryption,
    append: tuple[AppendOnlyEntry | None, Path],
    issues: Issues,
) -> tuple[TableFormat, Path]:
    """The table's format (its item's ``table_format``, else the top-level one for a
    Parquet table, else FILES) and where it is set. DELTA where it cannot work is an
    issue (and FILES)."""
    own = item.table_format if item is not None else None
    wanted = own or model.table_format
    where: Path = (*ip, "table_format") if own else ("table_format",)
    if wanted is None or wanted == "FILES":
        return "FILES", where
    if wanted not in FORMATS:
        issues.add(where, "is not a table format", value=wanted, expected=" or ".join(FORMATS))
        return "FILES", where
    if fmt != "PARQUET":
        if own:  # the top-level one covers only the Parquet tables
            issues.add(
                where,
                f"a Delta Lake table holds Parquet files; this table is written as {fmt}",
                value=wanted,
                expected="format: PARQUET, or table_format: FILES",
            )
        return "FILES", where
    problem = _refusal(encryption, append[0])
    if problem is None:
        return "DELTA", where
    path = (
        where
        if own
        else (*ip, "client_side")
        if encryption.client_side
        else (*append[1], "archive_after")
    )
    if not own:
        problem = "the top-level table_format: DELTA covers this table, but " + problem
    issues.add(path, problem, expected="table_format: FILES on this table's exports item")
    return "FILES", where


def _refusal(encryption: Encryption, append: AppendOnlyEntry | None) -> str | None:
    if encryption.client_side:
        return (
            "client-side encrypted files (.enc) cannot be read by any Delta reader, so a "
            "Delta table of them would list files no reader can open"
        )
    if append is not None and append.archive_after is not None:
        return (
            "archive_after moves committed folders to cold storage, which would leave the "
            "Delta log naming files that are gone"
        )
    return None


def delta_store_issues(config: ResolvedConfig) -> list[ConfigIssue]:
    """``check`` without ``--local-root``: each DELTA table whose destination is on a
    store dpexport does not write Delta logs to (GCS, Azure Blob), at its YAML path."""
    from dpexport.storage.uri import parse_uri, uri_problem

    out: list[ConfigIssue] = []
    for spec in config.tables:
        if spec.table_format != "DELTA" or uri_problem(spec.destination) is not None:
            continue
        scheme = parse_uri(spec.destination).scheme
        if scheme in DELTA_SCHEMES:
            continue
        path = spec.origins.get("table_format", "table_format")
        out.append(
            ConfigIssue(
                path,
                f"{spec.qualified_name}: a Delta log is written to a local folder or S3; "
                f"its destination is on {scheme}:// (it works there only under --local-root)",
                value=spec.destination,
                expected="an s3:// or local destination, or table_format: FILES",
                line=config.lines.get(path),
            )
        )
    return out
