"""CRM objects v3 on the sandbox: list, read, write, validation, batches and search, checked against the specs."""

from __future__ import annotations

import json

import pytest

from connector.sandbox.server import running_sandbox
from tests.sandbox.conftest import Api, make_tiny_portal
from tests.sandbox.spec import check
from tests.sandbox.tiny import ARCHIVED_CONTACT, COMPANY_IDS, CONTACT_IDS

LIVE_CONTACTS = [str(i) for i in CONTACT_IDS if i != ARCHIVED_CONTACT]


@pytest.fixture(scope="module")
def pristine():
    """A tiny portal nobody writes to, for table-driven read-only checks."""
    with running_sandbox(portal=make_tiny_portal()) as sb:
        yield Api(sb)


def _error(response, status: int, category: str | None = "VALIDATION_ERROR") -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json;charset=utf-8"
    body = response.json()
    assert body["status"] == "error"
    assert body["correlationId"] == response.headers["x-hubspot-correlation-id"]
    assert body.get("category") == category
    assert not any(h.startswith("x-hubspot-ratelimit") for h in response.headers)  # none on errors (§11)
    return body


# ---------------------------------------------------------------- list and read


def test_list_pages_by_next_id_and_omits_paging_on_the_last_page(api: Api):
    first = api.get("/crm/v3/objects/contacts", params={"limit": 2})
    body = check("objects-v3", first)
    assert [r["id"] for r in body["results"]] == LIVE_CONTACTS[:2]
    assert body["paging"]["next"]["after"] == LIVE_CONTACTS[2]  # after = next record's id
    assert "after=" + LIVE_CONTACTS[2] in body["paging"]["next"]["link"]
    ids, after = [], None
    while True:
        page = check("objects-v3", api.get("/crm/v3/objects/contacts", params={"limit": 2, "after": after}))
        ids += [r["id"] for r in page["results"]]
        if "paging" not in page:
            break
        after = page["paging"]["next"]["after"]
    assert ids == LIVE_CONTACTS


def test_list_limit_above_100_is_capped_at_100_not_refused(sandbox):
    # API-NOTES §1 says "list `limit` max 100" without saying larger values are refused, and the objects spec sets
    # no `maximum` on it: nothing shows a 400, so the sandbox caps the page (which HubSpot does is UNVERIFIED).
    api = Api(sandbox)
    response = api.get("/crm/v3/objects/contacts", params={"limit": 500})
    body = check("objects-v3", response)
    assert response.status_code == 200 and len(body["results"]) == 100
    assert "limit=100&" in body["paging"]["next"]["link"]
    assert api.get("/crm/v3/objects/contacts", params={"limit": 0}).status_code == 400


def test_list_default_properties_and_record_envelope(api: Api):
    body = check("objects-v3", api.get("/crm/v3/objects/contacts", params={"limit": 1}))
    record = body["results"][0]
    assert set(record["properties"]) == {"createdate", "email", "firstname", "hs_object_id", "lastmodifieddate",
                                         "lastname"}
    assert record["properties"]["hs_object_id"] == record["id"]
    assert record["archived"] is False and "archivedAt" not in record
    assert record["updatedAt"] == record["properties"]["lastmodifieddate"]
    assert record["createdAt"].endswith("Z") and len(record["createdAt"]) == 24


@pytest.mark.parametrize("params", [
    pytest.param([("properties", "email"), ("properties", "jobtitle"), ("properties", "nonexistent")], id="repeated"),
    pytest.param([("properties", "email,jobtitle,nonexistent")], id="comma-separated"),
])
def test_requested_properties_without_value_are_null_and_unknown_ones_absent(api: Api, params):
    body = check("objects-v3", api.get("/crm/v3/objects/contacts", params=params + [("limit", "3")]))
    by_id = {r["id"]: r["properties"] for r in body["results"]}
    assert by_id["1001"] == {"email": "ada@acme.example", "jobtitle": "CTO"}
    assert by_id["1002"] == {"email": "bob@acme.example", "jobtitle": None}


@pytest.mark.parametrize("type_name", ["companies", "company", "0-2", "COMPANIES"])
def test_object_type_by_plural_singular_or_id(api: Api, type_name):
    body = check("objects-v3", api.get(f"/crm/v3/objects/{type_name}"))
    assert [r["id"] for r in body["results"]] == [str(i) for i in COMPANY_IDS]


