"""Render ``benchmarks/results/*.json`` (written by ``run.py``) as one markdown page."""

from __future__ import annotations

import json
import statistics
from pathlib import Path
from typing import Any

import all_tables


def _ok(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in runs if r["rc"] == 0 and not r["timed_out"]]


def _spread(values: list[float], fmt: str = "{:.2f}") -> str:
    if not values:
        return "—"
    med = statistics.median(values)
    if len(values) == 1:
        return fmt.format(med)
    return f"{fmt.format(med)} ({fmt.format(min(values))}–{fmt.format(max(values))})"


def _mb(runs: list[dict[str, Any]], key: str = "rss_mb") -> str:
    return f"{max(r[key] for r in runs):.0f}" if runs else "—"


def _ratios(a: list[dict[str, Any]], b: list[dict[str, Any]]) -> list[float]:
    """Per-repeat ratios a/b (the runs were interleaved, so pairs share the machine's load)."""
    return [x["wall"] / y["wall"] for x, y in zip(a, b, strict=False) if x["rc"] == 0 == y["rc"]]


def _row(case: dict[str, Any], who: str, rows: int) -> str:
    runs = case["runs"].get(who, [])
    ok = _ok(runs)
    floor = _ok(case["runs"].get("floor", []))
    if not runs:
        return ""
    if not ok:
        timed = [r for r in runs if r["timed_out"]]
        what = f"did not finish in {timed[0]['wall']:.0f} s" if timed else "failed"
        return f"| {case['title']} | {who} | {what} | | | | | {case['target']} |\n"
    walls = [r["wall"] for r in ok]
    rate = rows / statistics.median(walls)
    out_mb = statistics.median(r["out_bytes"] for r in ok) / 1e6
    ratio = "—"
    if who != "floor" and floor:
        ratio = _spread(_ratios(ok, floor)) + "×"
    elif who != "floor" and case["runs"].get("floor"):
        limit = case["runs"]["floor"][0]["wall"]
        ratio = f"floor > {limit:.0f} s"
    in_proc = [r["extra"]["in_process_s"] for r in ok if r.get("extra", {}).get("in_process_s")]
    note = f" (in process {_spread(in_proc)})" if in_proc else ""
    return (
        f"| {case['title']} | {who} | {_spread(walls)}{note} | {rate / 1e6:.2f} M | "
        f"{_mb(ok)} | {out_mb:.1f} ({ok[0]['files']} files) | {ratio} | {case['target']} |\n"
    )


