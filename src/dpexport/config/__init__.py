"""Config language: spec blocks -> typed models -> resolved ``TableSpec`` per table."""

from __future__ import annotations

from dpexport.config.resolve import load_config, load_config_text
from dpexport.config.schema_check import check_against_schemas, identifiers
from dpexport.config.spec import (
    CODECS_BY_FORMAT,
    CsvOptions,
    Encryption,
    JsonlOptions,
    ParquetOptions,
    Partitioning,
    ResolvedConfig,
    SchemaEvolution,
    SubPartition,
    TableSpec,
    WarehouseSpec,
)

__all__ = [
    "CODECS_BY_FORMAT",
    "CsvOptions",
    "Encryption",
    "JsonlOptions",
    "ParquetOptions",
    "Partitioning",
    "ResolvedConfig",
    "SchemaEvolution",
    "SubPartition",
    "TableSpec",
    "WarehouseSpec",
    "check_against_schemas",
    "identifiers",
    "load_config",
    "load_config_text",
]
