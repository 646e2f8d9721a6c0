"""``dpexport dashboard`` in a real browser: Debian's headless Chromium driven by
Playwright (pointed at the system browser; nothing is downloaded; ``./dev test`` installs
the ``chromium`` package).

Over a demo export where ``users`` failed a data check (a FAILURE, a DLQ entry) and has
an open alert, the page shows what ``status --json`` and ``alerts list --json`` say,
marks the failing table, refreshes itself, loads nothing from outside the server, and
its drill-down shows an export's manifest files and its failure."""

from __future__ import annotations

import json
import os
import re
import selectors
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import duckdb
import pytest

from dpexport.alerts.incidents import fire
from dpexport.alerts.model import Alert, Delivery
from dpexport.storage.local import LocalStore
from tests.e2e.cli import dpexport

pytestmark = pytest.mark.slow

CHROMIUM = shutil.which("chromium")
BUCKET = "gs://diagnosticpro-exports"


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The demo exported, then ``users`` exported again with a malformed email, which
    fails its ``email_format_check``; an open export_failure alert for it; the time."""
    base = tmp_path_factory.mktemp("dashboard")
    assert dpexport("demo", "--dir", base, "--rows", "200").code == 0
    con = duckdb.connect(str(base / "warehouse.duckdb"))
    con.execute(
        "INSERT INTO diagnosticpro_prod.users SELECT * REPLACE "
        "('not-an-email' AS email, user_id + 100000 AS user_id) "
        "FROM diagnosticpro_prod.users LIMIT 1"
    )
    con.close()
    config, root = base / "dpexport.yaml", base / "buckets"
    failed = dpexport("-c", config, "--local-root", root, "run", "--table", "users", "--json")
    assert failed.code == 1 and "email_format_check" in failed.out, failed.out + failed.err
    store = LocalStore(root / "gs" / "diagnosticpro-exports", url=BUCKET)
    now = datetime.now(UTC).replace(microsecond=0)
    alert = Alert("export_failure", "diagnosticpro_prod.users", "trigger", "users failed")
    fire(store, alert, [], lambda a, t: [Delivery("slack", a.rule, a.action, "sent", 1)], now)
    return {"config": config, "root": root, "now": now.strftime("%Y-%m-%dT%H:%M:%SZ")}


def _cli_json(site: dict[str, Any], *args: str) -> Any:
    result = dpexport("-c", site["config"], "--local-root", site["root"], *args)
    assert result.code == 0, result.err
    return json.loads(result.out)


@pytest.fixture(scope="module")
def url(site: dict[str, Any]) -> Iterator[str]:
    """``dpexport dashboard --port 0 --refresh 1`` running; the URL it printed."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DPEXPORT_")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "dpexport", "-c", str(site["config"]),
         "--local-root", str(site["root"]), "dashboard", "--port", "0", "--refresh", "1",
         "--now", site["now"]],
        env=env, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert proc.stderr is not None
    with selectors.DefaultSelector() as sel:
        sel.register(proc.stderr, selectors.EVENT_READ)
        assert sel.select(timeout=60), "the dashboard printed no URL in 60 s"
    line = proc.stderr.readline()
    found = re.match(r"dashboard: (http://127\.0\.0\.1:\d+/)$", line.strip())
    assert found, line
    yield found.group(1)
    proc.send_signal(signal.SIGINT)
    _, rest = proc.communicate(timeout=30)
    assert proc.returncode == 130 and "dashboard stopped" in rest, rest


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if CHROMIUM is None:
        pytest.skip("no chromium on PATH: ./dev test installs Debian's chromium package")
    from playwright.sync_api import sync_playwright

    args = ["--no-sandbox"] if os.geteuid() == 0 else []  # root: no user namespace sandbox
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=args)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Any, url: str) -> Iterator[Any]:
    """A page that may fetch only from the dashboard; what else it tried, and its
    console errors, are asserted empty after the test."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    tab = context.new_page()
    outside: list[str] = []
    errors: list[str] = []

    def route(r: Any) -> None:
        if r.request.url.startswith(url):
            r.continue_()
        else:
            outside.append(r.request.url)
            r.abort()

    tab.route("**/*", route)
    tab.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    tab.on("pageerror", lambda e: errors.append(str(e)))
    yield tab
    context.close()
    assert outside == [] and errors == []


def _cell(page: Any, table: str, field: str) -> str:
    return str(
        page.locator(f'#tables tr[data-table="{table}"] td[data-field="{field}"]').inner_text()
    )


def test_the_page_shows_what_status_says(page: Any, url: str, site: dict[str, Any]) -> None:
    statuses = _cli_json(site, "status", "--json", "--now", site["now"])
    alerts = _cli_json(site, "alerts", "list", "--json")
    page.goto(url)
    assert page.locator("#tables tbody tr").count() == len(statuses) == 15
    for s in statuses:
        t = s["table"]
        assert _cell(page, t, "last_export") == s["last_export"]
        assert _cell(page, t, "rows") == str(s["rows"])
        assert _cell(page, t, "hours_since_export") == f"{s['hours_since_export']:.2f}"
        assert _cell(page, t, "freshness") == s["freshness"]
        assert _cell(page, t, "success_rate_7d") == f"{s['success_rate_7d']:.2f}%"
        assert _cell(page, t, "dlq_open") == str(s["dlq_open"])
        mine = [a for a in alerts if a["table"] == f"{s['dataset']}.{t}"]
        assert _cell(page, t, "alerts_open") == str(len(mine))
    users = next(s for s in statuses if s["table"] == "users")
    assert users["success_rate_7d"] == 50.0 and users["dlq_open"] == 1
    total = page.locator(".totals .total", has_text="open DLQ items").locator(".n")
    assert total.inner_text() == str(sum(s["dlq_open"] for s in statuses)) == "1"


def test_the_failing_table_is_marked(page: Any, url: str) -> None:
    page.goto(url)
    row = page.locator('#tables tr[data-table="users"]')
    assert row.get_attribute("data-health") == "failing"
    assert row.get_attribute("aria-invalid") == "true"
    assert row.locator(".badge").inner_text() == "FAILING"
    assert page.locator('#tables tr[data-health="failing"]').count() == 1
    card = page.locator('section.card[data-table="users"]')
    assert "email_format_check" in card.locator(".failures").inner_text()
    assert "email_format_check" in card.locator(".dlq").inner_text()
    assert "users failed" in card.locator(".alerts").inner_text()


def test_the_drill_down_shows_the_manifest_files(page: Any, url: str, site: dict[str, Any]) -> None:
    page.goto(url)
    page.locator('#tables tr[data-table="users"] td[data-field="last_export"] a').click()
    page.wait_for_selector("main#export")
    assert page.locator("main#export").get_attribute("data-status") == "SUCCESS"
    shown = page.locator("table.files td[data-field=name]").all_inner_texts()
    manifest_uri = page.locator(".manifest h4").first.inner_text()
    key = manifest_uri.removeprefix(BUCKET + "/")
    manifest = json.loads((site["root"] / "gs" / "diagnosticpro-exports" / key).read_text())
    assert shown == [f["name"] for f in manifest["files"]] and shown
    assert page.locator("table.checks tr.check").count() == 3  # users' three checks

    page.goto(url)
    page.locator('section.card[data-table="users"] .failures a').first.click()
    page.wait_for_selector("main#export")
    assert page.locator("main#export").get_attribute("data-status") == "FAILURE"
    assert "email_format_check" in page.locator('dd[data-field="error"]').inner_text()


def test_the_page_refreshes_itself(page: Any, url: str) -> None:
    page.goto(url)
    page.wait_for_selector("body[data-refreshed]", state="attached", timeout=15_000)
    assert page.locator('#tables tr[data-table="users"]').get_attribute("data-health") == "failing"
