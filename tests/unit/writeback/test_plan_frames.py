"""The columnar write plan: the same changes, conflicts and enrollments as the per-customer plan it replaced."""

from __future__ import annotations

from decimal import Decimal

import polars as pl
from hypothesis import given, settings, strategies as st

from connector.mapping.writeback import WritebackConfig
from connector.model import Customer, Deal
from connector.writeback import (
    Change, CurrentFrames, customers_frame, deals_frame, output_frame, plan_enrollments, plan_writeback,
)
from tests.unit.writeback.oracle import plan_changes, plan_enrollment_actions

OUTPUTS = [
    {"field": "health_score", "object": "companies", "property": {"name": "rc_score", "label": "S", "type": "number"}},
    {"field": "mrr", "object": "companies", "decimals": 2,
     "property": {"name": "rc_mrr", "label": "M", "type": "number"}},
    {"field": "tags", "object": "companies", "property": {"name": "rc_tags", "label": "T", "type": "enumeration",
                                                          "fieldType": "checkbox"}},
    {"field": "customer_since", "object": "companies", "property": {"name": "rc_since", "label": "D", "type": "date"}},
    {"field": "health_band", "object": "contacts", "contacts": "all",
     "property": {"name": "rc_band", "label": "B", "type": "enumeration", "options": ["red", "green"]}},
    {"field": "tags", "object": "contacts", "property": {"name": "rc_tags", "label": "T", "type": "enumeration",
                                                         "fieldType": "checkbox"}},
    {"field": "health_band", "object": "deals", "property": {"name": "rc_band", "label": "B", "type": "string"}},
    {"field": "is_active", "object": "deals", "property": {"name": "rc_active", "label": "A", "type": "bool"}},
]
RULES = [{"tag": "at_risk", "list": "Risky", "object": "companies", "on_exit": "unenroll"},
         {"tag": "welcome", "workflow_id": "7", "contacts": "all", "on_exit": "unenroll"},
         {"tag": "upsell", "list": "Deals", "object": "deals"}]
CONFIG = WritebackConfig.model_validate({"outputs": OUTPUTS, "enrollments": RULES})
IDS = ["1", "2", "9", "10", "11", "100"]  # lengths differ: HubSpot ids sort as numbers
CONTACTS = ["c1", "c2", "c3", "c10"]
TAGS = ["at_risk", "welcome", "upsell", ""]

values = {
    "health_score": st.one_of(st.none(), st.integers(0, 100), st.sampled_from([68.0, 40.5, 0.1])),
    "mrr": st.one_of(st.none(), st.sampled_from([Decimal("100.004"), Decimal("50"), Decimal("12.345"),
                                                Decimal("-0.00")])),
    "tags": st.lists(st.sampled_from(TAGS), max_size=3),
    "customer_since": st.one_of(st.none(), st.dates()),
    "health_band": st.one_of(st.none(), st.sampled_from(["red", "green", ""])),
    "is_active": st.one_of(st.none(), st.booleans()),
}
held = st.one_of(st.none(), st.sampled_from(["", "68", "68.0", "40.5", "100", "100.00", "50", "12.35", "0",
                                             "at_risk;welcome", "welcome;at_risk", "welcome", "red", "green",
                                             "2020-01-01", "1577836800000", "True", "false", "x@y.z"]))


@st.composite
def worlds(draw):
    customers = []
    for cid in draw(st.lists(st.sampled_from(IDS), min_size=1, max_size=6, unique=True)):
        kind = draw(st.sampled_from(["companies", "companies", "contacts"]))
        contacts = tuple(draw(st.lists(st.sampled_from(CONTACTS), max_size=3, unique=True)))
        primary = draw(st.one_of(st.none(), st.sampled_from(CONTACTS)))
        customers.append(Customer(id=cid if kind == "companies" else f"c{cid}", object_type=kind, name=None,
                                  created_at=None, customer_since=None, acquisition_source=None, industry=None,
                                  contact_ids=contacts, primary_contact_id=primary))
    ids = [c.id for c in customers]
    deals = [Deal(f"d{i}", draw(st.one_of(st.none(), st.sampled_from(ids))), None, None, None, None, None, False,
                  draw(st.booleans()), None) for i in range(draw(st.integers(0, 4)))]
    outputs = {}
    for cid in draw(st.lists(st.sampled_from(ids), unique=True)):
        fields = draw(st.lists(st.sampled_from(sorted(values)), unique=True))
        outputs[cid] = {name: draw(values[name]) for name in fields}
    records = [("companies", i) for i in ids] + [("contacts", c) for c in CONTACTS + ids] + \
        [("deals", d.id) for d in deals]
    current = {}
    for record in draw(st.lists(st.sampled_from(records), unique=True)):
        current[record] = {name: draw(held) for name in ("rc_score", "rc_mrr", "rc_tags", "rc_since", "rc_band",
                                                         "rc_active", "email")}
    return customers, deals, outputs, current


