"""The floor: DuckDB ``COPY ... TO`` statements in their own process.

Usage: ``python benchmarks/floor.py DATABASE SQL [SQL ...]``. Run as a child of ``run.py``,
so its wall time and peak RSS are measured the same way as ``dpexport run``'s. The
statements run one after the other on one connection (what a held scheduler's fire times
are to ``dpexport``), and each one's seconds are printed as a JSON line.
"""

from __future__ import annotations

import json
import sys
import time

import duckdb


def main() -> None:
    database, statements = sys.argv[1], sys.argv[2:]
    con = duckdb.connect(database, read_only=True)
    try:
        for sql in statements:
            start = time.perf_counter()
            con.execute(sql)
            print(json.dumps({"seconds": round(time.perf_counter() - start, 4)}), flush=True)
    finally:
        con.close()


if __name__ == "__main__":
    main()
