"""The schema-evolution version column (spec 2.1 ``version_column``): every row of every
batch carries the export's schema version, whatever the batch sizes, in any order, and
a new version replaces the old one at once."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa

from dpexport.config import load_config_text
from dpexport.storage.local import LocalStore
from dpexport.transforms.pipeline import Transforms

CONFIG = """
project: p
environment: prod
buckets: {exports: gs://b}
formats:
  PARQUET:
    format_config:
      schema_evolution: {enabled: true, version_column: _v}
exports:
  - source: d.t
    destination: gs://b/prod/d/t/
    format: PARQUET
"""


def test_every_row_gets_the_current_version(tmp_path: Path) -> None:
    spec = load_config_text(CONFIG).table("t")
    transforms = Transforms.for_table(spec, tmp_path, store=LocalStore(tmp_path / "bucket"))
    transforms.set_schema_version("v-one")
    seen = []
    for rows in (5, 40_000, 3, 0, 40_000, 12):
        batch = pa.record_batch({"id": pa.array(range(rows), pa.int64())})
        out = transforms.apply(batch)
        assert out.schema.names == ["id", "_v"]
        assert out.schema.field("_v").type == pa.string()
        assert out.column(1).to_pylist() == ["v-one"] * rows
        seen.append(out)
    assert [b.column(1).to_pylist()[:1] for b in seen if b.num_rows] == [["v-one"]] * 5
    transforms.set_schema_version("v-two")
    out = transforms.apply(pa.record_batch({"id": pa.array(range(7), pa.int64())}))
    assert out.column(1).to_pylist() == ["v-two"] * 7
    # the batches made before still hold the version they were made with
    assert seen[1].column(1).to_pylist() == ["v-one"] * 40_000