def test_archived_records_listed_only_when_asked(api: Api):
    body = check("objects-v3", api.get("/crm/v3/objects/contacts", params={"archived": "true"}))
    assert [r["id"] for r in body["results"]] == [str(ARCHIVED_CONTACT)]
    assert body["results"][0]["archived"] is True and body["results"][0]["archivedAt"].endswith("Z")
    missing = api.get(f"/crm/v3/objects/contacts/{ARCHIVED_CONTACT}")
    assert _error(missing, 404, "OBJECT_NOT_FOUND")["message"] == "Object not found.  objectId are usually numeric."


def test_read_by_id_and_by_unique_id_property(api: Api):
    by_id = check("objects-v3", api.get("/crm/v3/objects/contacts/1001", params={"properties": "email"}))
    by_email = check("objects-v3", api.get("/crm/v3/objects/contacts/ADA@acme.example",
                                           params={"idProperty": "email", "properties": "email"}))
    assert by_id == by_email
    body = _error(api.get("/crm/v3/objects/contacts/99"), 404, "OBJECT_NOT_FOUND")
    assert body["context"] == {"id": ["99"]}


def test_list_with_history_pages_by_50_at_most(api: Api):
    ok = api.get("/crm/v3/objects/contacts", params={"propertiesWithHistory": "email", "limit": 50})
    assert ok.status_code == 200
    response = api.get("/crm/v3/objects/contacts", params={"propertiesWithHistory": "email", "limit": 100})
    assert "at most 50" in _error(response, 400)["message"]


def test_history_newest_first_and_associations_on_list(api: Api):
    body = check("objects-v3", api.get("/crm/v3/objects/companies", params={
        "propertiesWithHistory": "product_logins_30d,industry", "associations": "contacts", "limit": 1}))
    record = body["results"][0]
    history = record["propertiesWithHistory"]
    assert [h["value"] for h in history["product_logins_30d"]] == ["40", "25", "10"]
    assert history["product_logins_30d"][0]["sourceType"]
    assert [h["value"] for h in history["industry"]] == ["RETAIL"]
    contacts = record["associations"]["contacts"]["results"]
    assert {c["id"] for c in contacts} == {"1001", "1002"}


# ---------------------------------------------------------------- writes and validation


def test_create_returns_201_with_strings_and_system_properties(api: Api):
    response = api.post("/crm/v3/objects/companies", json={"properties": {
        "name": "Umbrella", "numberofemployees": 12, "onboarding_milestones": "account_created;team_invited"}})
    assert response.status_code == 201
    body = check("objects-v3", response)
    props = body["properties"]
    assert props["numberofemployees"] == "12" and props["hs_object_id"] == body["id"]
    assert props["hs_lastmodifieddate"] == body["updatedAt"] == body["createdAt"]
    portal = api.sandbox.portal
    history = portal.get("companies", int(body["id"])).history["name"]
    assert history[-1][0] == "Umbrella" and history[-1][2] == "INTEGRATION"


def test_updates_set_strictly_increasing_last_modified_and_append_history(api: Api):
    stamps = []
    for value in ("10", "11", "12"):
        response = api("PATCH", "/crm/v3/objects/companies/2003", json={"properties": {"support_open_tickets": value}})
        stamps.append(check("objects-v3", response)["properties"]["hs_lastmodifieddate"])
    assert stamps == sorted(stamps) and len(set(stamps)) == 3
    record = check("objects-v3", api.get("/crm/v3/objects/companies/2003",
                                         params={"propertiesWithHistory": "support_open_tickets"}))
    assert [h["value"] for h in record["propertiesWithHistory"]["support_open_tickets"]] == ["12", "11", "10"]
    assert record["updatedAt"] == stamps[-1]


def test_empty_string_clears_a_value(api: Api):
    api("PATCH", "/crm/v3/objects/contacts/1004", json={"properties": {"jobtitle": "VP"}})
    api("PATCH", "/crm/v3/objects/contacts/1004", json={"properties": {"jobtitle": ""}})
    body = api.get("/crm/v3/objects/contacts/1004", params={"properties": "jobtitle"}).json()
    assert body["properties"]["jobtitle"] is None


