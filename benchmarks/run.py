"""dpexport against DuckDB's own ``COPY ... TO`` (the floor) and dlt (the peer), in one run.

    .venv/bin/python benchmarks/run.py --rows 5000000 --repeat 3

Builds (once, cached under ``benchmarks/.work``) a DuckDB file with synthetic
``bench.sensor_telemetry`` and ``bench.users``, then for each case runs the floor and
``dpexport run`` as child processes, interleaved and repeated, and records wall time,
peak RSS (``os.wait4`` of each child), output bytes and the ratio to the floor (per
repeat, floor and dpexport back to back, so machine load hits both alike). Results go
to ``benchmarks/results/<rows>.json``; ``benchmarks/results.md`` is rendered from every
JSON file there. See ``benchmarks/README.md``.

It measures dpexport as ``pip install dpexport`` installs it: the harness re-runs itself
in ``benchmarks/.venv-run`` (built on first use: dpexport, editable, with its runtime
dependencies only, pinned by constraints.txt), and the floor runs there too. The
project's ``.venv`` also holds the test suite's readers (pandas, polars), which bring
numpy, which pyarrow then imports in every process (~70 ms here). ``--dev-venv`` measures
in the venv the harness was started from.
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import all_tables
import data
import report

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
PY = sys.executable
DPEXPORT = str(Path(PY).parent / "dpexport")
DLT_PY = HERE / ".venv-dlt" / "bin" / "python"
#: dpexport with its runtime dependencies only (module doc)
RUN_VENV = HERE / ".venv-run"
AT = "2025-09-17T00:00:00Z"
#: DuckDB's buffer pool cap in the generated config (``warehouse.memory_limit``)
MEMORY_LIMIT = {"value": "384MB"}


@dataclass
class Sample:
    wall: float
    rss_mb: float
    rc: int
    timed_out: bool = False
    out_bytes: int = 0
    files: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


def run_child(
    cmd: list[str], timeout: float, log: Path, env: dict[str, str] | None = None
) -> Sample:
    """Run ``cmd``; wall time and the child's own peak RSS (``wait4``), killed at ``timeout``."""
    with log.open("wb") as out:
        t0 = time.perf_counter()
        proc = subprocess.Popen(
            cmd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True, env=env
        )
        killed = threading.Event()

        def kill() -> None:
            killed.set()
            os.killpg(proc.pid, signal.SIGKILL)

        timer = threading.Timer(timeout, kill)
        timer.start()
        try:
            _, status, usage = os.wait4(proc.pid, 0)
        finally:
            timer.cancel()
        wall = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
    return Sample(wall, usage.ru_maxrss / 1024, proc.returncode, killed.is_set())


def tree_bytes(path: Path, keep: Callable[[Path], bool] = lambda p: True) -> tuple[int, int]:
    total = files = 0
    for p in path.rglob("*"):
        if p.is_file() and keep(p):
            total += p.stat().st_size
            files += 1
    return total, files


def is_dpexport_data(p: Path) -> bool:
    name = p.name
    return (
        not name.endswith(".metadata.json")
        and not name.startswith("manifest_")
        and name not in ("SUCCESS", "FAILURE")
        and any(f".{ext}" in name for ext in ("parquet", "jsonl", "csv"))
    )


# -- the contenders ---------------------------------------------------------------------


def config_text(
    db: Path, table: str, options: dict[str, Any], formats: dict[str, Any] | None = None
) -> str:
    item = {
        "source": f"{data.DATASET}.{table}",
        "destination": f"gs://bench/out/{table}/",
        "mode": "FULL_REFRESH",
        **options,
    }
    doc = {
        "project": "bench",
        "environment": "bench",
        "warehouse": {
            "engine": "duckdb",
            "path": str(db),
            "threads": 2,
            "memory_limit": MEMORY_LIMIT["value"],
        },
        "buckets": {"exports": "gs://bench"},
        "exports": [{"export_config": item}],
    }
    if formats:
        doc["formats"] = formats
    return json.dumps(doc, indent=2)  # JSON is YAML