def render_one(res: dict[str, Any]) -> str:
    v = res["versions"]
    text = (
        f"### {res['rows']:,} rows — {res['date']}\n\n"
        f"Machine: {res['machine']}. Versions: Python {v['python']}, DuckDB {v['duckdb']}, "
        f"pyarrow {v['pyarrow']}"
        + (f", dlt {v['dlt']}" if v.get("dlt") else "")
        + f"; dpexport at {v['dpexport_commit']} (warehouse.memory_limit "
        + f"{res.get('memory_limit', '2GB')}"
        + (f"; installed with {res['install']}" if res.get("install") else "")
        + f"). {res['repeat']} interleaved repeats; "
        "times are median (min–max) wall seconds of the whole process; the ratio is the "
        "median (min–max) of the per-repeat ratios to the floor run next to it.\n\n"
        "| case | tool | wall s | rows/s | peak RSS MB | output MB | × floor | target |\n"
        "| --- | --- | --- | --- | --- | --- | --- | --- |\n"
    )
    for case in res["cases"]:
        if case["name"] == "incremental":
            full, incr = _ok(case["runs"]["full"]), _ok(case["runs"]["incremental"])
            share = _spread(
                [x["wall"] / y["wall"] * 100 for x, y in zip(incr, full, strict=False)], "{:.0f}"
            )
            inproc = [
                x["extra"]["in_process_s"] / y["extra"]["in_process_s"] * 100
                for x, y in zip(incr, full, strict=False)
                if x.get("extra") and y.get("extra")
            ]
            text += (
                f"| {case['title']} | first export (99%) | {_spread([r['wall'] for r in full])} | "
                f"| {_mb(full)} | {statistics.median(r['out_bytes'] for r in full) / 1e6:.1f} | "
                f"| |\n"
                f"| | next export (1%) | {_spread([r['wall'] for r in incr])} | | {_mb(incr)} | "
                f"{statistics.median(r['out_bytes'] for r in incr) / 1e6:.1f} | {share}% of first"
                f" (in process {_spread(inproc, '{:.0f}')}%) | {case['target']} |\n"
            )
            floor = _ok(case["runs"].get("floor", []))
            if floor:
                over = _spread(
                    [x["wall"] / y["wall"] for x, y in zip(incr, floor, strict=False)], "{:.2f}"
                )
                out_mb = statistics.median(r["out_bytes"] for r in floor) / 1e6
                text += (
                    f"| | floor: DuckDB COPY of the same 1% | {_spread([r['wall'] for r in floor])}"
                    f" | | {_mb(floor)} | {out_mb:.1f} | next export = {over}× this | |\n"
                )
            held_floor = [r for r in _ok(case["runs"].get("floor_held", [])) if r.get("extra")]
            if held_floor:
                first = [r["extra"]["seconds"][0] for r in held_floor]
                changed = [r["extra"]["seconds"][1] for r in held_floor]
                ratio = _spread(
                    [c / f * 100 for f, c in zip(first, changed, strict=True)], "{:.1f}"
                )
                text += (
                    "| | floor of a held fire time: DuckDB COPY of the first slice, then of the "
                    f"1%, in one process | {_spread(first, '{:.3f}')} / "
                    f"{_spread(changed, '{:.3f}')} | | {_mb(held_floor)} | | {ratio}% of first |"
                    " |\n"
                )
            for key, how in (
                ("schedule", "`dpexport schedule` (warehouse reopened per fire time)"),
                ("schedule_hold", "`dpexport schedule --hold` (warehouse kept open)"),
            ):
                ticks = [r for r in _ok(case["runs"].get(key, [])) if r.get("extra")]
                if not ticks:
                    continue
                first = [r["extra"]["first_s"] for r in ticks]
                changed = [r["extra"]["changed_s"] for r in ticks]
                ratio = _spread(
                    [r["extra"]["changed_s"] / r["extra"]["first_s"] * 100 for r in ticks], "{:.1f}"
                )
                text += (
                    f"| | {how}: first / next fire time, in process | "
                    f"{_spread(first, '{:.3f}')} / {_spread(changed, '{:.3f}')} | | {_mb(ticks)} |"
                    f" | {ratio}% of first | {case['target']} |\n"
                )
            continue
        if case["name"] == "all_tables":
            text += all_tables.render(case)
            continue
        if case["name"] == "startup":
            d, p = case["runs"]["dpexport"], case["runs"]["python"]
            text += (
                f"| {case['title']} | dpexport | {_spread([r['wall'] for r in d], '{:.3f}')} | | "
                f"{_mb(d)} | | bare `python -c pass`: "
                f"{_spread([r['wall'] for r in p], '{:.3f}')} s | {case['target']} |\n"
            )
            continue
        for who in ("floor", "dpexport", "dlt"):
            text += _row(case, who, case["rows"])
    return text + "\n"


def render(results_dir: Path) -> str:
    files = sorted(results_dir.glob("*.json"), key=lambda p: json.loads(p.read_text())["rows"])
    text = (
        "# Benchmark results\n\n"
        "Written by `benchmarks/run.py` (see `benchmarks/README.md`). Floor = DuckDB "
        "`COPY ... TO` of the same rows with the same options; dpexport times include "
        "sha256, manifests, sidecars, markers, staging and re-read verification.\n\n"
    )
    for path in files:
        text += render_one(json.loads(path.read_text()))
    return text
