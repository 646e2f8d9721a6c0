"""Small bar charts as inline SVG, drawn on the server.

A chart is one bar per export attempt, oldest left, evenly spaced (attempts come in
bursts and gaps, so a time axis would squeeze most bars into one pixel); a failed
attempt is a full-height mark of its own class. Each bar links to its export's page
and carries a ``<title>`` (the browser's tooltip). Colours come from the stylesheet's
classes, so the page needs no inline style (its CSP allows none).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from html import escape
from typing import Any

WIDTH = 300
HEIGHT = 64
#: room under the bars for the axis line
BASE = 2


def bars(
    points: Sequence[dict[str, Any]],
    key: str,
    label: str,
    fmt: Callable[[float], str],
    link: Callable[[str], str],
) -> str:
    """An SVG of ``points[i][key]`` as bars (``fmt`` formats a value for the tooltip and
    the scale, ``link`` gives an export id's page), or a note when there is none."""
    if not points:
        return '<p class="empty">no export yet</p>'
    top = max(float(p.get(key) or 0) for p in points) or 1.0
    step = WIDTH / max(len(points), 12)
    width = max(step * 0.7, 1.0)
    shapes = []
    for i, p in enumerate(points):
        x = i * step + (step - width) / 2
        failed = p.get("status") == "FAILURE"
        value = float(p.get(key) or 0)
        h = HEIGHT - BASE if failed else max((HEIGHT - BASE) * value / top, 1.0)
        tip = f"{p.get('at')} {p.get('status')}: {fmt(value)} {label}"
        shapes.append(
            f'<a href="{escape(link(str(p.get("export_id"))))}">'
            f'<rect class="bar {"bar-failed" if failed else "bar-ok"}" x="{x:.1f}" '
            f'y="{HEIGHT - BASE - h:.1f}" width="{width:.1f}" height="{h:.1f}">'
            f"<title>{escape(tip)}</title></rect></a>"
        )
    axis = f'<line class="axis" x1="0" y1="{HEIGHT - 1}" x2="{WIDTH}" y2="{HEIGHT - 1}"/>'
    return (
        f'<figure class="chart"><figcaption>{escape(label)} '
        f'<span class="scale">max {escape(fmt(top))}</span></figcaption>'
        f'<svg viewBox="0 0 {WIDTH} {HEIGHT}" preserveAspectRatio="none" role="img" '
        f'aria-label="{escape(label)} per export">{"".join(shapes)}{axis}</svg>'
        f"{_range(points)}</figure>"
    )


def _range(points: Sequence[dict[str, Any]]) -> str:
    """The first and last attempt's times under the bars (month-day hour:minute, UTC;
    each bar's tooltip has its whole time)."""
    ends = [str(points[0].get("at") or "")[5:16], str(points[-1].get("at") or "")[5:16]]
    times = "".join(f"<time>{escape(t.replace('T', ' '))}</time>" for t in ends)
    return f'<div class="range">{times}</div>'


def human_bytes(value: float) -> str:
    """``1536`` as ``1.5 KiB``."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(value) < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def count(value: float) -> str:
    """``20000`` as ``20,000``."""
    return f"{int(value):,}"


def usd(value: float) -> str:
    """``2e-05`` as ``$0.00002`` (to the millionth :mod:`dpexport.ops.cost` rounds to)."""
    return f"${value:.6f}".rstrip("0").rstrip(".") if value else "$0"