def dpexport_run(
    work: Path,
    db: Path,
    table: str,
    options: dict[str, Any],
    timeout: float,
    at: str = AT,
    formats: dict[str, Any] | None = None,
) -> Sample:
    cfg = work / "dpexport.yaml"
    cfg.write_text(config_text(db, table, options, formats))
    root = work / "root"
    cmd = [DPEXPORT, "-c", str(cfg), "--local-root", str(root), "run", "--at", at, "--json"]
    sample = run_child(cmd, timeout, work / "dpexport.log")
    sample.out_bytes, sample.files = tree_bytes(root / "gs" / "bench" / "out", is_dpexport_data)
    logs = sorted((root / "gs" / "bench" / "export-logs").rglob("*.json"), key=os.path.getmtime)
    if logs:
        record = json.loads(logs[-1].read_text())
        sample.extra = {"in_process_s": record["duration_ms"] / 1000, "rows": record["rows"]}
    if sample.rc != 0 and not sample.timed_out:
        print((work / "dpexport.log").read_text()[-3000:], file=sys.stderr)
    return sample


def floor_run(
    work: Path, db: Path, select: str, target: str, options: str, timeout: float
) -> Sample:
    """DuckDB's ``COPY`` of ``select`` to ``target`` with ``options``, in its own process."""
    statement = f"COPY ({select}) TO '{work / 'floor' / target}' ({options})"
    return _floor(work, db, [statement], timeout)


def floor_in_one_process(work: Path, db: Path, selects: list[str]) -> Sample:
    """DuckDB's ``COPY`` of each SELECT to Snappy Parquet, one after the other in one
    process; ``extra["seconds"]`` holds each statement's time."""
    statements = [
        f"COPY ({select}) TO '{work / 'floor' / f't{i}.parquet'}' "
        "(FORMAT parquet, COMPRESSION snappy)"
        for i, select in enumerate(selects)
    ]
    return _floor(work, db, statements, 600)


def _floor(work: Path, db: Path, statements: list[str], timeout: float) -> Sample:
    """``floor.py`` running ``statements`` (writing under ``work/floor``): the sample,
    each statement's seconds in ``extra["seconds"]``, and what they wrote."""
    out = work / "floor"
    out.mkdir(parents=True, exist_ok=True)
    log = work / "floor.log"
    sample = run_child([PY, str(HERE / "floor.py"), str(db), *statements], timeout, log)
    seconds = [
        json.loads(line)["seconds"] for line in log.read_text().splitlines() if line[:1] == "{"
    ]
    if len(seconds) == len(statements):
        sample.extra = {"seconds": seconds}
    elif sample.rc == 0:
        sample.rc = 1  # it exited 0 without timing every statement
    sample.out_bytes, sample.files = tree_bytes(out)
    return sample


def dlt_run(work: Path, db: Path, table: str, timeout: float) -> Sample:
    out = work / "dlt"
    env = {**os.environ, "RUNTIME__DLTHUB_TELEMETRY": "false"}
    cmd = [str(DLT_PY), str(HERE / "dlt_peer.py"), str(db), table, str(out), str(work / "dltw")]
    sample = run_child(cmd, timeout, work / "dlt.log", env)
    sample.out_bytes, sample.files = tree_bytes(out, lambda p: p.suffix == ".parquet")
    return sample


# -- the cases --------------------------------------------------------------------------

TELEMETRY = f"SELECT * FROM {data.DATASET}.sensor_telemetry"
#: spec 2.1's Parquet block, as written (examples/diagnosticpro.yaml)
SPEC_PARQUET = {
    "PARQUET": {
        "format_config": {
            "version": "2.6",
            "compression": "SNAPPY",
            "encoding": "PLAIN_DICTIONARY",
            "row_group_size": "128MB",
            "page_size": "1MB",
            "schema_evolution": {
                "enabled": True,
                "backward_compatible": True,
                "version_column": "_schema_version",
            },
        }
    }
}
HOUR = "strftime(created_at, '%Y-%m-%dT%H')"


@dataclass
class Case:
    name: str
    title: str
    table: str
    options: dict[str, Any]
    #: (select, target name, COPY options) or None (no floor)
    floor: tuple[str, str, str] | None
    target: str
    peer: bool = False
    max_rows: int | None = None  # run only at or below this size (full layout)
    #: the config's ``formats`` block (spec 2.1's Parquet block), or None
    formats: dict[str, Any] | None = None


