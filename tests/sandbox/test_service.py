"""Tickets, products, engagements, owners and pipelines on the sandbox, checked against HubSpot's specs."""

from __future__ import annotations

import pytest

from connector.sandbox import schema
from connector.sandbox.portal.pipelines import PIPELINES
from connector.sandbox.server import running_sandbox
from tests.sandbox.conftest import Api
from tests.sandbox.service import CALL_ID, EMAIL_ID, MEETING_ID, NOTE_ID, OWNERS, TASK_ID, TICKET_IDS, \
    make_service_portal
from tests.sandbox.spec import check

LIVE_OWNERS = [str(o.id) for o in OWNERS if not o.archived]


@pytest.fixture(scope="module")
def svc():
    """The service portal, read-only for this module (write tests start their own)."""
    with running_sandbox(portal=make_service_portal()) as sb:
        yield Api(sb)


# ---------------------------------------------------------------- object types


@pytest.mark.parametrize("object_type, type_id", [
    pytest.param(t, i, id=t) for t, i in [("tickets", "0-5"), ("products", "0-7"), ("quotes", "0-14"),
                                          ("calls", "0-48"), ("emails", "0-49"), ("meetings", "0-47"),
                                          ("notes", "0-46"), ("tasks", "0-27")]])
def test_new_types_have_hubspot_ids_and_property_definitions(svc: Api, object_type, type_id):
    assert schema.OBJECT_TYPES[object_type] == type_id
    by_name = check("properties-v3", svc.get(f"/crm/v3/properties/{object_type}"))
    names = {p["name"] for p in by_name["results"]}
    assert {"hs_object_id", schema.CREATED[object_type], "hs_lastmodifieddate"} <= names
    listed = check("objects-v3", svc.get(f"/crm/v3/objects/{type_id}"))  # by objectTypeId as well as by name
    assert listed == check("objects-v3", svc.get(f"/crm/v3/objects/{object_type}"))


def test_ticket_properties_no_longer_unknown_and_owner_options_are_the_owners(svc: Api):
    body = check("properties-v3", svc.get("/crm/v3/properties/tickets"))
    by_name = {p["name"]: p for p in body["results"]}
    assert {"subject", "content", "hs_pipeline", "hs_pipeline_stage", "hs_ticket_priority", "createdate",
            "closed_date", "time_to_close", "hs_lastmodifieddate", "hubspot_owner_id"} <= set(by_name)
    stages = [o["value"] for o in by_name["hs_pipeline_stage"]["options"]]
    assert stages == [s["id"] for s in check("pipelines-v3", svc.get("/crm/v3/pipelines/tickets/0/stages"))["results"]]
    owner = by_name["hubspot_owner_id"]
    assert [o["value"] for o in owner["options"]] == LIVE_OWNERS
    assert owner["externalOptions"] is True and owner["referencedObjectType"] == "OWNER"


@pytest.mark.parametrize("object_type, names", [
    pytest.param("calls", {"hs_timestamp", "hubspot_owner_id", "hs_call_direction", "hs_call_duration",
                           "hs_call_status"}, id="calls"),
    pytest.param("emails", {"hs_timestamp", "hs_email_direction", "hs_email_subject"}, id="emails"),
    pytest.param("meetings", {"hs_meeting_start_time", "hs_meeting_end_time", "hs_meeting_outcome"}, id="meetings"),
    pytest.param("notes", {"hs_timestamp", "hs_note_body"}, id="notes"),
    pytest.param("tasks", {"hs_task_status", "hs_task_priority", "hs_task_subject"}, id="tasks"),
])
def test_engagement_properties(svc: Api, object_type, names):
    body = check("properties-v3", svc.get(f"/crm/v3/properties/{object_type}"))
    assert names <= {p["name"] for p in body["results"]}


