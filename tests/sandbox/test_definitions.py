"""Properties, associations v4, lists v3 and workflows on the sandbox, checked against the specs."""

from __future__ import annotations

import pytest

from tests.sandbox.conftest import Api, make_tiny_portal
from tests.sandbox.spec import check


# ---------------------------------------------------------------- properties


def test_property_list_has_hubspot_shapes(api: Api):
    body = check("properties-v3", api.get("/crm/v3/properties/companies"))
    by_name = {p["name"]: p for p in body["results"]}
    industry = by_name["industry"]
    assert industry["type"] == "enumeration" and industry["fieldType"] == "select"
    assert {"label", "value", "hidden", "displayOrder"} <= set(industry["options"][0])
    assert industry["hubspotDefined"] is True and industry["dataSensitivity"] == "non_sensitive"
    assert "hubspotDefined" not in by_name["seats_used"]  # custom properties do not carry the flag (§11)
    assert by_name["name"]["options"] == []


def test_property_create_201_then_409_and_writable(sandbox_factory):
    api = Api(sandbox_factory(portal=make_tiny_portal()))
    definition = {"name": "churn_risk", "label": "Churn risk", "type": "enumeration", "fieldType": "select",
                  "groupName": "customer_success",
                  "options": [{"label": "High", "value": "high"}, {"label": "Low", "value": "low"}]}
    created = api.post("/crm/v3/properties/companies", json=definition)
    assert created.status_code == 201
    body = check("properties-v3", created)
    assert body["displayOrder"] == -1 and body["archived"] is False and "hubspotDefined" not in body
    again = api.post("/crm/v3/properties/companies", json=definition)
    assert again.status_code == 409 and again.json()["category"] == "OBJECT_ALREADY_EXISTS"
    check("properties-v3", again)
    write = api("PATCH", "/crm/v3/objects/companies/2001", json={"properties": {"churn_risk": "medium"}})
    assert write.status_code == 400 and "INVALID_OPTION" in write.text
    patched = api("PATCH", "/crm/v3/properties/companies/churn_risk", json={"options": [
        {"label": "High", "value": "high"}, {"label": "Medium", "value": "medium"}, {"label": "Low", "value": "low"}]})
    assert [o["value"] for o in check("properties-v3", patched)["options"]] == ["high", "medium", "low"]
    write = api("PATCH", "/crm/v3/objects/companies/2001", json={"properties": {"churn_risk": "medium"}})
    assert write.status_code == 200 and write.json()["properties"]["churn_risk"] == "medium"


@pytest.mark.parametrize("definition, fragment", [
    pytest.param({"name": "x", "label": "X", "type": "string", "fieldType": "select", "groupName": "customer_success"},
                 "fieldType 'select' is not valid for type 'string'", id="string-select"),
    pytest.param({"name": "x", "label": "X", "type": "enumeration", "fieldType": "select",
                  "groupName": "customer_success"}, "need options", id="enum-without-options"),
    pytest.param({"name": "x", "label": "X", "type": "money", "fieldType": "number", "groupName": "customer_success"},
                 "Invalid property type 'money'", id="unknown-type"),
    pytest.param({"name": "Bad Name", "label": "X", "type": "string", "fieldType": "text",
                  "groupName": "customer_success"}, "must start with a letter", id="bad-name"),
    pytest.param({"name": "x", "label": "X", "type": "string", "fieldType": "text", "groupName": "nowhere"},
                 "group 'nowhere' does not exist", id="unknown-group"),
    pytest.param({"label": "X", "type": "string", "fieldType": "text"}, "Missing required fields: name, groupName",
                 id="missing"),
])
def test_property_create_rules(api: Api, definition, fragment):
    response = api.post("/crm/v3/properties/companies", json=definition)
    assert response.status_code == 400 and fragment in response.json()["message"]
    check("properties-v3", response)


def test_property_batch_create_207_when_one_exists(sandbox_factory):
    api = Api(sandbox_factory(portal=make_tiny_portal()))
    new = {"name": "health_score", "label": "Health", "type": "number", "fieldType": "number",
           "groupName": "customer_success"}
    response = api.post("/crm/v3/properties/companies/batch/create", json={"inputs": [new]})
    assert response.status_code == 201 and check("properties-v3", response)["results"][0]["name"] == "health_score"
    again = api.post("/crm/v3/properties/companies/batch/create", json={"inputs": [
        new, {**new, "name": "health_band", "type": "string", "fieldType": "text"}]})
    assert again.status_code == 207
    body = check("properties-v3", again)
    assert [r["name"] for r in body["results"]] == ["health_band"]
    assert body["errors"][0]["category"] == "OBJECT_ALREADY_EXISTS"
    assert body["errors"][0]["message"] == "A property named 'health_score' already exists."
    assert body["errors"][0]["subCategory"] == "Properties.PROPERTY_WITH_NAME_EXISTS"
    read = api.post("/crm/v3/properties/companies/batch/read", json={"inputs": [{"name": "health_band"}],
                                                                      "archived": False})
    assert check("properties-v3", read)["results"][0]["type"] == "string"