@pytest.mark.parametrize("properties, code, fragment", [
    pytest.param({"nope": "1"}, "PROPERTY_DOESNT_EXIST", 'Property \\"nope\\" does not exist', id="unknown"),
    pytest.param({"numberofemployees": "ten"}, "INVALID_INTEGER", "ten was not a valid number", id="number"),
    pytest.param({"industry": "retail"}, "INVALID_OPTION", "retail was not one of the allowed options", id="option"),
    pytest.param({"onboarding_milestones": "account_created;flying"}, "INVALID_OPTION", "flying was not one",
                 id="multi-select-part"),
    pytest.param({"onboarding_first_value_date": "1686845935865"}, "INVALID_DATE",
                 "is at 16:18:55.865 UTC, not midnight!", id="date-not-midnight"),
    pytest.param({"num_associated_contacts": "3"}, "READ_ONLY_VALUE", "read only", id="read-only"),
])
def test_invalid_values_get_hubspot_validation_errors(api: Api, properties, code, fragment):
    response = api("PATCH", "/crm/v3/objects/companies/2002", json={"properties": properties})
    body = _error(response, 400)
    check("objects-v3", response)
    assert body["message"].startswith("Property values were not valid: [{\\\"isValid\\\":false".replace("\\", ""))
    assert f'\\"error\\":\\"{code}\\"'.replace("\\", "") in body["message"]
    assert fragment.replace("\\", "") in body["message"].replace("\\", "")
    assert body["errors"][0]["code"] == code
    assert body["errors"][0]["context"] == {"propertyName": list(properties)}


def test_date_at_midnight_accepted_as_ms_or_day(api: Api):
    for value in ("1704067200000", "2024-01-01"):
        response = api("PATCH", "/crm/v3/objects/companies/2002",
                       json={"properties": {"onboarding_first_value_date": value}})
        assert check("objects-v3", response)["properties"]["onboarding_first_value_date"] == "2024-01-01"


def test_create_with_existing_email_conflicts_with_the_existing_id(api: Api):
    body = _error(api.post("/crm/v3/objects/contacts", json={"properties": {"email": "BOB@acme.example"}}),
                  409, "CONFLICT")
    assert body["message"] == "Contact already exists. Existing ID: 1002"


def test_archive_answers_204_without_body_and_hides_the_record(sandbox_factory):
    sb = sandbox_factory(portal=make_tiny_portal())
    api = Api(sb)
    response = api("DELETE", "/crm/v3/objects/contacts/1005")
    assert response.status_code == 204 and response.content == b"" and "content-type" not in response.headers
    assert response.headers["x-hubspot-correlation-id"] and response.headers["x-hubspot-ratelimit-max"]
    assert api.get("/crm/v3/objects/contacts/1005").status_code == 404
    assert api.get("/crm/v3/objects/contacts/1005", params={"archived": "true"}).json()["archived"] is True


def test_feedback_submissions_are_read_only(api: Api):
    assert check("objects-v3", api.get("/crm/v3/objects/feedback_submissions"))["results"]
    body = _error(api.post("/crm/v3/objects/0-19", json={"properties": {"hs_value": "5"}}), 400)
    assert "read-only" in body["message"]
    _error(api("PATCH", "/crm/v3/objects/feedback_submissions/1901", json={"properties": {"hs_value": "5"}}), 400)


# ---------------------------------------------------------------- batches


def test_batch_read_207_for_unknown_ids(api: Api):
    response = api.post("/crm/v3/objects/contacts/batch/read",
                        json={"inputs": [{"id": "1001"}, {"id": "424242"}], "properties": ["email"]})
    assert response.status_code == 207
    body = check("objects-v3", response)
    assert [r["id"] for r in body["results"]] == ["1001"]
    assert body["numErrors"] == 1
    error = body["errors"][0]
    assert error["category"] == "OBJECT_NOT_FOUND" and error["context"] == {"ids": ["424242"]}
    assert error["message"].startswith("Could not get some CONTACT objects")
    assert "correlationId" not in error


def test_batch_read_by_email_with_history(api: Api):
    response = api.post("/crm/v3/objects/contacts/batch/read", json={
        "idProperty": "email", "inputs": [{"id": "ada@acme.example"}], "properties": ["firstname"],
        "propertiesWithHistory": ["lifecyclestage"]})
    body = check("objects-v3", response)
    assert response.status_code == 200 and body["status"] == "COMPLETE"
    assert body["results"][0]["properties"] == {"firstname": "Ada"}
    assert [h["value"] for h in body["results"][0]["propertiesWithHistory"]["lifecyclestage"]] == ["customer", "lead"]


