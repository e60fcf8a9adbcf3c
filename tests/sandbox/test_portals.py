"""Several portals in one sandbox: each its own hub id, data, tokens and limits, addressed by its token."""

from __future__ import annotations

import re
import signal

import pytest
import requests

from connector.sandbox.portal import Portal
from connector.sandbox.registry import PortalRegistry
from connector.sandbox.server import running_sandbox
from tests.sandbox.conftest import Api
from tests.sandbox.spec import check


@pytest.fixture(scope="module")
def three():
    with running_sandbox(seed=5, size=40, portals=3) as sb:
        yield sb


def _emails(api: Api, token: str) -> set[str]:
    body = check("objects-v3", api.get("/crm/v3/objects/contacts", token=token,
                                       params={"limit": 100, "properties": "email"}))
    return {r["properties"]["email"] for r in body["results"]}


def test_each_portal_has_its_hub_id_and_token_and_is_found_by_either(three):
    hub_ids = three.portals.hub_ids
    assert hub_ids == [48_000_005, 48_000_006, 48_000_007]  # seeds 5, 6, 7
    assert three.portal is three.portals.primary and three.token == three.portal.token
    for hub_id in hub_ids:
        portal = three.portals.by_hub_id(hub_id)
        assert portal.portal_id == hub_id and three.portals.by_token(portal.token) is portal
        assert three.portals.by_hub_id(str(hub_id)) is portal
    with pytest.raises(KeyError, match="no portal with hub id 1; this sandbox serves"):
        three.portals.by_hub_id(1)
    assert three.portals.by_token("pat-na1-unknown") is None


def test_a_token_reads_only_its_own_portal(three):
    api = Api(three)
    a, b, c = three.portals
    seen = [_emails(api, p.token) for p in (a, b, c)]
    for portal, emails in zip((a, b, c), seen):
        stored = {portal.get("contacts", i).props["email"] for i in portal.stores["contacts"].live_ids}
        assert emails == stored
    assert not (seen[0] & seen[1]) and not (seen[1] & seen[2])
    made = api.post("/crm/v3/objects/contacts", token=b.token,
                    json={"properties": {"email": "only.in.b@example.com"}})
    assert made.status_code == 201
    new_id = made.json()["id"]
    assert api.get(f"/crm/v3/objects/contacts/{new_id}", token=b.token).status_code == 200
    assert api.get(f"/crm/v3/objects/contacts/{new_id}", token=a.token).status_code == 404
    assert api.get(f"/crm/v3/objects/contacts/{new_id}", token=c.token).status_code == 404
    search = api.post("/crm/v3/objects/contacts/search", token=a.token, json={
        "filterGroups": [{"filters": [{"propertyName": "email", "operator": "EQ",
                                       "value": "only.in.b@example.com"}]}]})
    assert search.json()["total"] == 0
    assert a.find("contacts", new_id) is None and b.find("contacts", new_id) is not None


def test_tokens_minted_later_and_owners_stay_in_their_portal(three):
    api = Api(three)
    a, b, _ = three.portals
    narrow = b.create_token(scopes=["crm.objects.owners.read"])
    owners_b = check("owners-v3", api.get("/crm/v3/owners", token=narrow))["results"]
    owners_a = check("owners-v3", api.get("/crm/v3/owners", token=a.token))["results"]
    assert [o["id"] for o in owners_b] == [str(o.id) for o in sorted(b.owners.values(), key=lambda o: o.id)
                                           if not o.archived]
    assert {o["id"] for o in owners_a}.isdisjoint({o["id"] for o in owners_b})
    assert api.get("/crm/v3/objects/contacts", token=narrow).status_code == 403  # b's narrow token, b's scopes


def test_rate_limits_are_per_portal(sandbox_factory):
    sb = sandbox_factory(seed=1, size=0, profile="free", portals=2)
    api = Api(sb)
    a, b = sb.portals
    statuses = [api.get("/crm/v3/objects/contacts", token=a.token).status_code for _ in range(101)]
    assert statuses[:100] == [200] * 100 and statuses[100] == 429
    fresh = api.get("/crm/v3/objects/contacts", token=b.token)
    assert fresh.status_code == 200 and fresh.headers["x-hubspot-ratelimit-remaining"] == "99"


def test_one_portal_is_the_default_and_unknown_tokens_get_401(three, sandbox):
    assert len(sandbox.portals) == 1 and sandbox.portals.primary is sandbox.portal
    response = Api(three).get("/crm/v3/objects/contacts", token="pat-na1-not-a-token")
    assert response.status_code == 401 and response.json()["category"] == "INVALID_AUTHENTICATION"


def test_registry_refuses_two_portals_with_one_hub_id():
    with pytest.raises(ValueError, match="two portals with hub id 48000004"):
        PortalRegistry([Portal(seed=4), Portal(seed=1_000_004)])
    with pytest.raises(ValueError, match="at least one portal"):
        PortalRegistry([])


def test_serve_with_portals_prints_each_hub_id_and_token(serve):
    process, lines = serve("--size", "20", "--seed", "3", "--portals", "3")
    pairs = [m.groups() for m in (re.match(r"hub id (\d+) token (\S+)$", line) for line in lines) if m]
    assert [hub for hub, _ in pairs] == ["48000003", "48000004", "48000005"]
    base_url = next(line.split("=", 1)[1] for line in lines if line.startswith("export CONNECTOR_BASE_URL="))
    for hub, token in pairs:
        response = requests.get(base_url + "/crm/v3/owners", headers={"Authorization": f"Bearer {token}"},
                                timeout=10)
        assert response.status_code == 200, hub
    assert f"export CONNECTOR_TOKEN={pairs[0][1]}" in lines  # the first portal is the default to paste
    process.send_signal(signal.SIGINT)
    process.wait(timeout=30)
    assert process.returncode == 130
