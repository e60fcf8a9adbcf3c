"""Property history in the long table: replaced per named property, kept when absent, and migrated from the JSON
column of schema version 2 (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
import sqlalchemy as sa

from connector.state import SCHEMA_VERSION, StateStore
from connector.state.schema import property_history, records
from tests.unit.test_state import store, store_url  # noqa: F401 - the SQLite/PostgreSQL store fixtures

UTC = timezone.utc
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _entry(value, days, source="API"):
    return {"value": value, "timestamp": T0 + timedelta(days=days), "sourceType": source}


def _iso(days):
    return (T0 + timedelta(days=days)).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _rec(i, history):
    return {"id": str(i), "properties": {"hs_mrr": "10"}, "history": history, "created_at": T0}


def _stored(store, i="1"):
    return store.load_records("subscriptions", [i])[i].history


def test_a_history_replaces_only_the_properties_it_names(store):  # noqa: F811
    store.save_page("subscriptions", [_rec(1, {"hs_mrr": [_entry("10", 1)], "hs_status": [_entry("active", 1)]})],
                    None)
    store.save_page("subscriptions", [_rec(1, {"hs_mrr": [_entry("20", 3), _entry("10", 1)]})], None)
    assert _stored(store) == {
        "hs_mrr": [{"value": "20", "timestamp": _iso(3), "sourceType": "API"},
                   {"value": "10", "timestamp": _iso(1), "sourceType": "API"}],
        "hs_status": [{"value": "active", "timestamp": _iso(1), "sourceType": "API"}],
    }
    store.save_page("subscriptions", [_rec(1, {"hs_mrr": []})], None)  # a property now without history: none kept
    assert _stored(store) == {"hs_status": [{"value": "active", "timestamp": _iso(1), "sourceType": "API"}]}


@pytest.mark.parametrize("history", [None, {}], ids=["none", "empty"])
def test_a_record_without_history_keeps_the_stored_one(store, history):  # noqa: F811
    store.save_page("subscriptions", [_rec(1, {"hs_mrr": [_entry("10", 1)]}), _rec(2, {"hs_mrr": [_entry("5", 2)]})],
                    None)
    store.save_page("subscriptions", [_rec(1, history), _rec(2, {"hs_mrr": [_entry("6", 4)]})], None)
    assert _stored(store) == {"hs_mrr": [{"value": "10", "timestamp": _iso(1), "sourceType": "API"}]}
    assert _stored(store, "2") == {"hs_mrr": [{"value": "6", "timestamp": _iso(4), "sourceType": "API"}]}


def test_entries_without_an_instant_are_the_oldest_and_values_keep_their_text(store):  # noqa: F811
    history = {"hs_mrr": [{"value": 12, "timestamp": None, "sourceType": None}, _entry(None, 2, "CRM_UI")]}
    store.save_page("subscriptions", [_rec(1, history)], None)
    assert _stored(store) == {"hs_mrr": [{"value": None, "timestamp": _iso(2), "sourceType": "CRM_UI"},
                                         {"value": "12", "timestamp": None, "sourceType": None}]}


def test_a_malformed_history_instant_refuses_the_page_whole(store):  # noqa: F811
    store.save_page("subscriptions", [_rec(1, {"hs_mrr": [_entry("10", 1)]})], {"after": "1"})
    bad = [_rec(2, {"hs_mrr": [_entry("1", 1)]}), _rec(3, {"hs_mrr": [{"value": "1", "timestamp": "yesterday"}]})]
    with pytest.raises(ValueError, match="subscriptions/3 property 'hs_mrr'"):
        store.save_page("subscriptions", bad, {"after": "3"})
    assert store.count_records("subscriptions") == 1 and store.load_cursor("subscriptions") == {"after": "1"}
    assert store.history_frame("subscriptions", ["hs_mrr"])["id"].to_list() == ["1"]


def test_version_2_json_history_moves_to_the_long_table(store_url):  # noqa: F811
    old = StateStore.open(store_url, upgrade_to=2)
    assert old.schema_version() == 2
    # As version 2 saved them: the history JSON in records.history, ISO instants, newest first.
    saved = {}
    rows = []
    for i in range(1, 2502):  # more than one keyset page of the migration
        history = {"hs_mrr": [{"value": str(i), "timestamp": _iso(i % 40 + 1), "sourceType": "API"},
                              {"value": "1", "timestamp": _iso(0), "sourceType": "CRM_UI"}]}
        if i % 3 == 0:
            history["hs_status"] = [{"value": "active", "timestamp": _iso(0), "sourceType": "API"}]
        saved[str(i)] = history if i % 7 else None
        rows.append({"object_type": "subscriptions", "id": str(i), "properties": {"n": str(i)},
                     "history": saved[str(i)], "archived": i == 9, "created_at": T0, "pulled_at": T0})
    rows.append({"object_type": "companies", "id": "1", "properties": {}, "archived": False, "created_at": None,
                 "pulled_at": T0,
                 "history": {"seats_used": [{"value": "8", "timestamp": "2026-02-03T04:05:06.789Z",
                                             "sourceType": "INTEGRATION"}]}})
    with old.engine.begin() as conn:
        assert not old.engine.dialect.has_table(conn, "property_history")
        conn.execute(sa.insert(records), rows)
    old.close()

    new = StateStore.open(store_url)
    assert new.schema_version() == SCHEMA_VERSION
    got = new.load_records("subscriptions", list(saved))
    assert {i: r.history for i, r in got.items()} == {i: h or {} for i, h in saved.items()}
    assert new.load_records("companies", ["1"])["1"].history == {
        "seats_used": [{"value": "8", "timestamp": "2026-02-03T04:05:06.789Z", "sourceType": "INTEGRATION"}]}
    entries = sum(len(e) for h in saved.values() if h for e in h.values()) + 1
    with new.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(property_history)).scalar() == entries
        assert conn.execute(sa.select(sa.func.count()).select_from(records)
                            .where(records.c.history.is_not(None))).scalar() == 0
    frame = new.history_frame("subscriptions", ["hs_mrr", "hs_status"])
    live = [i for i, h in saved.items() if h and i != "9"]
    assert frame.height == sum(len(e) for i in live for e in saved[i].values())
    new.close()