def test_tickets_list_read_and_batch_read(svc: Api):
    props = "subject,hs_pipeline_stage,hs_ticket_priority,closed_date,time_to_close,hubspot_owner_id"
    page = check("objects-v3", svc.get("/crm/v3/objects/tickets", params={"limit": 2, "properties": props}))
    assert [r["id"] for r in page["results"]] == [str(i) for i in TICKET_IDS[:2]]
    first = page["results"][0]["properties"]
    assert first["hs_pipeline_stage"] == "4" and first["time_to_close"] == str(2 * 86_400_000)
    assert page["results"][1]["properties"]["closed_date"] is None
    one = check("objects-v3", svc.get(f"/crm/v3/objects/tickets/{TICKET_IDS[0]}",
                                      params={"propertiesWithHistory": "hs_pipeline_stage",
                                              "associations": "companies,contacts"}))
    assert [h["value"] for h in one["propertiesWithHistory"]["hs_pipeline_stage"]] == ["4", "1"]
    assert {a["id"] for a in one["associations"]["companies"]["results"]} == {"2001"}
    batch = check("objects-v3", svc.post("/crm/v3/objects/tickets/batch/read", json={
        "properties": ["subject"], "inputs": [{"id": str(i)} for i in TICKET_IDS]}))
    assert sorted(r["properties"]["subject"] for r in batch["results"]) == ["Export fails", "Invoice seat count",
                                                                            "SSO request"]


def test_tickets_search_by_stage_priority_and_company(svc: Api):
    body = check("objects-v3", svc.post("/crm/v3/objects/tickets/search", json={
        "filterGroups": [{"filters": [{"propertyName": "hs_pipeline_stage", "operator": "NEQ", "value": "4"},
                                      {"propertyName": "associations.company", "operator": "EQ", "value": "2001"}]}],
        "properties": ["subject"]}))
    assert [r["id"] for r in body["results"]] == ["5102"] and body["total"] == 1
    default = check("objects-v3", svc.post("/crm/v3/objects/tickets/search", json={"limit": 1}))
    assert {"subject", "hs_pipeline", "hs_pipeline_stage", "hs_ticket_priority"} <= set(default["results"][0]
                                                                                       ["properties"])


def test_engagements_read_with_associations(svc: Api):
    for object_type, rid, to_type, expected in [("calls", CALL_ID, "tickets", {"5101"}),
                                                ("emails", EMAIL_ID, "contacts", {"1001"}),
                                                ("meetings", MEETING_ID, "companies", {"2001"}),
                                                ("notes", NOTE_ID, "companies", {"2001"}),
                                                ("tasks", TASK_ID, "companies", {"2001"})]:
        body = check("objects-v3", svc.get(f"/crm/v3/objects/{object_type}/{rid}",
                                           params={"properties": "hs_timestamp,hubspot_owner_id",
                                                   "associations": to_type}))
        assert body["properties"]["hubspot_owner_id"] == "71001"
        assert {a["id"] for a in body["associations"][to_type]["results"]} == expected, object_type


@pytest.mark.parametrize("from_type, from_id, to_type, to_id, type_ids", [
    pytest.param("companies", 2001, "tickets", 5101, [25, 340], id="company-ticket-primary"),
    pytest.param("tickets", 5101, "companies", 2001, [26, 339], id="ticket-company-primary"),
    pytest.param("tickets", 5101, "contacts", 1001, [16], id="ticket-contact"),
    pytest.param("contacts", 1001, "calls", CALL_ID, [193], id="contact-call"),
    pytest.param("companies", 2001, "meetings", MEETING_ID, [187], id="company-meeting"),
    pytest.param("tickets", 5101, "calls", CALL_ID, [219], id="ticket-call"),
    pytest.param("notes", NOTE_ID, "companies", 2001, [190], id="note-company"),
])
def test_associations_v4_use_hubspot_type_ids(svc: Api, from_type, from_id, to_type, to_id, type_ids):
    body = check("associations-v4", svc.post(f"/crm/v4/associations/{from_type}/{to_type}/batch/read",
                                             json={"inputs": [{"id": str(from_id)}]}))
    linked = {t["toObjectId"]: sorted(a["typeId"] for a in t["associationTypes"]) for t in body["results"][0]["to"]}
    assert linked[to_id] == type_ids


