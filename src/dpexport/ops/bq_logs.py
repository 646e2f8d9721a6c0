"""Export logs in BigQuery: a table ``export_logs`` the spec 9.2 queries run on as written.

When the warehouse is BigQuery, export-log records (the dicts the runner writes under
``export-logs/``) can also go to a BigQuery table, so dashboards query them where the
data lives. The columns are :data:`dpexport.ops.logs.COLUMNS` plus ``manifests``
(REPEATED STRING); times are ``DATETIME`` in UTC, which is what makes the spec's
``DATETIME_DIFF(CURRENT_DATETIME(), MAX(export_timestamp), HOUR)`` and
``export_timestamp >= CURRENT_DATE - 7`` valid GoogleSQL unchanged. The dataset is the
query's default dataset, so ``FROM export_logs`` needs no qualifier.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from dpexport.ops.logs import COLUMNS, TABLE, usd_total
from dpexport.timestamps import parse_rfc3339

if TYPE_CHECKING:
    from dpexport.engines.bigquery import BigQueryEngine

__all__ = ["DEFAULT_DATASET", "ensure_table", "query_logs", "schema", "write_logs"]

#: Where ``export_logs`` lives unless told otherwise.
DEFAULT_DATASET = "dpexport_ops"

_TYPES = {"VARCHAR": "STRING", "TIMESTAMP": "DATETIME", "BIGINT": "INT64", "DOUBLE": "FLOAT64"}


def schema() -> list[Any]:
    """The ``export_logs`` columns as BigQuery schema fields."""
    from google.cloud.bigquery import SchemaField

    fields = [SchemaField(name, _TYPES[kind]) for name, kind in COLUMNS]
    fields.append(SchemaField("manifests", "STRING", mode="REPEATED"))
    return fields


def _datetime_text(value: Any) -> str | None:
    """An RFC 3339 time (or datetime) as a BigQuery DATETIME in UTC."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        value = parse_rfc3339(value, default_zone=None)
    if not isinstance(value, datetime):
        raise TypeError(f"not a time: {value!r}")
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return value.isoformat()


def to_row(record: Mapping[str, Any]) -> dict[str, Any]:
    """One export-log record as an ``export_logs`` row (unknown keys dropped)."""
    row: dict[str, Any] = {}
    for name, kind in COLUMNS:
        value = record.get(name)
        if kind == "TIMESTAMP":
            value = _datetime_text(value)
        elif kind == "BIGINT" and value is not None:
            value = int(value)
        elif kind == "DOUBLE":
            value = usd_total(value)
        elif value is not None:
            value = str(value)
        row[name] = value
    row["manifests"] = [str(m) for m in record.get("manifests") or ()]
    return row


def ensure_table(engine: BigQueryEngine, dataset: str = DEFAULT_DATASET) -> str:
    """Create the dataset and ``export_logs`` if missing; the table id."""
    from google.cloud import bigquery

    client = engine.client
    table_id = f"{engine.project}.{dataset}.{TABLE}"
    ds = bigquery.Dataset(f"{engine.project}.{dataset}")
    if engine.location:
        ds.location = engine.location
    retry = engine.retry()
    engine.call(
        f"cannot create dataset {dataset}",
        lambda: client.create_dataset(ds, exists_ok=True, retry=retry, timeout=engine.api_deadline),
    )
    table = engine.call(
        f"cannot create table {dataset}.{TABLE}",
        lambda: client.create_table(
            bigquery.Table(table_id, schema=schema()),
            exists_ok=True,
            retry=retry,
            timeout=engine.api_deadline,
        ),
    )
    have = {f.name for f in table.schema}
    added = [f for f in schema() if f.name not in have]
    if added:  # a table made by an older dpexport (before ``cost_usd``): columns appended
        table.schema = [*table.schema, *added]
        engine.call(
            f"cannot add {', '.join(f.name for f in added)} to {dataset}.{TABLE}",
            lambda: client.update_table(
                table, ["schema"], retry=retry, timeout=engine.api_deadline
            ),
        )
    return table_id


def write_logs(
    engine: BigQueryEngine,
    records: Iterable[Mapping[str, Any]],
    *,
    dataset: str = DEFAULT_DATASET,
) -> int:
    """Append export-log records to ``dataset.export_logs`` (created if missing);
    the rows written. Each row's insert id is its ``export_id``, so a retried write
    is de-duplicated by BigQuery's best-effort streaming de-duplication."""
    from dpexport.errors import TransientError

    rows = [to_row(r) for r in records]
    if not rows:
        return 0
    table_id = ensure_table(engine, dataset)
    ids = [str(r["export_id"]) if r.get("export_id") else None for r in rows]
    errors = engine.call(
        f"cannot write to {dataset}.{TABLE}",
        lambda: engine.client.insert_rows_json(
            table_id, rows, row_ids=ids, retry=engine.retry(), timeout=engine.api_deadline
        ),
    )
    if errors:
        raise TransientError(
            f"{len(errors)} export-log row(s) rejected by {table_id}: {errors[0]}",
            code="INTERNAL_ERROR",
        )
    return len(rows)


def query_logs(
    engine: BigQueryEngine, sql: str, *, dataset: str = DEFAULT_DATASET
) -> tuple[list[str], list[tuple[Any, ...]]]:
    """Run GoogleSQL over the logs with ``dataset`` as the default dataset:
    (column names, rows), like :func:`dpexport.ops.logs.query`."""
    from google.cloud import bigquery

    config = bigquery.QueryJobConfig(
        use_legacy_sql=False,
        default_dataset=bigquery.DatasetReference(engine.project, dataset),
    )

    def go() -> tuple[list[str], list[tuple[Any, ...]]]:
        job = engine.client.query(
            sql,
            job_config=config,
            location=engine.location,
            retry=engine.retry(),
            timeout=engine.api_deadline,
            job_retry=None,
        )
        result = job.result(timeout=engine.query_deadline, retry=engine.retry())
        names = [f.name for f in result.schema]
        return names, [tuple(row.values()) for row in result]

    return engine.call("export-log query failed", go)
