"""One export's page: its export-log record, then each manifest it committed (files
with rows, bytes and checksums; the data checks and validation flags), from
:func:`dpexport.dashboard.data.export_detail`. An export never changes once logged, so
this page does not refresh."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape
from typing import Any

from dpexport.dashboard.charts import count, human_bytes, usd
from dpexport.dashboard.page import document
from dpexport.ops.logs import usd_total

#: the record's fields listed at the top, in order
FIELDS = (
    "status",
    "table_name",
    "dataset",
    "export_timestamp",
    "logical_time",
    "mode",
    "format",
    "compression",
    "destination",
    "rows",
    "files",
    "duration_ms",
    "trigger",
    "principal",
    "retry_count",
    "path",
    "error",
)


def export_page(detail: Mapping[str, Any], project: str) -> str:
    """The drill-down page of one export."""
    record = detail["record"]
    export_id = str(record.get("export_id"))
    status = str(record.get("status"))
    facts = "".join(
        f'<dt>{escape(k)}</dt><dd data-field="{k}">{escape(_text(record.get(k)))}</dd>'
        for k in FIELDS
        if k in record
    )
    cost = usd_total(record.get("cost_usd"))
    if cost is not None:
        facts += f'<dt>cost_usd</dt><dd data-field="cost_usd">{usd(cost)}</dd>'
    manifests = "".join(_manifest(m) for m in detail["manifests"])
    if not detail["manifests"]:
        manifests = '<p class="empty">this export committed no manifest</p>'
    if detail["manifests_not_shown"]:
        manifests += f'<p class="empty">and {detail["manifests_not_shown"]} more manifests</p>'
    body = (
        '<header><a class="brand" href="/">dpexport</a>'
        f'<span class="where">{escape(project)}</span><a href="/">← all tables</a></header>'
        f'<main id="export" data-status="{escape(status)}">'
        f'<h2>Export {escape(export_id)} <span class="badge badge-{_tone(status)}">'
        f"{escape(status)}</span></h2>"
        f'<dl class="record">{facts}</dl><h3>Manifests</h3>{manifests}</main>'
    )
    return document(f"dpexport · {export_id}", body)


def _manifest(m: Mapping[str, Any]) -> str:
    uri = escape(str(m["uri"]))
    if "error" in m:
        error = escape(str(m["error"]))
        return f'<section class="manifest"><h4>{uri}</h4><p class="error">{error}</p></section>'
    stats = m.get("statistics") or {}
    line = ", ".join(f"{escape(str(k))} {escape(_text(v))}" for k, v in stats.items())
    flags = ", ".join(f"{escape(str(k))}: {escape(_text(v))}" for k, v in m["validation"].items())
    return (
        f'<section class="manifest"><h4>{uri}</h4><p class="facts">{line}</p>'
        f"{_files(m['files'])}{_checks(m['checks'])}"
        f'<p class="facts">validation: {flags or "-"}</p></section>'
    )


def _files(files: Sequence[Mapping[str, Any]]) -> str:
    rows = "".join(
        f'<tr class="file"><td data-field="name">{escape(str(f.get("name")))}</td>'
        f'<td class="num">{count(float(f.get("rows") or 0))}</td>'
        f'<td class="num">{human_bytes(float(f.get("bytes") or 0))}</td>'
        f'<td class="mono">{escape(str(f.get("checksum") or ""))[:23]}…</td></tr>'
        for f in files
    )
    return (
        '<table class="files"><thead><tr><th>file</th><th class="num">rows</th>'
        f'<th class="num">bytes</th><th>checksum</th></tr></thead><tbody>{rows}</tbody></table>'
    )


def _checks(checks: Sequence[Mapping[str, Any]]) -> str:
    if not checks:
        return '<p class="empty">no data checks configured</p>'
    rows = "".join(
        f'<tr class="check check-{escape(str(c.get("status")))}">'
        f"<td>{escape(str(c.get('name')))}</td><td>{escape(str(c.get('status')))}</td>"
        f'<td class="num">{escape(_text(c.get("rows_checked")))}</td>'
        f'<td class="num">{escape(_text(c.get("rows_failed")))}</td>'
        f"<td>{escape(str(c.get('detail') or ''))}</td></tr>"
        for c in checks
    )
    return (
        '<table class="checks"><thead><tr><th>check</th><th>status</th>'
        '<th class="num">checked</th><th class="num">failed</th><th>detail</th></tr></thead>'
        f"<tbody>{rows}</tbody></table>"
    )


def _tone(status: str) -> str:
    return {"SUCCESS": "ok", "FAILURE": "failing"}.get(status, "stale")


def _text(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)
