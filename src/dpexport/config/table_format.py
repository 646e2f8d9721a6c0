"""A table's ``table_format`` (CONTRACT §13): ``FILES`` (the spec layout alone, the
default) or ``DELTA``, which makes its destination a Delta Lake table as well.

Set on an ``exports`` item, or at the top level for every Parquet table. ``check``
refuses DELTA where no Delta reader could read what dpexport writes: a JSONL or CSV
table, client-side encrypted files (``.enc``: a Delta reader cannot decrypt them), and
``archive_after`` (archiving moves committed files away from under the log). Stores:
see :func:`delta_store_issues`.
"""

from __future__ import annotations

from dataclasses import replace
from importlib.util import find_spec
from typing import TYPE_CHECKING, cast

from dpexport.config.issues import Issues
from dpexport.config.loader import Path, format_path
from dpexport.errors import ConfigIssue

if TYPE_CHECKING:
    from dpexport.config.entities import TableSources
    from dpexport.config.models import AppendOnlyEntry, DpexportConfig
    from dpexport.config.spec import Encryption, ResolvedConfig, TableSpec

FORMATS = ("FILES", "DELTA")
#: the URI schemes a Delta log is written to (delta-rs's object stores that dpexport
#: tests: a local folder and S3); ``gs://`` and ``az://`` only under ``--local-root``
DELTA_SCHEMES = ("file", "s3")


def table_format(
    model: DpexportConfig, src: TableSources, spec: TableSpec, issues: Issues
) -> TableSpec:
    """``spec`` with its table format: its item's ``table_format``, else the top-level
    one for a Parquet table, else FILES (``origins["table_format"]`` says where it is
    set). DELTA where it cannot work is an issue, and FILES."""
    item, ip = src.item, src.item_path
    own = item.table_format if item is not None else None
    where: Path = (*ip, "table_format") if own else ("table_format",)
    spec.origins["table_format"] = format_path(issues.original(where))
    wanted = own or model.table_format
    if wanted is None or wanted == "FILES":
        return spec
    if wanted not in FORMATS:
        issues.add(where, "is not a table format", value=wanted, expected=" or ".join(FORMATS))
        return spec
    if spec.format != "PARQUET":
        if own:  # the top-level one covers only the Parquet tables
            issues.add(
                where,
                f"a Delta Lake table holds Parquet files; this table is written as {spec.format}",
                value=wanted,
                expected="format: PARQUET, or table_format: FILES",
            )
        return spec
    append = cast("AppendOnlyEntry | None", src.entries.get("append_only"))
    problem = _refusal(spec.encryption, append)
    if problem is None and find_spec("deltalake") is None:
        issues.add(
            where,
            "the deltalake package writes the Delta log and is not installed",
            expected="pip install 'dpexport[delta]'",
        )
        return spec
    if problem is None:
        return replace(spec, table_format="DELTA")
    if own:
        path = where
    elif spec.encryption.client_side:
        path = (*ip, "client_side")
    else:
        path = (*src.paths.get("append_only", ()), "archive_after")
    if not own:
        problem = "the top-level table_format: DELTA covers this table, but " + problem
    issues.add(path, problem, expected="table_format: FILES on this table's exports item")
    return spec


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
