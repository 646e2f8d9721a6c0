"""What each step of one export (:class:`dpexport.flow.export.Export`) hands the next:
what it prepared before reading, the slice as counted, and the files it staged."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from dpexport.engines.base import ScanRequest
from dpexport.formats.base import WrittenFile
from dpexport.formats.router import Folder
from dpexport.planning.plan import ExportPlan
from dpexport.publish.dedup import CrossRunDedup
from dpexport.transforms.pipeline import Checks, Transforms


@dataclass
class Prepared:
    """What an export knows before it reads a row."""

    source_schema: pa.Schema
    transforms: Transforms
    plan: ExportPlan
    checks: Checks
    request: ScanRequest
    dedup: CrossRunDedup | None
    #: why the rows must pass through dpexport (``serverside.write_path``'s arguments)
    reasons: dict[str, bool]
    #: the columns read, as the warehouse types them
    data_schema: pa.Schema


@dataclass
class Counted:
    """The slice as one query counted it (``slice_stats``)."""

    request: ScanRequest
    expected: int
    window: tuple[dict[str, Any] | None, Any]
    tops: list[str | None] | None
    folders: int | None

    def watermark(self, cap: Any) -> Any:
        """The cursor's highest value, no later than the plan's cap."""
        high = self.window[1]
        return high if cap is None or high is None else min(high, cap)


@dataclass
class Output:
    """The files an export staged."""

    written: list[tuple[Folder, WrittenFile]]
    job_ids: list[str]
    schema: pa.Schema
    version: str

    @property
    def rows(self) -> int:
        return sum(w.rows for _, w in self.written)
