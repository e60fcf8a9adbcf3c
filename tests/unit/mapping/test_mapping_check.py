"""check_against_portal: the pack against property definitions built from the sandbox portal's schema."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest

from connector.mapping import load_pack
from connector.mapping.check import check_against_portal
from connector.sandbox.schema import PROPERTIES

ROOT = Path(__file__).resolve().parents[3]
SOURCES = ROOT / "mappings" / "sources.yaml"


def sandbox_properties() -> dict[str, list[dict]]:
    """What GET /crm/v3/properties/{type} gives for the sandbox portal (the fields the check reads)."""
    return {
        object_type: [{"name": p.name, "label": p.label, "type": p.type, "fieldType": p.field_type,
                       "groupName": p.group, "options": [{"value": o, "label": o} for o in p.options]}
                      for p in props]
        for object_type, props in PROPERTIES.items()
        # the types the pack reads; the sandbox also defines tickets, products, quotes and engagements (issue 13)
        if object_type in ("contacts", "companies", "deals", "line_items", "subscriptions", "feedback_submissions")
    }


@pytest.fixture(scope="module")
def pack():
    return load_pack(ROOT / "mappings")


def _line(marker: str, after: str = "") -> int:
    lines = SOURCES.read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(after)) if after else 0
    return next(n for n, line in enumerate(lines[start:], start=start + 1) if marker in line)


def _prop(props: dict, object_type: str, name: str) -> dict:
    return next(p for p in props[object_type] if p["name"] == name)


def test_check_against_portal_default_pack_matches_sandbox(pack):
    assert check_against_portal(pack, sandbox_properties()) == []


def test_check_against_portal_finds_missing_incompatible_and_unknown_values_at_once(pack):
    props = copy.deepcopy(sandbox_properties())
    props["companies"] = [p for p in props["companies"] if p["name"] != "seats_used"]  # missing
    _prop(props, "companies", "product_active_days_30d")["type"] = "string"  # incompatible with integer
    status = _prop(props, "subscriptions", "hs_status")
    status["options"] = [o for o in status["options"] if o["value"] != "expired"]  # mapped value unknown
    problems = check_against_portal(pack, props)
    found = {(p.line, p.reason) for p in problems}
    assert len(problems) == 3, found
    assert (_line("seats_used: {"), 'usage.fields.seats_used: companies has no property "seats_used" '
                                    '(did you mean "seats_purchased"?)') in found
    assert (_line("active_days_30d: {"), 'usage.fields.active_days_30d: property "product_active_days_30d" is of '
                                         'type string, which transform "integer" cannot read (it reads: number)') in found
    assert any(line == _line("expired: expired") and '"expired" is not an option of subscriptions.hs_status' in reason
               for line, reason in found)
    assert all(Path(p.file).name == "sources.yaml" for p in problems)


@pytest.mark.parametrize("object_type, name, change, marker, expected", [
    pytest.param("subscriptions", "hs_status", lambda p: p["options"].append({"value": "trialing"}), "values: {active",
                 ["options of subscriptions.hs_status not mapped", "trialing"], id="unmapped-option"),
    pytest.param("line_items", "recurringbillingfrequency", lambda p: p["options"].append({"value": "every_full_moon"}),
                 "billing_frequency: {property: recurringbillingfrequency", ["no known billing frequency: every_full_moon"],
                 id="unknown-frequency"),
    pytest.param("deals", "deal_currency_code", lambda p: p.update(type="number"), "amount: {property: amount",
                 ['"deal_currency_code" is of type number, not a currency code'], id="currency-property-type"),
    pytest.param("companies", "hs_lastmodifieddate", lambda p: p.update(name="hs_lastmodified"), "modified_property",
                 ['companies.modified_property: companies has no property "hs_lastmodifieddate"'], id="timestamp-property"),
    pytest.param("deals", "hs_is_closed_won", lambda p: p.update(type="string"), "is_won:",
                 ['which transform "bool" cannot read'], id="bool-from-string"),
    pytest.param("deals", "hs_is_closed_won", lambda p: p.update(type="enumeration", options=[{"value": "won"}]),
                 "is_won:", ["options of deals.hs_is_closed_won that are not true/false: won"], id="bool-odd-options"),
])
def test_check_against_portal_problem_table(pack, object_type, name, change, marker, expected):
    props = copy.deepcopy(sandbox_properties())
    change(_prop(props, object_type, name))
    problems = check_against_portal(pack, props)
    assert len(problems) >= 1
    problem = next((p for p in problems if all(e in p.reason for e in expected)), None)
    assert problem is not None, [p.reason for p in problems]
    after = {"companies": "companies:", "deals": "deals:", "line_items": "line_items:",
             "subscriptions": "subscriptions:"}[object_type]
    assert problem.line == _line(marker, after)


def test_check_against_portal_unknown_object_type(pack):
    props = sandbox_properties()
    del props["feedback_submissions"]
    problems = check_against_portal(pack, props)
    assert [p.reason for p in problems] == ['feedback.object: the portal has no object type "feedback_submissions" '
                                            "(valid: companies, contacts, deals, line_items, subscriptions)"]
    assert problems[0].line == _line("object: feedback_submissions")
