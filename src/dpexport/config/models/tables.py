"""Per-table blocks: spec 3.2 ``high_volume``, 4.1-4.3 sections, and spec 8 ``exports`` items."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from dpexport.config.models.common import Block, Duration, Size, Word, empty_list
from dpexport.config.models.formats import CsvSettings, JsonlSettings, SchemaEvolutionBlock

GranularityWord = Literal["hourly", "daily", "monthly"]


class HighVolumeEntry(Block):
    """Spec 3.2: partition expressions and the folder pattern of one high-volume table.

    ``path_pattern`` placeholders after the time part (``{shard_id}``, ``{region}``)
    take ``secondary_partition`` then ``tertiary_partition``, in order.
    """

    primary_partition: str
    secondary_partition: str | None = None
    tertiary_partition: str | None = None
    path_pattern: str | None = None


class AppendOnlyEntry(Block):
    """Spec 4.1: one append-only table."""

    reason: str | None = None
    export_mode: Word = "APPEND"
    deduplication: str | None = None
    partition_by: GranularityWord | None = None
    retention: Duration | None = None
    archive_after: Duration | None = None
    change_column: str | None = None
    lookback_window: Duration | None = None
    #: how far back ``reconcile`` compares folders with the warehouse (``0 days``: never)
    reconcile: Duration | None = None


class FullRefreshEntry(Block):
    """Spec 4.2: one table replaced on each export. ``frequency`` is ``hourly``,
    ``daily``, ``weekly``, ``monthly``, ``on_change`` or a cron expression."""

    reason: str | None = None
    export_mode: Word = "OVERWRITE"
    frequency: str | None = None
    #: the IANA zone its frequency's cron reads (``daily``: midnight there); default UTC
    timezone: str | None = None


class IncrementalEntry(Block):
    """Spec 4.3: one table exported by its changed rows."""

    reason: str | None = None
    export_mode: Word = "INCREMENTAL"
    change_column: str | None = None
    lookback_window: Duration | None = None
    merge_key: str | list[str] | None = None
    deduplication: str | None = None
    #: how far back ``reconcile`` compares folders with the warehouse (``0 days``: never)
    reconcile: Duration | None = None


class PartitioningBlock(Block):
    """An ``exports`` item's ``partitioning``: ``{field, granularity}`` (spec 8.1) or
    ``{primary, secondary[, tertiary]}`` naming spec 3.2 expressions (spec 8.2)."""

    field: str | None = None
    granularity: GranularityWord | None = None
    primary: str | None = None
    secondary: str | None = None
    tertiary: str | None = None
    #: spec 3.2's folder pattern for this table (plain or hive style, ``dt={yyyy}-{MM}-{dd}``);
    #: it wins over the table's ``high_volume`` one
    path_pattern: str | None = None


class OptimizationBlock(Block):
    """Spec 8.2 ``optimization``: Parquet layout overrides for one table.

    ``column_encoding`` is one encoding for every column whose type allows it, or a
    mapping ``{column: encoding}``.
    """

    row_group_size: Size | None = None
    page_size: Size | None = None
    column_encoding: str | dict[str, str] | None = None
    compression_level: int | None = None


class GdprBlock(Block):
    """Spec 8.5 ``gdpr_compliance``.

    ``anonymization`` is a list of ``{column: rule}`` with rule ``hash_sha256`` (keyed
    HMAC, key from the env var named by ``hash_key_env``), ``mask_except_last_4`` or
    ``truncate_last_octet``; ``excluded_fields`` are never written.
    """

    anonymization: list[dict[str, str]] | dict[str, str] = Field(default_factory=empty_list)
    excluded_fields: list[str] = Field(default_factory=empty_list)
    hash_key_env: str = "DPEXPORT_HASH_KEY"
    consent_column: str | None = None


class ExportItem(Block):
    """One spec 8 ``export_config`` block (an ``exports`` item), with or without its wrapper."""

    source: str
    destination: str | None = None
    format: Word | None = None
    compression: Word | None = None
    #: ``CMEK`` (key from ``encryption.at_rest.sensitive_data.kms_key`` or ``kms_key``)
    #: or ``GMEK``/absent for the store's default.
    encryption: Word | None = None
    kms_key: str | None = None
    #: with CMEK: encrypt client-side (envelope, key wrapped by Cloud KMS / AWS KMS) on
    #: cloud stores too, instead of the store's server-side encryption
    client_side: bool | None = None
    partitioning: PartitioningBlock | None = None
    schedule: str | None = None
    #: the IANA zone a cron ``schedule`` without a ``CRON_TZ=`` prefix reads; default UTC
    timezone: str | None = None
    mode: Word | None = None
    validation: list[str | dict[str, dict[str, Any] | None]] = Field(default_factory=empty_list)
    compliance: list[str] = Field(default_factory=empty_list)
    schema_evolution: SchemaEvolutionBlock | None = None
    optimization: OptimizationBlock | None = None
    #: spec 2.2/2.3 settings for this table only, over ``formats.JSONL``/``formats.CSV``
    #: (``csv: {escape_character: '"'}``)
    jsonl: JsonlSettings | None = None
    csv: CsvSettings | None = None
    gdpr_compliance: GdprBlock | None = None
    max_file_size: Size | None = None
    change_column: str | None = None
    lookback_window: Duration | None = None
    merge_key: str | list[str] | None = None
    deduplication: str | None = None
    #: FULL_REFRESH: ``table`` (default) replaces the whole previous snapshot;
    #: ``partitions`` replaces only the folders the new export writes.
    overwrite: Literal["table", "partitions"] | None = None
    #: Pre-export check: the newest cursor value must not be older than this.
    freshness: Duration | None = None
    #: how far back ``reconcile`` compares folders with the warehouse (``0 days``: never)
    reconcile: Duration | None = None
    #: ``DELTA``: the destination is also a Delta Lake table (CONTRACT §13); ``FILES``
    table_format: Word | None = None
    description: str | None = Field(default=None)