def test_tickets_need_the_tickets_scope_and_engagements_take_contacts_scopes(svc: Api):
    portal = svc.sandbox.portal
    narrow = portal.create_token(scopes=["crm.objects.contacts.read"])
    refused = svc.get("/crm/v3/objects/tickets", token=narrow)
    assert refused.status_code == 403 and "tickets" in refused.json()["context"]["requiredGranularScopes"]
    check("objects-v3", refused)
    assert svc.get("/crm/v3/objects/calls", token=narrow).status_code == 200
    assert svc.get("/crm/v3/objects/tickets", token=portal.create_token(scopes=["tickets"])).status_code == 200


def test_ticket_and_engagement_writes(sandbox_factory):
    api = Api(sandbox_factory(portal=make_service_portal()))
    created = api.post("/crm/v3/objects/tickets", json={
        "properties": {"subject": "New one", "hs_pipeline": "0", "hs_pipeline_stage": "1",
                       "hubspot_owner_id": "71002"},
        "associations": [{"to": {"id": "2002"}, "types": [{"associationCategory": "HUBSPOT_DEFINED",
                                                           "associationTypeId": 26}]}]})
    assert created.status_code == 201, created.text
    ticket_id = check("objects-v3", created)["id"]
    bad = api("PATCH", f"/crm/v3/objects/tickets/{ticket_id}", json={"properties": {"hubspot_owner_id": "71003",
                                                                                     "hs_pipeline_stage": "9"}})
    assert bad.status_code == 400  # a deactivated owner and an unknown stage are not options
    assert {e["context"]["propertyName"][0] for e in bad.json()["errors"]} == {"hubspot_owner_id",
                                                                               "hs_pipeline_stage"}
    linked = api.get(f"/crm/v4/objects/companies/2002/associations/tickets").json()["results"]
    assert any(r["toObjectId"] == int(ticket_id) for r in linked)
    note = api.post("/crm/v3/objects/notes", json={"properties": {"hs_timestamp": "2026-01-01T00:00:00Z",
                                                                  "hs_note_body": "Called them."}})
    assert note.status_code == 201 and check("objects-v3", note)["properties"]["hs_createdate"]


# ---------------------------------------------------------------- owners


def test_owners_list_pages_filters_and_archived(svc: Api):
    first = check("owners-v3", svc.get("/crm/v3/owners", params={"limit": 1}))
    assert [o["id"] for o in first["results"]] == LIVE_OWNERS[:1]
    ann = first["results"][0]
    assert ann["userId"] == 5001 and ann["type"] == "PERSON" and ann["email"] == "ann.cs@vendor.example"
    assert ann["teams"] == [{"id": "41002", "name": "Customer Success", "primary": True}]
    nxt = first["paging"]["next"]
    assert nxt["after"] == LIVE_OWNERS[1] and "limit=1" in nxt["link"]
    second = check("owners-v3", svc.get("/crm/v3/owners", params={"limit": 1, "after": nxt["after"]}))
    assert [o["id"] for o in second["results"]] == LIVE_OWNERS[1:] and "paging" not in second
    assert [t["primary"] for t in second["results"][0]["teams"]] == [True, False]
    by_email = check("owners-v3", svc.get("/crm/v3/owners", params={"email": "SAM.support@vendor.example"}))
    assert [o["id"] for o in by_email["results"]] == ["71002"]
    archived = check("owners-v3", svc.get("/crm/v3/owners", params={"archived": "true"}))
    assert [o["id"] for o in archived["results"]] == ["71003"]
    assert archived["results"][0]["archived"] is True and "userId" not in archived["results"][0]


