"""A hand-written GeneratedPortal with exact, known data for the conformance tests."""

from __future__ import annotations

from connector.sandbox.portal import iso
from connector.sandbox.seed import GeneratedPortal, SeedRecord

NOW_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z
DAY = 86_400_000
T0 = NOW_MS - 400 * DAY

COMPANY_IDS = (2001, 2002, 2003)
CONTACT_IDS = (1001, 1002, 1003, 1004, 1005, 1006)
ARCHIVED_CONTACT = 1006
DEAL_IDS = (3001, 3002)
LINE_ITEM_IDS = (8001, 8002)
SUBSCRIPTION_IDS = (6901, 6902)
FEEDBACK_IDS = (1901, 1902)


def _rec(object_type: str, rid: int, created: int, props: dict[str, str], modified: int | None = None,
         history: dict | None = None, archived: bool = False) -> SeedRecord:
    created_name = "hs_createdate" if object_type in ("subscriptions", "feedback_submissions") else "createdate"
    modified_name = "lastmodifieddate" if object_type == "contacts" else "hs_lastmodifieddate"
    full = {"hs_object_id": str(rid), created_name: iso(created), modified_name: iso(modified or created), **props}
    archived_ms = (modified or created) if archived else None
    return SeedRecord(object_type, rid, created, full, history or {}, archived, archived_ms)


def tiny_portal() -> GeneratedPortal:
    companies = [
        _rec("companies", 2001, T0, {"name": "Acme", "domain": "acme.example", "industry": "RETAIL",
                                     "numberofemployees": "120", "product_logins_30d": "40"}, T0 + 300 * DAY,
             {"product_logins_30d": [("10", T0 + DAY), ("25", T0 + 100 * DAY), ("40", T0 + 300 * DAY)]}),
        _rec("companies", 2002, T0 + DAY, {"name": "Globex", "domain": "globex.example",
                                           "industry": "EDUCATION_MANAGEMENT", "numberofemployees": "15"}),
        _rec("companies", 2003, T0 + 2 * DAY, {"name": "Initech", "domain": "initech.example"}),
    ]
    contacts = [
        _rec("contacts", 1001, T0 + 3 * DAY, {"email": "ada@acme.example", "firstname": "Ada", "lastname": "Lovelace",
                                              "lifecyclestage": "customer", "jobtitle": "CTO"}, T0 + 200 * DAY,
             {"lifecyclestage": [("lead", T0 + 3 * DAY), ("customer", T0 + 200 * DAY)]}),
        _rec("contacts", 1002, T0 + 4 * DAY, {"email": "bob@acme.example", "firstname": "Bob", "lastname": "Builder",
                                              "lifecyclestage": "customer"}),
        _rec("contacts", 1003, T0 + 5 * DAY, {"email": "cy@globex.example", "firstname": "Cy", "lastname": "Young",
                                              "lifecyclestage": "lead"}),
        _rec("contacts", 1004, T0 + 6 * DAY, {"email": "di@globex.example", "firstname": "Di", "lastname": "Prince",
                                              "lifecyclestage": "opportunity"}),
        _rec("contacts", 1005, T0 + 7 * DAY, {"email": "ed@initech.example", "firstname": "Ed", "lastname": "Wood"}),
        _rec("contacts", ARCHIVED_CONTACT, T0 + 8 * DAY, {"email": "gone@initech.example", "firstname": "Gone"},
             T0 + 9 * DAY, archived=True),
    ]
    deals = [
        _rec("deals", 3001, T0 + 10 * DAY, {"dealname": "Acme renewal", "amount": "12000", "dealstage": "closedwon",
                                            "pipeline": "default", "closedate": iso(T0 + 40 * DAY)}),
        _rec("deals", 3002, T0 + 11 * DAY, {"dealname": "Globex new", "amount": "3000", "dealstage": "qualifiedtobuy",
                                            "pipeline": "default"}),
    ]
    line_items = [
        _rec("line_items", 8001, T0 + 10 * DAY, {"name": "Pro plan", "quantity": "10", "price": "100",
                                                 "recurringbillingfrequency": "monthly"}),
        _rec("line_items", 8002, T0 + 11 * DAY, {"name": "Starter plan", "quantity": "3", "price": "50"}),
    ]
    subscriptions = [
        _rec("subscriptions", 6901, T0 + 12 * DAY, {"hs_name": "Acme Pro", "hs_status": "active", "hs_mrr": "1000",
                                                    "hs_recurring_billing_start_date": "2025-01-01"}, T0 + 50 * DAY,
             {"hs_mrr": [("800", T0 + 12 * DAY), ("1000", T0 + 50 * DAY)], "hs_status": [("active", T0 + 12 * DAY)]}),
        _rec("subscriptions", 6902, T0 + 13 * DAY, {"hs_name": "Globex Starter", "hs_status": "canceled",
                                                    "hs_mrr": "0"}),
    ]
    feedback = [
        _rec("feedback_submissions", 1901, T0 + 20 * DAY, {"hs_survey_type": "NPS", "hs_value": "9",
                                                           "hs_response_group": "PROMOTER"}),
        _rec("feedback_submissions", 1902, T0 + 21 * DAY, {"hs_survey_type": "NPS", "hs_value": "3",
                                                           "hs_response_group": "DETRACTOR"}),
    ]
    associations = [
        ("contacts", 1001, "companies", 2001, True), ("contacts", 1002, "companies", 2001, True),
        ("contacts", 1003, "companies", 2002, True), ("contacts", 1004, "companies", 2002, True),
        ("contacts", 1005, "companies", 2003, True),
        ("deals", 3001, "companies", 2001, True), ("deals", 3002, "companies", 2002, True),
        ("deals", 3001, "contacts", 1001, False), ("deals", 3001, "line_items", 8001, False),
        ("deals", 3002, "line_items", 8002, False),
        ("subscriptions", 6901, "companies", 2001, False), ("subscriptions", 6901, "contacts", 1001, False),
        ("subscriptions", 6902, "companies", 2002, False), ("subscriptions", 6901, "line_items", 8001, False),
        ("feedback_submissions", 1901, "contacts", 1001, False),
        ("feedback_submissions", 1902, "contacts", 1003, False),
    ]
    return GeneratedPortal(
        records={"companies": companies, "contacts": contacts, "deals": deals, "line_items": line_items,
                 "subscriptions": subscriptions, "feedback_submissions": feedback},
        associations=associations, now_ms=NOW_MS)
