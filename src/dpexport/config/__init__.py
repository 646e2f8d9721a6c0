"""Config language: spec blocks -> typed models -> resolved ``TableSpec`` per table.

The resolved types (:mod:`dpexport.config.spec`) are plain dataclasses; reading a
file (:func:`load_config`) needs the pydantic models, YAML and the checks. Those load
on first use of ``load_config`` or ``load_config_text``, so a module that only names
``TableSpec`` (layout, tokens, formats) does not pay for them.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from dpexport.config.schema_check import check_against_schemas, identifiers
from dpexport.config.spec import (
    CODECS_BY_FORMAT,
    CsvOptions,
    Encryption,
    GdprCompliance,
    JsonlOptions,
    ParquetOptions,
    Partitioning,
    ResolvedConfig,
    SchemaEvolution,
    SubPartition,
    TableSpec,
    WarehouseSpec,
)

if TYPE_CHECKING:
    from dpexport.config.resolve import load_config, load_config_text

__all__ = [
    "CODECS_BY_FORMAT",
    "CsvOptions",
    "Encryption",
    "GdprCompliance",
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

#: public name -> the submodule defining it, imported on first access (PEP 562)
_LAZY = {
    "load_config": "dpexport.config.resolve",
    "load_config_text": "dpexport.config.resolve",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        # also how `from dpexport.config import units` finds the submodule
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