@pytest.mark.parametrize("op, inputs, history, fragment", [
    pytest.param("read", [{"id": str(i)} for i in range(101)], False, "exceeds the maximum of 100", id="read-101"),
    pytest.param("update", [{"id": str(i), "properties": {}} for i in range(101)], False, "maximum of 100",
                 id="update-101"),
    pytest.param("read", [{"id": str(i)} for i in range(51)], True, "maximum of 50", id="history-51"),
    pytest.param("read", [{"id": "1001"}, {"id": "1001"}], False,
                 "Duplicate IDs found in batch input: [1001]. IDs must be unique", id="duplicates"),
    pytest.param("update", [{"id": "1001", "properties": {}}, {"id": "1001", "properties": {}}], False,
                 "Duplicate IDs found", id="duplicate-update"),
])
def test_batch_limits_and_duplicates_are_400(api: Api, op, inputs, history, fragment):
    body = {"inputs": inputs, "properties": ["email"]}
    if history:
        body["propertiesWithHistory"] = ["lifecyclestage"]
    response = api.post(f"/crm/v3/objects/contacts/batch/{op}", json=body)
    assert fragment in _error(response, 400)["message"]
    check("objects-v3", response)


BAD_VALUES = [
    pytest.param({"no_such_property": "x"}, "PROPERTY_DOESNT_EXIST", id="unknown-property"),
    pytest.param({"logins_last_30_days": "12,5"}, "INVALID_INTEGER", id="bad-number"),
    pytest.param({"lifecyclestage": "Customer"}, "INVALID_OPTION", id="option-not-allowed"),
    pytest.param({"date_of_birth": "1990-05-01T22:18:55.865Z"}, "INVALID_DATE", id="date-not-midnight"),
    pytest.param({"associatedcompanyid": "2001"}, "READ_ONLY_VALUE", id="read-only"),
]


def _whole_batch_refused(response, code: str, bad_name: str) -> None:
    body = _error(response, 400)
    check("objects-v3", response)
    assert body["message"].startswith("Property values were not valid: ")
    problems = json.loads(body["message"].removeprefix("Property values were not valid: "))
    assert [(p["error"], p["name"]) for p in problems] == [(code, bad_name)]
    assert [(e["code"], e["context"]["propertyName"]) for e in body["errors"]] == [(code, [bad_name])]


@pytest.mark.parametrize("bad, code", BAD_VALUES)
def test_batch_update_with_one_bad_value_refuses_the_whole_batch(sandbox_factory, bad, code):
    api = Api(sandbox_factory(portal=make_tiny_portal()))
    before = api.get("/crm/v3/objects/contacts/1001", params={"properties": "jobtitle"}).json()
    response = api.post("/crm/v3/objects/contacts/batch/update", json={"inputs": [
        {"id": "1001", "properties": {"jobtitle": "CEO"}},
        {"id": "1002", "properties": {"jobtitle": "CFO", **bad}},
        {"id": "999999", "properties": {"jobtitle": "x"}},
    ]})
    _whole_batch_refused(response, code, next(iter(bad)))
    after = api.get("/crm/v3/objects/contacts/1001", params={"properties": "jobtitle"}).json()
    assert after == before  # nothing written, not even the good input's value or its updatedAt
    assert api.sandbox.portal.get("contacts", 1002).props.get("jobtitle") is None


@pytest.mark.parametrize("bad, code", BAD_VALUES)
def test_batch_create_and_upsert_with_one_bad_value_write_nothing(sandbox_factory, bad, code):
    api = Api(sandbox_factory(portal=make_tiny_portal()))
    portal = api.sandbox.portal
    count = len(portal.stores["contacts"].records)
    created = api.post("/crm/v3/objects/contacts/batch/create", json={"inputs": [
        {"properties": {"email": "good@x.example"}}, {"properties": {"email": "bad@x.example", **bad}}]})
    _whole_batch_refused(created, code, next(iter(bad)))
    upserted = api.post("/crm/v3/objects/contacts/batch/upsert", json={"inputs": [
        {"id": "cy@globex.example", "idProperty": "email", "properties": {"jobtitle": "CFO"}},
        {"id": "fresh@x.example", "idProperty": "email", "properties": bad}]})
    _whole_batch_refused(upserted, code, next(iter(bad)))
    assert len(portal.stores["contacts"].records) == count
    assert portal.get("contacts", 1003).props.get("jobtitle") is None


