"""The official hubspot-api-client (12.0.0) reads owners, pipelines, tickets, products and engagements from the
sandbox: its calls work and its models accept the answers."""

from __future__ import annotations

import datetime as dt

import pytest
from hubspot import HubSpot
from hubspot.crm.tickets import PublicObjectSearchRequest, SimplePublicObjectInputForCreate

from tests.sandbox.service import CALL_ID, EMAIL_ID, MEETING_ID, NOTE_ID, OWNERS, TASK_ID, TICKET_IDS, \
    make_service_portal


@pytest.fixture
def sdk(sandbox_factory):
    sb = sandbox_factory(portal=make_service_portal())
    return HubSpot(access_token=sb.token, host=sb.base_url, base_url=sb.base_url), sb


def test_sdk_reads_owners(sdk):
    client, _ = sdk
    owners = client.crm.owners.get_all()
    assert [o.id for o in owners] == [str(o.id) for o in OWNERS if not o.archived]
    assert owners[0].user_id == 5001 and owners[0].teams[0].name == "Customer Success"
    assert isinstance(owners[0].created_at, dt.datetime)
    page = client.crm.owners.owners_api.get_page(email="sam.support@vendor.example")
    assert [o.id for o in page.results] == ["71002"] and page.paging is None
    archived = client.crm.owners.owners_api.get_page(archived=True)
    assert [(o.id, o.archived, o.user_id) for o in archived.results] == [("71003", True, None)]
    assert client.crm.owners.owners_api.get_by_id(owner_id=5002, id_property="userId").email == \
        "sam.support@vendor.example"


def test_sdk_reads_pipelines_and_stages(sdk):
    client, _ = sdk
    deals = client.crm.pipelines.pipelines_api.get_all(object_type="deals")
    assert [p.id for p in deals.results] == ["default"] and deals.results[0].stages[-1].id == "closedlost"
    ticket = client.crm.pipelines.pipelines_api.get_by_id(object_type="tickets", pipeline_id="0")
    assert ticket.label == "Support Pipeline"
    stages = client.crm.pipelines.pipeline_stages_api.get_all(object_type="tickets", pipeline_id="0")
    assert [(s.id, s.metadata["ticketState"]) for s in stages.results] == [
        ("1", "OPEN"), ("2", "OPEN"), ("3", "OPEN"), ("4", "CLOSED")]


def test_sdk_reads_tickets(sdk):
    client, _ = sdk
    tickets = client.crm.tickets.get_all(properties=["subject", "hs_pipeline_stage", "hs_ticket_priority"],
                                         associations=["companies"])
    assert [t.id for t in tickets] == [str(i) for i in TICKET_IDS]
    assert tickets[0].properties["hs_ticket_priority"] == "HIGH"
    assert [a.id for a in tickets[0].associations["companies"].results][0] == "2001"
    found = client.crm.tickets.search_api.do_search(public_object_search_request=PublicObjectSearchRequest(
        filter_groups=[{"filters": [{"propertyName": "hs_ticket_priority", "operator": "IN",
                                     "values": ["HIGH", "MEDIUM"]}]}], properties=["subject"]))
    assert found.total == 2 and {t.id for t in found.results} == {"5101", "5103"}
    created = client.crm.tickets.basic_api.create(simple_public_object_input_for_create=SimplePublicObjectInputForCreate(
        properties={"subject": "From the SDK", "hs_pipeline": "0", "hs_pipeline_stage": "1"}))
    assert created.properties["subject"] == "From the SDK"
    props = client.crm.properties.core_api.get_all(object_type="tickets")
    assert "hs_ticket_priority" in {p.name for p in props.results}


def test_sdk_reads_engagements_and_products(sdk):
    client, _ = sdk
    objects = client.crm.objects
    calls = objects.calls.basic_api.get_page(properties=["hs_call_direction", "hs_call_duration"])
    assert [c.id for c in calls.results] == [str(CALL_ID)]
    assert calls.results[0].properties["hs_call_duration"] == "600000"
    assert objects.emails.basic_api.get_by_id(str(EMAIL_ID), properties=["hs_email_subject"]).properties[
        "hs_email_subject"] == "Follow-up from our call"
    meeting = objects.meetings.basic_api.get_by_id(str(MEETING_ID), properties=["hs_meeting_outcome"],
                                                   associations=["companies"])
    assert meeting.properties["hs_meeting_outcome"] == "COMPLETED"
    assert [a.id for a in meeting.associations["companies"].results] == ["2001"]
    assert objects.notes.basic_api.get_by_id(str(NOTE_ID), properties=["hs_note_body"]).properties["hs_note_body"]
    assert objects.tasks.basic_api.get_by_id(str(TASK_ID), properties=["hs_task_status"]).properties[
        "hs_task_status"] == "NOT_STARTED"
    assert [p.properties["name"] for p in client.crm.products.get_all()] == ["Growth"]
    generic = objects.get_all("0-48", properties=["hs_call_status"])  # by objectTypeId
    assert [c.properties["hs_call_status"] for c in generic] == ["COMPLETED"]