CASES = [
    Case(
        "parquet_snappy",
        "Parquet SNAPPY, one folder",
        "sensor_telemetry",
        {"format": "PARQUET", "compression": "SNAPPY"},
        (TELEMETRY, "t.parquet", "FORMAT parquet, COMPRESSION snappy"),
        "≤ 1.15×, output ≤ floor",
        peer=True,
    ),
    Case(
        "parquet_snappy_pinned",
        "Parquet SNAPPY, one folder, row group/page sizes pinned (dpexport's own writer)",
        "sensor_telemetry",
        {
            "format": "PARQUET",
            "compression": "SNAPPY",
            "optimization": {"row_group_size": "128MB", "page_size": "1MB"},
        },
        (TELEMETRY, "t.parquet", "FORMAT parquet, COMPRESSION snappy"),
        "≤ 1.15×, output ≤ floor",
    ),
    Case(
        "parquet_spec_block",
        "Parquet, spec 2.1's block as written (128MB row groups, 1MB pages, "
        "PLAIN_DICTIONARY, 2.6, SNAPPY, _schema_version)",
        "sensor_telemetry",
        {"format": "PARQUET"},
        (TELEMETRY, "t.parquet", "FORMAT parquet, COMPRESSION snappy"),
        "≤ 1.15×, ≤ 600 MB, output ≤ floor",
        formats=SPEC_PARQUET,
    ),
    Case(
        "startup_run",
        "`run` of spec 2.1's Parquet block on 2,000 rows (a process's fixed cost)",
        "sensor_telemetry_2k",
        {"format": "PARQUET"},
        (
            f"SELECT * FROM {data.DATASET}.sensor_telemetry_2k",
            "t.parquet",
            "FORMAT parquet, COMPRESSION snappy",
        ),
        "none: the fixed part of every ratio above",
        formats=SPEC_PARQUET,
    ),
    Case(
        "parquet_zstd",
        "Parquet ZSTD, one folder",
        "sensor_telemetry",
        {"format": "PARQUET", "compression": "ZSTD"},
        (TELEMETRY, "t.parquet", "FORMAT parquet, COMPRESSION zstd"),
        "≤ 1.15×",
    ),
    Case(
        "jsonl_gzip",
        "JSONL GZIP",
        "sensor_telemetry",
        {"format": "JSONL", "compression": "GZIP"},
        (TELEMETRY, "t.jsonl.gz", "FORMAT json, COMPRESSION gzip"),
        "≤ 0.3×",
    ),
    Case(
        "csv_gzip",
        "CSV GZIP",
        "sensor_telemetry",
        {"format": "CSV", "compression": "GZIP"},
        (TELEMETRY, "t.csv.gz", "FORMAT csv, HEADER, COMPRESSION gzip"),
        "≤ 0.3×",
    ),
    Case(
        "hour_sensor",
        "Parquet ZSTD by hour + sensor_type (576 folders)",
        "sensor_telemetry",
        {
            "format": "PARQUET",
            "compression": "ZSTD",
            "partitioning": {
                "primary": "created_at",
                "granularity": "hourly",
                "secondary": "sensor_type",
            },
        },
        (
            f"SELECT *, {HOUR} AS hour_key FROM {data.DATASET}.sensor_telemetry",
            "parts",
            "FORMAT parquet, COMPRESSION zstd, PARTITION_BY (hour_key, sensor_type), "
            "WRITE_PARTITION_COLUMNS true",
        ),
        "≤ 1.3×",
    ),
    Case(
        "full_layout",
        "Parquet ZSTD, spec 3.2 full layout (date/hour/shard/sensor_type, 57,600 folders)",
        "sensor_telemetry",
        {
            "format": "PARQUET",
            "compression": "ZSTD",
            "partitioning": {
                "primary": "created_at",
                "granularity": "hourly",
                "secondary": "equipment_id_shard",
                "tertiary": "sensor_type",
            },
        },
        (
            f"SELECT *, {HOUR} AS hour_key, equipment_id % 100 AS shard_id "
            f"FROM {data.DATASET}.sensor_telemetry",
            "parts",
            "FORMAT parquet, COMPRESSION zstd, PARTITION_BY (hour_key, shard_id, sensor_type), "
            "WRITE_PARTITION_COLUMNS true",
        ),
        "≤ 60 s at 1 M rows",
        max_rows=1_000_000,
    ),
]
USERS_OPTIONS = {
    "format": "PARQUET",
    "compression": "SNAPPY",
    "mode": "INCREMENTAL",
    "change_column": "updated_at",
    "merge_key": "user_id",
}


#: fire times of the INCREMENTAL case under ``dpexport schedule``: the first export at
#: USERS_FIRST_AT, two with nothing changed, then the one after 1% changed at USERS_SECOND_AT
USERS_SCHEDULE = "0 0,14 * * *"