def test_batch_update_unknown_ids_and_unique_conflicts_stay_207(sandbox_factory):
    api = Api(sandbox_factory(portal=make_tiny_portal()))
    response = api.post("/crm/v3/objects/companies/batch/update", json={"inputs": [
        {"id": "2001", "properties": {"support_open_tickets": "4"}},
        {"id": "999999", "properties": {"support_open_tickets": "1"}},
    ]})
    assert response.status_code == 207
    body = check("objects-v3", response)
    assert [r["id"] for r in body["results"]] == ["2001"]
    assert body["results"][0]["properties"]["support_open_tickets"] == "4"
    assert body["numErrors"] == 1
    assert body["errors"][0]["category"] == "OBJECT_NOT_FOUND" and body["errors"][0]["context"] == {"ids": ["999999"]}
    taken = api.post("/crm/v3/objects/contacts/batch/update", json={"inputs": [
        {"id": "1003", "properties": {"jobtitle": "VP"}},
        {"id": "1004", "properties": {"email": "ada@acme.example"}}]})  # another contact's e-mail
    assert taken.status_code == 207
    body = check("objects-v3", taken)
    assert [r["id"] for r in body["results"]] == ["1003"]
    assert body["errors"][0]["category"] == "CONFLICT" and body["errors"][0]["context"]["ids"] == ["1004"]


def test_batch_update_by_email_is_refused(api: Api):
    response = api.post("/crm/v3/objects/contacts/batch/update", json={
        "inputs": [{"id": "ada@acme.example", "idProperty": "email", "properties": {"jobtitle": "x"}}]})
    assert _error(response, 400)["message"] == "Unable to perform update/upsert by non-unique 0-1 property"


def test_batch_create_201_then_207_conflict_with_existing_id(api: Api):
    ok = api.post("/crm/v3/objects/contacts/batch/create", json={"inputs": [
        {"properties": {"email": "new1@x.example"}}, {"properties": {"email": "new2@x.example"}}]})
    assert ok.status_code == 201
    assert len(check("objects-v3", ok)["results"]) == 2
    partial = api.post("/crm/v3/objects/contacts/batch/create", json={"inputs": [
        {"properties": {"email": "new3@x.example"}},
        {"properties": {"email": "bob@acme.example"}, "objectWriteTraceId": "t-1"}]})
    assert partial.status_code == 207
    body = check("objects-v3", partial)
    assert [r["properties"]["email"] for r in body["results"]] == ["new3@x.example"]
    assert body["errors"][0]["category"] == "CONFLICT"
    assert body["errors"][0]["context"] == {"existingId": ["1002"], "objectWriteTraceId": ["t-1"]}


def test_batch_upsert_marks_new_records(api: Api):
    response = api.post("/crm/v3/objects/contacts/batch/upsert", json={"inputs": [
        {"id": "cy@globex.example", "idProperty": "email", "properties": {"jobtitle": "CFO"}},
        {"id": "fresh@globex.example", "idProperty": "email", "properties": {"firstname": "Fresh"}}]})
    body = check("objects-v3", response)
    assert [(r["id"] == "1003", r["new"]) for r in body["results"]] == [(True, False), (False, True)]


def test_batch_archive_204(sandbox_factory):
    api = Api(sandbox_factory(portal=make_tiny_portal()))
    response = api.post("/crm/v3/objects/deals/batch/archive", json={"inputs": [{"id": "3001"}, {"id": "77"}]})
    assert response.status_code == 204 and response.content == b""
    assert api.sandbox.portal.get("deals", 3001).archived


# ---------------------------------------------------------------- search


def _search(api: Api, object_type: str, body: dict) -> dict:
    response = api.post(f"/crm/v3/objects/{object_type}/search", json=body)
    assert not any(h.startswith("x-hubspot-ratelimit") for h in response.headers)  # none on search (§1)
    return check("objects-v3", response)


