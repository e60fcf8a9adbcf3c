"""The search window's restart logic at HubSpot's 10,000-result cap, each boundary a named case."""

from __future__ import annotations

import pytest

from connector.hubspot.paging import (
    SEARCH_CAP,
    Seen,
    SearchWindow,
    advance,
    fresh_results,
    plan_search_body,
    restart,
    split_for_url,
)

PROP = "hs_lastmodifieddate"


def _filters(body: dict) -> list[tuple[str, str, str]]:
    return [(f["propertyName"], f["operator"], f["value"]) for f in body["filterGroups"][0]["filters"]]


def test_plan_search_body_first_page_filters_gte_and_sorts_ascending():
    body = plan_search_body(SearchWindow(since_ms=1000), PROP, ["name", PROP])
    assert _filters(body) == [(PROP, "GTE", "1000")]
    assert body["sorts"] == [{"propertyName": PROP, "direction": "ASCENDING"}]
    assert body["limit"] == 200 and "after" not in body
    assert body["properties"] == ["name", PROP]


@pytest.mark.parametrize(
    ("offset", "page_size", "cap", "expect_restart"),
    [
        pytest.param(9_600, 200, SEARCH_CAP, False, id="next-page-ends-below-cap"),
        pytest.param(9_800, 200, SEARCH_CAP, False, id="next-page-ends-exactly-at-cap"),
        pytest.param(9_801, 200, SEARCH_CAP, True, id="next-page-would-cross-cap-by-one"),
        pytest.param(10_000, 200, SEARCH_CAP, True, id="next-offset-is-the-cap"),
        pytest.param(4, 2, 5, True, id="small-cap-crossed"),
        pytest.param(3, 2, 5, False, id="small-cap-exactly-filled"),
    ],
)
def test_advance_restarts_only_before_crossing_the_cap(offset, page_size, cap, expect_restart):
    window = SearchWindow(since_ms=100, offset=offset - page_size if offset >= page_size else 0)
    results = [Seen("7", 150), Seen("8", 160)]
    after = advance(window, results, str(offset), page_size=page_size, cap=cap)
    if expect_restart:
        assert (after.since_ms, after.offset, after.restarts) == (160, 0, 1)
    else:
        assert (after.since_ms, after.offset, after.restarts) == (100, offset, 0)


@pytest.mark.parametrize(
    ("results", "expected_since", "expected_boundary"),
    [
        pytest.param([Seen("1", 200), Seen("2", 300)], 300, {"2"}, id="restart-from-last-timestamp"),
        pytest.param([Seen("1", 200), Seen("2", 300), Seen("3", 300)], 300, {"2", "3"},
                     id="ties-at-last-timestamp-all-remembered"),
        pytest.param([Seen("9", 300), Seen("3", 300)], 300, {"3", "9"}, id="ties-in-any-id-order"),
    ],
)
def test_advance_restart_keeps_boundary_ids(results, expected_since, expected_boundary):
    after = advance(SearchWindow(since_ms=100), results, "10", page_size=10, cap=15)
    assert after.since_ms == expected_since
    assert after.boundary_ms == expected_since
    assert set(after.boundary) == expected_boundary
    # The restart is GTE the boundary, not GT and not an id + 1 trick.
    assert _filters(plan_search_body(after, PROP, [])) == [(PROP, "GTE", str(expected_since))]


def test_fresh_results_drops_only_ids_already_seen_at_the_boundary():
    window = SearchWindow(since_ms=300, boundary_ms=300, boundary=frozenset({"2", "3"}))
    page = [Seen("2", 300), Seen("4", 300), Seen("3", 301), Seen("5", 302)]
    # "3" was modified again after we saw it: a new version, yielded again (at-least-once).
    assert [s.id for s in fresh_results(window, page)] == ["4", "3", "5"]


def test_advance_last_page_is_done():
    after = advance(SearchWindow(since_ms=1), [Seen("1", 5)], None)
    assert after.done