def test_owner_by_id_or_user_id_and_404(svc: Api):
    assert check("owners-v3", svc.get("/crm/v3/owners/71001"))["email"] == "ann.cs@vendor.example"
    by_user = check("owners-v3", svc.get("/crm/v3/owners/5002", params={"idProperty": "userId"}))
    assert by_user["id"] == "71002"
    missing = svc.get("/crm/v3/owners/424242")
    assert missing.status_code == 404 and missing.json()["category"] == "OBJECT_NOT_FOUND"
    check("owners-v3", missing)
    assert svc.get("/crm/v3/owners/71003").status_code == 404  # archived: only with archived=true
    assert check("owners-v3", svc.get("/crm/v3/owners/71003", params={"archived": "true"}))["archived"] is True


def test_owners_need_an_owner_scope(svc: Api):
    token = svc.sandbox.portal.create_token(scopes=["crm.objects.contacts.read"])
    refused = svc.get("/crm/v3/owners", token=token)
    assert refused.status_code == 403
    assert refused.json()["context"]["requiredGranularScopes"] == ["crm.objects.owners.read", "automation"]


# ---------------------------------------------------------------- pipelines


@pytest.mark.parametrize("object_type, pipeline_id, first_stage, closed", [
    pytest.param("deals", "default", "appointmentscheduled", {"closedwon", "closedlost"}, id="deals"),
    pytest.param("tickets", "0", "1", {"4"}, id="tickets"),
    pytest.param("0-5", "0", "1", {"4"}, id="tickets-by-type-id"),
])
def test_pipelines_and_stages(svc: Api, object_type, pipeline_id, first_stage, closed):
    listed = check("pipelines-v3", svc.get(f"/crm/v3/pipelines/{object_type}"))
    assert [p["id"] for p in listed["results"]] == [pipeline_id]
    one = check("pipelines-v3", svc.get(f"/crm/v3/pipelines/{object_type}/{pipeline_id}"))
    assert one == listed["results"][0] and one["createdAt"] == "1970-01-01T00:00:00.000Z"
    stages = check("pipelines-v3", svc.get(f"/crm/v3/pipelines/{object_type}/{pipeline_id}/stages"))["results"]
    assert stages == one["stages"] and stages[0]["id"] == first_stage
    assert [s["displayOrder"] for s in stages] == list(range(len(stages)))
    is_closed = {s["id"] for s in stages if s["metadata"].get("isClosed") == "true"
                 or s["metadata"].get("ticketState") == "CLOSED"}
    assert is_closed == closed
    stage = check("pipelines-v3", svc.get(f"/crm/v3/pipelines/{object_type}/{pipeline_id}/stages/{first_stage}"))
    assert stage == stages[0]


def test_deal_stages_match_the_dealstage_options_and_carry_probabilities(svc: Api):
    stages = check("pipelines-v3", svc.get("/crm/v3/pipelines/deals/default/stages"))["results"]
    options = {p.name: p.options for p in schema.PROPERTIES["deals"]}["dealstage"]
    assert [s["id"] for s in stages] == list(options)
    assert all(0.0 <= float(s["metadata"]["probability"]) <= 1.0 for s in stages)
    assert [s.id for s in PIPELINES["tickets"][0].stages] == list(schema.TICKET_STAGES)


@pytest.mark.parametrize("path, status", [
    pytest.param("/crm/v3/pipelines/deals/nope", 404, id="unknown-pipeline"),
    pytest.param("/crm/v3/pipelines/tickets/0/stages/99", 404, id="unknown-stage"),
    pytest.param("/crm/v3/pipelines/contacts", 400, id="type-without-pipelines"),
    pytest.param("/crm/v3/pipelines/widgets", 400, id="unknown-type"),
])
def test_pipeline_errors(svc: Api, path, status):
    response = svc.get(path)
    assert response.status_code == status
    check("pipelines-v3", response)
