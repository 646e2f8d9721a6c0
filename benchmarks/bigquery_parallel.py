"""``run --parallel`` on BigQuery: the 15 demo tables (the spec config) exported from the
BigQuery emulator by one ``dpexport run`` at each ``--parallel`` given, with every query
held ``--delay`` seconds (BigQuery takes seconds to start and run a job, the emulator
milliseconds; ``tests/latency_proxy.py`` adds the difference).

Needs the emulator running (``tools/servers.py start --env-file F``, then the variables
of ``F`` in the environment) and the project's ``.venv`` (it uses the tests' helpers)::

    .venv/bin/python benchmarks/bigquery_parallel.py --delay 1.0 --parallel 1 2 4 8

Prints one JSON line per run (seconds, queries held, outcomes). Not part of ``run.py``:
that harness runs in a venv of the runtime dependencies only, without the emulator.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from tests.bq_emulator import load_demo, require_emulator  # noqa: E402
from tests.latency_proxy import latency_front  # noqa: E402

from dpexport.demo import example_config_text  # noqa: E402
from dpexport.demo.warehouse import create_demo_warehouse, table_sizes  # noqa: E402

DPEXPORT = str(Path(sys.executable).parent / "dpexport")
LOCAL = (
    "  engine: duckdb                  # duckdb (embedded default) | bigquery\n"
    "  path: warehouse.duckdb          # relative to this file; dataset = DuckDB schema\n"
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=2000, help="sensor_telemetry's rows")
    parser.add_argument("--delay", type=float, default=1.0, help="seconds each query is held")
    parser.add_argument("--parallel", type=int, nargs="+", default=[1, 2, 4, 8])
    args = parser.parse_args()
    emulator = require_emulator()
    root = Path(os.environ["DPEXPORT_TEST_BQ_LOCAL_ROOT"])  # where EXPORT DATA writes
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        create_demo_warehouse(work / "warehouse.duckdb", args.rows)
        load_demo(emulator, work / "warehouse.duckdb", list(table_sizes(args.rows)))
        for parallel in args.parallel:
            with latency_front(emulator.rest, args.delay) as front:
                bigquery = (
                    f"  engine: bigquery\n  project: {emulator.project}\n  location: US\n"
                    f"  api_endpoint: {front.url}\n"
                    f"  storage_api_endpoint: {emulator.grpc}\n"
                )
                bucket = f"bench-parallel-{uuid.uuid4().hex[:8]}"  # no earlier run's tokens
                text = example_config_text().replace(LOCAL, bigquery)
                config = work / f"parallel-{parallel}.yaml"
                config.write_text(text.replace("diagnosticpro-exports", bucket))
                cmd = [DPEXPORT, "-c", str(config), "--local-root", str(root), "run"]
                cmd += ["--at", "2025-09-16T14:30:22Z", "--json", "--parallel", str(parallel)]
                started = time.monotonic()
                done = subprocess.run(
                    cmd,
                    capture_output=True,
                    text=True,
                    env={**os.environ, "BIGQUERY_EMULATOR_HOST": ""},
                )
                seconds = time.monotonic() - started
            results = json.loads(done.stdout) if done.returncode in (0, 1) else []
            outcomes: dict[str, int] = {}
            for result in results:
                outcomes[result["status"]] = outcomes.get(result["status"], 0) + 1
            line = {"parallel": parallel, "delay": args.delay, "seconds": round(seconds, 1)}
            line |= {"queries": len(front.spans), "outcomes": outcomes, "rc": done.returncode}
            print(json.dumps(line), flush=True)
            if done.returncode != 0:
                print(done.stderr[-2000:], file=sys.stderr)


if __name__ == "__main__":
    main()
