"""How many Arrow bytes a batch of flat columns holds, or an upper bound of it that is
cheaper to take: what a Parquet writer measures its row groups and size limit in."""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa


def _is_flat(t: pa.DataType) -> bool:
    """A type whose arrays are one node of distinct buffers, each referenced at most once:
    there ``RecordBatch.nbytes`` (referenced bytes) is at most the buffers' total size."""
    return bool(
        pa.types.is_null(t)
        or pa.types.is_boolean(t)
        or pa.types.is_integer(t)
        or pa.types.is_floating(t)
        or pa.types.is_decimal(t)
        or pa.types.is_temporal(t)
        or pa.types.is_string(t)
        or pa.types.is_large_string(t)
        or pa.types.is_binary(t)
        or pa.types.is_large_binary(t)
        or pa.types.is_fixed_size_binary(t)
    )


@dataclass(frozen=True)
class Sizer:
    """An upper bound of a flat batch's Arrow bytes (``RecordBatch.nbytes``) without a
    Python object per column: a fixed-width column references at most its rows times
    its width plus two bitmaps' rounding bytes, so only variable-width columns (text,
    binary) are asked for their buffers. Summing every column's buffers took ~60 µs a
    batch of 22 columns: an eighth of the main thread's time in an export of 14,700
    small files."""

    bits_per_row: int
    constant: int
    variable: tuple[int, ...]

    @classmethod
    def of(cls, schema: pa.Schema) -> Sizer | None:
        """The bound for batches of ``schema``; None unless every column is flat (then
        only ``RecordBatch.nbytes`` measures them)."""
        if not all(_is_flat(f.type) for f in schema):
            return None
        bits, constant, variable = 0, 0, []
        for i, field in enumerate(schema):
            if pa.types.is_null(field.type):
                continue
            try:
                width = field.type.bit_width
            except ValueError:  # variable width
                variable.append(i)
                continue
            bits += width + 1  # the values and a validity bit
            constant += 4  # each bitmap's bytes rounded, at both ends
        return cls(bits, constant, tuple(variable))

    def bound(self, batch: pa.RecordBatch) -> int:
        fixed = (batch.num_rows * self.bits_per_row + 7) // 8 + self.constant
        return fixed + sum(batch.column(i).get_total_buffer_size() for i in self.variable)