@settings(max_examples=150, deadline=None)
@given(worlds())
def test_plan_equals_the_per_customer_plan(world):
    customers, deals, outputs, current = world
    want, conflicts = plan_changes(CONFIG, outputs, customers, current, deals)
    plan = plan_writeback(CONFIG, outputs, customers, current, deals=deals)
    assert list(plan.changes) == want
    assert plan.conflicts == conflicts
    # the same with the model's frames and the current values as columns
    columns = plan_writeback(CONFIG, outputs, customers_frame(customers),
                             CurrentFrames.of(current, {"companies": ["rc_mrr", "rc_score", "rc_since", "rc_tags"],
                                                        "contacts": ["rc_band", "rc_tags"],
                                                        "deals": ["rc_active", "rc_band"]}),
                             deals=deals_frame(deals))
    assert columns == plan


@settings(max_examples=100, deadline=None)
@given(worlds(), st.lists(st.sampled_from(IDS + CONTACTS + ["d0", "d1", "c1", "c9"]), unique=True))
def test_enrollments_equal_the_per_customer_plan(world, already):
    customers, deals, outputs, current = world
    tags = {cid: [t for t in row["tags"] if t] for cid, row in outputs.items() if "tags" in row}
    enrolled = {("list", "Risky"): set(already), ("workflow", "7"): set(already)}
    want, skipped = plan_enrollment_actions(CONFIG, tags, customers, enrolled, current, deals)
    plan = plan_enrollments(CONFIG, tags, customers, enrolled, current=current, deals=deals)
    assert [(a.kind, a.target, a.object_type, a.record_id, a.action) for a in plan.actions] == want
    assert [s[:2] for s in plan.skipped] == skipped


def company(cid: str, contacts: tuple[str, ...] = (), primary: str | None = None) -> Customer:
    return Customer(id=cid, object_type="companies", name=None, created_at=None, customer_since=None,
                    acquisition_source=None, industry=None, contact_ids=contacts, primary_contact_id=primary)


def test_frame_outputs_unchanged_values_are_not_planned_and_nulls_clear():
    outputs = pl.DataFrame({"customer_id": ["1", "2", "3"], "health_score": [68, None, None],
                            "mrr": [100.004, 50.0, None], "tags": [["welcome", "at_risk"], [], None]})
    current = {("companies", "1"): {"rc_score": "68.0", "rc_mrr": "100", "rc_tags": "at_risk;welcome"},
               ("companies", "2"): {"rc_score": "41", "rc_mrr": "50.00", "rc_tags": "welcome"},
               ("companies", "3"): {"rc_score": "", "rc_mrr": None}}
    plan = plan_writeback(CONFIG, outputs, [company("1"), company("2"), company("3")], current)
    assert plan.changes == (Change("companies", "2", "rc_score", "41", ""),
                            Change("companies", "2", "rc_tags", "welcome", ""))


def test_frame_outputs_format_as_hubspot_returns_them():
    outputs = pl.DataFrame({"customer_id": ["1"], "health_score": [40.50], "mrr": [Decimal("12.345")],
                            "tags": [["welcome", "at_risk", "welcome"]], "customer_since": [None]},
                           schema_overrides={"mrr": pl.Decimal(38, 6), "customer_since": pl.Date})
    plan = plan_writeback(CONFIG, outputs, [company("1")], {})
    assert {c.property: c.after for c in plan.changes} == {"rc_score": "40.5", "rc_mrr": "12.35",
                                                          "rc_tags": "at_risk;welcome"}


def test_output_frame_joins_the_stages_and_the_stages_win():
    features = pl.DataFrame({"customer_id": ["1", "2"], "mrr": [10.0, 20.0], "health_score": [1, 2],
                             "tenure_days": [5, 6]})
    health = {"1": {"health_score": 70, "health_band": "green"}, "2": {"health_score": None, "health_band": None}}
    segments = pl.DataFrame({"customer_id": ["2", "1"], "tags": [["upsell"], []]})
    frame = output_frame(features, health, segments, CONFIG)
    assert sorted(frame.columns) == ["customer_id", "health_band", "health_score", "mrr", "tags"]
    assert frame.select("customer_id", "mrr", "health_score", "health_band", "tags").rows() == [
        ("1", 10.0, 70, "green", []), ("2", 20.0, None, None, ["upsell"])]


def test_plans_given_as_rows_read_as_frames_and_back():
    from connector.writeback import EnrollmentAction, EnrollmentPlan, Plan

    changes = (Change("deals", "7", "p", None, "x"), Change("companies", "10", "p", "a", ""))
    plan = Plan(changes, conflicts=1)
    assert plan.frame["record_id"].to_list() == ["7", "10"] and plan.changes == changes and len(plan) == 2
    assert plan.counts() == {"companies": {"p": 1}, "deals": {"p": 1}} and plan.record_count() == 2
    actions = (EnrollmentAction("list", "L", "companies", "1", "enroll", "at_risk"),)
    enrollments = EnrollmentPlan(actions)
    assert enrollments.actions == actions and enrollments.counts() == {"list:L": {"enroll": 1}}
    assert EnrollmentPlan(frame=enrollments.frame) == enrollments