def test_property_archive_custom_only(sandbox_factory):
    api = Api(sandbox_factory(portal=make_tiny_portal()))
    assert api("DELETE", "/crm/v3/properties/companies/seats_used").status_code == 204
    assert api.get("/crm/v3/properties/companies/seats_used").status_code == 404
    archived = check("properties-v3", api.get("/crm/v3/properties/companies", params={"archived": "true"}))
    assert [p["name"] for p in archived["results"]] == ["seats_used"]
    write = api("PATCH", "/crm/v3/objects/companies/2001", json={"properties": {"seats_used": "3"}})
    assert write.status_code == 400 and "PROPERTY_DOESNT_EXIST" in write.text
    refused = api("DELETE", "/crm/v3/properties/companies/name")
    assert refused.status_code == 400 and "cannot be archived" in refused.json()["message"]


def test_property_groups_list_and_create(sandbox_factory):
    api = Api(sandbox_factory(portal=make_tiny_portal()))
    groups = check("properties-v3", api.get("/crm/v3/properties/companies/groups"))["results"]
    assert {"companyinformation", "product_usage", "customer_success"} <= {g["name"] for g in groups}
    created = api.post("/crm/v3/properties/companies/groups", json={"name": "retention", "label": "Retention"})
    assert created.status_code == 201
    assert check("properties-v3", created) == {"name": "retention", "label": "Retention", "displayOrder": -1,
                                               "archived": False}
    assert api.post("/crm/v3/properties/companies/groups", json={"name": "retention", "label": "R"}).status_code == 409


# ---------------------------------------------------------------- associations


def test_v4_batch_read_numeric_ids_and_labels(api: Api):
    response = api.post("/crm/v4/associations/contacts/companies/batch/read",
                        json={"inputs": [{"id": "1001"}, {"id": "1003"}]})
    body = check("associations-v4", response)
    assert response.status_code == 200
    first = body["results"][0]
    assert first["from"] == {"id": "1001"}
    assert first["to"] == [{"toObjectId": 2001, "associationTypes": [
        {"category": "HUBSPOT_DEFINED", "typeId": 1, "label": "Primary"},
        {"category": "HUBSPOT_DEFINED", "typeId": 279, "label": None}]}]


def test_v4_batch_read_207_for_records_without_associations_and_1000_cap(api: Api):
    response = api.post("/crm/v4/associations/deals/contacts/batch/read", json={"inputs": [{"id": "3001"},
                                                                                          {"id": "3002"}]})
    assert response.status_code == 207
    body = check("associations-v4", response)
    assert [r["from"]["id"] for r in body["results"]] == ["3001"]
    assert body["errors"][0]["context"] == {"fromObjectId": ["3002"], "fromObjectType": ["deal"],
                                            "toObjectType": ["contact"]}
    assert body["errors"][0]["subCategory"] == "crm.associations.NO_ASSOCIATIONS_FOUND"
    assert body["errors"][0]["message"] == "No contact is associated with deal 3002."
    too_many = api.post("/crm/v4/associations/deals/contacts/batch/read",
                        json={"inputs": [{"id": str(i)} for i in range(1001)]})
    assert too_many.status_code == 400


def test_v4_batch_read_pages_each_input_by_500(sandbox_factory):
    portal = make_tiny_portal()
    many = [portal.create("contacts", {"email": f"p{i}@acme.example"}).id for i in range(1_203)]
    for contact_id in many:
        portal.associate_default("companies", 2001, "contacts", contact_id)
    api = Api(sandbox_factory(portal=portal))
    expected = sorted([1001, 1002, *many])
    seen: list[int] = []
    inputs = [{"id": "2001"}, {"id": "2002"}]
    pages = 0
    while inputs:
        response = api.post("/crm/v4/associations/companies/contacts/batch/read", json={"inputs": inputs})
        body = check("associations-v4", response)
        assert response.status_code == 200
        inputs = []
        for result in body["results"]:
            assert len(result["to"]) <= 500
            if result["from"]["id"] == "2001":
                seen += [to["toObjectId"] for to in result["to"]]
                pages += 1
            elif pages == 0:  # the small input is complete on the first page, without paging
                assert "paging" not in result
            if "paging" in result:
                inputs.append({"id": result["from"]["id"], "after": result["paging"]["next"]["after"]})
    assert pages == 3 and seen == expected
    garbage = api.post("/crm/v4/associations/companies/contacts/batch/read",
                       json={"inputs": [{"id": "2001", "after": "not-a-cursor"}]})
    assert garbage.status_code == 400 and garbage.json()["category"] == "VALIDATION_ERROR"


