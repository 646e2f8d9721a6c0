"""APPEND's ``deduplication: by K`` across runs (CONTRACT §8).

Within one slice the engine keeps the first row per key (``ScanRequest.dedupe_by``).
Across runs, rows inside the lookback overlap (``watermark - lookback < cursor <=
watermark``) were already offered by an earlier export; the keys that export wrote
with a cursor inside the window are kept in the export's state (``_state/exports/
{destination}{dataset}.{table}/dedup.parquet``) so the next export can drop a row whose
key it already published. The state moves
into place with the export's commit, so it never disagrees with what was published.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa

from dpexport.errors import ExportError, NotFound
from dpexport.storage import layout
from dpexport.storage.base import Store

_SEP = "\x1f"


def row_keys(batch: pa.RecordBatch, columns: Sequence[str]) -> pa.Array:
    """One text key per row, distinct for distinct key values.

    Each part is escaped (``\\`` doubled, the separator written ``\\u``) and NULL is
    ``\\N``, which no escaped value contains; so NULL differs from any text (``"\\x00"``
    included) and a separator inside a part cannot make two composite keys meet. A value
    with neither a backslash nor the separator is its own key, as it always was, so the
    keys already kept in an export's state still match."""
    import pyarrow.compute as pc

    parts = []
    for c in columns:
        text = batch.column(c).cast(pa.string())
        text = pc.replace_substring(text, "\\", "\\\\")
        text = pc.replace_substring(text, _SEP, "\\u")
        parts.append(pc.fill_null(text, "\\N"))
    return parts[0] if len(parts) == 1 else pc.binary_join_element_wise(*parts, _SEP)


class CrossRunDedup:
    """Keys already published inside the lookback window, and the ones this export adds."""

    def __init__(
        self,
        store: Store,
        dataset: str,
        table: str,
        key: Sequence[str],
        cursor: str,
        lookback: timedelta,
        dest_key: str,
    ) -> None:
        self.key_columns = list(key)
        self.cursor = cursor
        self.lookback = lookback
        self.state_key = layout.dedup_key(dataset, table, dest_key)
        self.dataset_table = f"{dataset}.{table}"
        # where the keys were kept before state was kept per export: read once, when the
        # export's own state does not exist yet
        self._legacy_key = layout.legacy_dedup_key(dataset, table)
        self._old = self._load(store)
        self._known = self._old.column("key") if self._old.num_rows else pa.array([], pa.string())
        self._new: list[pa.Table] = []
        self.dropped = 0

    @classmethod
    def published(cls, keys: pa.Array, key: Sequence[str], cursor: str) -> CrossRunDedup:
        """Drops the rows whose key is among ``keys`` (one folder's published keys, for
        ``reconcile``) and keeps no state: ``write_state`` gives nothing to move."""
        self = cls.__new__(cls)
        self.key_columns, self.cursor = list(key), cursor
        self.lookback, self.state_key, self.dataset_table = timedelta(0), "", ""
        self._old = pa.table({"key": keys})
        self._known, self._new, self.dropped = keys, [], 0
        return self

    def _load(self, store: Store) -> pa.Table:
        import pyarrow.parquet as pq

        for key in (self.state_key, self._legacy_key):
            try:
                data = store.get(key)
            except NotFound:
                continue
            try:
                table = pq.read_table(pa.BufferReader(data))  # no Python file for Arrow's threads
                if "key" not in table.column_names:
                    raise ValueError("it has no 'key' column")
                return table
            except (pa.ArrowException, ValueError) as exc:
                raise _damaged(store, key, self.dataset_table, exc) from exc
        return pa.table({"key": pa.array([], pa.string())})

    def filter(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        """Drop rows whose key was published before; remember the keys kept."""
        import pyarrow.compute as pc

        if batch.num_rows == 0:
            return batch
        keys = row_keys(batch, self.key_columns)
        if len(self._known):
            seen = pc.is_in(keys, value_set=self._known)
            keep = pc.invert(seen)
            self.dropped += batch.num_rows - (pc.sum(keep).as_py() or 0)
            batch = batch.filter(keep)
            keys = keys.filter(keep)
        if batch.num_rows:
            self._new.append(pa.table({"key": keys, "cursor": batch.column(self.cursor)}))
        return batch

    def write_state(self, directory: Path, watermark: Any) -> Path | None:
        """The new state (keys with a cursor inside the window past ``watermark``), as a
        staged file to move into place with the commit; None when unchanged."""
        import pyarrow.compute as pc
        import pyarrow.parquet as pq

        if not self._new or not self.state_key:
            return None
        frames = list(self._new)
        if self._old.num_rows and "cursor" in self._old.column_names:
            frames.insert(0, self._old.cast(frames[0].schema, safe=False))
        table = pa.concat_tables(frames)
        if watermark is not None:
            floor = watermark - self.lookback
            bound = pa.scalar(floor, type=table.schema.field("cursor").type)
            table = table.filter(pc.greater(table.column("cursor"), bound))
        path = directory / "dedup-state.parquet"
        pq.write_table(table, path)
        return path


def _damaged(store: Store, key: str, qualified_table: str, exc: Exception) -> ExportError:
    """The keys in a damaged state file are lost; the manifests could give them back
    only by re-reading every file inside the window, so the export stops and says the
    cost of each way out: going on without them could publish an overlap row twice."""
    return ExportError(
        f"the de-duplication state {store.uri(key)} cannot be read ({exc}); "
        "restore it from the bucket's object versions, or delete it to go on "
        "(rows inside the lookback window whose key was already published may then be "
        "published again, once)",
        table=qualified_table,
        code="FAILED_PRECONDITION",
    )
