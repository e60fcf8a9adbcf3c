"""build_portfolio on hand-written HubSpot-shaped records through the default mapping pack."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from connector import model
from connector.mapping import load_pack
from connector.mapping.sources import CANONICAL_FIELDS, FREQUENCIES, SUBSCRIPTION_STATUSES, TIMELINES
from connector.model import (
    Customer, Deal, FeedbackResponse, LineItem, Subscription, Usage, build_portfolio, parse_date, parse_datetime,
)

ROOT = Path(__file__).resolve().parents[2]
UTC = timezone.utc


@dataclass
class Rec:
    object_type: str
    id: str
    properties: dict[str, str | None]
    history: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    archived: bool = False
    created_at: datetime | None = datetime(2024, 1, 1, tzinfo=UTC)
    updated_at: datetime | None = None


@dataclass
class Assoc:
    from_type: str
    from_id: str
    to_type: str
    to_id: str
    type_id: int | None = None


@pytest.fixture(scope="module")
def pack():
    return load_pack(ROOT / "mappings")


def _hist(*points: tuple[str, str]) -> list[dict[str, Any]]:
    """HubSpot order: newest first."""
    return [{"value": v, "timestamp": t, "sourceType": "API"} for v, t in sorted(points, key=lambda p: p[1], reverse=True)]


def _portal():
    records = [
        Rec("companies", "10", {"name": "Acme", "industry": "RETAIL", "country": "France", "createdate": "2023-05-01T10:00:00.000Z",
                                "hs_lifecyclestage_customer_date": "2023-06-15T08:30:00.000Z", "numberofemployees": "120",
                                "product_active_days_30d": "12", "product_logins_30d": "40", "seats_used": "8",
                                "seats_purchased": "10", "onboarding_milestones": "account_created;data_imported",
                                "product_last_login_at": "2024-05-30T12:00:00.000Z"},
            history={"product_active_days_30d": _hist(("20", "2024-03-01T00:00:00.000Z"), ("12", "2024-05-01T00:00:00.000Z"))}),
        Rec("companies", "11", {"name": "Gone Corp"}, archived=True),
        Rec("companies", "12", {"name": "Bare"}),
        Rec("contacts", "100", {"firstname": "Ada", "lastname": "Lovelace", "date_of_birth": "1985-12-10"}),
        Rec("contacts", "101", {"firstname": "Bob", "lastname": None, "date_of_birth": "1985-02-30"}),
        Rec("contacts", "102", {"firstname": "Cleo", "lastname": "Solo"}),  # no company, has a subscription
        Rec("contacts", "103", {"firstname": "Lead", "lastname": "Only"}),  # no company, nothing linked
        Rec("subscriptions", "500", {
            "hs_name": "Pro", "hs_status": "active", "hs_mrr": "200", "hs_currency_code": "EUR",
            "hs_recurring_billing_frequency": "monthly", "hs_recurring_billing_start_date": "2023-07-01",
            "hs_createdate": "2023-07-01T00:00:00.000Z"},
            history={"hs_mrr": _hist(("100", "2023-07-01T00:00:00.000Z"), ("200", "2024-02-10T00:00:00.000Z")),
                     "hs_status": _hist(("active", "2023-07-01T00:00:00.000Z"))}),
        Rec("subscriptions", "501", {"hs_name": "Solo", "hs_status": "bogus", "hs_mrr": "50", "hs_currency_code": "USD",
                                     "hs_recurring_billing_start_date": "2024-02-01"}),
        Rec("subscriptions", "502", {"hs_name": "Old", "hs_status": "active", "hs_mrr": "10"}, archived=True),
        Rec("deals", "700", {"dealname": "Acme renewal", "amount": "abc", "deal_currency_code": "USD", "hs_is_closed_won": "true",
                             "hs_is_closed": "true", "closedate": "2024-01-15T00:00:00.000Z", "dealstage": "closedwon"}),
        Rec("deals", "701", {"dealname": "Acme upsell", "amount": "1000", "deal_currency_code": "GBP", "hs_is_closed_won": "false",
                             "hs_is_closed": "false"}),
        Rec("line_items", "900", {"name": "Annual plan", "quantity": "1", "price": "1200", "amount": "1200",
                                  "recurringbillingfrequency": "annually"}),
        Rec("line_items", "901", {"name": "Setup", "quantity": "1", "price": "300", "amount": "300"}),
        Rec("line_items", "902", {"name": "Seat", "quantity": "2", "price": "25", "amount": "50",
                                  "recurringbillingfrequency": "weekly"}),
        Rec("feedback_submissions", "1200", {"hs_survey_type": "nps", "hs_value": "9", "hs_response_group": "PROMOTER",
                                             "hs_submission_timestamp": "2024-04-01T09:00:00.000Z"}),
        Rec("feedback_submissions", "1201", {"hs_survey_type": "CSAT", "hs_value": "2", "hs_response_group": "HAPPY"}),
        Rec("tickets", "1", {"subject": "not mapped"}),
    ]
    associations = [
        Assoc("contacts", "100", "companies", "10", 279),
        Assoc("contacts", "101", "companies", "10", 1),  # Bob's primary company: Bob is the primary contact
        Assoc("contacts", "101", "companies", "11", 279),  # archived company: ignored
        Assoc("subscriptions", "500", "companies", "10", 297),
        Assoc("subscriptions", "501", "contacts", "102", 295),
        Assoc("subscriptions", "502", "companies", "10", 297),
        Assoc("subscriptions", "500", "line_items", "902", 301),
        Assoc("companies", "10", "deals", "700", 6),  # stored from the company side: read in reverse
        Assoc("deals", "701", "contacts", "100", 3),  # only via a contact
        Assoc("deals", "700", "line_items", "900", 19),
        Assoc("line_items", "901", "deals", "700", 20),
        Assoc("feedback_submissions", "1200", "contacts", "100", 1148),
        Assoc("feedback_submissions", "1201", "contacts", "103", 1148),  # the lead answered a survey
    ]
    return records, associations


@pytest.fixture(scope="module")
def portfolio(pack):
    records, associations = _portal()
    return build_portfolio(iter(records), iter(associations), pack)


def test_build_portfolio_customers_are_companies_with_contacts_rolled_up(portfolio):
    acme = portfolio.customers["10"]
    assert acme.object_type == "companies" and acme.name == "Acme"
    assert acme.contact_ids == ("100", "101")
    assert acme.primary_contact_id == "101"  # primary association beats the lower id
    assert acme.birthday is None  # Bob's birthday is malformed
    assert acme.customer_since == date(2023, 6, 15)
    assert acme.created_at == datetime(2023, 5, 1, 10, tzinfo=UTC)
    assert dict(acme.extra) == {"employees": 120, "lifecycle_stage": None}


def test_build_portfolio_contact_without_company_becomes_customer_when_linked(portfolio):
    assert set(portfolio.customers) == {"10", "12", "102", "103"}
    solo = portfolio.customers["102"]
    assert solo.object_type == "contacts" and solo.name == "Cleo Solo" and solo.contact_ids == ("102",)
    # no customer-since date mapped for contacts: the first subscription's start stands in
    assert solo.customer_since == date(2024, 2, 1)
    assert portfolio.customers["103"].object_type == "contacts"  # linked through a survey answer


def test_build_portfolio_resolves_subscriptions_deals_line_items_feedback(portfolio):
    subs = {s.id: s for s in portfolio.subscriptions}
    assert subs["500"].customer_id == "10" and subs["501"].customer_id == "102"
    deals = {d.id: d for d in portfolio.deals}
    assert deals["700"].customer_id == "10" and deals["700"].line_item_ids == ("900", "901")
    assert deals["701"].customer_id == "10"  # through contact 100's company
    items = {i.id: i for i in portfolio.line_items}
    assert items["900"].deal_id == "700" and items["901"].deal_id == "700"
    assert items["902"].subscription_id == "500" and items["902"].deal_id is None
    answers = {f.id: f for f in portfolio.feedback}
    assert answers["1200"].customer_id == "10" and answers["1200"].contact_id == "100"
    assert answers["1200"].survey_type == "NPS" and answers["1200"].value == 9
    assert answers["1200"].submitted_at == datetime(2024, 4, 1, 9, tzinfo=UTC)


def test_build_portfolio_converts_money_to_reporting_currency(portfolio):
    subs = {s.id: s for s in portfolio.subscriptions}
    assert subs["500"].mrr == Decimal("216.00")  # 200 EUR at 1.08
    assert subs["500"].currency == "EUR"
    deals = {d.id: d for d in portfolio.deals}
    assert deals["701"].amount == Decimal("1270.00")  # 1000 GBP at 1.27
    items = {i.id: i for i in portfolio.line_items}
    assert items["900"].mrr == Decimal(100)  # 1,200 a year (METRICS E4)
    assert items["901"].mrr is None and items["901"].billing_frequency is None  # one-time
    assert round(items["902"].mrr, 2) == Decimal("216.67")  # 50 a week × 52/12
    assert portfolio.reporting_currency == "USD"


def test_build_portfolio_histories_become_ascending_timelines(portfolio):
    sub = next(s for s in portfolio.subscriptions if s.id == "500")
    assert [t for t, _ in sub.mrr_history] == sorted(t for t, _ in sub.mrr_history)
    assert sub.mrr_history[0] == (datetime(2023, 7, 1, tzinfo=UTC), Decimal("108.00"))
    # MRR at period starts: before the upgrade, after it, and before the subscription existed
    assert sub.mrr_at(datetime(2024, 2, 1, tzinfo=UTC)) == Decimal("108.00")
    assert sub.mrr_at(datetime(2024, 3, 1, tzinfo=UTC)) == Decimal("216.00")
    assert sub.mrr_at(datetime(2023, 6, 1, tzinfo=UTC)) == Decimal(0)
    usage = portfolio.usage["10"]
    assert usage.active_days_30d == 12
    assert model.value_at(usage.active_days_history, datetime(2024, 4, 1, tzinfo=UTC)) == 20
    assert usage.onboarding_milestones_done == ("account_created", "data_imported")
    assert usage.onboarding_milestones_total == 5
    assert usage.seats_used == 8 and usage.seats_purchased == 10


def test_build_portfolio_reports_malformed_values_and_leaves_them_none(portfolio):
    found = {(i.object_type, i.record_id, i.property): i for i in portfolio.issues}
    amount = found[("deals", "700", "amount")]
    assert amount.raw_value == "abc" and "number" in amount.reason
    assert next(d for d in portfolio.deals if d.id == "700").amount is None
    birthday = found[("contacts", "101", "date_of_birth")]
    assert birthday.raw_value == "1985-02-30" and "date" in birthday.reason
    status = found[("subscriptions", "501", "hs_status")]
    assert status.raw_value == "bogus" and "enumeration" in status.reason
    assert next(s for s in portfolio.subscriptions if s.id == "501").status is None
    group = found[("feedback_submissions", "1201", "hs_response_group")]
    assert group.raw_value == "HAPPY"
    assert len(portfolio.issues) == 4  # each reported once, nothing else


def test_build_portfolio_skips_archived_records(portfolio):
    assert "11" not in portfolio.customers
    assert "502" not in {s.id for s in portfolio.subscriptions}
    assert all(i.record_id != "1" for i in portfolio.issues)  # unmapped object types are ignored


def test_build_portfolio_contacts_as_customers(pack):
    portal = pack.portal.model_copy(update={"customer": pack.portal.customer.model_copy(update={"object": "contacts"})})
    sources = pack.sources.model_copy(update={"usage": None})
    contact_pack = dataclasses.replace(pack, portal=portal, sources=sources)
    records, associations = _portal()
    portfolio = build_portfolio(records, associations, contact_pack)
    assert set(portfolio.customers) == {"100", "101", "102", "103"}
    assert all(c.object_type == "contacts" for c in portfolio.customers.values())
    subs = {s.id: s.customer_id for s in portfolio.subscriptions}
    assert subs == {"500": None, "501": "102"}  # 500 is tied to a company only
    assert portfolio.customers["100"].birthday == date(1985, 12, 10)


def test_build_portfolio_never_promotes_loose_contacts_when_told(pack):
    portal = pack.portal.model_copy(update={"customer": pack.portal.customer.model_copy(
        update={"contacts_without_company": "never"})})
    records, associations = _portal()
    portfolio = build_portfolio(records, associations, dataclasses.replace(pack, portal=portal))
    assert set(portfolio.customers) == {"10", "12"}
    assert next(s for s in portfolio.subscriptions if s.id == "501").customer_id is None


def test_mrr_at_recognises_churn_after_past_due_grace_days():
    t0 = datetime(2024, 1, 1, tzinfo=UTC)
    base = dict(id="s", customer_id="c", name=None, status="past_due", mrr=Decimal(100), currency="USD",
                billing_frequency="monthly", start_date=None, next_payment_due=None, last_payment_status=None,
                cancel_requested_at=None, created_at=t0,
                status_history=((t0, "active"), (t0 + timedelta(days=40), "past_due")))
    patient = Subscription(**base)
    strict = Subscription(**base, past_due_grace_days=30)
    day_60, day_80 = t0 + timedelta(days=60), t0 + timedelta(days=80)
    assert patient.mrr_at(day_80) == Decimal(100)  # past-due counts until the status leaves live
    assert strict.mrr_at(day_60) == Decimal(100)  # 20 days past due
    assert strict.mrr_at(day_80) == Decimal(0)  # 40 days past due > 30


@pytest.mark.parametrize("raw, expected", [
    pytest.param("2024-05-01T10:00:00.000Z", datetime(2024, 5, 1, 10, tzinfo=UTC), id="iso-ms-z"),
    pytest.param("1714557600000", datetime(2024, 5, 1, 10, tzinfo=UTC), id="epoch-ms"),
    pytest.param("2024-05-01", datetime(2024, 5, 1, tzinfo=UTC), id="date-only"),
    pytest.param("2024-05-01T12:00:00+02:00", datetime(2024, 5, 1, 10, tzinfo=UTC), id="offset"),
])
def test_parse_datetime_accepts_hubspot_forms(raw, expected):
    assert parse_datetime(raw) == expected


@pytest.mark.parametrize("raw", ["1985-02-30", "yesterday", "2024-13-01"])
def test_parse_date_rejects_impossible_dates(raw):
    with pytest.raises(ValueError):
        parse_date(raw)


@pytest.mark.parametrize("raw", ["2025-11-30 01:18", "2025-11-30T01:18:00", "2025-02-30T00:00:00Z", "soon"])
def test_parse_datetime_rejects_zoneless_and_impossible(raw):
    with pytest.raises(ValueError):
        parse_datetime(raw)


# The mapping package cannot import the model (layer contract), so it keeps a copy of the canonical catalog.
ENTITY_CLASS = {"companies": Customer, "contacts": Customer, "subscriptions": Subscription, "deals": Deal,
                "line_items": LineItem, "feedback": FeedbackResponse, "usage": Usage}


@pytest.mark.parametrize("entity", sorted(CANONICAL_FIELDS))
def test_canonical_catalog_matches_model_fields(entity):
    names = {f.name for f in dataclasses.fields(ENTITY_CLASS[entity])}
    assert set(CANONICAL_FIELDS[entity]) <= names
    assert set(TIMELINES.get(entity, {}).values()) <= names


def test_canonical_vocabularies_match_model():
    assert set(FREQUENCIES) == set(model.MONTHLY_FACTOR)
    assert model.LIVE_STATUSES <= set(SUBSCRIPTION_STATUSES)


def test_build_portfolio_objects_equal_constructed_ones(portfolio):
    """The builder's fast construction gives the same objects as the dataclasses' own __init__."""
    for obj in (*portfolio.subscriptions, *portfolio.deals, *portfolio.line_items, *portfolio.feedback,
                *portfolio.usage.values(), *portfolio.customers.values()):
        again = type(obj)(**{f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)})
        assert again == obj and hash(again) == hash(obj)
        with pytest.raises(dataclasses.FrozenInstanceError):
            obj.id = "x"  # type: ignore[misc]


def test_build_portfolio_on_generated_sandbox_portal(pack):
    """The seeded sandbox generator's portal, in the shapes the state store holds, maps without a data issue."""
    from connector.sandbox.schema import ASSOCIATION_TYPES
    from connector.sandbox.seed import generate

    now_ms = 1_767_225_600_000  # 2026-01-01
    portal = generate(seed=5, contacts=150, now_ms=now_ms)

    def iso(ms: int) -> str:
        return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")

    records = [
        Rec(r.object_type, str(r.id), dict(r.properties),
            {name: [{"value": v, "timestamp": iso(ms), "sourceType": "API"} for v, ms in reversed(points)]
             for name, points in r.history.items()},
            archived=r.archived, created_at=datetime.fromtimestamp(r.created_ms / 1000, UTC))
        for recs in portal.records.values() for r in recs
    ]
    associations = []
    for from_type, from_id, to_type, to_id, primary in portal.associations:
        types = ASSOCIATION_TYPES[(from_type, to_type)]
        type_id = next((t for t, label in types if label == "Primary"), types[0][0]) if primary else types[-1][0]
        associations.append(Assoc(from_type, str(from_id), to_type, str(to_id), type_id))

    result = build_portfolio(records, associations, pack)
    # exactly the values the generator spoiled on purpose (its ground truth), each reported once, none else
    plan = pack.pull_plan()
    spoiled = {(e["object_type"], str(e["id"]), e["property"], e["value"]) for e in portal.ground_truth
               if e.get("kind") == "malformed" and e["property"] in plan[e["object_type"]].properties}
    assert spoiled and {(i.object_type, i.record_id, i.property, i.raw_value) for i in result.issues} == spoiled
    assert len(result.issues) == len(spoiled)
    live = {t: [r for r in recs if not r.archived] for t, recs in portal.records.items()}
    companies = {str(r.id) for r in live["companies"]}
    assert companies <= set(result.customers)
    assert len(result.subscriptions) == len(live["subscriptions"])
    assert all(s.customer_id in result.customers for s in result.subscriptions)
    assert all(f.customer_id is not None for f in result.feedback if f.contact_id is not None)
    now = datetime.fromtimestamp(now_ms / 1000, UTC)
    by_id = {s.id: s for s in result.subscriptions}
    for event in portal.ground_truth:
        if event.get("kind") == "churn" and event.get("churned_at") and str(event["subscription_id"]) in by_id:
            sub = by_id[str(event["subscription_id"])]
            assert sub.status_at(now) == "canceled" and sub.mrr_at(now) == 0
    # current MRR (converted at the constant FX of portal.yaml) agrees with the timelines' latest value
    for sub in result.subscriptions:
        if sub.mrr_history:
            assert sub.mrr_history[-1][1] == sub.mrr
