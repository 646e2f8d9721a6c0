"""The dashboard's server over crafted export logs, through urllib: the figures equal
``status``'s, the token and host checks, read-only methods, the drill-down, the assets."""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from dpexport import api
from dpexport.dashboard.server import Dashboard, DashboardServer, is_loopback
from tests.unit.dashboard.site import TABLES, build
from tests.unit.ops.log_records import NOW

TOKEN = "s3cret-token-for-tests"
Serve = Callable[..., str]


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_opener = urllib.request.build_opener(_NoRedirect)


def _get(
    url: str, headers: dict[str, str] | None = None, method: str = "GET"
) -> tuple[int, Any, bytes]:
    request = urllib.request.Request(url, headers=headers or {}, method=method)
    try:
        with _opener.open(request, timeout=30) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers, exc.read()


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Serve]:
    """Starts a dashboard over the crafted site on 127.0.0.1 (a free port); its URL."""
    servers: list[DashboardServer] = []
    ws = build(tmp_path)

    def start(token: str | None = None) -> str:
        dashboard = Dashboard(ws, now=lambda: NOW, refresh=30, token=token)
        server = DashboardServer(("127.0.0.1", 0), dashboard)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def test_the_figures_are_status_figures(serve: Serve, tmp_path: Path) -> None:
    url = serve()
    code, headers, body = _get(url + "/api/status")
    assert code == 200 and headers["Content-Type"] == "application/json"
    shown = json.loads(body)
    expected = [
        s.to_json()
        for s in api.status(tmp_path / "dpexport.yaml", local_root=tmp_path / "out", now=NOW)
    ]
    assert [{k: t[k] for k in expected[0]} for t in shown["tables"]] == expected
    by_table = {t["table"]: t for t in shown["tables"]}
    assert list(by_table) == list(TABLES)
    assert by_table["sensor_telemetry"]["dlq_open"] == 1
    assert by_table["sensor_telemetry"]["health"] == "failing"
    assert [a["rule"] for a in by_table["youtube_repair_videos"]["alerts"]] == ["export_failure"]
    assert by_table["users"]["health"] == "stale"
    assert by_table["reddit_diagnostic_posts"]["health"] == "ok"
    assert [p["rows"] for p in by_table["reddit_diagnostic_posts"]["history"]] == [
        1300,
        1400,
        0,
        1500,
    ]


def test_the_page_marks_failing_tables_and_escapes_what_the_logs_say(serve: Serve) -> None:
    code, headers, body = _get(serve() + "/")
    page = body.decode()
    assert code == 200 and headers["Content-Type"] == "text/html; charset=utf-8"
    assert "default-src 'self'" in headers["Content-Security-Policy"]
    assert '<tr data-table="sensor_telemetry" data-health="failing"' in page
    assert '<tr data-table="users" data-health="stale"' in page
    assert "failed &lt;b&gt;" in page and "failed <b>" not in page
    assert 'data-field="success_rate_7d" class="num">75.00%</td>' in page
    assert "http://" not in page.replace("http://www.w3.org", "")  # no outside asset


def test_the_drill_down_shows_the_manifest_files_and_checks(serve: Serve) -> None:
    url = serve()
    status = json.loads(_get(url + "/api/status")[2])
    reddit = next(t for t in status["tables"] if t["table"] == "reddit_diagnostic_posts")
    code, _, body = _get(url + "/exports/" + reddit["last_export_id"])
    page = body.decode()
    assert code == 200
    assert (
        "reddit_diagnostic_posts_a.parquet" in page and "reddit_diagnostic_posts_b.parquet" in page
    )
    assert "post_id_not_null" in page
    code, _, body = _get(url + "/api/exports/" + reddit["last_export_id"])
    detail = json.loads(body)
    assert [f["rows"] for f in detail["manifests"][0]["files"]] == [1000, 500]
    assert _get(url + "/exports/exp_nope")[0] == 404
    assert _get(url + "/exports/..%2F..%2Fdpexport.yaml")[0] == 404


def test_a_token_is_asked_on_every_request(serve: Serve) -> None:
    url = serve(token=TOKEN)
    for path in ("/", "/main", "/api/status", "/static/dashboard.css", "/nope"):
        code, headers, _ = _get(url + path)
        assert code == 401, path
        assert headers["WWW-Authenticate"].startswith("Bearer")
    assert _get(url + "/", {"Authorization": "Bearer wrong"})[0] == 401
    assert _get(url + "/", {"Authorization": f"Bearer {TOKEN}x"})[0] == 401
    assert _get(url + "/?token=wrong")[0] == 401
    assert _get(url + "/api/status", {"Authorization": f"Bearer {TOKEN}"})[0] == 200


def test_the_token_in_the_address_becomes_a_cookie(serve: Serve) -> None:
    url = serve(token=TOKEN)
    code, headers, _ = _get(url + f"/exports/x?token={TOKEN}")
    assert code == 303 and headers["Location"] == "/exports/x"
    cookie = headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
    code, _, body = _get(url + "/", {"Cookie": cookie.split(";")[0]})
    assert code == 200 and b"sensor_telemetry" in body
    assert TOKEN not in cookie  # the browser keeps a digest, not the token
    assert _get(url + "/", {"Cookie": "dpexport_dashboard=wrong"})[0] == 401
    assert _get(url + "/", {"Cookie": f"dpexport_dashboard={TOKEN}"})[0] == 401
    code, headers, _ = _get(url + f"//attacker.example/x?token={TOKEN}")
    assert code == 303 and headers["Location"] == "/attacker.example/x"


def test_it_is_read_only(serve: Serve) -> None:
    url = serve(token=TOKEN)
    auth = {"Authorization": f"Bearer {TOKEN}"}
    for method in ("POST", "PUT", "DELETE", "PATCH"):
        code, headers, _ = _get(url + "/api/status", auth, method)
        assert code == 405 and headers["Allow"] == "GET, HEAD"
    code, _, body = _get(url + "/", auth, "HEAD")
    assert code == 200 and body == b""


def test_without_a_token_only_loopback_host_names_are_answered(serve: Serve) -> None:
    url = serve()
    port = url.rsplit(":", 1)[1]
    assert _get(url + "/", {"Host": "attacker.example"})[0] == 421
    assert _get(url + "/", {"Host": f"attacker.example:{port}"})[0] == 421
    assert _get(url + "/", {"Host": f"localhost:{port}"})[0] == 200
    assert _get(url + "/", {"Host": f"[::1]:{port}"})[0] == 200


def test_assets_are_served_from_the_package_only(serve: Serve) -> None:
    url = serve()
    code, headers, body = _get(url + "/static/dashboard.css")
    assert code == 200 and headers["Content-Type"].startswith("text/css") and b".badge" in body
    assert _get(url + "/static/dashboard.js")[0] == 200
    for path in (
        "/static/../server.py",
        "/static/%2e%2e/server.py",
        "/static/data.py",
        "/static/x.css",
    ):
        assert _get(url + path)[0] == 404, path


@pytest.mark.parametrize(
    ("host", "loopback"),
    [("127.0.0.1", True), ("127.0.0.2", True), ("::1", True), ("localhost", True),
     ("0.0.0.0", False), ("::", False), ("192.168.1.4", False), ("example.com", False)],
)  # fmt: skip
def test_which_addresses_are_loopback(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback
