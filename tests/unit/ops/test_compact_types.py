"""compact types each increment by its manifest as ``committed_files`` read it: the
manifests are not fetched a second time (one GET each on a cloud store)."""

from __future__ import annotations

from typing import Any

import pyarrow as pa

from dpexport.config.spec import CsvOptions, JsonlOptions
from dpexport.ops.compact_types import increment_types
from dpexport.publish.committed import CommittedFile
from dpexport.publish.manifest import ARROW_SCHEMA, canonical_schema, encode_schema

OLD = pa.schema([("id", pa.int64()), ("amount", pa.decimal128(10, 2))])
NEW = OLD.append(pa.field("note", pa.string()))


class _NoReads:
    """A store that refuses every read: what increment_types needs is in the files."""

    def get(self, key: str) -> bytes:
        raise AssertionError(f"{key} read again")

    def uri(self, key: str) -> str:
        return f"gs://b/{key}"


def _file(manifest: str, at: str, doc: dict[str, Any]) -> CommittedFile:
    key = manifest.replace("manifest", "data")
    return CommittedFile(
        key, "JSONL", "GZIP", JsonlOptions(), CsvOptions(), 1, manifest, at, manifest, doc
    )


def test_types_come_from_the_manifests_already_read() -> None:
    old = {"schema": canonical_schema(OLD)}  # predates arrow_schema; same columns as m2
    files = [
        _file("t/m1.json", "2025-09-15T00:00:00Z", old),
        _file("t/m2.json", "2025-09-16T00:00:00Z", {ARROW_SCHEMA: encode_schema(OLD)}),
        _file("t/m3.json", "2025-09-17T00:00:00Z", {ARROW_SCHEMA: encode_schema(NEW)}),
    ]
    types = increment_types(_NoReads(), files)  # type: ignore[arg-type]
    assert types.target == NEW  # the newest recorded
    assert types.by_manifest == {"t/m1.json": OLD, "t/m2.json": OLD, "t/m3.json": NEW}