@pytest.mark.parametrize("flt, expected", [
    pytest.param({"propertyName": "lifecyclestage", "operator": "EQ", "value": "customer"}, {"1001", "1002"}, id="EQ"),
    pytest.param({"propertyName": "email", "operator": "EQ", "value": "ADA@ACME.EXAMPLE"}, {"1001"},
                 id="EQ-string-case-insensitive"),
    pytest.param({"propertyName": "lifecyclestage", "operator": "EQ", "value": "CUSTOMER"}, set(),
                 id="EQ-enum-case-sensitive"),
    pytest.param({"propertyName": "lifecyclestage", "operator": "NEQ", "value": "customer"}, {"1003", "1004", "1005"},
                 id="NEQ"),
    pytest.param({"propertyName": "hs_object_id", "operator": "GT", "value": "1003"}, {"1004", "1005"}, id="GT"),
    pytest.param({"propertyName": "hs_object_id", "operator": "LTE", "value": "1002"}, {"1001", "1002"}, id="LTE"),
    pytest.param({"propertyName": "hs_object_id", "operator": "BETWEEN", "value": "1002", "highValue": "1004"},
                 {"1002", "1003", "1004"}, id="BETWEEN"),
    pytest.param({"propertyName": "lifecyclestage", "operator": "IN", "values": ["lead", "opportunity"]},
                 {"1003", "1004"}, id="IN"),
    pytest.param({"propertyName": "lifecyclestage", "operator": "NOT_IN", "values": ["customer"]},
                 {"1003", "1004", "1005"}, id="NOT_IN"),
    pytest.param({"propertyName": "jobtitle", "operator": "HAS_PROPERTY"}, {"1001"}, id="HAS_PROPERTY"),
    pytest.param({"propertyName": "lifecyclestage", "operator": "NOT_HAS_PROPERTY"}, {"1005"}, id="NOT_HAS_PROPERTY"),
    pytest.param({"propertyName": "email", "operator": "CONTAINS_TOKEN", "value": "*@globex.example"},
                 {"1003", "1004"}, id="CONTAINS_TOKEN"),
    pytest.param({"propertyName": "createdate", "operator": "GTE", "value": "2024-12-04T00:00:00Z"}, {"1005"},
                 id="GTE-iso-date"),
    pytest.param({"propertyName": "associations.company", "operator": "EQ", "value": "2002"}, {"1003", "1004"},
                 id="associations"),
])
def test_search_operators(pristine, flt, expected):
    body = _search(pristine, "contacts", {"filterGroups": [{"filters": [flt]}], "limit": 100})
    assert {r["id"] for r in body["results"]} == expected
    assert body["total"] == len(expected)


def test_search_groups_or_filters_and_paging_by_offset(api: Api):
    groups = [{"filters": [{"propertyName": "firstname", "operator": "EQ", "value": "ada"}]},
              {"filters": [{"propertyName": "firstname", "operator": "EQ", "value": "cy"},
                           {"propertyName": "lifecyclestage", "operator": "EQ", "value": "lead"}]}]
    body = _search(api, "contacts", {"filterGroups": groups,
                                     "sorts": [{"propertyName": "hs_object_id", "direction": "DESCENDING"}],
                                     "limit": 1, "properties": ["email"]})
    assert body["total"] == 2 and [r["id"] for r in body["results"]] == ["1003"]
    assert body["paging"] == {"next": {"after": "1"}}
    assert body["results"][0]["properties"] == {"email": "cy@globex.example"}
    last = _search(api, "contacts", {"filterGroups": groups, "limit": 1, "after": "1",
                                     "sorts": [{"propertyName": "hs_object_id", "direction": "DESCENDING"}]})
    assert [r["id"] for r in last["results"]] == ["1001"] and "paging" not in last


def test_search_default_order_is_creation_and_default_properties(api: Api):
    body = _search(api, "deals", {})
    assert [r["id"] for r in body["results"]][:2] == ["3001", "3002"]
    assert set(body["results"][0]["properties"]) == {"amount", "closedate", "createdate", "dealname", "dealstage",
                                                      "hs_lastmodifieddate", "hs_object_id", "pipeline"}


