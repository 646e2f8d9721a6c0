"""What an export costs, in USD (spec 10.1, CONTRACT §12): the one place that prices it.

:func:`estimate` is a pure function from what an export used (:class:`Usage`) and a
price table (:func:`price_table`: :data:`~dpexport.ops.prices.PRICES` with the config's
``pricing:`` over it) to a breakdown, the ``cost_usd`` object that ``plan``, the
manifest (``metadata.cost_usd``), the export log, ``status --json`` and ``replicate``
carry::

    {"total": 0.012,
     "warehouse": {"engine": "bigquery", "bytes": ..., "jobs": 3, "usd": ...},
     "storage": {"by_class": {"STANDARD": {"bytes": ..., "usd_per_month": ...}},
                 "usd_per_month": ...},
     "operations": {"class_a": 12, "class_b": 2, "usd": ...},
     "egress": {"bytes": 0, "usd": 0.0}, "store": "gs", "prices_as_of": "2024-06-01"}

``total`` is the warehouse, the operations, the egress and one month of storage.
``warehouse`` bytes are BigQuery's bytes billed of every job the export ran (its
counting queries, its scan or ``EXPORT DATA``), for ``plan`` a dry run's bytes
processed; DuckDB's are 0. The arithmetic is exact (``Decimal``); each figure is
rounded to 6 decimals (a millionth of a dollar) once, at the end.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from dpexport.ops.prices import AS_OF, DEFAULT_CLASS, PRICES

GIB = 1024**3
TIB = 1024**4
_MICRO = Decimal("0.000001")

#: the stores priced, by URI scheme; anything else (a local folder) is ``file``
STORES = ("gs", "s3", "az")


@dataclass(frozen=True)
class Usage:
    """What one export (or one replication) used."""

    #: ``bigquery`` or ``duckdb``: whose bytes ``bytes_billed`` are
    engine: str = "duckdb"
    #: warehouse bytes billed (a dry run's bytes processed for ``plan``)
    bytes_billed: int = 0
    #: warehouse jobs those bytes came from (0 when none was metered)
    jobs: int = 0
    #: the destination's URI scheme (``gs``, ``s3``, ``az``; else ``file``)
    store: str = "file"
    #: bytes kept at the destination, by storage class
    stored: Mapping[str, int] = field(default_factory=dict)
    #: class A requests (one per object written) and class B requests (reads)
    writes: int = 0
    reads: int = 0
    #: where the reads are made, when not at ``store`` (``replicate`` reads the source)
    read_store: str | None = None
    #: bytes copied between clouds, by route ``"{from}.{to}"`` (``"gs.s3"``)
    egress: Mapping[str, int] = field(default_factory=dict)


def store_of(uri: str) -> str:
    """The price table's store of a URI: its scheme when priced, else ``file``."""
    scheme = uri.split("://", 1)[0].lower() if "://" in uri else "file"
    return scheme if scheme in STORES else "file"


def price_table(overrides: Mapping[str, Decimal] | None = None) -> dict[str, Decimal]:
    """The shipped table with ``overrides`` (the config's ``pricing:``, already checked
    to name only lines of the table) over it."""
    table = {key: Decimal(str(value)) for key, value in PRICES.items()}
    table.update(overrides or {})
    return table


def _usd(value: Decimal) -> float:
    return float(value.quantize(_MICRO, rounding=ROUND_HALF_EVEN))


