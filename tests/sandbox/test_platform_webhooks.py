"""Webhooks to a real local receiver: events for API changes as HubSpot shapes them, signed v3, batched by 100,
retried after a 500 with back-off (time-scaled), every attempt recorded; none after an uninstall."""

from __future__ import annotations

from collections import deque

import pytest
import requests

from connector.sandbox.platform import AppPlatform
from connector.sandbox.platform.webhooks import RETRY_DELAYS_S
from connector.sandbox.server import running_sandbox
from tests.sandbox.conftest import Api, make_tiny_portal
from tests.sandbox.receiver import project_pointing_at


@pytest.fixture
def sb(receiver, tmp_path):
    platform = AppPlatform(seed=3, time_scale=0.001, batch_window_s=0.05)
    with running_sandbox(portal=make_tiny_portal(), app=project_pointing_at(tmp_path, receiver.base_url),
                         platform=platform) as sandbox:
        receiver.secret = sandbox.app.client_secret
        sandbox.platform.install(sandbox.app.app_id, sandbox.portal.portal_id)
        yield sandbox


def _events(receiver) -> list[dict]:
    return [e for r in receiver.received for e in r.json()]


def test_api_changes_arrive_as_signed_hubspot_events(sb, receiver):
    api = Api(sb)
    created = api.post("/crm/v3/objects/companies", json={"properties": {"name": "Umbrella",
                                                                         "product_logins_30d": "3"}}).json()
    company_id = int(created["id"])
    api("PATCH", f"/crm/v3/objects/companies/{company_id}", json={"properties": {"seats_used": "7",
                                                                                 "domain": "umbrella.example"}})
    api("PATCH", "/crm/v3/objects/contacts/1003", json={"properties": {"lifecyclestage": "customer"}})
    api("PUT", f"/crm/v4/objects/contacts/1005/associations/default/companies/{company_id}")
    api("DELETE", f"/crm/v3/objects/companies/{company_id}")
    assert sb.platform.wait_idle(10)
    requests_seen = receiver.received
    assert requests_seen and all(r.verified for r in requests_seen)
    assert all(r.headers["x-hubspot-signature-version"] == "v1" for r in requests_seen)
    events = _events(receiver)
    by_type = {}
    for e in events:
        by_type.setdefault(e["subscriptionType"], []).append(e)
        assert e["portalId"] == sb.portal.portal_id and e["appId"] == sb.app.app_id
        assert e["attemptNumber"] == 0 and e["changeSource"] == "INTEGRATION" and e["sourceId"] == "1"
        assert isinstance(e["eventId"], int) and isinstance(e["occurredAt"], int)
    subs = {s.subscription_type + (s.property_name or ""): sid for sid, s in sb.app.subscriptions
            if s.object_type_id in ("0-1", "0-2")}
    creation = by_type["object.creation"]
    assert [(e["objectId"], e["objectTypeId"], e["changeFlag"]) for e in creation] == [(company_id, "0-2", "NEW")]
    assert creation[0]["subscriptionId"] == subs["object.creation"]
    changes = sorted((e["propertyName"], e["propertyValue"]) for e in by_type["object.propertyChange"])
    # product_logins_30d set at creation and seats_used changed; domain has no subscription
    assert changes == [("product_logins_30d", "3"), ("seats_used", "7")]
    assert [(e["objectId"], e["propertyValue"]) for e in by_type["contact.propertyChange"]] == [(1003, "customer")]
    assoc = by_type["contact.associationChange"]
    assert [(a["fromObjectId"], a["toObjectId"], a["associationType"], a["associationRemoved"]) for a in assoc] \
        == [(1005, company_id, "CONTACT_TO_COMPANY", False)]
    assert "objectTypeId" not in assoc[0]  # legacy subscriptions keep the legacy shape
    assert [e["objectId"] for e in by_type["object.deletion"]] == [company_id]
    assert len({e["eventId"] for e in events}) == len(events)