@pytest.mark.parametrize("body, fragment", [
    pytest.param({"filterGroups": [{"filters": []}] * 6}, "Too many filter groups", id="6-groups"),
    pytest.param({"filterGroups": [{"filters": [{"propertyName": "email", "operator": "HAS_PROPERTY"}] * 7}]},
                 "Too many filters in a group", id="7-filters"),
    pytest.param({"filterGroups": [{"filters": [{"propertyName": "email", "operator": "HAS_PROPERTY"}] * 5}] * 4},
                 "Too many filters: 20", id="19-filters"),
    pytest.param({"limit": 201}, "limit must be between 0 and 200", id="limit-201"),
    pytest.param({"after": "9950", "limit": 100}, "Paging past 10000", id="past-10k"),
    pytest.param({"sorts": [{"propertyName": "email"}, {"propertyName": "firstname"}]}, "Only one sort",
                 id="two-sorts"),
    pytest.param({"filterGroups": [{"filters": [{"propertyName": "email", "operator": "LIKE", "value": "x"}]}]},
                 "Unknown operator LIKE", id="bad-operator"),
    pytest.param({"query": "x" * 3001}, "limited to 3000 characters", id="body-too-long"),
    pytest.param({"filterGroups": [{"filters": [{"value": "x"}]}]},
                 "Cannot build Filter, some of required attributes are not set [propertyName, operator]",
                 id="filter-without-name-and-operator"),
])
def test_search_limits_are_400(api: Api, body, fragment):
    response = api.post("/crm/v3/objects/contacts/search", json=body)
    category = None if "Cannot build Filter" in fragment else "VALIDATION_ERROR"
    assert fragment in _error(response, 400, category)["message"]
    check("objects-v3", response)


def test_search_index_lag_hides_fresh_writes(sandbox_factory):
    sb = sandbox_factory(portal=make_tiny_portal(search_lag_ms=60_000))
    api = Api(sb)
    created = api.post("/crm/v3/objects/contacts", json={"properties": {"email": "fresh@lag.example"}}).json()
    flt = {"filterGroups": [{"filters": [{"propertyName": "email", "operator": "EQ", "value": "fresh@lag.example"}]}]}
    assert _search(api, "contacts", flt)["total"] == 0
    sb.portal.search_lag_ms = 0
    assert [r["id"] for r in _search(api, "contacts", flt)["results"]] == [created["id"]]


# ---------------------------------------------------------------- malformed requests


@pytest.mark.parametrize("method, path, kwargs, status, category, fragment", [
    pytest.param("POST", "/crm/v3/objects/contacts/search", {"data": "{oops"}, 400, None, "Invalid input JSON",
                 id="malformed-json"),
    pytest.param("POST", "/crm/v3/objects/contacts", {}, 400, "VALIDATION_ERROR",
                 "Invalid JSON input: a request body was expected, but none found", id="missing-body"),
    pytest.param("GET", "/crm/v3/objects/widgets", {}, 400, None, "Unable to infer object type from: widgets",
                 id="unknown-type"),
    pytest.param("PUT", "/crm/v3/objects/contacts", {}, 405, None, "not supported", id="wrong-method"),
    pytest.param("GET", "/crm/v3/objects/contacts?limit=abc", {}, 400, "VALIDATION_ERROR", "limit must be an integer",
                 id="bad-limit"),
    pytest.param("GET", "/crm/v9/nothing", {}, 404, None, "No resource", id="unknown-path"),
])
def test_bad_requests_get_hubspot_error_shapes(api: Api, method, path, kwargs, status, category, fragment):
    response = api(method, path, **kwargs)
    assert fragment in _error(response, status, category)["message"]


def test_search_sees_writes_made_between_pages(sandbox_factory):
    api = Api(sandbox_factory(portal=make_tiny_portal()))
    body = {"sorts": [{"propertyName": "lastmodifieddate", "direction": "ASCENDING"}], "limit": 2,
            "filterGroups": [{"filters": [{"propertyName": "lastmodifieddate", "operator": "GTE", "value": "0"}]}]}
    first = _search(api, "contacts", body)
    oldest = first["results"][0]["id"]
    api("PATCH", f"/crm/v3/objects/contacts/{oldest}", json={"properties": {"jobtitle": "Moved"}})
    again = _search(api, "contacts", body)
    assert oldest not in [r["id"] for r in again["results"]]
    last = _search(api, "contacts", {**body, "after": "4"})
    assert [r["id"] for r in last["results"]] == [oldest]