def estimate(usage: Usage, prices: Mapping[str, Decimal] | None = None) -> dict[str, Any]:
    """The ``cost_usd`` breakdown of ``usage`` at ``prices`` (default: the shipped table).

    A line the table lacks (egress within one cloud, a class it does not list) costs 0.
    """
    table = prices if prices is not None else price_table()

    def price(key: str) -> Decimal:
        return table.get(key, Decimal(0))

    store = usage.store
    warehouse = Decimal(usage.bytes_billed) / TIB * price(f"warehouse.{usage.engine}.per_tib")
    storage: dict[str, Any] = {}
    storage_usd = Decimal(0)
    for cls, size in sorted(usage.stored.items()):
        usd = Decimal(size) / GIB * price(f"storage.{store}.{cls}")
        storage[cls] = {"bytes": size, "usd_per_month": _usd(usd)}
        storage_usd += usd
    operations = (
        Decimal(usage.writes) * price(f"operations.{store}.class_a")
        + Decimal(usage.reads) * price(f"operations.{usage.read_store or store}.class_b")
    ) / 1000
    egress_usd = sum(
        (Decimal(size) / GIB * price(f"egress.{route}") for route, size in usage.egress.items()),
        Decimal(0),
    )
    total = warehouse + storage_usd + operations + egress_usd
    return {
        "total": _usd(total),
        "warehouse": {
            "engine": usage.engine,
            "bytes": usage.bytes_billed,
            "jobs": usage.jobs,
            "usd": _usd(warehouse),
        },
        "storage": {"by_class": storage, "usd_per_month": _usd(storage_usd)},
        "operations": {"class_a": usage.writes, "class_b": usage.reads, "usd": _usd(operations)},
        "egress": {"bytes": sum(usage.egress.values()), "usd": _usd(egress_usd)},
        "store": store,
        "prices_as_of": AS_OF,
    }


def default_class(store: str) -> str:
    """The storage class an object lands in unless told otherwise."""
    return DEFAULT_CLASS.get(store, "STANDARD")


def export_usage(
    *,
    engine: str,
    billed: tuple[int, int],
    destination: str,
    stored_bytes: int,
    files: int,
    folders: int,
    reads: int = 0,
) -> Usage:
    """The usage of one export that wrote ``files`` data files into ``folders`` top-level
    folders: each file and its sidecar, and each folder's manifest and ``SUCCESS``
    marker, is one object written (class A); ``reads`` counts the objects read back
    (each folder's marker, merged with, and warehouse-written files re-read)."""
    store = store_of(destination)
    return Usage(
        engine=engine,
        bytes_billed=billed[0],
        jobs=billed[1],
        store=store,
        stored={default_class(store): stored_bytes},
        writes=2 * files + 2 * folders,
        reads=reads,
    )


def replication_cost(
    source: str,
    target: str,
    copied_bytes: int,
    copied_objects: int,
    prices: Mapping[str, Decimal] | None = None,
) -> dict[str, Any]:
    """What one ``replicate`` run of a table cost: each copied object read at the source
    (class B there) and written at the target (class A), its bytes' egress from the
    source's cloud to the target's (0 within one cloud), and a month of storage there."""
    src, tgt = store_of(source), store_of(target)
    usage = Usage(
        store=tgt,
        stored={default_class(tgt): copied_bytes},
        writes=copied_objects,
        reads=copied_objects,
        read_store=src,
        egress={f"{src}.{tgt}": copied_bytes} if src != tgt else {},
    )
    return estimate(usage, prices)


def warehouse_billed(engine: object, table: str) -> tuple[int, int]:
    """The bytes billed and jobs run for ``table`` (``dataset.table``) since last asked,
    taken from the engine (BigQuery meters its jobs; DuckDB bills nothing)."""
    meter = getattr(engine, "meter", None)  # engines.bigquery_meter.JobMeter
    return meter.take(table) if meter is not None else (0, 0)


def total_usd(breakdowns: list[dict[str, Any]]) -> float:
    """The sum of breakdowns' totals, added exactly."""
    return _usd(sum((Decimal(str(b["total"])) for b in breakdowns), Decimal(0)))


def of_export(
    engine: Any, spec: Any, pricing: Mapping[str, Decimal], written: list[tuple[Any, Any]]
) -> dict[str, Any]:
    """What one export cost: the warehouse jobs run for its table since its last export
    took them, the data files kept, and the objects written (each file and sidecar, each
    top folder's manifest and marker) and read (each marker merged with, each
    warehouse-written file read back). ``written``: its (folder, file) pairs."""
    tops = len({f.top for f, _ in written})
    usage = export_usage(
        engine=engine.name,
        billed=warehouse_billed(engine, spec.qualified_name),
        destination=spec.destination,
        stored_bytes=sum(w.stored_bytes for _, w in written),
        files=len(written),
        folders=tops,
        reads=tops + sum(1 for _, w in written if w.read_back),
    )
    return estimate(usage, price_table(pricing))