def test_v4_record_associations_both_directions(api: Api):
    body = check("associations-v4", api.get("/crm/v4/objects/companies/2001/associations/contacts"))
    assert [r["toObjectId"] for r in body["results"]] == [1001, 1002]
    assert {t["typeId"] for t in body["results"][0]["associationTypes"]} == {2, 280}
    deal = check("associations-v4", api.get("/crm/v4/objects/0-3/3001/associations/line_items"))
    assert deal["results"] == [{"toObjectId": 8001, "associationTypes": [
        {"category": "HUBSPOT_DEFINED", "typeId": 19, "label": None}]}]


def test_default_association_does_not_touch_updated_at(sandbox_factory):
    api = Api(sandbox_factory(portal=make_tiny_portal()))
    before = api.get("/crm/v3/objects/contacts/1005").json()["updatedAt"]
    response = api("PUT", "/crm/v4/objects/contacts/1005/associations/default/companies/2001")
    body = check("associations-v4", response)
    assert body["results"][0]["associationSpec"] == {"associationCategory": "HUBSPOT_DEFINED",
                                                     "associationTypeId": 279}
    linked = api.get("/crm/v4/objects/companies/2001/associations/contacts").json()["results"]
    assert 1005 in [r["toObjectId"] for r in linked]
    assert api.get("/crm/v3/objects/contacts/1005").json()["updatedAt"] == before
    assert api("DELETE", "/crm/v4/objects/contacts/1005/associations/companies/2001").status_code == 204
    assert 1005 not in [r["toObjectId"] for r in
                        api.get("/crm/v4/objects/companies/2001/associations/contacts").json()["results"]]


def test_create_with_associations(sandbox_factory):
    api = Api(sandbox_factory(portal=make_tiny_portal()))
    created = api.post("/crm/v3/objects/deals", json={
        "properties": {"dealname": "Expansion", "dealstage": "qualifiedtobuy", "pipeline": "default"},
        "associations": [{"to": {"id": "2003"}, "types": [{"associationCategory": "HUBSPOT_DEFINED",
                                                          "associationTypeId": 5}]}]})
    assert created.status_code == 201
    deal_id = int(created.json()["id"])
    linked = api.get("/crm/v4/objects/companies/2003/associations/deals").json()["results"]
    assert deal_id in [r["toObjectId"] for r in linked]


def test_association_changes_keep_calculated_properties_in_step_without_touching_updated_at(sandbox_factory):
    api = Api(sandbox_factory(portal=make_tiny_portal()))

    def read(object_type: str, record_id, prop: str) -> tuple[str | None, str]:
        body = api.get(f"/crm/v3/objects/{object_type}/{record_id}", params={"properties": prop}).json()
        return body["properties"][prop], body["updatedAt"]

    companies_before = {c: read("companies", c, "num_associated_contacts")[1] for c in (2001, 2002, 2003)}
    created = api.post("/crm/v3/objects/contacts", json={
        "properties": {"email": "new@globex.example"},
        "associations": [{"to": {"id": "2002"}, "types": [{"associationCategory": "HUBSPOT_DEFINED",
                                                          "associationTypeId": 1}]}]}).json()
    assert read("contacts", created["id"], "associatedcompanyid") == ("2002", created["updatedAt"])
    assert read("companies", 2002, "num_associated_contacts") == ("3", companies_before[2002])

    # 1005's primary is 2003: a second company is associated, not made primary
    _, contact_updated = read("contacts", 1005, "associatedcompanyid")
    assert api("PUT", "/crm/v4/objects/contacts/1005/associations/default/companies/2001").status_code == 200
    assert read("contacts", 1005, "associatedcompanyid") == ("2003", contact_updated)
    assert read("companies", 2001, "num_associated_contacts") == ("3", companies_before[2001])

    # removing the primary company clears the id; the company's count drops
    assert api("DELETE", "/crm/v4/objects/contacts/1005/associations/companies/2003").status_code == 204
    assert read("contacts", 1005, "associatedcompanyid") == (None, contact_updated)
    assert read("companies", 2003, "num_associated_contacts") == ("0", companies_before[2003])

    # a default association to a contact without a primary company makes that company the primary
    made = api("PUT", "/crm/v4/objects/companies/2002/associations/default/contacts/1005")
    assert {r["associationSpec"]["associationTypeId"] for r in check("associations-v4", made)["results"]} >= {1, 2}
    assert read("contacts", 1005, "associatedcompanyid") == ("2002", contact_updated)
    assert read("companies", 2002, "num_associated_contacts") == ("4", companies_before[2002])
    types = api.get("/crm/v4/objects/contacts/1005/associations/companies").json()["results"]
    assert {(r["toObjectId"], t["typeId"]) for r in types for t in r["associationTypes"]} == {
        (2001, 279), (2002, 1), (2002, 279)}
    found = api.post("/crm/v3/objects/contacts/search", json={
        "filterGroups": [{"filters": [{"propertyName": "associatedcompanyid", "operator": "EQ", "value": "2002"}]}]})
    assert sorted(r["id"] for r in found.json()["results"]) == sorted(["1003", "1004", "1005", created["id"]])


