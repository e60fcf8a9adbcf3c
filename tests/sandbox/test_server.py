"""The in-process starter, the seeded session portal, and answers to garbage: HubSpot-shaped, never a 500."""

from __future__ import annotations

import socket

import pytest

from connector.sandbox import schema
from connector.sandbox.server import SandboxStartError, contacts_for, running_sandbox
from tests.sandbox.conftest import Api


def test_session_sandbox_serves_the_seeded_small_portal(sandbox):
    api = Api(sandbox)
    ids, after = [], None
    while True:
        page = api.get("/crm/v3/objects/contacts", params={"limit": 100, "after": after}).json()
        ids += [int(r["id"]) for r in page["results"]]
        if "paging" not in page:
            break
        after = page["paging"]["next"]["after"]
    assert len(ids) == 200 and ids == sorted(ids)
    assert ids == sandbox.portal.stores["contacts"].live_ids


def test_seeded_associations_are_stored_both_ways(sandbox):
    portal = sandbox.portal
    pairs = 0
    for (a, b), by_from in portal.assoc.items():
        for from_id, targets in by_from.items():
            for to_id, types in targets.items():
                pairs += 1
                assert from_id in portal.associated_ids(b, to_id, a), (a, from_id, b, to_id)
                known = {t for t, _ in schema.ASSOCIATION_TYPES[(a, b)]}
                assert set(types) <= known
    assert pairs > 200


@pytest.mark.parametrize("size, contacts", [("small", 200), ("medium", 10_000), ("large", 100_000), ("1234", 1234),
                                            (50, 50)])
def test_sizes(size, contacts):
    assert contacts_for(size) == contacts


def test_bad_size_is_refused():
    with pytest.raises(ValueError, match="small, medium, large"):
        contacts_for("huge")


def test_a_taken_port_fails_fast_with_a_clear_error():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        with pytest.raises(SandboxStartError, match=f"cannot listen on 127.0.0.1:{port}"):
            with running_sandbox(size=0, port=port):
                pass


def test_stop_frees_the_port():
    with running_sandbox(size=0) as sb:
        port = int(sb.base_url.rsplit(":", 1)[1])
    with socket.socket() as again:
        again.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        again.bind(("127.0.0.1", port))


GARBAGE = [b"", b"null", b"[]", b'"text"', b"42", b"{}", b'{"inputs": "x"}', b'{"inputs": [1, "a", null]}',
           b'{"inputs": [{"id": {"x": 1}, "properties": [1]}]}', b'{"properties": [1, 2]}',
           b'{"properties": {"email": {"nested": true}}}', b'{"filterGroups": "x"}',
           b'{"filterGroups": [1, [2], {"filters": [3, {"operator": 4}]}]}', b'{"sorts": [1]}',
           b'{"limit": "x", "after": []}', b'{"associations": [{"to": 1, "types": "x"}]}',
           b'{"associations": [{"to": {"id": "1"}, "types": [1]}]}', b'{"name": 1, "objectTypeId": [], '
           b'"processingType": "MANUAL", "label": 2, "type": "string", "fieldType": "text", "groupName": 3}',
           b'{"recordIdsToAdd": "x", "recordIdsToRemove": 5}', b'{"options": "x", "displayOrder": "y"}',
           b'{"name": "ok_name", "label": "L", "type": "number", "fieldType": "number", '
           b'"groupName": "contactinformation", "displayOrder": "first"}',
           b'{"name": [1], "label": {"a": 1}, "type": [], "fieldType": {}, "groupName": [], "objectTypeId": "0-1", '
           b'"processingType": []}',
           b'{"sorts": [{"propertyName": ["x"], "direction": 5}], "properties": [["a"], {"b": 1}, 3], '
           b'"query": ["q"]}',
           b'{"idProperty": ["email"], "inputs": [{"id": "1", "idProperty": {"x": 1}}], "properties": [[1]], '
           b'"propertiesWithHistory": [{}]}',
           b'{"inputs": [{"name": ["x"]}, {"name": {"y": 1}}], "archived": "yes"}',
           b'{"filterGroups": [{"filters": [{"propertyName": "email", "operator": "IN", "values": [[1], {"a": 2}]},'
           b' {"propertyName": "createdate", "operator": "BETWEEN", "value": [], "highValue": {}}]}]}']
PATHS = [
    ("POST", "/crm/v3/objects/contacts"), ("PATCH", "/crm/v3/objects/contacts/1001"),
    ("POST", "/crm/v3/objects/contacts/search"), ("POST", "/crm/v3/objects/contacts/batch/read"),
    ("POST", "/crm/v3/objects/contacts/batch/create"), ("POST", "/crm/v3/objects/contacts/batch/update"),
    ("POST", "/crm/v3/objects/contacts/batch/upsert"), ("POST", "/crm/v3/objects/contacts/batch/archive"),
    ("POST", "/crm/v3/properties/contacts"), ("PATCH", "/crm/v3/properties/contacts/firstname"),
    ("POST", "/crm/v3/properties/contacts/batch/create"), ("POST", "/crm/v3/properties/contacts/batch/read"),
    ("POST", "/crm/v3/properties/contacts/groups"), ("POST", "/crm/v4/associations/contacts/companies/batch/read"),
    ("POST", "/crm/v3/lists"), ("PUT", "/crm/v3/lists/1/memberships/add"), ("POST", "/crm/v3/lists/search"),
    ("PUT", "/crm/v4/objects/contacts/1001/associations/default/companies/2001"),
    ("PUT", "/crm/v3/lists/1/memberships/add-and-remove"), ("POST", "/oauth/v1/token"),
]


@pytest.mark.parametrize("method, path", [pytest.param(m, p, id=f"{m} {p}") for m, p in PATHS])
def test_garbage_gets_hubspot_errors_never_500(api: Api, method, path):
    api("POST", "/crm/v3/lists", json={"name": "garbage", "objectTypeId": "0-1", "processingType": "MANUAL"})
    for body in GARBAGE:
        response = api(method, path, data=body, headers={"Content-Type": "application/json"})
        assert response.status_code < 500, (body, response.text)
        if response.status_code >= 400:
            error = response.json()
            assert error["status"] == "error" and error["message"], (body, error)
            assert error["correlationId"] == response.headers["x-hubspot-correlation-id"]


def test_writes_do_not_touch_the_ingested_generator_output():
    from connector.sandbox.portal import Portal
    from tests.sandbox.tiny import tiny_portal

    generated = tiny_portal()
    portal = Portal()
    portal.ingest(generated)
    portal.update("companies", "2001", {"product_logins_30d": "41"})
    seeded = next(r for r in generated.records["companies"] if r.id == 2001)
    assert [v for v, _ in seeded.history["product_logins_30d"]] == ["10", "25", "40"]
    assert [e[0] for e in portal.get("companies", 2001).history["product_logins_30d"]] == ["10", "25", "40", "41"]
    assert seeded.properties["product_logins_30d"] == "40"


def test_running_sandbox_takes_profile_and_faults():
    with running_sandbox(size=0, profile="professional", faults="seq:503,200") as sb:
        api = Api(sb)
        first, second = api.get("/crm/v3/objects/contacts"), api.get("/crm/v3/objects/contacts")
    assert (first.status_code, second.status_code) == (503, 200)
    assert second.headers["x-hubspot-ratelimit-max"] == "190"
    assert second.json() == {"results": []}
