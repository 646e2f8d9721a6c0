"""The DLQ's and the tokens' keys under a configured root (spec 7.2, 7.3): the defaults
are the reserved prefixes byte for byte, and each parser finds only its own keys."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from dpexport.reliability import dlq
from dpexport.reliability.places import StateRoots, as_folder
from dpexport.storage import layout
from dpexport.storage.local import LocalStore

AT = datetime(2025, 9, 16, 14, 30, 22, tzinfo=UTC)


def test_default_roots_are_the_reserved_prefixes() -> None:
    assert layout.dlq_failed_prefix("e1") == "dead-letter-queue/failed_exports/e1/"
    assert layout.dlq_poisoned_key("e1") == "dead-letter-queue/poison_messages/e1.json"
    assert layout.quarantine_key("e1", "t") == "dead-letter-queue/quarantined_rows/e1/t.jsonl.gz"
    assert layout.token_key("t_1_2_ab") == "idempotency-tokens/t_1_2_ab.json"
    assert layout.lease_key("ds", "t") == "idempotency-tokens/_leases/ds.t.json"


def test_keys_under_a_configured_root_parse_back() -> None:
    key = layout.dlq_failed_prefix("e1", "ops/dlq/") + layout.DLQ_ERROR
    assert key == "ops/dlq/failed_exports/e1/error_details.json"
    found = layout.parse_dlq_key(key, "ops/dlq/")
    assert found is not None and found.prefix == "ops/dlq/failed_exports/e1/"
    assert layout.parse_dlq_key(key) is None
    name = layout.token_name("events", AT, "a3b4c5d6")
    token = layout.token_key(name, "")
    assert layout.parse_token_key(token, "") is not None
    assert layout.parse_lease_key(layout.lease_key("ds", "t", ""), "") == ("ds", "t")


def test_a_token_root_shared_with_the_dlq_takes_no_dlq_document_for_a_token() -> None:
    root = "state/"
    assert not layout.is_token_key(layout.dlq_failed_prefix("e1", root) + layout.DLQ_ERROR, root)
    assert not layout.is_token_key(layout.lease_key("ds", "t", root), root)
    assert layout.is_token_key(layout.token_key("t_20250916_1_ab", root), root)


def test_as_folder() -> None:
    assert as_folder("") == "" and as_folder("a/b") == "a/b/" and as_folder("a/") == "a/"


def test_state_roots_hold_on_their_own_store_only(tmp_path: Path) -> None:
    mine = LocalStore(tmp_path / "s", url="gs://state")
    other = LocalStore(tmp_path / "b", url="gs://b")
    roots = StateRoots(dlq=None, tokens=("gs://state", "tokens/"))
    assert roots.dlq_root(other) == layout.DLQ_PREFIX
    assert roots.tokens_root(mine) == "tokens/" and roots.tokens_root(other) is None
    assert roots.configured_roots(mine) == ("tokens/",) and roots.configured_roots(other) == ()


def test_the_dlq_round_trips_under_a_root(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "s", url="gs://other")
    error = dlq.error_details(RuntimeError("boom"), now=AT)
    request = dlq.export_request(table="ds.t", at=AT, trigger="manual", export_id="e1")
    uri = dlq.record_failure(store, "e1", request, error, [], now=AT, root="dlq/")
    assert uri == "gs://other/dlq/failed_exports/e1/"
    assert [e.export_id for e in dlq.list_entries(store, AT, root="dlq/")] == ["e1"]
    assert dlq.list_entries(store, AT) == []
    assert dlq.purge(store, AT, force=True, root="dlq/") == ["e1"]
    assert list(store.list("")) == []
