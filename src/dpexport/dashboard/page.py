"""The overview page, rendered on the server from :func:`dpexport.dashboard.data.snapshot`.

Figures are printed as ``dpexport status`` prints them (rows as an integer, hours and
the success rate with two decimals), and each cell names its field (``data-field``) and
each table row its health (``data-health``: ``ok``, ``stale``, ``failing``), so a test
or a script reads what a person sees. Every value from the logs is escaped.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape
from typing import Any
from urllib.parse import quote

from dpexport.dashboard.charts import bars, count, human_bytes, usd

HEALTH_TEXT = {"ok": "OK", "stale": "STALE", "failing": "FAILING"}
#: the cards' order: what needs someone first (the summary table keeps config order)
RANK = {"failing": 0, "stale": 1, "ok": 2}


def export_link(export_id: str) -> str:
    """The drill-down page of one export."""
    return "/exports/" + quote(export_id, safe="")


def document(title: str, body: str, *, refresh: int | None = None) -> str:
    """A whole page around ``body``; with ``refresh`` its script reloads ``<main>`` every
    ``refresh`` seconds."""
    data = f' data-refresh="{refresh}"' if refresh else ""
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)}</title>"
        '<link rel="icon" href="/static/favicon.svg" type="image/svg+xml">'
        '<link rel="stylesheet" href="/static/dashboard.css">'
        '<script src="/static/dashboard.js" defer></script></head>'
        f"<body{data}>{body}</body></html>\n"
    )


def overview(snap: Mapping[str, Any], project: str, environment: str, refresh: int) -> str:
    """The overview page: header, then :func:`main`."""
    head = (
        '<header><a class="brand" href="/">dpexport</a>'
        f'<span class="where">{escape(project)} · {escape(environment)}</span>'
        f'<span id="updated" class="updated">as of <time>{escape(snap["generated_at"])}</time>'
        f" · refreshes every {refresh} s</span></header>"
    )
    return document(
        f"dpexport · {project}", head + f'<main id="main">{main(snap)}</main>', refresh=refresh
    )


def main(snap: Mapping[str, Any]) -> str:
    """The part the page's script swaps in on each refresh."""
    tables = snap["tables"]
    return (
        f'<span hidden id="as-of">{escape(snap["generated_at"])}</span>'
        + _totals(tables)
        + _summary(tables)
        + '<div class="cards">'
        + "".join(_card(t) for t in sorted(tables, key=lambda t: RANK[t["health"]]))
        + "</div>"
    )


def _totals(tables: Sequence[Mapping[str, Any]]) -> str:
    figures = (
        ("tables", len(tables), ""),
        ("failing", sum(t["health"] == "failing" for t in tables), "failing"),
        ("stale", sum(t["freshness"] == "STALE" for t in tables), "stale"),
        ("open DLQ items", sum(t["dlq_open"] for t in tables), "failing"),
        ("open alerts", sum(len(t["alerts"]) for t in tables), "failing"),
    )
    cells = "".join(
        f'<div class="total{" total-" + tone if n and tone else ""}">'
        f'<span class="n">{n}</span><span class="what">{escape(what)}</span></div>'
        for what, n, tone in figures
    )
    return f'<section class="totals" aria-label="totals">{cells}</section>'


def _summary(tables: Sequence[Mapping[str, Any]]) -> str:
    head = "".join(
        f"<th{' class=num' if num else ''}>{h}</th>"
        for h, num in (
            ("table", False),
            ("health", False),
            ("last export", False),
            ("rows", True),
            ("hours since", True),
            ("freshness", False),
            ("success 7d", True),
            ("cost (last)", True),
            ("DLQ open", True),
            ("alerts", True),
        )
    )
    rows = "".join(_summary_row(t) for t in tables)
    return (
        '<section class="summary"><h2>Tables</h2><table id="tables">'
        f"<thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table></section>"
    )


