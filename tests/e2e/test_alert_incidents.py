"""One incident per rule and table, safe against two runners (CONTRACT §10): of two
runners that fire the same alert at once only one sends it, and of two that resolve it
only one sends the resolve, on a local bucket and on the S3 server (conditional writes)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path

import pytest

from dpexport.alerts import incidents
from dpexport.alerts.model import Alert, Delivery, Target
from dpexport.storage.base import Store
from dpexport.storage.uri import StoreResolver
from tests.conformance.servers import server_env, unique_bucket

TARGETS = [Target("pagerduty")]


@pytest.fixture(params=["local", "s3"])
def stores(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[[], Store]]:
    """A way to open the same bucket afresh, as a second runner would."""
    if request.param == "local":
        uri = "gs://b"
    else:
        server_env("AWS_ENDPOINT_URL", "the S3 server (moto)")
        import boto3

        name = unique_bucket("alerts")
        client = boto3.session.Session().client("s3")
        client.create_bucket(Bucket=name)
        client.close()
        uri = f"s3://{name}"
    yield lambda: StoreResolver(tmp_path / "root").resolve(uri)[0]


def _both(run: Callable[[Store], list[Delivery]], open_store: Callable[[], Store]) -> int:
    """Runs ``run`` in two threads at once, each with its own store; deliveries sent."""
    gate = threading.Barrier(2)
    sent: list[Delivery] = []
    lock = threading.Lock()

    def runner(store: Store) -> None:
        gate.wait()
        got = run(store)
        with lock:
            sent.extend(got)

    threads = [threading.Thread(target=runner, args=(open_store(),)) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return len(sent)


def _send(alert: Alert, targets: Sequence[Target]) -> list[Delivery]:
    return [Delivery(t.channel, alert.rule, alert.action, "sent", 1) for t in targets]


def test_two_runners_fire_and_resolve_one_incident_once(stores: Callable[[], Store]) -> None:
    alert = Alert("export_failure", "ds.t", "trigger", "export of ds.t failed")
    now = datetime.now(UTC)
    fired = _both(lambda s: incidents.fire(s, alert, TARGETS, _send, now), stores)
    assert fired == 1
    [doc] = incidents.open_incidents(stores())
    assert doc["dedup_key"] == "dpexport/export_failure/ds.t"
    assert doc["deliveries"][0]["outcome"] == "sent"
    assert incidents.fire(stores(), alert, TARGETS, _send, now) == []  # open: nothing sent

    resolved = _both(
        lambda s: incidents.clear(s, "export_failure", "ds.t", TARGETS, _send, "fixed"), stores
    )
    assert resolved == 1
    assert incidents.open_incidents(stores()) == []
    assert incidents.clear(stores(), "export_failure", "ds.t", TARGETS, _send, "x") == []


def test_a_resolve_no_channel_took_is_sent_again(tmp_path: Path) -> None:
    store = StoreResolver(tmp_path).resolve("gs://b")[0]
    alert = Alert("export_size", "ds.t", "trigger", "too big")
    assert len(incidents.fire(store, alert, TARGETS, _send, datetime.now(UTC))) == 1

    def down(alert: Alert, targets: Sequence[Target]) -> list[Delivery]:
        return [
            Delivery(t.channel, alert.rule, alert.action, "failed", 3, "HTTP 500") for t in targets
        ]

    assert [
        d.outcome for d in incidents.clear(store, "export_size", "ds.t", TARGETS, down, "ok")
    ] == ["failed"]
    [still] = incidents.open_incidents(store)
    assert still["state"] == "open"
    [again] = incidents.clear(store, "export_size", "ds.t", TARGETS, _send, "ok")
    assert (again.action, again.outcome) == ("resolve", "sent")
    assert incidents.open_incidents(store) == []
