"""Gaps third-party HubSpot clients hit (issue 13): top-level search filters, paging links that keep the query,
the schemas list and the legacy properties v2, each checked against HubSpot's specs where one exists."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlsplit

import pytest

from connector.sandbox import schema
from tests.sandbox.conftest import Api, make_tiny_portal
from tests.sandbox.spec import check

# ---------------------------------------------------------------- search: a top-level `filters` list


def _search(api: Api, body: dict) -> list[str]:
    body = check("objects-v3", api.post("/crm/v3/objects/contacts/search", json=body))
    return sorted(r["id"] for r in body["results"])


def test_search_top_level_filters_alone_are_one_and_group(api: Api):
    # Without the fix the sandbox ignored `filters` and returned every live contact.
    ids = _search(api, {"filters": [{"propertyName": "lifecyclestage", "operator": "EQ", "value": "customer"},
                                    {"propertyName": "firstname", "operator": "EQ", "value": "Ada"}]})
    assert ids == ["1001"]


def test_search_top_level_filters_beside_filter_groups(api: Api):
    ids = _search(api, {"filterGroups": [{"filters": [{"propertyName": "firstname", "operator": "EQ",
                                                       "value": "Cy"}]}],
                        "filters": [{"propertyName": "firstname", "operator": "EQ", "value": "Ed"}]})
    assert ids == ["1003", "1005"]


def test_search_top_level_filters_count_towards_the_limits(api: Api):
    many = [{"propertyName": "firstname", "operator": "HAS_PROPERTY"}] * 7
    response = api.post("/crm/v3/objects/contacts/search", json={"filters": many})
    assert response.status_code == 400 and "Too many filters in a group" in response.json()["message"]
    check("objects-v3", response)


# ---------------------------------------------------------------- paging.next.link keeps the query


def _query(link: str) -> list[tuple[str, str]]:
    return parse_qsl(urlsplit(link).query)


def test_next_link_keeps_properties_associations_and_archived(api: Api):
    response = api.get("/crm/v3/objects/contacts", params=[
        ("limit", "2"), ("properties", "email"), ("properties", "jobtitle"), ("associations", "companies"),
        ("archived", "false")])
    link = check("objects-v3", response)["paging"]["next"]["link"]
    assert "?limit=2&properties=email%2Cjobtitle&associations=companies&archived=false&after=" in link
    assert _query(link)[-1] == ("after", "1003")
    # A client that follows the link gets page 2 with the same properties and associations.
    page2 = check("objects-v3", api.get(urlsplit(link).path + "?" + urlsplit(link).query))
    first = page2["results"][0]
    assert first["id"] == "1003" and set(first["properties"]) == {"email", "jobtitle"}
    assert first["associations"]["companies"]["results"][0]["id"] == "2002"


def test_next_link_keeps_properties_with_history(api: Api):
    response = api.get("/crm/v3/objects/contacts",
                       params={"limit": "1", "propertiesWithHistory": "lifecyclestage"})
    link = check("objects-v3", response)["paging"]["next"]["link"]
    assert _query(link) == [("limit", "1"), ("propertiesWithHistory", "lifecyclestage"), ("after", "1002")]


def test_next_link_of_a_plain_page_is_limit_then_after(api: Api):
    link = check("objects-v3", api.get("/crm/v3/objects/companies", params={"limit": 1}))["paging"]["next"]["link"]
    assert link.endswith("/crm/v3/objects/companies?limit=1&after=2002")


# ---------------------------------------------------------------- schemas (no custom objects)


@pytest.mark.parametrize("path", ["/crm/v3/schemas", "/crm-object-schemas/v3/schemas"])
def test_schemas_list_is_empty_not_404(api: Api, path):
    response = api.get(path)
    assert response.status_code == 200
    # schemas-v3.json names the path /crm-object-schemas/v3/schemas; /crm/v3/schemas is the documented alias.
    assert check("schemas-v3", response, spec_path="/crm-object-schemas/v3/schemas") == {"results": []}


# ---------------------------------------------------------------- legacy properties v2 (no spec: the shape here)

V2_FIELDS = {"name", "label", "description", "groupName", "type", "fieldType", "options", "createdAt", "updatedAt",
             "displayOrder", "formField", "readOnlyValue", "readOnlyDefinition", "hidden", "calculated",
             "externalOptions", "hubspotDefined", "hasUniqueValue", "deleted", "displayMode"}


@pytest.mark.parametrize("object_type", sorted(schema.OBJECT_TYPES))
def test_legacy_v2_property_list_mirrors_v3_for_every_type(api: Api, object_type):
    v2 = api.get(f"/properties/v2/{object_type}/properties")
    assert v2.status_code == 200 and v2.headers["content-type"] == "application/json;charset=utf-8"
    legacy = v2.json()
    assert isinstance(legacy, list)  # a bare array, not {"results": …}
    v3 = {p["name"]: p for p in check("properties-v3", api.get(f"/crm/v3/properties/{object_type}"))["results"]}
    assert [p["name"] for p in legacy] == list(v3)
    for prop in legacy:
        assert V2_FIELDS <= set(prop), prop["name"]
        modern = v3[prop["name"]]
        for key in ("label", "description", "groupName", "type", "fieldType", "displayOrder", "hidden"):
            assert prop[key] == modern[key], (prop["name"], key)
        assert isinstance(prop["createdAt"], int) and isinstance(prop["updatedAt"], int)  # epoch ms, not ISO
        assert prop["readOnlyValue"] == modern["modificationMetadata"]["readOnlyValue"]
        assert [o["value"] for o in prop["options"]] == [o["value"] for o in modern["options"]]
        assert prop["hubspotDefined"] is (True if modern.get("hubspotDefined") else None)


def test_legacy_v2_property_details(api: Api):
    by_name = {p["name"]: p for p in api.get("/properties/v2/contacts/properties").json()}
    stage = by_name["lifecyclestage"]
    assert stage["type"] == "enumeration" and stage["fieldType"] == "radio"
    assert {"label", "value", "displayOrder", "hidden", "readOnly", "doubleData"} <= set(stage["options"][0])
    assert by_name["hs_object_id"]["readOnlyValue"] is True and by_name["email"]["readOnlyValue"] is False
    assert by_name["email"]["hasUniqueValue"] is True
    one = api.get("/properties/v2/contact/properties/named/email")  # singular names work as in v3
    assert one.status_code == 200 and one.json() == by_name["email"]
    missing = api.get("/properties/v2/contacts/properties/named/nope")
    assert missing.status_code == 404 and missing.json()["category"] == "OBJECT_NOT_FOUND"
    assert api.get("/properties/v2/widgets/properties").status_code == 400


def test_legacy_v2_groups(api: Api):
    groups = api.get("/properties/v2/companies/groups", params={"includeProperties": "true"}).json()
    by_name = {g["name"]: g for g in groups}
    info = by_name["companyinformation"]
    assert info["displayName"] and info["hubspotDefined"] is True and "name" in {p["name"] for p in info["properties"]}
    assert by_name["product_usage"]["hubspotDefined"] is False
    plain = api.get("/properties/v2/companies/groups").json()
    assert all("properties" not in g for g in plain) and [g["name"] for g in plain] == [g["name"] for g in groups]


def test_legacy_v2_needs_a_read_scope(api: Api):
    token = api.sandbox.portal.create_token(scopes=["crm.lists.read"])
    refused = api.get("/properties/v2/contacts/properties", token=token)
    assert refused.status_code == 403 and refused.json()["category"] == "MISSING_SCOPES"


# ---------------------------------------------------------------- what schemathesis found (tests/sandbox/fuzz.py)


@pytest.mark.parametrize("path, body", [
    pytest.param("/crm/v3/objects/contacts/batch/archive", {"inputs": [{"id": "1001"}, {}]}, id="archive"),
    pytest.param("/crm/v3/objects/contacts/batch/read", {"inputs": [{"idx": "1"}]}, id="read"),
    pytest.param("/crm/v4/associations/contacts/companies/batch/read", {"inputs": [{"after": "1"}]},
                 id="associations-read"),
])
def test_batch_input_without_its_required_id_is_refused_whole(sandbox_factory, path, body):
    # Before: archive answered 204 (archiving nothing), the reads 207 with a per-input "not found".
    api = Api(sandbox_factory(portal=make_tiny_portal()))
    response = api.post(path, json=body)
    assert response.status_code == 400 and "required attributes are not set [id]" in response.json()["message"]
    check("associations-v4" if "/v4/" in path else "objects-v3", response)
    assert api.get("/crm/v3/objects/contacts/1001").status_code == 200  # nothing was archived


def test_lists_search_with_wrong_shapes_is_400_not_500(api: Api):
    response = api.post("/crm/v3/lists/search", json={"processingTypes": {"MANUAL": 1}})
    assert response.status_code == 400
    check("lists-v3", response)
    negative = api.post("/crm/v3/lists/search", json={"offset": -5, "count": -1})
    assert negative.status_code == 200 and check("lists-v3", negative)["lists"] == []


@pytest.mark.parametrize("path, params", [
    pytest.param("/crm/v3/objects/contacts", {"limit": str(2**31)}, id="list-limit"),
    pytest.param("/crm/v4/objects/contacts/1001/associations/companies", {"limit": str(2**40)}, id="assoc-limit"),
])
def test_int32_query_values_beyond_range_are_400(api: Api, path, params):
    response = api.get(path, params=params)
    assert response.status_code == 400 and "32-bit integer" in response.json()["message"]


def test_data_sensitivity_is_an_enum(api: Api):
    bad = api.get("/crm/v3/properties/contacts", params={"dataSensitivity": "secret"})
    assert bad.status_code == 400
    check("properties-v3", bad)
    sensitive = check("properties-v3", api.get("/crm/v3/properties/contacts", params={"dataSensitivity": "sensitive"}))
    assert sensitive == {"results": []}  # no sandbox property is sensitive
    read = api.post("/crm/v3/properties/contacts/batch/read", json={"inputs": [{"name": "email"}],
                                                                     "archived": False, "dataSensitivity": ""})
    assert read.status_code == 400
    check("properties-v3", read)


def test_property_batch_create_with_an_unknown_field_type_is_refused_whole(sandbox_factory):
    api = Api(sandbox_factory(portal=make_tiny_portal()))
    good = {"name": "ok_one", "label": "OK", "type": "string", "fieldType": "text", "groupName": "customer_success"}
    response = api.post("/crm/v3/properties/companies/batch/create",
                        json={"inputs": [good, {**good, "name": "bad_one", "fieldType": "__not_in_enum__"}]})
    assert response.status_code == 400
    check("properties-v3", response)
    assert api.get("/crm/v3/properties/companies/ok_one").status_code == 404  # nothing half-created
