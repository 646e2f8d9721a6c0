"""Pydantic models of the config file: one model per spec YAML block.

These check structure and types (unknown keys, wrong types, human units). Checks that
need a suggestion or span blocks (codec per format, cron, names, secrets) live in
``dpexport.config.validate``; precedence lives in ``dpexport.config.resolve``.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from dpexport.config.models.common import Block, Word, empty_dict, empty_list
from dpexport.config.models.formats import (
    CompressionInfo,
    CsvFormat,
    Formats,
    JsonlFormat,
    ParquetFormat,
    SchemaEvolutionBlock,
)
from dpexport.config.models.operations import (
    DlqConfiguration,
    Filenames,
    IdempotencyDesign,
    LifecyclePolicies,
    Metrics,
    OptimizationStrategies,
    Replication,
    RetryConfiguration,
    ValidationChecks,
)
from dpexport.config.models.pricing import Pricing
from dpexport.config.models.security import BucketPolicy, EncryptionBlock, ServiceAccount
from dpexport.config.models.tables import (
    AppendOnlyEntry,
    ExportItem,
    FullRefreshEntry,
    GdprBlock,
    HighVolumeEntry,
    IncrementalEntry,
    OptimizationBlock,
    PartitioningBlock,
)

DEFAULT_DATASET = "diagnosticpro_prod"


class Warehouse(Block):
    """Where tables are read. ``dataset`` qualifies table names written without one."""

    engine: Literal["duckdb", "bigquery"] = "duckdb"
    path: str | None = "warehouse.duckdb"
    dataset: str = DEFAULT_DATASET
    project: str | None = None
    location: str | None = None
    api_endpoint: str | None = None
    storage_api_endpoint: str | None = None
    credentials_env: str | None = None
    memory_limit: str = "384MB"
    threads: int = 2


class DpexportConfig(Block):
    """The whole file. Top-level keys are CONTRACT §3's."""

    project: str | None = None
    environment: str = "prod"
    warehouse: Warehouse = Field(default_factory=Warehouse.model_construct)
    #: logical name -> URI; no default: a table without a destination needs ``exports``
    buckets: dict[str, str] = Field(default_factory=empty_dict)
    formats: Formats = Field(default_factory=Formats.model_construct)
    compression_matrix: dict[str, CompressionInfo] = Field(default_factory=empty_dict)
    append_only: dict[str, AppendOnlyEntry] = Field(default_factory=empty_dict)
    full_refresh: dict[str, FullRefreshEntry] = Field(default_factory=empty_dict)
    incremental: dict[str, IncrementalEntry] = Field(default_factory=empty_dict)
    high_volume: dict[str, HighVolumeEntry] = Field(default_factory=empty_dict)
    filenames: Filenames = Field(default_factory=Filenames.model_construct)
    validation_checks: ValidationChecks = Field(default_factory=ValidationChecks.model_construct)
    retry_configuration: RetryConfiguration = Field(
        default_factory=RetryConfiguration.model_construct
    )
    dlq_configuration: DlqConfiguration = Field(default_factory=DlqConfiguration.model_construct)
    idempotency_design: IdempotencyDesign = Field(default_factory=IdempotencyDesign.model_construct)
    service_accounts: dict[str, ServiceAccount] = Field(default_factory=empty_dict)
    bucket_policies: dict[str, BucketPolicy] = Field(default_factory=empty_dict)
    encryption: EncryptionBlock = Field(default_factory=EncryptionBlock.model_construct)
    metrics: Metrics = Field(default_factory=Metrics.model_construct)
    optimization_strategies: OptimizationStrategies = Field(
        default_factory=OptimizationStrategies.model_construct
    )
    lifecycle_policies: LifecyclePolicies = Field(default_factory=LifecyclePolicies)
    replication: list[Replication] = Field(default_factory=empty_list)
    #: spec 10.1: lines of the shipped price table overridden (``dpexport.ops.prices``)
    pricing: Pricing = Field(default_factory=Pricing.model_construct)
    exports: list[ExportItem] = Field(default_factory=empty_list)
    #: ``DELTA``: every Parquet table's destination is also a Delta Lake table (CONTRACT
    #: §13) unless its item says ``table_format: FILES``
    table_format: Word | None = None


__all__ = [
    "DEFAULT_DATASET",
    "AppendOnlyEntry",
    "BucketPolicy",
    "CompressionInfo",
    "CsvFormat",
    "DlqConfiguration",
    "DpexportConfig",
    "EncryptionBlock",
    "ExportItem",
    "Filenames",
    "Formats",
    "FullRefreshEntry",
    "GdprBlock",
    "HighVolumeEntry",
    "IdempotencyDesign",
    "IncrementalEntry",
    "JsonlFormat",
    "LifecyclePolicies",
    "Metrics",
    "OptimizationBlock",
    "OptimizationStrategies",
    "ParquetFormat",
    "PartitioningBlock",
    "Pricing",
    "Replication",
    "RetryConfiguration",
    "SchemaEvolutionBlock",
    "ServiceAccount",
    "ValidationChecks",
    "Warehouse",
]
