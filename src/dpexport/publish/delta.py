"""The Delta Lake log of a ``table_format: DELTA`` table (CONTRACT §13).

Each dpexport commit is also one Delta commit in ``{destination}_delta_log/``, made
with delta-rs (``deltalake``) for the files dpexport already wrote: it adds the
export's data files, and removes the files a FULL_REFRESH (or ``compact``'s snapshot,
or a folder ``reconcile`` publishes again) replaces. delta-rs never writes data here;
the table is unpartitioned (rows keep every column; the spec's folders are just paths),
and each file's stats carry its row count.

It is decided before the commit point (:func:`plan`: the files, the schema, where the
log lives; a store or a type Delta cannot take fails the export there, nothing
published) and recorded in the journal, then made after the moves and before the
markers (:func:`commit`), so a reader of the log never sees a file that is not in place
and ``SUCCESS`` never vouches for rows the log lacks. The Delta commit carries an app
transaction (``txn``) named after the export, so recovery rolling the journal forward
makes it once: a log that has it is left as it is.

A new nullable column is added to the table's schema first (a metadata commit, Delta's
own schema evolution); a column whose type changed fails the export before its commit
point, as no Delta reader could read the old and new files as one column.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from dpexport.errors import ExportError
from dpexport.storage import layout
from dpexport.storage.base import Store, innermost
from dpexport.storage.cloud import require

if TYPE_CHECKING:
    from dpexport.storage.s3 import S3Store

log = logging.getLogger(__name__)

#: the folder of a Delta table's transaction log, below its destination
LOG_FOLDER = "_delta_log/"
#: a commit's app transaction id is this and the export id (its version is always 1)
APP_PREFIX = "dpexport-"


@dataclass(frozen=True)
class DataFile:
    """One data file an export publishes: its final key, stored bytes and rows."""

    key: str
    size: int
    rows: int


def location(store: Store, dest_key: str) -> tuple[str, dict[str, str]]:
    """The Delta table URI of a destination on ``store`` and delta-rs's storage options.

    A local folder (``--local-root`` included) and S3 (endpoint, region, the store's
    own credentials and server-side encryption) are supported; any other store is an
    export error before the commit point."""
    from dpexport.storage.local import LocalStore
    from dpexport.storage.s3 import S3Store

    backend = innermost(store)  # under the retrying and fault-injecting wrappers
    if isinstance(backend, LocalStore):  # a folder, under --local-root too
        return str((backend.root / dest_key).resolve()), {}
    if isinstance(backend, S3Store):
        return f"s3://{backend.bucket_name}/{dest_key}", _s3_options(backend)
    raise ExportError(
        f"table_format: DELTA writes its log to a local folder or S3; {store.uri(dest_key)} "
        "is on another store (set table_format: FILES, or export it to S3)",
        code="INVALID_ARGUMENT",
    )


def _s3_options(store: S3Store) -> dict[str, str]:
    client = store.client
    creds = client._request_signer._credentials  # the store's own (a principal's role)
    opts = {
        "AWS_REGION": client.meta.region_name or "us-east-1",
        # S3's conditional create (If-None-Match) keeps two writers of one version apart
        "conditional_put": "etag",
    }
    endpoint = client.meta.endpoint_url
    if endpoint and not endpoint.startswith("https://s3."):
        opts["AWS_ENDPOINT_URL"] = endpoint
        opts["AWS_ALLOW_HTTP"] = str(endpoint.startswith("http://")).lower()
    if creds is not None:
        frozen = creds.get_frozen_credentials()
        opts["AWS_ACCESS_KEY_ID"], opts["AWS_SECRET_ACCESS_KEY"] = (
            frozen.access_key,
            frozen.secret_key,
        )
        if frozen.token:
            opts["AWS_SESSION_TOKEN"] = frozen.token
    sse = store._sse()
    if sse.get("ServerSideEncryption"):
        opts["aws_server_side_encryption"] = sse["ServerSideEncryption"]
    if sse.get("SSEKMSKeyId"):
        opts["aws_sse_kms_key_id"] = sse["SSEKMSKeyId"]
    return opts


def written_schema(files: list[Any], schema: pa.Schema) -> pa.Schema:
    """The Arrow schema of the Parquet files as written (a reader's view of them): the
    first file's footer when it is at hand locally, else the export's schema."""
    import pyarrow.parquet as pq

    for wf in files[:1]:
        if wf.path.exists():
            return pq.read_schema(wf.path)
    return schema


def _open(uri: str, options: dict[str, str]) -> Any:
    """The Delta table at ``uri``, or None when there is none yet."""
    from deltalake import DeltaTable
    from deltalake.exceptions import TableNotFoundError

    try:
        return DeltaTable(uri, storage_options=options)
    except TableNotFoundError:
        return None


def delta_schema(schema: pa.Schema, table: str) -> str:
    """The Delta schema (JSON) of the written Arrow schema; a type Delta has no
    counterpart for is an export error."""
    from deltalake import Schema

    try:
        return str(Schema.from_arrow(schema).to_json())
    except Exception as exc:  # delta-rs raises its own error kinds for unsupported types
        raise ExportError(
            f"table_format: DELTA cannot hold this table's columns ({exc}); cast them in the "
            "source (a view), or set table_format: FILES",
            table=table,
            code="INVALID_ARGUMENT",
        ) from exc


def plan(
    store: Store,
    dest_key: str,
    *,
    export_id: str,
    table: str,
    schema: pa.Schema,
    files: Iterable[DataFile],
    retired: Iterable[str],
    whole: bool,
) -> dict[str, Any] | None:
    """The journal's ``delta`` entry: the files to add and remove (paths relative to
    the destination), the schema, and ``overwrite`` when the export replaces the whole
    table (FULL_REFRESH of a table), so the log drops every file it held and takes the
    new schema; None for an export that changes nothing in an existing table (no rows
    past the watermark). Raises (before the commit point) when the log cannot be
    written."""
    require("deltalake", "delta")  # before the commit point, naming the extra
    uri, options = location(store, dest_key)
    schema_json = delta_schema(schema, table)
    current = _open(uri, options)
    if current is not None and not whole:
        _check_types(current, schema, table)
    data = [d for d in retired if _is_data(d)]
    adds = [{"path": f.key[len(dest_key) :], "size": f.size, "rows": f.rows} for f in files]
    if current is not None and not whole and not adds and not data:
        return None
    return {
        "destination": dest_key,
        "app_id": APP_PREFIX + export_id,
        "mode": "overwrite" if whole else "append",
        "schema": schema_json,
        "adds": adds,
        "removes": [k[len(dest_key) :] for k in data if k.startswith(dest_key)],
    }


def _is_data(key: str) -> bool:
    name = layout.key_name(key)
    return not (
        layout.is_marker(name) or layout.is_manifest(name) or name.endswith(".metadata.json")
    )


def _check_types(table: Any, schema: pa.Schema, name: str) -> None:
    """A column the log already has must keep its type."""
    from deltalake import Schema

    have = {f.name: f.type for f in table.schema().fields}
    for field in Schema.from_arrow(schema).fields:
        if field.name in have and str(have[field.name]) != str(field.type):
            raise ExportError(
                f"column {field.name!r} is {field.type} now but the Delta table holds it as "
                f"{have[field.name]}: Delta readers cannot read both as one column (set "
                "table_format: FILES, or export it as a new table)",
                table=name,
                code="INVALID_ARGUMENT",
            )


def commit(store: Store, entry: dict[str, Any]) -> None:
    """Make the journal's Delta commit, once: a log whose app transactions hold this
    export's is left as it is (recovery after the commit landed)."""
    from deltalake import CommitProperties, Schema, Transaction
    from deltalake.transaction import create_table_with_add_actions

    uri, options = location(store, str(entry["destination"]))
    app_id = str(entry["app_id"])
    props = CommitProperties(app_transactions=[Transaction(app_id, 1)])
    schema = Schema.from_json(entry["schema"])
    adds = list(_adds(entry["adds"]))
    table = _open(uri, options)
    if table is None:
        create_table_with_add_actions(
            uri, schema, adds, mode="error", storage_options=options, commit_properties=props
        )
        return
    if table.transaction_version(app_id) is not None:
        return  # made before a crash: recovery does not add the files twice
    actions: list[Any] = list(adds)
    if entry["mode"] == "append":
        _add_columns(table, schema)
        actions += list(_removes(table, entry["removes"]))
    table.create_write_transaction(
        actions, mode=entry["mode"], schema=schema, commit_properties=props
    )


def _adds(items: Iterable[dict[str, Any]]) -> Iterator[Any]:
    from deltalake.transaction import AddAction

    now = int(time.time() * 1000)
    for item in items:
        stats = json.dumps({"numRecords": int(item["rows"])})
        yield AddAction(str(item["path"]), int(item["size"]), {}, now, True, stats)


def _removes(table: Any, paths: Iterable[str]) -> Iterator[Any]:
    """Remove actions for the retired files the log holds (a file retired that it never
    listed, written before the table was a Delta table, needs none)."""
    from deltalake.transaction import RemoveAction

    held = set(table.get_add_actions(flatten=True).column("path").to_pylist())
    now = int(time.time() * 1000)
    for path in paths:
        if path in held:
            yield RemoveAction(path, True, now)


def _add_columns(table: Any, schema: Any) -> None:
    """Delta's schema evolution: the columns the log does not have yet, nullable."""
    from deltalake import Field

    have = {f.name for f in table.schema().fields}
    new = [
        Field(f.name, f.type, nullable=True, metadata=f.metadata)
        for f in schema.fields
        if f.name not in have
    ]
    if new:
        log.info("adding column(s) %s to the Delta table", ", ".join(f.name for f in new))
        table.alter.add_columns(new)
