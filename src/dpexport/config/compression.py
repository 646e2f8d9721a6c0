"""A table's codec and the compression-ratio band its files are held to.

The codec (CONTRACT §3 precedence): the table's ``exports`` item, then, for a spec 3.2
``high_volume`` table, ``optimization_strategies.compression.high_volume_tables``, then
``formats.<FORMAT>.compression``, then the format's default. A low-latency table is one
whose schedule is ``continuous`` (spec 3.2's streaming export): it takes
``optimization_strategies.compression.low_latency_tables`` (SNAPPY in the spec: "real-time,
low-latency"), ahead of ``high_volume_tables``, as a streamed table waits on its writes.
A codec the table's format cannot take is ``check``'s error at the setting's path.

The band: spec 2.4's ``compression_matrix.<CODEC>.compression_ratio`` (``"60-70%"``), the
share of bytes the codec is expected to save; a codec the config's matrix leaves out keeps
the spec's band. Post-export verification warns outside it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from dpexport.config import units
from dpexport.config.spec import CODECS_BY_FORMAT, Codec, Format

if TYPE_CHECKING:
    from dpexport.config.issues import Issues
    from dpexport.config.models import DpexportConfig, ExportItem

DEFAULT_CODEC: dict[str, Codec] = {"PARQUET": "SNAPPY", "JSONL": "GZIP", "CSV": "GZIP"}
#: spec 2.4's ``compression_ratio`` bands, as shares of bytes saved
DEFAULT_RATIO_BANDS: dict[str, tuple[float, float]] = {
    "GZIP": (0.60, 0.70),
    "ZSTD": (0.70, 0.80),
    "SNAPPY": (0.40, 0.50),
    "BROTLI": (0.80, 0.85),
}
STRATEGY_PATH = ("optimization_strategies", "compression")


def table_codec(
    model: DpexportConfig,
    item: ExportItem | None,
    fmt: Format,
    kind: tuple[bool, bool],
    issues: Issues,
) -> Codec:
    """The table's codec by precedence (``kind``: whether it is a spec 3.2 high-volume
    table, and whether it streams); a strategy codec its format cannot take is reported
    at that path and the next layer decides."""
    if item is not None and item.compression:
        return cast(Codec, item.compression)
    strategy = model.optimization_strategies.compression
    high_volume, streams = kind
    for applies, wanted, key, what in (
        (streams, strategy.low_latency_tables, "low_latency_tables", "continuous"),
        (high_volume, strategy.high_volume_tables, "high_volume_tables", "high_volume"),
    ):
        if not (applies and wanted):
            continue
        if wanted in CODECS_BY_FORMAT[fmt]:
            return cast(Codec, wanted)
        issues.add(
            (*STRATEGY_PATH, key),
            f"{fmt} cannot be written {wanted}, and a {what} table is {fmt}",
            value=wanted,
            expected=f"one of {', '.join(CODECS_BY_FORMAT[fmt])}, or the table's own "
            "`compression` in its exports item",
        )
    return cast(Codec, getattr(model.formats, fmt).compression or DEFAULT_CODEC[fmt])


def ratio_bands(model: DpexportConfig) -> dict[str, tuple[float, float]]:
    """Each codec's expected band: the config's matrix over the spec's (a band that does
    not parse is ``check``'s to refuse, and keeps the spec's)."""
    bands = dict(DEFAULT_RATIO_BANDS)
    for codec, info in model.compression_matrix.items():
        if info.compression_ratio is None:
            continue
        try:
            bands[codec.upper()] = units.parse_percent_range(info.compression_ratio)
        except ValueError:
            continue
    return bands
