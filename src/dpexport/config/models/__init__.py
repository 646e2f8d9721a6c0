"""Pydantic models of the config file: one model per spec YAML block.

These check structure and types (unknown keys, wrong types, human units). Checks that
need a suggestion or span blocks (codec per format, cron, names, secrets) live in
``dpexport.config.validate``; precedence lives in ``dpexport.config.resolve``.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from dpexport.config.models.common import Block
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
DEFAULT_EXPORTS_BUCKET = "gs://diagnosticpro-exports"


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
    memory_limit: str = "256MB"
    threads: int = 2


class DpexportConfig(Block):
    """The whole file. Top-level keys are CONTRACT §3's."""

    project: str | None = None
    environment: str = "prod"
    warehouse: Warehouse = Warehouse()
    buckets: dict[str, str] = Field(default_factory=lambda: {"exports": DEFAULT_EXPORTS_BUCKET})
    formats: Formats = Formats()
    compression_matrix: dict[str, CompressionInfo] = Field(default_factory=dict)
    append_only: dict[str, AppendOnlyEntry] = Field(default_factory=dict)
    full_refresh: dict[str, FullRefreshEntry] = Field(default_factory=dict)
    incremental: dict[str, IncrementalEntry] = Field(default_factory=dict)
    high_volume: dict[str, HighVolumeEntry] = Field(default_factory=dict)
    filenames: Filenames = Filenames()
    validation_checks: ValidationChecks = ValidationChecks()
    retry_configuration: RetryConfiguration = RetryConfiguration()
    dlq_configuration: DlqConfiguration = DlqConfiguration()
    idempotency_design: IdempotencyDesign = IdempotencyDesign()
    service_accounts: dict[str, ServiceAccount] = Field(default_factory=dict)
    bucket_policies: dict[str, BucketPolicy] = Field(default_factory=dict)
    encryption: EncryptionBlock = EncryptionBlock()
    metrics: Metrics = Metrics()
    optimization_strategies: OptimizationStrategies = OptimizationStrategies()
    lifecycle_policies: LifecyclePolicies = LifecyclePolicies()
    replication: list[Replication] = Field(default_factory=list)
    exports: list[ExportItem] = Field(default_factory=list)


__all__ = [
    "DEFAULT_DATASET",
    "DEFAULT_EXPORTS_BUCKET",
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
    "Replication",
    "RetryConfiguration",
    "SchemaEvolutionBlock",
    "ServiceAccount",
    "ValidationChecks",
    "Warehouse",
]
