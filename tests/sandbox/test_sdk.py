"""The official hubspot-api-client (12.0.0) pointed at the sandbox: its calls work and its models accept the answers."""

from __future__ import annotations

import datetime as dt

import pytest
from hubspot import HubSpot
from hubspot.crm.associations.v4 import (
    BatchInputPublicFetchAssociationsBatchRequest, PublicFetchAssociationsBatchRequest,
)
from hubspot.crm.companies import BatchInputSimplePublicObjectBatchInput, SimplePublicObjectBatchInput
from hubspot.crm.contacts import BatchReadInputSimplePublicObjectId, PublicObjectSearchRequest, SimplePublicObjectId
from hubspot.crm.lists import ListCreateRequest, MembershipChangeRequest
from hubspot.crm.properties import OptionInput, PropertyCreate

from tests.sandbox.conftest import make_tiny_portal
from tests.sandbox.tiny import ARCHIVED_CONTACT, COMPANY_IDS, CONTACT_IDS


@pytest.fixture
def sdk(sandbox_factory):
    sb = sandbox_factory(portal=make_tiny_portal())
    client = HubSpot(access_token=sb.token, host=sb.base_url, base_url=sb.base_url)
    return client, sb


def test_sdk_pages_every_object_type(sdk):
    client, _ = sdk
    contacts = client.crm.contacts.get_all(properties=["email", "lifecyclestage"])
    assert [c.id for c in contacts] == [str(i) for i in CONTACT_IDS if i != ARCHIVED_CONTACT]
    assert isinstance(contacts[0].created_at, dt.datetime) and contacts[0].properties["email"] == "ada@acme.example"
    page = client.crm.companies.basic_api.get_page(limit=2, properties=["name", "industry"])
    assert [c.id for c in page.results] == [str(i) for i in COMPANY_IDS[:2]]
    assert page.paging.next.after == str(COMPANY_IDS[2])
    assert len(client.crm.deals.get_all()) == 2
    assert len(client.crm.line_items.get_all()) == 2
    subscriptions = client.crm.objects.get_all("subscriptions", properties=["hs_status", "hs_mrr"])
    assert {s.properties["hs_status"] for s in subscriptions} == {"active", "canceled"}
    feedback = client.crm.objects.feedback_submissions.basic_api.get_page(properties=["hs_value"])
    assert [f.properties["hs_value"] for f in feedback.results] == ["9", "3"] and feedback.paging is None
    archived = client.crm.contacts.basic_api.get_page(archived=True)
    assert archived.results[0].archived is True and archived.results[0].archived_at is not None


def test_sdk_history_and_associations_on_read(sdk):
    client, _ = sdk
    company = client.crm.companies.basic_api.get_by_id("2001", properties_with_history=["product_logins_30d"],
                                                       associations=["contacts"])
    history = company.properties_with_history["product_logins_30d"]
    assert [h.value for h in history] == ["40", "25", "10"] and isinstance(history[0].timestamp, dt.datetime)
    assert {a.id for a in company.associations["contacts"].results} == {"1001", "1002"}


def test_sdk_search(sdk):
    client, _ = sdk
    result = client.crm.contacts.search_api.do_search(public_object_search_request=PublicObjectSearchRequest(
        filter_groups=[{"filters": [{"propertyName": "lastmodifieddate", "operator": "GTE", "value": "0"}]}],
        sorts=[{"propertyName": "lastmodifieddate", "direction": "ASCENDING"}], properties=["email"], limit=2))
    assert result.total == 5 and len(result.results) == 2 and result.paging.next.after == "2"