def schedule_run(work: Path, db: Path, hold: bool) -> Sample:
    """``dpexport schedule --from .. --until ..``: the INCREMENTAL fire times in one process;
    the first and the 1%-changed ticks' times come from its JSON lines."""
    cfg = work / "dpexport.yaml"
    cfg.write_text(config_text(db, "users", {**USERS_OPTIONS, "schedule": USERS_SCHEDULE}))
    start = datetime.fromisoformat(data.USERS_FIRST_AT) - timedelta(hours=1)
    cmd = [DPEXPORT, "-c", str(cfg), "--local-root", str(work / "root"), "schedule", "--json"]
    cmd += ["--from", start.isoformat(), "--until", data.USERS_SECOND_AT]
    cmd += ["--hold"] if hold else []
    sample = run_child(cmd, 900, work / "schedule.log")
    ticks = {}
    for line in (work / "schedule.log").read_text().splitlines():
        if line.startswith("{"):
            record = json.loads(line)
            ticks[record["at"]] = record
    first, changed = ticks.get(data.USERS_FIRST_AT), ticks.get(data.USERS_SECOND_AT)
    if sample.rc != 0 or first is None or changed is None:
        print((work / "schedule.log").read_text()[-3000:], file=sys.stderr)
        sample.rc = sample.rc or 1
        return sample
    sample.extra = {
        "first_s": first["seconds"],
        "changed_s": changed["seconds"],
        "changed_rows": changed["rows"],
        "ticks": len(ticks),
    }
    return sample


def fresh(path: Path) -> Path:
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    return path


#: where finished runs of many files wait to be deleted (see ``discard``); set by main
TRASH_DIR: Path | None = None


def discard(path: Path) -> None:
    """Delete a finished run's output, or, when it holds many files, move it aside and
    delete it after the last case. This machine's ext4 has no journal, and there the
    kernel skips inodes freed in the last minutes when it allocates new ones (perf:
    60 % of file creation in ``recently_deleted``): deleting 115,000 files right before
    a run made that run's 115,000 file creations 5-10x slower, whichever tool ran."""
    many = len(list(itertools.islice(path.rglob("*"), 1000))) == 1000
    if many and TRASH_DIR is not None:
        path.rename(TRASH_DIR / f"{len(list(TRASH_DIR.iterdir()))}")
    else:
        shutil.rmtree(path, ignore_errors=True)


def bench_case(case: Case, db: Path, work: Path, repeat: int, timeout: float, rows: int) -> dict:
    res: dict[str, Any] = {"name": case.name, "title": case.title, "target": case.target}
    runs: dict[str, list[Sample]] = {"floor": [], "dpexport": [], "dlt": []}
    floor_gave_up = False
    for r in range(repeat):
        order = ["floor", "dpexport"] if r % 2 == 0 else ["dpexport", "floor"]
        if case.peer and DLT_PY.exists():
            order.append("dlt")
        for who in order:
            w = fresh(work / case.name / who)
            if who == "floor":
                if case.floor is None or floor_gave_up:
                    continue
                s = floor_run(w, db, *case.floor, timeout=timeout)
                floor_gave_up = s.timed_out  # one timeout is the answer; don't repeat it
            elif who == "dpexport":
                s = dpexport_run(
                    w, db, case.table, case.options, max(timeout, 900), formats=case.formats
                )
            else:
                s = dlt_run(w, db, case.table, timeout)
            runs[who].append(s)
            print(
                f"  {case.name} #{r + 1} {who:9s} {s.wall:7.2f} s  {s.rss_mb:7.0f} MB"
                f"  {s.out_bytes / 1e6:8.1f} MB  rc={s.rc}{' TIMEOUT' if s.timed_out else ''}",
                flush=True,
            )
            discard(w)
    res["runs"] = {k: [vars(s) for s in v] for k, v in runs.items() if v}
    res["rows"] = rows
    return res


