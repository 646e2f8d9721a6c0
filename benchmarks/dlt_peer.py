"""The peer: dlt's filesystem destination, Arrow batches from DuckDB -> local Parquet.

Usage (with the interpreter of ``benchmarks/.venv-dlt``, never the project's venv):
``python benchmarks/dlt_peer.py DATABASE TABLE OUT_DIR WORK_DIR``.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from typing import Any


def main() -> None:
    database, table, out_dir, work_dir = sys.argv[1:5]
    os.environ.setdefault("RUNTIME__DLTHUB_TELEMETRY", "false")
    import dlt
    import duckdb

    con = duckdb.connect(database, read_only=True)

    def batches() -> Iterator[Any]:
        reader = con.sql(f"SELECT * FROM bench.{table}").to_arrow_reader(122_880)
        yield from reader

    resource = dlt.resource(batches, name=table, write_disposition="replace")
    pipeline = dlt.pipeline(
        pipeline_name="bench",
        pipelines_dir=work_dir,
        destination=dlt.destinations.filesystem(bucket_url=f"file://{out_dir}"),
        dataset_name="bench",
    )
    info = pipeline.run(resource, loader_file_format="parquet")
    info.raise_on_failed_jobs()
    con.close()


if __name__ == "__main__":
    main()
