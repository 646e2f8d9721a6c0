"""The resolved configuration: what the rest of dpexport consumes.

The YAML models (spec blocks, human units, precedence) live beside this module and
resolve into these plain frozen dataclasses, one ``TableSpec`` per exported table.
Blocks read as they are (retry, DLQ, lease, lifecycle, replication, metrics, ...) stay
the validated, frozen models of :mod:`dpexport.config.models`, each in a typed field of
``ResolvedConfig``. Nothing downstream of ``config`` looks at raw YAML.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Literal

from dpexport.config.steps import Steps
from dpexport.storage.layout.names import FileNames

if TYPE_CHECKING:
    # Only named in annotations: a module that names ``TableSpec`` does not import pydantic.
    from dpexport.config.models import (
        BucketPolicy,
        DlqConfiguration,
        EncryptionBlock,
        IdempotencyDesign,
        LifecyclePolicies,
        Metrics,
        Replication,
        RetryConfiguration,
    )
    from dpexport.config.models.security import ServiceAccount

Format = Literal["PARQUET", "JSONL", "CSV"]
Codec = Literal["SNAPPY", "ZSTD", "GZIP", "BROTLI", "NONE"]
Mode = Literal["APPEND", "FULL_REFRESH", "INCREMENTAL"]
Granularity = Literal["hourly", "daily", "monthly"]
TableFormat = Literal["FILES", "DELTA"]

#: Codecs each format allows (CONTRACT §3).
CODECS_BY_FORMAT: dict[str, tuple[str, ...]] = {
    "PARQUET": ("SNAPPY", "ZSTD", "GZIP", "BROTLI", "NONE"),
    "JSONL": ("GZIP", "ZSTD", "BROTLI", "NONE"),
    "CSV": ("GZIP", "ZSTD", "BROTLI", "NONE"),
}


@dataclass(frozen=True)
class ParquetOptions:
    version: str = "2.6"
    row_group_size: int = 128 * 1024 * 1024  # bytes
    page_size: int = 1024 * 1024  # bytes
    dictionary: bool = True  # "PLAIN_DICTIONARY"
    #: per-column encodings, e.g. {"equipment_id": "DELTA_BINARY_PACKED"}; the key
    #: "*" applies an encoding to every column whose type allows it.
    column_encoding: dict[str, str] = field(default_factory=dict)
    compression_level: int | None = None
    #: the config sets ``row_group_size`` or ``page_size`` itself (or a column encoding
    #: or PLAIN): only dpexport's own writer honours those exactly; when nothing is
    #: pinned, DuckDB may write the file with its own sizes (engines.duckdb_copy)
    pinned: bool = False


#: JSONL ``timestamp_format`` values (spec 2.2), how a TIMESTAMP column is written:
#: ``RFC3339`` ``"2025-09-16T14:30:22.123456Z"``; ``ISO8601`` the same with ``+00:00``
#: for ``Z``; ``UNIX_EPOCH`` seconds as an exact JSON number (``1758033022.123456``, the
#: column's precision); ``UNIX_EPOCH_MILLIS`` / ``_MICROS`` / ``_NANOS`` an integer in
#: that unit, rounded down (as BigQuery's ``UNIX_MILLIS``). DATE and TIME columns keep
#: their ISO text whatever the format.
TIMESTAMP_FORMATS: tuple[str, ...] = (
    "RFC3339",
    "ISO8601",
    "UNIX_EPOCH",
    "UNIX_EPOCH_MILLIS",
    "UNIX_EPOCH_MICROS",
    "UNIX_EPOCH_NANOS",
)
#: JSONL ``null_representation``: ``null`` writes JSON ``null``; ``omit`` leaves a NULL
#: column (or struct field) out of its object; any other text is written as that JSON
#: string (``"NULL"``) for every NULL value, and a string value equal to it is an
#: export error (a reader could not tell the two apart).
NULL_JSON = "null"
NULL_OMIT = "omit"


@dataclass(frozen=True)
class JsonlOptions:
    """Spec 2.2 JSONL settings (see :data:`TIMESTAMP_FORMATS`, :data:`NULL_OMIT`).

    ``encoding`` is a Python codec name (``utf-8``, ``utf-16``, ``iso8859-1``);
    ``newline_delimited: false`` writes one JSON array, a row a line; ``schema_included``
    makes the first record ``{"$schema": {"fields": [...]}}`` (the manifest's schema).
    """

    timestamp_format: str = "RFC3339"
    null_representation: str = NULL_JSON
    encoding: str = "utf-8"
    schema_included: bool = False
    newline_delimited: bool = True


@dataclass(frozen=True)
class CsvOptions:
    delimiter: str = ","
    header: bool = True
    quote_character: str = '"'
    escape_character: str = "\\"
    null_marker: str = ""
    #: a Python codec name; the bytes on disk are in it (a BOM first for utf-16/utf-32)
    encoding: str = "utf-8"


@dataclass(frozen=True)
class SchemaEvolution:
    enabled: bool = False
    backward_compatible: bool = True
    version_column: str = "_schema_version"


@dataclass(frozen=True)
class SubPartition:
    """A spec 3.2 sub-folder: ``name`` is the path placeholder (``shard_id``,
    ``sensor_type``, ``region``, ``category``), ``expression`` the SQL over the
    source row (``equipment_id % 100``, ``user_region``)."""

    name: str
    expression: str
    #: a hive-style folder's key (``path_pattern`` ``shard={shard_id}``): the folder is
    #: ``{key}={value}``, which readers discovering partitions read as a column
    key: str | None = None


@dataclass(frozen=True)
class Partitioning:
    """How rows map to folders.

    ``time_expression`` is SQL giving the row's time value (a column name such as
    ``created_date`` or an expression such as ``date(created_at)``; for hourly
    layouts it must keep the hour, so ``date(created_at)`` with hourly granularity
    resolves to ``created_at``). ``None`` means the table is laid out by the
    export's logical date (spec 3.1). ``sub_partitions`` come after the time folders,
    in path order.
    """

    time_expression: str | None = None
    granularity: Granularity = "daily"
    sub_partitions: tuple[SubPartition, ...] = ()
    #: the time folder's ``strftime`` format when a ``path_pattern`` gives one other than
    #: the granularity's (hive style: ``dt=%Y-%m-%d/hour=%H``); None: ``%Y/%m/%d``...
    time_layout: str | None = None

    @property
    def hive(self) -> bool:
        """Whether its folders are hive style (``key=value``), which readers such as
        DuckDB's ``hive_partitioning`` and pyarrow's ``partitioning="hive"`` read as
        columns."""
        return bool(self.time_layout and "=" in self.time_layout) or any(
            s.key for s in self.sub_partitions
        )


@dataclass(frozen=True)
class Encryption:
    """``mode`` is ``None`` (store default, GMEK) or ``"CMEK"``; ``kms_key`` names the key
    (a KMS resource name; under ``--local-root`` it maps to a local key file)."""

    mode: Literal["CMEK"] | None = None
    kms_key: str | None = None
    #: encrypt in dpexport (AES-256-GCM envelope, data key wrapped by the KMS key) even
    #: on a cloud store, instead of the store's server-side encryption
    client_side: bool = False


@dataclass(frozen=True)
class GdprCompliance:
    """Spec 8.5 ``gdpr_compliance`` of one table, as the file writes it (validated).

    ``anonymization`` keeps the file's shape, ``[{column: rule}, ...]`` or
    ``{column: rule, ...}``; :func:`dpexport.transforms.gdpr.gdpr_plan` checks the rule
    names and turns it into (column, rule) pairs. ``excluded_fields`` are never read.
    """

    anonymization: tuple[dict[str, str], ...] | dict[str, str] = ()
    excluded_fields: tuple[str, ...] = ()
    #: environment variable holding the ``hash_sha256`` HMAC key
    hash_key_env: str = "DPEXPORT_HASH_KEY"
    #: the column ``consent_flag_check`` reads when the check names none
    consent_column: str | None = None


#: ``reconcile``'s window when a table sets none
RECONCILE_WINDOW = timedelta(days=7)


@dataclass(frozen=True)
class Repair:
    """One folder's late rows, as ``reconcile`` exports them (:mod:`dpexport.ops.reconcile`):
    the folder's rows whose cursor is at or before ``through``. With ``published_keys``
    only the rows whose key the folder's committed files do not hold are exported into
    it; otherwise the folder is published again whole, replacing its files. Part of the
    token's hash, with the rows the warehouse held, so the same repair is made once and
    a later one (more rows arrived) is a new export."""

    folder: str  # the top-level time folder, ``2025/09/16``
    through: object  # the cursor's inclusive bound (a datetime, date or number)
    source_rows: int
    published_keys: tuple[str, ...] = ()


@dataclass(frozen=True)
class TableSpec:
    """Everything needed to export one table, after precedence (CONTRACT §3)."""

    dataset: str
    table: str  # the entity name
    destination: str  # URI ending in "/": gs://bucket/prod/dataset/entity/
    format: Format
    compression: Codec
    mode: Mode
    partitioning: Partitioning
    #: a cron (maybe ``CRON_TZ=Area/City``-prefixed), ``continuous``, ``on_change``, or None
    #: (:mod:`dpexport.config.schedules` reads it)
    schedule: str | None = None
    change_column: str | None = None
    lookback_window: timedelta | None = None
    merge_key: tuple[str, ...] = ()
    deduplication: str | None = None  # e.g. "by post_id"; "... on consumer side" kept verbatim
    validation: tuple[object, ...] = ()  # names or {name: params}; issue 7 interprets them
    encryption: Encryption = field(default_factory=Encryption)
    max_file_size: int = 1024 * 1024 * 1024  # bytes; files roll past this
    parquet: ParquetOptions = field(default_factory=ParquetOptions)
    jsonl: JsonlOptions = field(default_factory=JsonlOptions)
    csv: CsvOptions = field(default_factory=CsvOptions)
    schema_evolution: SchemaEvolution = field(default_factory=SchemaEvolution)
    gdpr: GdprCompliance | None = None  # None: the table has no gdpr_compliance block
    compliance: tuple[str, ...] = ()
    export_type: str = "scheduled"  # scheduled | continuous | on-demand
    overwrite: Literal["table", "partitions"] = "table"  # FULL_REFRESH scope
    #: spec 4.2 ``frequency`` verbatim (``weekly``, ``on_change``); ``schedule`` holds its cron
    frequency: str | None = None
    #: the zone of a cron schedule without a ``CRON_TZ=`` prefix (``timezone:``; None: UTC)
    timezone: str | None = None
    #: spec 10.1 ``off_peak_exports`` when it holds this table's fire times (a schedule
    #: from a ``frequency`` word: :func:`dpexport.config.schedules.table_schedule`)
    off_peak: str | None = None
    #: pre-export freshness limit: the newest cursor must not be older than this
    freshness: timedelta | None = None
    #: how far back ``reconcile`` looks for late rows (``timedelta(0)``: it does not)
    reconcile: timedelta = RECONCILE_WINDOW
    #: set on the copy of a spec that ``reconcile`` exports one folder's late rows with
    repair: Repair | None = None
    #: spec 4.1 ``retention`` / ``archive_after`` of an append-only table
    retention: timedelta | None = None
    archive_after: timedelta | None = None
    #: the share of bytes its codec is expected to save (spec 2.4 ``compression_matrix``),
    #: low and high; ``None``: no band check (NONE, or ``check_compression_ratios`` off)
    ratio_band: tuple[float, float] | None = None
    #: spec 3.3 ``filenames``: the data file and sidecar name patterns
    filenames: FileNames = field(default_factory=FileNames)
    #: ``DELTA``: each commit is also a Delta Lake commit in ``{destination}_delta_log/``
    table_format: TableFormat = "FILES"
    #: setting -> YAML path it came from (``partitioning.time``, ``merge_key``, ...), so
    #: checks made later (``check_against_schemas``) can point at the right line
    origins: dict[str, str] = field(default_factory=dict, compare=False, repr=False)

    @property
    def qualified_name(self) -> str:
        return f"{self.dataset}.{self.table}"


@dataclass(frozen=True)
class WarehouseSpec:
    engine: Literal["duckdb", "bigquery"] = "duckdb"
    path: str | None = "warehouse.duckdb"  # duckdb file, relative to the config file
    project: str | None = None
    location: str | None = None
    api_endpoint: str | None = None
    storage_api_endpoint: str | None = None
    #: DuckDB caches table pages up to this: it bounds the process (RSS measured flat from
    #: 5M to 20M rows; 2GB grew it 2x); sorts for partitioned layouts spill. At 256MB
    #: DuckDB freed and re-faulted its buffers all through a COPY (kernel page faults in
    #: perf), which made a 5M-row Parquet COPY 12-15% slower than at 384MB.
    memory_limit: str = "384MB"
    threads: int = 2
    dataset: str = "diagnosticpro_prod"  # qualifies table names written without a dataset
    credentials_env: str | None = None  # env var naming a credentials file


@dataclass(frozen=True)
class ResolvedConfig:
    """The whole config, resolved: the tables after precedence, and every block the
    code reads as its validated model (named as in the YAML; an absent block is the
    model with the spec's defaults)."""

    project: str
    environment: str
    warehouse: WarehouseSpec
    buckets: dict[str, str]
    tables: tuple[TableSpec, ...]
    #: spec 7.1, read by ``RetryPolicy.from_config``
    retry_configuration: RetryConfiguration
    #: spec 7.2: retention, processing delays, ``storage_location``
    dlq_configuration: DlqConfiguration
    #: spec 7.3: token storage (location, retention) and the CONTRACT §8 ``lease``
    idempotency_design: IdempotencyDesign
    #: spec 6.3: ``cross_cloud`` server-side encryption (and ``key_provider``)
    encryption: EncryptionBlock
    #: spec 9.1 thresholds and alert channels, and the scheduler's metrics ``port``
    metrics: Metrics
    #: spec 10.2 tiers and ``auto_delete``
    lifecycle_policies: LifecyclePolicies
    #: spec 6.2, by bucket name
    bucket_policies: dict[str, BucketPolicy]
    #: the ``replication`` items, in file order
    replication: tuple[Replication, ...]
    #: spec 5.2 ``validation_checks``: the steps an export runs
    steps: Steps = field(default_factory=Steps)
    #: spec 10.1 ``pricing:``: price-table lines overridden, by ``section.store.line``
    #: (``storage.gs.STANDARD``), in USD (:mod:`dpexport.ops.prices`'s units)
    pricing: dict[str, Decimal] = field(default_factory=dict)
    #: spec 6.1 principals by name, with their roles and cloud identities (CONTRACT §11)
    service_accounts: dict[str, ServiceAccount] = field(default_factory=dict)
    #: settings accepted but not enforced (yet): ``check`` names them on stderr
    unenforced: tuple[str, ...] = ()
    source_path: str | None = None
    #: YAML path (as in ConfigIssue.path) -> 1-based line in the file
    lines: dict[str, int] = field(default_factory=dict, compare=False, repr=False)

    def table(self, name: str) -> TableSpec:
        """Find a table by ``table`` or ``dataset.table``."""
        for t in self.tables:
            if name in (t.table, t.qualified_name):
                return t
        raise KeyError(name)