def bench_incremental(db: Path, work: Path, repeat: int, rows: int) -> dict:
    """First export (99% of users) vs the next one after 1% of rows changed."""
    full: list[Sample] = []
    incr: list[Sample] = []
    floor: list[Sample] = []
    scheduled: list[Sample] = []
    held: list[Sample] = []
    first, second = (
        at.replace("T", " ").rstrip("Z") for at in (data.USERS_FIRST_AT, data.USERS_SECOND_AT)
    )
    changed = (
        f"SELECT * FROM {data.DATASET}.users WHERE updated_at > TIMESTAMP '{first}' "
        f"AND updated_at <= TIMESTAMP '{second}'"
    )
    before = f"SELECT * FROM {data.DATASET}.users WHERE updated_at <= TIMESTAMP '{first}'"
    held_floor: list[Sample] = []
    for r in range(repeat):
        w = fresh(work / "incremental")
        full.append(dpexport_run(w, db, "users", USERS_OPTIONS, 900, data.USERS_FIRST_AT))
        # the floor of the next export: DuckDB's own COPY of the changed rows
        floor.append(
            floor_run(w, db, changed, "t.parquet", "FORMAT parquet, COMPRESSION snappy", 300)
        )
        incr.append(dpexport_run(w, db, "users", USERS_OPTIONS, 900, data.USERS_SECOND_AT))
        incr[-1].out_bytes -= full[-1].out_bytes  # only what the second export added
        incr[-1].files -= full[-1].files
        print(
            f"  incremental #{r + 1} first {full[-1].wall:.2f} s, "
            f"after 1% changed {incr[-1].wall:.2f} s",
            flush=True,
        )
        discard(w)
        # the floor of a held fire time: DuckDB's COPY of the first slice, then of the 1%,
        # one after the other in one process
        w = fresh(work / "incremental")
        held_floor.append(floor_in_one_process(w, db, [before, changed]))
        discard(w)
        for hold in (False, True):
            s = schedule_run(fresh(work / "incremental"), db, hold)
            (held if hold else scheduled).append(s)
            print(
                f"  incremental #{r + 1} schedule{' --hold' if hold else ''}: first tick "
                f"{s.extra.get('first_s', 0):.3f} s, 1% tick {s.extra.get('changed_s', 0):.3f} s",
                flush=True,
            )
            discard(work / "incremental")
    return {
        "name": "incremental",
        "title": f"INCREMENTAL users ({data.users_rows(rows):,} rows), 1% changed",
        "target": "≤ 5% of the full export",
        "rows": data.users_rows(rows),
        "runs": {
            "full": [vars(s) for s in full],
            "incremental": [vars(s) for s in incr],
            "floor": [vars(s) for s in floor],
            "schedule": [vars(s) for s in scheduled],
            "schedule_hold": [vars(s) for s in held],
            "floor_held": [vars(s) for s in held_floor],
        },
    }


def bench_startup(work: Path, repeat: int) -> dict:
    w = fresh(work / "startup")
    runs = [run_child([DPEXPORT, "--help"], 60, w / "help.log") for _ in range(max(5, repeat * 3))]
    base = [run_child([PY, "-c", "pass"], 60, w / "py.log") for _ in range(max(5, repeat * 3))]
    return {
        "name": "startup",
        "title": "`dpexport --help`",
        "target": "≤ 0.3 s",
        "runs": {"dpexport": [vars(s) for s in runs], "python": [vars(s) for s in base]},
    }


