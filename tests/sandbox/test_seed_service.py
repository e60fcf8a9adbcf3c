"""The generated portal's owners, products, tickets and engagements: consistent, reproducible, drawn from their own
random stream, and tied to the churn hazard as usage and NPS are."""

from __future__ import annotations

import statistics
from collections import defaultdict

import pytest

from connector.sandbox import schema
from connector.sandbox.portal.common import parse_ms
from connector.sandbox.seed import ADDON, DAY, PLANS, _Generator, generate

NOW = 1_795_000_020_000


@pytest.fixture(scope="module")
def portal():
    return generate(seed=2, contacts=4000, now_ms=NOW)


def _linked(portal, from_type: str, to_type: str) -> dict[int, list[int]]:
    """to id -> from ids (e.g. company -> its tickets)."""
    out: dict[int, list[int]] = defaultdict(list)
    for a_type, a, b_type, b, _ in portal.associations:
        if a_type == from_type and b_type == to_type:
            out[b].append(a)
    return out


def test_same_seed_same_service_records():
    one, two = (generate(seed=9, contacts=300, now_ms=NOW) for _ in range(2))
    for object_type in ("tickets", "calls", "emails", "meetings", "notes", "tasks", "products"):
        assert [(r.id, r.properties, r.history) for r in one.records[object_type]] == \
               [(r.id, r.properties, r.history) for r in two.records[object_type]], object_type
    assert one.owners == two.owners and one.associations == two.associations


def test_service_records_come_from_their_own_stream(monkeypatch):
    """Without tickets, engagements and owners every other record is exactly what it is with them."""
    full = generate(seed=4, contacts=500, now_ms=NOW)
    monkeypatch.setattr(_Generator, "_service", lambda self: None)
    bare = generate(seed=4, contacts=500, now_ms=NOW)
    for object_type in ("contacts", "companies", "deals", "line_items", "subscriptions", "feedback_submissions"):
        strip = [(r.id, {k: v for k, v in r.properties.items() if k != "hubspot_owner_id"}, r.history, r.archived)
                 for r in full.records[object_type]]
        assert strip == [(r.id, r.properties, r.history, r.archived) for r in bare.records[object_type]], object_type
    assert full.ground_truth == bare.ground_truth
    assert set(bare.associations) <= set(full.associations)
    assert not any(bare.records[t] for t in ("tickets", "calls", "emails", "meetings", "notes", "tasks"))


def test_owners_teams_and_assignments(portal):
    active = {o.id for o in portal.owners if not o.archived}
    assert len(active) >= 3 and any(o.archived for o in portal.owners)
    assert len({o.email for o in portal.owners}) == len(portal.owners)
    assert {t[1] for o in portal.owners for t in o.teams} == {"Sales", "Customer Success", "Support"}
    for object_type in ("companies", "tickets", "calls", "emails", "meetings", "notes", "tasks"):
        owners = {r.properties.get("hubspot_owner_id") for r in portal.records[object_type]}
        assert owners and {int(o) for o in owners} <= active, object_type


def test_tickets_are_consistent(portal):
    primary = {a for t, a, _, _, p in portal.associations if t == "tickets" and p}
    with_contact = {a for t, a, u, _, _ in portal.associations if t == "tickets" and u == "contacts"}
    for r in portal.records["tickets"]:
        p = r.properties
        assert r.id in primary and r.id in with_contact
        assert p["hs_pipeline"] == "0" and p["hs_pipeline_stage"] in schema.TICKET_STAGES
        assert [s for s, _ in r.history["hs_pipeline_stage"]][0] == "1"
        if p["hs_pipeline_stage"] == "4":
            closed = parse_ms(p["closed_date"])
            assert int(p["time_to_close"]) == closed - r.created_ms > 0 and closed <= NOW
        else:
            assert "closed_date" not in p and "time_to_close" not in p


def test_products_are_the_items_the_line_items_name(portal):
    products = {str(r.id): r.properties["name"] for r in portal.records["products"]}
    assert products == {str(pid): name for name, pid, _ in PLANS + (ADDON,)}
    assert {r.properties["hs_product_id"] for r in portal.records["line_items"]} <= set(products)


def test_churned_customers_file_more_tickets_of_higher_priority_and_meet_less(portal):
    """Ground truth: the 90 days before a churn against a retained customer's last 90 days."""
    churned = {}
    for event in portal.ground_truth:
        if event["kind"] == "churn" and event["churned_at"]:
            churned.setdefault(event["company_id"], parse_ms(event["churned_at"]))
    won_back = {e["company_id"] for e in portal.ground_truth if e["kind"] == "reactivation"}
    sub_company = {a: b for t, a, u, b, _ in portal.associations if t == "subscriptions" and u == "companies"}
    retained = {sub_company[r.id] for r in portal.records["subscriptions"] if r.properties.get("hs_status") == "active"}
    retained -= set(churned)
    churned = {c: t for c, t in churned.items() if c not in won_back}
    assert len(churned) > 50 and len(retained) > 150
    tickets = {r.id: r for r in portal.records["tickets"]}
    meetings = {r.id: r for r in portal.records["meetings"]}
    by_company, meets = _linked(portal, "tickets", "companies"), _linked(portal, "meetings", "companies")

    def before(records, ids, end, days):
        return [records[i] for i in ids if end - days * DAY < records[i].created_ms <= end]

    lost = [before(tickets, by_company[c], t, 90) for c, t in churned.items()]
    kept = [before(tickets, by_company[c], NOW, 90) for c in retained]
    rate_lost, rate_kept = statistics.mean(map(len, lost)), statistics.mean(map(len, kept))
    assert rate_lost > 1.2 * rate_kept, (rate_lost, rate_kept)

    def high_share(groups):
        flat = [t for g in groups for t in g]
        return sum(t.properties["hs_ticket_priority"] in ("HIGH", "URGENT") for t in flat) / len(flat)

    def median_days_to_close(groups):
        return statistics.median(int(t.properties["time_to_close"]) / DAY for g in groups for t in g
                                 if "time_to_close" in t.properties)

    assert high_share(lost) > high_share(kept)
    assert median_days_to_close(lost) > 1.5 * median_days_to_close(kept)
    meetings_lost = statistics.mean(len(before(meetings, meets[c], t, 120)) for c, t in churned.items())
    meetings_kept = statistics.mean(len(before(meetings, meets[c], NOW, 120)) for c in retained)
    assert meetings_lost < 0.8 * meetings_kept, (meetings_lost, meetings_kept)
