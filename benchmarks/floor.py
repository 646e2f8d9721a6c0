"""The floor: one DuckDB ``COPY ... TO`` statement in its own process.

Usage: ``python benchmarks/floor.py DATABASE SQL``. Run as a child of ``run.py``, so
its wall time and peak RSS are measured the same way as ``dpexport run``'s.
"""

from __future__ import annotations

import sys

import duckdb


def main() -> None:
    database, sql = sys.argv[1], sys.argv[2]
    con = duckdb.connect(database, read_only=True)
    try:
        con.execute(sql)
    finally:
        con.close()


if __name__ == "__main__":
    main()
