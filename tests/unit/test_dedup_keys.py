"""Cross-run de-duplication keys: distinct key values never share a key text (a shared
one drops a row that was never published)."""

from __future__ import annotations

import pyarrow as pa
from hypothesis import given
from hypothesis import strategies as st

from dpexport.publish.dedup import row_keys

PART = st.one_of(st.none(), st.text(alphabet=st.sampled_from("ab\\\x1f\x00N u"), max_size=4))


@given(st.lists(st.tuples(PART, PART), min_size=1, max_size=12, unique=True))
def test_distinct_composite_keys_have_distinct_texts(rows: list[tuple[str | None, ...]]) -> None:
    batch = pa.record_batch({"a": [r[0] for r in rows], "b": [r[1] for r in rows]}).cast(
        pa.schema([("a", pa.string()), ("b", pa.string())])
    )
    keys = row_keys(batch, ["a", "b"]).to_pylist()
    assert len(set(keys)) == len(rows)


def test_examples_that_met_before() -> None:
    batch = pa.record_batch(
        {"a": ["a\x1fb", "a", None, "\x00", "plain"], "b": ["c", "b\x1fc", "z", "z", "z"]}
    )
    assert len(set(row_keys(batch, ["a", "b"]).to_pylist())) == 5
    assert len(set(row_keys(batch, ["a"]).to_pylist())) == 5
    # an ordinary value is its own key, as in states written before
    assert row_keys(batch, ["a"]).to_pylist()[4] == "plain"