def test_a_500_is_retried_with_back_off_and_every_attempt_recorded(sb, receiver):
    receiver.script = deque([500, 503, 200])
    Api(sb)("PATCH", "/crm/v3/objects/companies/2002", json={"properties": {"seats_used": "11"}})
    assert sb.platform.wait_idle(15)
    attempts = sb.platform.deliveries(sb.app.app_id, sb.portal.portal_id)
    assert [(a.attempt, a.status, a.outcome) for a in attempts] == \
        [(0, 500, "retrying"), (1, 503, "retrying"), (2, 200, "delivered")]
    assert len({a.delivery_id for a in attempts}) == 1 and all(a.latency_ms > 0 for a in attempts)
    bodies = [r.json() for r in receiver.received]
    assert [b[0]["attemptNumber"] for b in bodies] == [0, 1, 2]
    assert bodies[0][0]["eventId"] == bodies[2][0]["eventId"]  # the same event, re-sent
    # the back-off between attempts follows the schedule (scaled by 0.001, ±20 % jitter)
    gaps = [b.started_ms - a.started_ms for a, b in zip(attempts, attempts[1:])]
    for gap, planned in zip(gaps, RETRY_DELAYS_S):
        assert planned * 0.001 * 1000 * 0.8 - 5 <= gap, (gaps, planned)
    listed = requests.get(sb.base_url + "/_sandbox/webhook-deliveries",
                          params={"appId": sb.app.app_id}, timeout=10).json()["results"]
    assert [(d["attemptNumber"], d["status"], d["outcome"]) for d in listed] == \
        [(0, 500, "retrying"), (1, 503, "retrying"), (2, 200, "delivered")]


def test_a_4xx_answer_is_final_and_recorded_failed(sb, receiver):
    receiver.script = deque([400])
    Api(sb)("PATCH", "/crm/v3/objects/companies/2002", json={"properties": {"seats_used": "12"}})
    assert sb.platform.wait_idle(10)
    assert [(a.status, a.outcome) for a in sb.platform.deliveries()] == [(400, "failed")]


def test_an_unreachable_target_is_retried_ten_times_then_given_up(receiver, tmp_path):
    receiver.stop()  # nothing listens there any more
    platform = AppPlatform(time_scale=0.00002, batch_window_s=0.01)
    with running_sandbox(portal=make_tiny_portal(), app=project_pointing_at(tmp_path, receiver.base_url),
                         platform=platform) as sb:
        platform.install(sb.app.app_id, sb.portal.portal_id)
        Api(sb)("PATCH", "/crm/v3/objects/companies/2001", json={"properties": {"seats_used": "1"}})
        assert platform.wait_idle(20)
        attempts = platform.deliveries()
    assert [a.attempt for a in attempts] == list(range(11))  # the first try and 10 retries
    assert all(a.status is None and a.error.startswith("connection error") for a in attempts)
    assert [a.outcome for a in attempts] == ["retrying"] * 10 + ["gave_up"]


def test_batches_hold_at_most_100_events(sb, receiver):
    api = Api(sb)
    inputs = [{"properties": {"name": f"Co {i}"}} for i in range(100)]
    for _ in range(3):
        assert api.post("/crm/v3/objects/companies/batch/create", json={"inputs": inputs}).status_code == 201
    assert sb.platform.wait_idle(15)
    sizes = [len(r.json()) for r in receiver.received]
    assert sum(sizes) == 300 and max(sizes) == 100 and len(sizes) >= 3


def test_no_events_after_the_app_is_uninstalled(sb, receiver):
    response = requests.delete(f"{sb.base_url}/_sandbox/apps/{sb.app.app_id}/installs/{sb.portal.portal_id}",
                               timeout=10)
    assert response.status_code == 204
    Api(sb)("PATCH", "/crm/v3/objects/companies/2003", json={"properties": {"seats_used": "2"}})
    assert sb.platform.wait_idle(5)
    assert receiver.received == []


def test_inactive_subscriptions_and_other_portals_send_nothing(sb, receiver):
    Api(sb)("PATCH", "/crm/v3/objects/deals/3002", json={"properties": {"dealstage": "closedwon"}})  # inactive
    other = make_tiny_portal(portal_id=sb.portal.portal_id + 1)
    sb.platform.attach(other)  # a second portal, where the app is not installed
    other.update("companies", "2001", {"seats_used": "99"})
    assert sb.platform.wait_idle(5)
    assert receiver.received == []