# ---------------------------------------------------------------- lists


def test_lists_create_read_and_memberships(sandbox_factory):
    api = Api(sandbox_factory(portal=make_tiny_portal()))
    created = api.post("/crm/v3/lists/", json={"name": "At risk", "objectTypeId": "0-2", "processingType": "MANUAL"})
    assert created.status_code == 200
    lst = check("lists-v3", created)["list"]
    list_id = lst["listId"]
    assert lst["processingType"] == "MANUAL" and lst["objectTypeId"] == "0-2"
    duplicate = api.post("/crm/v3/lists", json={"name": "At risk", "objectTypeId": "0-2", "processingType": "MANUAL"})
    assert duplicate.status_code == 400 and duplicate.json()["subCategory"] == "ILS.DUPLICATE_LIST_NAMES"
    by_name = check("lists-v3", api.get("/crm/v3/lists/object-type-id/0-2/name/At risk"))
    assert by_name["list"]["listId"] == list_id
    added = api("PUT", f"/crm/v3/lists/{list_id}/memberships/add", json=["2001", "2002", "2002", "999"])
    assert check("lists-v3", added) == {"recordsIdsAdded": ["2001", "2002"], "recordIdsRemoved": [],
                                        "recordIdsMissing": ["999"]}
    changed = api("PUT", f"/crm/v3/lists/{list_id}/memberships/add-and-remove/",
                  json={"recordIdsToAdd": ["2003"], "recordIdsToRemove": ["2001"]})
    assert check("lists-v3", changed) == {"recordsIdsAdded": ["2003"], "recordIdsRemoved": ["2001"],
                                          "recordIdsMissing": []}
    members = check("lists-v3", api.get(f"/crm/v3/lists/{list_id}/memberships", params={"limit": 1}))
    assert members["total"] == 2 and [m["recordId"] for m in members["results"]] == ["2002"]
    assert members["paging"]["next"]["after"] == "1"
    assert set(api.sandbox.portal.lists[int(list_id)].members) == {2002, 2003}
    assert check("lists-v3", api.get(f"/crm/v3/lists/{list_id}"))["list"]["size"] == 2
    assert api.get("/crm/v3/lists/424242").status_code == 404
    found = check("lists-v3", api.post("/crm/v3/lists/search", json={"query": "at RISK"}))
    assert [x["listId"] for x in found["lists"]] == [list_id]
    assert found["total"] == 1 and found["hasMore"] is False and found["offset"] == 1


# ---------------------------------------------------------------- workflows


def test_workflow_enrollment_v2_and_flows_listing(sandbox_factory):
    sb = sandbox_factory(portal=make_tiny_portal())
    api = Api(sb)
    flows = check("automation-v4", api.get("/automation/v4/flows"))["results"]
    by_name = {f["name"]: f["id"] for f in flows}
    assert {"At-risk save play", "Referral ask", "Welcome"} <= set(by_name)
    wf = by_name["At-risk save play"]
    enrolled = api.post(f"/automation/v2/workflows/{wf}/enrollments/contacts/ada@acme.example")
    assert enrolled.status_code == 204 and enrolled.content == b""
    assert sb.portal.enrolled(int(wf)) == {1001}
    listed = api.get("/automation/v2/workflows/enrollments/contacts/1001").json()
    assert [w["name"] for w in listed] == ["At-risk save play"]
    assert api.post(f"/automation/v2/workflows/{wf}/enrollments/contacts/nobody@x.example").status_code == 404
    assert api.post("/automation/v2/workflows/999/enrollments/contacts/ada@acme.example").status_code == 404
    assert api("DELETE", f"/automation/v2/workflows/{wf}/enrollments/contacts/ada@acme.example").status_code == 204
    assert sb.portal.enrolled(int(wf)) == set()