def _summary_row(t: Mapping[str, Any]) -> str:
    last = escape(t["last_export"] or "never")
    if t["last_export_id"]:
        last = f'<a href="{escape(export_link(t["last_export_id"]))}">{last}</a>'
    cells = (
        ("table", f'<a href="#t-{escape(t["table"])}">{escape(t["table"])}</a>', ""),
        ("health", _badge(t["health"]), ""),
        ("last_export", last, ""),
        ("rows", _or_dash(t["rows"], lambda v: str(v)), "num"),
        ("hours_since_export", _or_dash(t["hours_since_export"], lambda v: f"{v:.2f}"), "num"),
        ("freshness", escape(t["freshness"]), f"fresh-{t['freshness'].lower()}"),
        ("success_rate_7d", _or_dash(t["success_rate_7d"], lambda v: f"{v:.2f}%"), "num"),
        ("cost_usd", _or_dash(t["cost_usd_total"], usd), "num"),
        ("dlq_open", str(t["dlq_open"]), "num" + (" bad" if t["dlq_open"] else "")),
        ("alerts_open", str(len(t["alerts"])), "num" + (" bad" if t["alerts"] else "")),
    )
    tds = "".join(
        f'<td data-field="{field}" class="{cls}">{html}</td>' for field, html, cls in cells
    )
    failing = ' aria-invalid="true"' if t["health"] == "failing" else ""
    return (
        f'<tr data-table="{escape(t["table"])}" data-health="{t["health"]}" '
        f'class="health-{t["health"]}"{failing}>{tds}</tr>'
    )


def _card(t: Mapping[str, Any]) -> str:
    history = t["history"]
    charts = bars(history, "rows", "rows", count, export_link) + bars(
        history, "bytes", "bytes stored", human_bytes, export_link
    )
    cost = "-" if t["cost_usd_total"] is None else usd(t["cost_usd_total"])
    return (
        f'<section class="card health-{t["health"]}" id="t-{escape(t["table"])}" '
        f'data-table="{escape(t["table"])}">'
        f"<h3>{escape(t['qualified_name'])} {_badge(t['health'])}</h3>"
        f'<p class="facts">last export cost <b>{cost}</b> · '
        f"{len(history)} attempt(s) charted</p>"
        f'<div class="charts">{charts}</div>'
        f"{_failures(t['failures'])}{_dlq(t['dlq'])}{_alerts(t['alerts'])}</section>"
    )


def _failures(failures: Sequence[Mapping[str, Any]]) -> str:
    if not failures:
        return ""
    items = "".join(
        f'<li><a href="{escape(export_link(str(f["export_id"])))}">'
        f"<time>{escape(str(f['at']))}</time></a> "
        f'<span class="error">{escape(str(f["error"] or "no error recorded"))}</span></li>'
        for f in failures
    )
    return f'<div class="failures"><h4>Recent failures</h4><ul>{items}</ul></div>'


def _dlq(entries: Sequence[Mapping[str, Any]]) -> str:
    if not entries:
        return ""
    items = "".join(
        f'<li><span class="tag">{escape(str(e["state"]))}</span> '
        f"{escape(str(e['export_id']))} · {e['age_hours']:.1f} h old · "
        f"{e['attempts']} attempt(s){' · escalated' if e['escalate'] else ''}"
        f'<br><span class="error">{escape(str(e["error"] or e["code"] or ""))}</span></li>'
        for e in entries
    )
    return f'<div class="dlq"><h4>Open DLQ items</h4><ul>{items}</ul></div>'


def _alerts(alerts: Sequence[Mapping[str, Any]]) -> str:
    if not alerts:
        return ""
    items = "".join(
        f'<li><span class="tag">{escape(str(a["severity"] or "error"))}</span> '
        f"{escape(str(a['rule']))} since <time>{escape(str(a['opened_at']))}</time>"
        f'<br><span class="error">{escape(str(a["summary"] or ""))}</span></li>'
        for a in alerts
    )
    return f'<div class="alerts"><h4>Open alerts</h4><ul>{items}</ul></div>'


def _badge(health: str) -> str:
    return f'<span class="badge badge-{health}">{HEALTH_TEXT[health]}</span>'


def _or_dash(value: Any, fmt: Any) -> str:
    return "-" if value is None else escape(fmt(value))