def runtime_python() -> Path:
    """The python of ``benchmarks/.venv-run``, built, or rebuilt when pyproject.toml or
    constraints.txt changed (as ``./dev`` keeps ``.venv``)."""
    pins = (ROOT / "pyproject.toml").read_bytes() + (ROOT / "constraints.txt").read_bytes()
    want = hashlib.sha256(pins).hexdigest()[:16]
    py = RUN_VENV / "bin" / "python"
    stamp = RUN_VENV / ".dpexport-installed"
    if py.exists() and stamp.exists() and stamp.read_text().strip() == want:
        return py
    print("building benchmarks/.venv-run: dpexport's runtime dependencies only", flush=True)
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(RUN_VENV)], check=True)
    pip = [str(py), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    subprocess.run([*pip, "-c", str(ROOT / "constraints.txt"), "-e", str(ROOT)], check=True)
    stamp.write_text(want + "\n")
    return py


def commit() -> str:
    """HEAD's short hash, with ``+uncommitted`` when ``src/`` differs from it (a
    measurement of code that no commit holds says so)."""

    def git(*args: str) -> str:
        out = subprocess.run(["git", "-C", str(ROOT), *args], capture_output=True, text=True)
        return out.stdout.strip()

    head = git("rev-parse", "--short", "HEAD")
    return head + ("+uncommitted" if git("status", "--porcelain", "--", "src") else "")


def versions() -> dict[str, str]:
    # asked of a child: importing them here would grow this process (see data.warehouse)
    probe = "import duckdb, pyarrow; print(duckdb.__version__, pyarrow.__version__)"
    out = subprocess.run([PY, "-c", probe], capture_output=True, text=True, check=True)
    duckdb_version, pyarrow_version = out.stdout.split()
    info = {
        "python": platform.python_version(),
        "duckdb": duckdb_version,
        "pyarrow": pyarrow_version,
        "dpexport_commit": commit(),
    }
    if DLT_PY.exists():
        out = subprocess.run(
            [str(DLT_PY), "-c", "import dlt; print(dlt.__version__)"],
            capture_output=True,
            text=True,
            check=False,
        )
        info["dlt"] = out.stdout.strip()
    return info


def machine() -> str:
    cpu = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    load = os.getloadavg()
    return (
        f"{os.cpu_count()} cores ({cpu}), {mem:.0f} GB RAM, {platform.system()} "
        f"{platform.release()}; load average at start {load[0]:.2f}"
    )


def main() -> None:
    names = [c.name for c in CASES] + ["incremental", "startup", "all_tables"]
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--rows", type=int, default=5_000_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--cases", default=",".join(names), help=f"comma list of {names}")
    ap.add_argument("--floor-timeout", type=float, default=300, help="seconds per floor run")
    ap.add_argument("--work", type=Path, default=HERE / ".work")
    ap.add_argument("--label", default="", help="suffix of the results file name")
    ap.add_argument(
        "--memory-limit", default="384MB", help="dpexport's warehouse.memory_limit (its default)"
    )
    ap.add_argument(
        "--dev-venv",
        action="store_true",
        help="measure in this venv, not benchmarks/.venv-run (runtime dependencies only)",
    )
    args = ap.parse_args()
    if not args.dev_venv and Path(sys.prefix).resolve() != RUN_VENV.resolve():
        py = str(runtime_python())
        os.execv(py, [py, str(Path(__file__).resolve()), *sys.argv[1:]])
    chosen = [n.strip() for n in args.cases.split(",") if n.strip()]
    MEMORY_LIMIT["value"] = args.memory_limit
    # built in a child so this process stays small (children's peak RSS starts at ours)
    subprocess.run([PY, str(HERE / "data.py"), str(args.work), str(args.rows)], check=True)
    db = data.path_for(args.work, args.rows)
    # byte-compile dpexport once, as an installed package is: with PYTHONDONTWRITEBYTECODE
    # set, every child would otherwise compile its modules again (~0.1 s each run)
    subprocess.run([PY, "-m", "compileall", "-q", str(ROOT / "src")], check=True)
    subprocess.run(["cat", str(db)], stdout=subprocess.DEVNULL, check=False)  # warm the cache
    results: dict[str, Any] = {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": machine(),
        "versions": versions(),
        "rows": args.rows,
        "repeat": args.repeat,
        "memory_limit": args.memory_limit,
        "install": "dev venv" if args.dev_venv else "runtime dependencies only",
        "cases": [],
    }
    runs_dir = args.work / "runs"
    global TRASH_DIR
    TRASH_DIR = fresh(args.work / "trash")
    try:
        run_cases(args, chosen, db, runs_dir, results)
    finally:
        shutil.rmtree(TRASH_DIR, ignore_errors=True)
    out_dir = HERE / "results"
    out_dir.mkdir(exist_ok=True)
    name = f"{args.rows}{'-' + args.label if args.label else ''}.json"
    (out_dir / name).write_text(json.dumps(results, indent=1) + "\n")
    table = report.render(out_dir)
    (HERE / "results.md").write_text(table)
    print(table)


def run_cases(
    args: argparse.Namespace, chosen: list[str], db: Path, runs_dir: Path, results: dict
) -> None:
    for case in CASES:
        if case.name not in chosen:
            continue
        if case.max_rows is not None and args.rows > case.max_rows:
            print(f"{case.name}: skipped above {case.max_rows:,} rows", flush=True)
            continue
        print(f"{case.name} ({args.rows:,} rows)", flush=True)
        results["cases"].append(
            bench_case(case, db, runs_dir, args.repeat, args.floor_timeout, args.rows)
        )
    if "incremental" in chosen:
        print("incremental", flush=True)
        results["cases"].append(bench_incremental(db, runs_dir, args.repeat, args.rows))
    if "startup" in chosen:
        print("startup", flush=True)
        results["cases"].append(bench_startup(runs_dir, args.repeat))
    if "all_tables" in chosen:  # the demo warehouse, --parallel 1 vs the default
        print("all_tables", flush=True)
        tools = {"run_child": run_child, "fresh": fresh, "discard": discard}
        results["cases"].append(all_tables.bench(args.work, args.repeat, args.rows, **tools))


if __name__ == "__main__":
    main()