def test_advance_whole_window_in_one_millisecond_switches_to_id_order():
    window = SearchWindow(since_ms=500)
    same_ms = [Seen(str(i), 500) for i in (4, 2, 9)]
    tie = advance(window, same_ms, "3", page_size=3, cap=5)
    assert tie.mode == "tie" and tie.since_ms == 500 and tie.after_id is None
    body = plan_search_body(tie, PROP, [])
    assert _filters(body) == [(PROP, "EQ", "500")]
    assert body["sorts"] == [{"propertyName": "hs_object_id", "direction": "ASCENDING"}]
    # In tie mode the restart filters on ids strictly greater than the last one seen (ascending by id).
    tie2 = advance(tie, [Seen("10", 500), Seen("11", 500)], "3", page_size=3, cap=5)
    assert tie2.mode == "tie" and tie2.after_id == 11
    assert _filters(plan_search_body(tie2, PROP, [])) == [(PROP, "EQ", "500"), ("hs_object_id", "GT", "11")]
    # When the millisecond is exhausted, the walk goes on after it.
    back = advance(tie2, [Seen("12", 500)], None, page_size=3, cap=5)
    assert back.mode == "time" and back.since_ms == 501 and not back.done


@pytest.mark.parametrize(
    ("client_cap", "server_cap"),
    [
        pytest.param(10, 10_000, id="client-restarts-before-its-cap"),
        pytest.param(10_000, 9, id="server-refuses-a-deep-page-first"),
    ],
)
def test_window_walk_over_a_simulated_index_yields_every_record_once(client_cap, server_cap):
    """Drive the pure logic over an in-memory 'search index' with many ties and a tiny cap."""
    records = [(str(i), 1000 + i // 7) for i in range(1, 200)]  # runs of 7 records per millisecond
    records += [(str(1000 + i), 5000) for i in range(12)]  # a run longer than the cap
    page = 3
    window = SearchWindow(since_ms=0)
    yielded: list[str] = []
    for _ in range(1_000):
        if window.done:
            break
        if window.mode == "tie":
            rows = sorted((r for r in records if r[1] == window.since_ms and (window.after_id is None or int(r[0]) > window.after_id)),
                          key=lambda r: int(r[0]))
        else:
            rows = sorted((r for r in records if r[1] >= window.since_ms), key=lambda r: (r[1], -int(r[0])))
        start = window.offset
        if start >= server_cap:  # HubSpot answers 400: the client restarts where it stands
            assert start > 0
            window = restart(window)
            continue
        chunk = [Seen(i, ms) for i, ms in rows[start : start + page]]
        assert start < client_cap, "paged past the cap"
        nxt = str(start + page) if start + page < len(rows) else None
        yielded += [s.id for s in fresh_results(window, chunk)]
        window = advance(window, chunk, nxt, page_size=page, cap=client_cap)
    assert window.done
    assert sorted(yielded, key=int) == sorted((i for i, _ in records), key=int)
    assert len(yielded) == len(set(yielded))


@pytest.mark.parametrize(
    ("names", "budget", "in_url"),
    [
        pytest.param(["a", "b"], 100, 2, id="short-list-all-in-url"),
        pytest.param([f"p{i:03d}" for i in range(100)], 160, 10, id="long-list-split-16-chars-each"),
        pytest.param([], 10, 0, id="empty"),
    ],
)
def test_split_for_url(names, budget, in_url):
    head, rest = split_for_url(names, budget)
    assert len(head) == in_url
    assert head + rest == names


def test_restart_in_tie_mode_begins_after_the_last_id_read():
    tie = SearchWindow(since_ms=500, mode="tie", after_id=10)
    tie = advance(tie, [Seen("11", 500), Seen("12", 500)], "2", page_size=2, cap=100)
    tie = advance(tie, [Seen("13", 500), Seen("14", 500)], "4", page_size=2, cap=100)
    again = restart(tie)  # e.g. the next page was refused
    assert (again.mode, again.offset, again.after_id) == ("tie", 0, 14)
