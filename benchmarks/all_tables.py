"""The ``all_tables`` case: the whole demo warehouse (its 15 tables, the spec config's
blocks) exported by one ``dpexport run``, one table after another (``--parallel 1``)
and at once (the default: the cores the process may use), interleaved in one run.

The demo warehouse is built once per size (``dpexport.demo.prepare_demo``, in a child
so the benchmark process stays small) under ``{work}/all_tables-{rows}/``; ``rows`` is
its largest table's, ``sensor_telemetry`` (the others are set by
``demo.warehouse.table_sizes``). Each run records wall time, peak RSS, the files written
and, from the export log, each table's own seconds.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

PY = sys.executable
DPEXPORT = str(Path(PY).parent / "dpexport")
AT = "2025-09-17T00:00:00Z"
BUCKET = Path("gs/diagnosticpro-exports")
TITLE = "all 15 demo tables (spec config), one `run`"
TARGET = "default faster than `--parallel 1`"


def demo_dir(work: Path, rows: int) -> Path:
    """The demo warehouse and config for ``rows`` (built on first use, in a child: the
    benchmark process stays small, for a child's peak RSS starts at its parent's), and
    ``sizes.json``, the rows of each table."""
    base = work / f"all_tables-{rows}"
    if not (base / "sizes.json").exists():
        subprocess.run([PY, "-c", BUILD, str(base), str(rows)], check=True)
    return base


BUILD = """import json, sys
from pathlib import Path
from dpexport.demo import prepare_demo
from dpexport.demo.warehouse import table_sizes
base, rows = Path(sys.argv[1]), int(sys.argv[2])
prepare_demo(base, rows)
(base / "sizes.json").write_text(json.dumps(table_sizes(rows)))
"""


def _one(base: Path, work: Path, parallel: int | None, run_child: Callable[..., Any]) -> Any:
    root = work / "root"
    cmd = [DPEXPORT, "-c", str(base / "dpexport.yaml"), "--local-root", str(root)]
    cmd += ["run", "--at", AT, "--json"]
    cmd += ["--parallel", str(parallel)] if parallel is not None else []
    sample = run_child(cmd, 1800, work / "run.log")
    data = [p for p in (root / BUCKET / "prod").rglob("*") if p.is_file()]
    sample.files = sum(1 for p in data if ".metadata." not in p.name and _is_data(p.name))
    sample.out_bytes = sum(p.stat().st_size for p in data if _is_data(p.name))
    records = [json.loads(p.read_text()) for p in (root / BUCKET / "export-logs").rglob("*.json")]
    sample.extra = {
        "tables": len(records),
        "failed": [r["table_name"] for r in records if r["status"] != "SUCCESS"],
        "seconds": {r["table_name"]: r["duration_ms"] / 1000 for r in records},
    }
    if sample.rc != 0 or sample.extra["failed"] or len(records) != 15:
        print((work / "run.log").read_text()[-3000:], file=sys.stderr)
        sample.rc = sample.rc or 1
    return sample


def _is_data(name: str) -> bool:
    return not name.endswith(".json") and name not in ("SUCCESS", "FAILURE")


def bench(
    work: Path,
    repeat: int,
    rows: int,
    *,
    run_child: Callable[..., Any],
    fresh: Callable[[Path], Path],
    discard: Callable[[Path], None],
) -> dict[str, Any]:
    """``repeat`` pairs of runs, ``--parallel 1`` and the default, alternating which
    goes first (so the machine's load hits both alike)."""
    base = demo_dir(work, rows)
    runs: dict[str, list[dict[str, Any]]] = {"sequential": [], "parallel": []}
    for r in range(repeat):
        order = ["sequential", "parallel"] if r % 2 == 0 else ["parallel", "sequential"]
        for who in order:
            w = fresh(work / "runs" / "all_tables" / who)
            s = _one(base, w, 1 if who == "sequential" else None, run_child)
            runs[who].append(vars(s))
            print(
                f"  all_tables #{r + 1} {who:10s} {s.wall:7.2f} s  {s.rss_mb:7.0f} MB  "
                f"{s.out_bytes / 1e6:8.1f} MB  {s.files} files  rc={s.rc}",
                flush=True,
            )
            discard(w)
    total = sum(json.loads((base / "sizes.json").read_text()).values())
    return {
        "name": "all_tables",
        "title": f"{TITLE}, {total:,} rows",
        "target": TARGET,
        "rows": rows,
        "runs": runs,
    }


def render(case: dict[str, Any]) -> str:
    """The case's rows of ``results.md``: each way's wall time and peak RSS, and the
    default's time as a share of ``--parallel 1``'s, per interleaved pair."""

    def ok(who: str) -> list[dict[str, Any]]:
        return [r for r in case["runs"][who] if r["rc"] == 0 and not r["timed_out"]]

    def spread(values: list[float]) -> str:
        if not values:
            return "—"
        med = statistics.median(values)
        return f"{med:.2f} ({min(values):.2f}–{max(values):.2f})"

    seq, par = ok("sequential"), ok("parallel")
    pairs = [p["wall"] / s["wall"] for s, p in zip(seq, par, strict=False)]
    text = ""
    for who, runs, ratio in (
        ("`--parallel 1`", seq, "1"),
        ("default `--parallel`", par, spread(pairs)),
    ):
        if not runs:
            text += f"| {case['title']} | {who} | failed | | | | | {case['target']} |\n"
            continue
        rss = max(r["rss_mb"] for r in runs)
        summed = [sum(r["extra"]["seconds"].values()) for r in runs]
        out_mb = statistics.median(r["out_bytes"] for r in runs) / 1e6
        text += (
            f"| {case['title']} | {who} | {spread([r['wall'] for r in runs])} (tables' own "
            f"seconds summed {spread(summed)}) | | {rss:.0f} | {out_mb:.1f} "
            f"({runs[0]['files']} files) | {ratio}× `--parallel 1`'s time | {case['target']} |\n"
        )
    return text
