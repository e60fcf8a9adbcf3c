"""The store's columnar reads equal what its row readers give, on a SQLite file, in-memory SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import orjson
import polars as pl
import pytest

from connector.errors import StateError
from connector.state import StateStore
from tests.unit.test_state import _pg_schema_url

UTC = timezone.utc
T0 = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)
ODD = ["it's", 'say "hi"', "dotted.name", "space d", "back\\slash", "é", "$x", "[0]"]


@pytest.fixture(params=["file", "memory", pytest.param("postgresql", marks=pytest.mark.postgres)])
def store(request, tmp_path):
    url = {"file": f"sqlite:///{tmp_path}/state.db", "memory": "sqlite://"}.get(request.param)
    s = StateStore.open(url or _pg_schema_url(request))
    yield s
    s.close()


def _entry(value, at, source="API"):
    return {"value": value, "timestamp": at, "sourceType": source}


def _fill(store: StateStore, extra: dict | None = None) -> None:
    page = []
    for i in range(1, 8):
        props = {name: f"{name}-{i}" for name in ODD[: i + 1]}
        props.update({"plain": str(i), "empty": None, "quote'json": 'a "b" \\ c\n'})
        if extra and i == 3:
            props.update(extra)
        page.append({
            "id": str(i),
            "properties": props,
            "history": {
                "plain": [_entry(str(i), T0 + timedelta(days=i)), _entry("0", T0), _entry("-1", T0)],
                "it's": [_entry(None, T0 + timedelta(hours=i), None)],
            } if i % 2 else None,
            "archived": i == 5,
            "created_at": T0 + timedelta(minutes=i),
            "updated_at": None if i == 2 else T0 + timedelta(days=1, microseconds=i),
        })
    store.save_page("companies", page, None)
    store.replace_associations("companies", "contacts", {"1": [("c1", 1), ("c2", None)], "3": [("c9", 279)]})
    store.replace_associations("companies", "deals", {"1": [("d1", 5)]})


def _text(value):
    return value if value is None or isinstance(value, str) else orjson.dumps(value).decode()


NAMES = [*ODD, "plain", "empty", "quote'json", "never-set"]


@pytest.mark.parametrize("include_archived", [False, True], ids=["live", "with-archived"])
def test_records_frame_equals_iter_records(store, include_archived):
    _fill(store)
    frame = store.records_frame("companies", NAMES, include_archived=include_archived)
    assert frame.schema == pl.Schema({"id": pl.Utf8, "created_at": pl.Datetime("us", "UTC"),
                                      "updated_at": pl.Datetime("us", "UTC"), "archived": pl.Boolean,
                                      **{n: pl.Utf8 for n in NAMES}})
    expected = [
        {"id": r.id, "created_at": r.created_at, "updated_at": r.updated_at, "archived": r.archived,
         **{n: _text(r.properties.get(n)) for n in NAMES}}
        for r in store.iter_records("companies", include_archived=include_archived)
    ]
    assert frame.to_dicts() == expected
    assert ("5" in frame["id"].to_list()) == include_archived
    assert frame.filter(pl.col("id") == "2")["updated_at"].to_list() == [None]
    assert frame.filter(pl.col("id") == "3")["quote'json"].to_list() == ['a "b" \\ c\n']


@pytest.mark.parametrize("nested", [None, {"k": [1, "x"]}], ids=["scalars", "with-an-object"])
def test_records_frame_keeps_the_text_of_values_that_are_not_strings(store, nested):
    # an object or array takes the slower decoder for the whole frame: both decoders give the same columns
    _fill(store, {"plain": 5, "flag": True, "nested": nested})
    frame = store.records_frame("companies", ["plain", "flag", "nested", "it's"])
    row = frame.filter(pl.col("id") == "3").to_dicts()[0]
    assert (row["plain"], row["flag"], row["it's"]) == ("5", "true", "it's-3")
    assert (row["nested"] and orjson.loads(row["nested"])) == nested
    assert frame.filter(pl.col("id") == "4")["plain"].to_list() == ["4"]


def test_history_frame_equals_iter_records(store):
    _fill(store)
    wanted = ["plain", "it's", "not-historical"]
    frame = store.history_frame("companies", wanted)
    assert frame.schema == pl.Schema({"id": pl.Utf8, "property": pl.Utf8, "value": pl.Utf8,
                                      "timestamp": pl.Datetime("us", "UTC"), "source": pl.Utf8})
    expected = [
        {"id": r.id, "property": name, "value": e["value"],
         "timestamp": datetime.fromisoformat(e["timestamp"].replace("Z", "+00:00")), "source": e["sourceType"]}
        for r in store.iter_records("companies")
        for name in sorted(r.history) if name in wanted
        for e in reversed(r.history[name])  # newest first there, oldest first here
    ]
    assert frame.to_dicts() == expected
    assert set(frame["id"]) == {"1", "3", "7"}  # 5 is archived; even ids have no history
    # equal instants keep HubSpot's order (newest first there): "0" was listed before "-1", so it is the later
    assert frame.filter((pl.col("id") == "1") & (pl.col("property") == "plain"))["value"].to_list() == ["-1", "0", "1"]


def test_associations_frame_equals_iter_associations(store):
    _fill(store)
    frame = store.associations_frame("companies", "contacts")
    assert frame.schema == pl.Schema({"from_id": pl.Utf8, "to_id": pl.Utf8, "type_id": pl.Int64})
    assert frame.rows() == [(a.from_id, a.to_id, a.type_id) for a in store.iter_associations("companies", "contacts")]
    assert frame.rows() == [("1", "c1", 1), ("1", "c2", None), ("3", "c9", 279)]


def test_frames_of_an_empty_type_have_their_columns(store):
    assert store.records_frame("deals", ["amount"]).columns == ["id", "created_at", "updated_at", "archived", "amount"]
    assert store.records_frame("deals", []).height == 0
    assert store.history_frame("deals", ["amount"]).columns == ["id", "property", "value", "timestamp", "source"]
    assert store.history_frame("deals", []).height == 0
    assert store.associations_frame("deals", "companies").height == 0


def test_a_property_named_like_a_record_column_is_refused(store):
    with pytest.raises(StateError, match="clash"):
        store.records_frame("companies", ["archived"])


@pytest.mark.parametrize("size", [2, 6], ids=["several-slices", "a-slice-exactly-full"])
def test_records_frame_read_in_slices_is_the_same(store, monkeypatch, size):
    from connector.state import frames

    _fill(store)
    whole = store.records_frame("companies", NAMES)
    monkeypatch.setattr(frames, "SLICE", size)  # six live records
    assert store.records_frame("companies", NAMES).equals(whole)
