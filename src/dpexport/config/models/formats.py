"""Spec 2.1-2.4: format defaults (``formats``) and the ``compression_matrix``."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from dpexport.config.models.common import Block, Size, Text, Word, empty_list


class SchemaEvolutionBlock(Block):
    """Spec 2.1 ``schema_evolution`` (also an ``exports`` item's, spec 8.4)."""

    enabled: bool | None = None
    backward_compatible: bool | None = None
    #: spec 8.4 writes ``compatibility: "backward"``; it implies backward_compatible.
    compatibility: Literal["backward", "forward", "full", "none"] | None = None
    version_column: str | None = None


class ParquetFormat(Block):
    """Spec 2.1 ``format_config`` for PARQUET."""

    version: Text = "2.6"
    compression: Word | None = None
    encoding: Word = "PLAIN_DICTIONARY"
    row_group_size: Size = 128 * 1024 * 1024
    page_size: Size = 1024 * 1024
    compression_level: int | None = None
    schema_evolution: SchemaEvolutionBlock | None = None


class JsonlFormat(Block):
    """Spec 2.2 ``format_config`` for JSONL."""

    newline_delimited: bool = True
    encoding: str = "UTF-8"
    schema_included: bool = False
    timestamp_format: str = "RFC3339"
    null_representation: str = "null"
    compression: Word | None = None


class CsvFormat(Block):
    """Spec 2.3 ``format_config`` for CSV."""

    delimiter: str = ","
    header: bool = True
    quote_character: str = '"'
    escape_character: str = "\\"
    null_marker: str = ""
    encoding: str = "UTF-8"
    compression: Word | None = None


class Formats(Block):
    """``formats:`` one spec 2.x block per format, with or without its ``format_config:``."""

    PARQUET: ParquetFormat = Field(default_factory=ParquetFormat.model_construct)
    JSONL: JsonlFormat = Field(default_factory=JsonlFormat.model_construct)
    CSV: CsvFormat = Field(default_factory=CsvFormat.model_construct)


class CompressionInfo(Block):
    """One codec of spec 2.4's ``compression_matrix``; ``compression_ratio`` (``60-70%``)
    is the expected band that the post-export ratio check compares against."""

    compatibility: str | None = None
    compression_ratio: str | None = None
    speed: str | None = None
    use_for: list[str] = Field(default_factory=empty_list)
