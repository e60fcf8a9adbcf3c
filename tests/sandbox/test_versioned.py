"""Date-versioned paths (``/crm/objects/2026-03/…`` and the rest) answer as their v3/v4 counterparts.

HubSpot's 2026-03 specs beside the v3/v4 ones (compared operation by operation and schema by schema): objects
identical; properties identical but for ``OptionInput.displayOrder`` now required on create/update and
``PropertyGroup.displayOrder`` no longer required in answers; lists identical but for ``ListSearchRequest``
requiring ``listIds`` and ``processingTypes`` and ``RecordListMembership`` requiring first/last-added timestamps;
associations identical but for ``batch/archive`` and ``batch/labels/archive`` answering 200 with a BatchResponse
instead of 204 (the sandbox serves neither) and the associations spec also listing
``POST /crm/objects/2026-03/{objectType}/search`` (the objects search). The sandbox keeps one handler per operation
and accepts what either version accepts.
"""

from __future__ import annotations

import pytest

from tests.sandbox.conftest import Api, make_tiny_portal
from tests.sandbox.spec import check


@pytest.mark.parametrize("v3, dated", [
    pytest.param("/crm/v3/objects/contacts?limit=2&properties=email",
                 "/crm/objects/2026-03/contacts?limit=2&properties=email", id="list"),
    pytest.param("/crm/v3/objects/0-2/2001?properties=name", "/crm/objects/2026-03/0-2/2001?properties=name",
                 id="read-by-type-id"),
    pytest.param("/crm/v3/properties/companies", "/crm/properties/2026-03/companies", id="properties"),
])
def test_dated_reads_equal_v3(api: Api, v3, dated):
    old, new = api.get(v3), api.get(dated)
    assert new.status_code == old.status_code == 200, new.text
    spec = "properties-2026-03" if "/properties/" in dated else "objects-2026-03"
    body, old_body = check(spec, new), old.json()
    body.pop("paging", None), old_body.pop("paging", None)  # the link names each request's own path
    assert body == old_body


def test_objects_list_link_stays_on_the_dated_path(api: Api):
    body = check("objects-2026-03", api.get("/crm/objects/2026-03/contacts", params={"limit": 1}))
    assert "/crm/objects/2026-03/contacts?limit=1&after=" in body["paging"]["next"]["link"]


def test_objects_search_batch_and_writes(sandbox_factory):
    api = Api(sandbox_factory(portal=make_tiny_portal()))
    found = check("objects-2026-03", api.post("/crm/objects/2026-03/contacts/search", json={
        "filterGroups": [{"filters": [{"propertyName": "email", "operator": "EQ", "value": "ada@acme.example"}]}]}))
    assert [r["id"] for r in found["results"]] == ["1001"]
    # The associations spec lists the same search operation under its own name.
    check("associations-2026-03", api.post("/crm/objects/2026-03/contacts/search", json={}))
    read = check("objects-2026-03", api.post("/crm/objects/2026-03/companies/batch/read",
                                             json={"inputs": [{"id": "2001"}], "properties": ["name"]}))
    assert read["results"][0]["properties"]["name"] == "Acme"
    created = api.post("/crm/objects/2026-03/companies", json={"properties": {"name": "Umbrella"}})
    assert created.status_code == 201
    new_id = check("objects-2026-03", created)["id"]
    patched = api("PATCH", f"/crm/objects/2026-03/companies/{new_id}", json={"properties": {"domain": "u.example"}})
    assert check("objects-2026-03", patched)["properties"]["domain"] == "u.example"
    assert api("DELETE", f"/crm/objects/2026-03/companies/{new_id}").status_code == 204
    assert api.get(f"/crm/v3/objects/companies/{new_id}").status_code == 404  # one portal behind both paths


def test_properties(api: Api):
    one = check("properties-2026-03", api.get("/crm/properties/2026-03/companies/industry"))
    assert one["name"] == "industry"
    groups = check("properties-2026-03", api.get("/crm/properties/2026-03/companies/groups"))
    assert "companyinformation" in {g["name"] for g in groups["results"]}


def test_associations(api: Api):
    response = api.post("/crm/associations/2026-03/contacts/companies/batch/read", json={"inputs": [{"id": "1001"}]})
    body = check("associations-2026-03", response)
    assert body["results"][0]["to"][0]["toObjectId"] == 2001
    per_record = check("associations-2026-03", api.get("/crm/objects/2026-03/contacts/1001/associations/companies"))
    assert [r["toObjectId"] for r in per_record["results"]] == [2001]


def test_lists(sandbox_factory):
    api = Api(sandbox_factory(portal=make_tiny_portal()))
    created = api.post("/crm/lists/2026-03", json={"name": "Dated", "objectTypeId": "0-1",
                                                    "processingType": "MANUAL"})
    list_id = check("lists-2026-03", created)["list"]["listId"]
    added = api("PUT", f"/crm/lists/2026-03/{list_id}/memberships/add", json=["1001", "1002"])
    check("lists-2026-03", added)
    members = check("lists-2026-03", api.get(f"/crm/lists/2026-03/{list_id}/memberships"))
    assert [m["recordId"] for m in members["results"]] == ["1001", "1002"]
    by_name = check("lists-2026-03", api.get("/crm/lists/2026-03/object-type-id/0-1/name/Dated"))
    assert by_name["list"]["listId"] == list_id
    # Same list through the v3 path.
    assert check("lists-v3", api.get(f"/crm/v3/lists/{list_id}"))["list"]["name"] == "Dated"