def test_sdk_batch_read_and_update(sdk):
    client, sb = sdk
    request = BatchReadInputSimplePublicObjectId(properties=["email"], properties_with_history=[], inputs=[
        SimplePublicObjectId(id="1001"), SimplePublicObjectId(id="404404")])
    read = client.crm.contacts.batch_api.read(batch_read_input_simple_public_object_id=request)
    assert [r.id for r in read.results] == ["1001"] and read.num_errors == 1
    assert read.errors[0].category == "OBJECT_NOT_FOUND" and read.errors[0].context == {"ids": ["404404"]}
    updated = client.crm.companies.batch_api.update(
        batch_input_simple_public_object_batch_input=BatchInputSimplePublicObjectBatchInput(inputs=[
            SimplePublicObjectBatchInput(id="2001", properties={"support_open_tickets": "7"}),
            SimplePublicObjectBatchInput(id="2002", properties={"support_open_tickets": "2"})]))
    assert updated.status == "COMPLETE" and {r.id for r in updated.results} == {"2001", "2002"}
    assert sb.portal.get("companies", 2001).props["support_open_tickets"] == "7"


def test_sdk_creates_properties(sdk):
    client, sb = sdk
    created = client.crm.properties.core_api.create(object_type="companies", property_create=PropertyCreate(
        name="churn_risk", label="Churn risk", type="enumeration", field_type="select", group_name="customer_success",
        options=[OptionInput(label="High", value="high", hidden=False, display_order=0)]))
    assert created.name == "churn_risk" and created.options[0].value == "high"
    assert "churn_risk" in sb.portal.properties["companies"]
    listed = client.crm.properties.core_api.get_all(object_type="companies")
    assert "churn_risk" in {p.name for p in listed.results}


def test_sdk_reads_associations(sdk):
    client, _ = sdk
    batch = client.crm.associations.v4.batch_api.get_page(
        from_object_type="companies", to_object_type="contacts",
        batch_input_public_fetch_associations_batch_request=BatchInputPublicFetchAssociationsBatchRequest(
            inputs=[PublicFetchAssociationsBatchRequest(id="2001")]))
    assert [str(t.to_object_id) for t in batch.results[0].to] == ["1001", "1002"]
    assert batch.results[0].to[0].association_types[0].category == "HUBSPOT_DEFINED"
    one = client.crm.associations.v4.basic_api.get_page(object_type="contacts", object_id="1001",
                                                       to_object_type="companies")
    assert [str(r.to_object_id) for r in one.results] == ["2001"]
    assert {t.label for t in one.results[0].association_types} == {"Primary", None}


def test_sdk_lists_and_memberships(sdk):
    client, sb = sdk
    created = client.crm.lists.lists_api.create(list_create_request=ListCreateRequest(
        name="Save play", object_type_id="0-1", processing_type="MANUAL"))
    list_id = created.list.list_id
    added = client.crm.lists.memberships_api.add(list_id=list_id, request_body=["1001", "1003", "77"])
    assert added.records_ids_added == ["1001", "1003"] and added.record_ids_missing == ["77"]
    changed = client.crm.lists.memberships_api.add_and_remove(
        list_id=list_id, membership_change_request=MembershipChangeRequest(record_ids_to_add=["1004"],
                                                                           record_ids_to_remove=["1001"]))
    assert changed.record_ids_removed == ["1001"]
    page = client.crm.lists.memberships_api.get_page(list_id=list_id)
    assert [m.record_id for m in page.results] == ["1003", "1004"]
    by_name = client.crm.lists.lists_api.get_by_name(list_name="Save play", object_type_id="0-1")
    assert by_name.list.list_id == list_id
    assert set(sb.portal.lists[int(list_id)].members) == {1003, 1004}


def test_sdk_errors_carry_hubspot_bodies(sdk):
    client, sb = sdk
    from hubspot.crm.contacts.exceptions import ApiException, NotFoundException

    with pytest.raises(NotFoundException) as missing:
        client.crm.contacts.basic_api.get_by_id("424242")
    assert missing.value.status == 404 and "OBJECT_NOT_FOUND" in missing.value.body
    narrow = HubSpot(access_token=sb.portal.create_token(scopes=["crm.objects.companies.read"]), host=sb.base_url)
    with pytest.raises(ApiException) as forbidden:
        narrow.crm.contacts.basic_api.get_page()
    assert forbidden.value.status == 403 and "crm.objects.contacts.read" in forbidden.value.body
