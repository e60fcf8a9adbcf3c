"""Auth (401/403, OAuth expiry), rate limits (headers, 429 bodies) and injected faults on the sandbox."""

from __future__ import annotations

import pytest
import requests

from connector.sandbox.faults import Fault, FaultPlan, parse_faults
from connector.sandbox.limits import RateProfile
from tests.sandbox.conftest import Api, make_tiny_portal
from tests.sandbox.spec import check

RATE_HEADERS = ("x-hubspot-ratelimit-interval-milliseconds", "x-hubspot-ratelimit-max",
                "x-hubspot-ratelimit-remaining", "x-hubspot-ratelimit-secondly",
                "x-hubspot-ratelimit-secondly-remaining")


# ---------------------------------------------------------------- auth


@pytest.mark.parametrize("token", [pytest.param(None, id="missing"), pytest.param("pat-na1-wrong", id="wrong")])
def test_bad_token_is_401_invalid_authentication(api: Api, token):
    response = api.get("/crm/v3/objects/contacts", token=token)
    assert response.status_code == 401
    assert response.headers["x-hubspot-auth-failure"] == "401 Unauthorized"
    body = check("objects-v3", response)
    assert body["category"] == "INVALID_AUTHENTICATION"
    assert body["message"].startswith("Authentication credentials not found.")
    assert body["correlationId"] == response.headers["x-hubspot-correlation-id"]


@pytest.mark.parametrize("method, path, kwargs, scope", [
    pytest.param("GET", "/crm/v3/objects/deals", {}, "crm.objects.deals.read", id="deals-read"),
    pytest.param("PATCH", "/crm/v3/objects/contacts/1001", {"json": {"properties": {"jobtitle": "x"}}},
                 "crm.objects.contacts.write", id="contacts-write"),
    pytest.param("POST", "/crm/v3/properties/companies", {"json": {}}, "crm.schemas.companies.write",
                 id="schema-write"),
    pytest.param("PUT", "/crm/v3/lists/1/memberships/add", {"json": []}, "crm.lists.write", id="lists-write"),
    pytest.param("POST", "/automation/v2/workflows/1001/enrollments/contacts/ada@acme.example", {}, "automation",
                 id="automation"),
])
def test_missing_scope_is_403_naming_the_scope(api: Api, method, path, kwargs, scope):
    narrow = api.sandbox.portal.create_token(scopes=["crm.objects.contacts.read"])
    response = api(method, path, token=narrow, **kwargs)
    assert response.status_code == 403
    body = response.json()
    assert body["category"] == "MISSING_SCOPES"
    assert body["message"] == "One or more of the following scopes are required."
    assert scope in body["context"]["requiredGranularScopes"]
    assert scope in body["errors"][0]["context"]["requiredGranularScopes"]
    # The narrow token still reads what it may.
    assert api.get("/crm/v3/objects/contacts", token=narrow).status_code == 200


def test_oauth_refresh_grant_and_expiry(sandbox_factory):
    sb = sandbox_factory(portal=make_tiny_portal(profile="oauth", oauth_lifetime_s=1800))
    api = Api(sb)
    client = sb.portal.oauth_client
    form = {"grant_type": "refresh_token", "client_id": client.client_id, "client_secret": client.client_secret,
            "refresh_token": client.refresh_token}
    response = requests.post(sb.base_url + "/oauth/v1/token", data=form, timeout=10)
    body = check("oauth-v1", response)
    assert body["expires_in"] == 1800 and body["token_type"] == "bearer"
    access = body["access_token"]
    ok = api.get("/crm/v3/objects/contacts", token=access)
    assert ok.status_code == 200
    assert "x-hubspot-ratelimit-daily" not in ok.headers and ok.headers["x-hubspot-ratelimit-max"] == "110"
    sb.portal.expire_token(access)
    expired = api.get("/crm/v3/objects/contacts", token=access)
    assert expired.status_code == 401
    assert expired.json()["category"] == "EXPIRED_AUTHENTICATION"
    assert expired.json()["message"].startswith("The OAuth token used to make this call expired")
    assert "expire time" in expired.json()["context"]
    bad = requests.post(sb.base_url + "/oauth/v1/token", data={**form, "refresh_token": "nope"}, timeout=10)
    assert bad.status_code == 400


def test_oauth_lifetime_is_configurable(sandbox_factory):
    sb = sandbox_factory(portal=make_tiny_portal(oauth_lifetime_s=0))
    token = sb.portal.create_token(kind="oauth")
    assert Api(sb).get("/crm/v3/objects/contacts", token=token).json()["category"] == "EXPIRED_AUTHENTICATION"


# ---------------------------------------------------------------- limits


@pytest.mark.parametrize("profile, burst, daily", [
    pytest.param("free", "100", "250000", id="free"),
    pytest.param("professional", "190", "625000", id="professional"),
    pytest.param("enterprise", "190", "1000000", id="enterprise"),
])
def test_rate_headers_on_ordinary_calls_count_down(sandbox_factory, profile, burst, daily):
    api = Api(sandbox_factory(portal=make_tiny_portal(profile=profile)))
    first = api.get("/crm/v3/objects/contacts")
    second = api.get("/crm/v3/objects/contacts")
    assert all(h in first.headers for h in RATE_HEADERS)
    assert first.headers["x-hubspot-ratelimit-interval-milliseconds"] == "10000"
    assert first.headers["x-hubspot-ratelimit-max"] == burst
    assert first.headers["x-hubspot-ratelimit-secondly"] == str(int(burst) // 10)
    assert first.headers["x-hubspot-ratelimit-daily"] == daily
    remaining = int(first.headers["x-hubspot-ratelimit-remaining"])
    assert int(second.headers["x-hubspot-ratelimit-remaining"]) == remaining - 1
    assert int(second.headers["x-hubspot-ratelimit-daily-remaining"]) == int(daily) - 2


def _stopped_clock(api: Api) -> None:
    """All calls happen at one instant: budgets decide as if the burst were immediate, whatever the load."""
    api.sandbox.portal.budget.clock = lambda: 1_000.0


def test_burst_limit_429_after_the_burst(sandbox_factory):
    api = Api(sandbox_factory(portal=make_tiny_portal(profile=RateProfile("test", burst=5, daily=1000))))
    _stopped_clock(api)
    statuses = [api.get("/crm/v3/objects/contacts").status_code for _ in range(6)]
    assert statuses == [200] * 5 + [429]
    refused = api.get("/crm/v3/objects/contacts")
    body = check("objects-v3", refused)
    assert body["errorType"] == "RATE_LIMIT" and body["policyName"] == "TEN_SECONDLY_ROLLING"
    assert body["message"] == "You have reached your ten_secondly_rolling limit."
    assert body["groupName"].startswith("publicapi:private_app-api-calls-ten-secondly")
    assert "category" not in body
    assert not any(h.startswith("x-hubspot-ratelimit") for h in refused.headers)
    # Search has its own budget and is not refused by the burst limit.
    assert api.post("/crm/v3/objects/contacts/search", json={}).status_code == 200


def test_daily_limit_429(sandbox_factory):
    api = Api(sandbox_factory(portal=make_tiny_portal(profile=RateProfile("test", burst=100, daily=3))))
    statuses = [api.get("/crm/v3/objects/companies").status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    body = api.get("/crm/v3/objects/companies").json()
    assert body["policyName"] == "DAILY" and body["message"] == "You have reached your daily limit."


def test_search_secondly_limit(sandbox_factory):
    api = Api(sandbox_factory(portal=make_tiny_portal(profile="free")))
    _stopped_clock(api)
    responses = [api.post("/crm/v3/objects/contacts/search", json={}) for _ in range(6)]
    assert [r.status_code for r in responses[:5]] == [200] * 5
    refused = responses[5]
    assert refused.status_code == 429
    body = refused.json()
    assert body["policyName"] == "SECONDLY" and body["message"] == "You have reached your secondly limit."
    assert "category" not in body


def test_unlimited_never_refuses_but_sends_headers(sandbox_factory):
    api = Api(sandbox_factory(portal=make_tiny_portal(profile="unlimited")))
    responses = [api.get("/crm/v3/objects/contacts") for _ in range(120)]
    assert {r.status_code for r in responses} == {200}
    assert int(responses[-1].headers["x-hubspot-ratelimit-remaining"]) > 0


# ---------------------------------------------------------------- faults


@pytest.mark.parametrize("spec, rules", [
    pytest.param("503:0.05", ((Fault("status", 503), 0.05),), id="status"),
    pytest.param("slow:0.5", ((Fault("slow", delay_s=2.0), 0.5),), id="slow-default-2s"),
    pytest.param(" 429:1 , ,reset:0 ", ((Fault("status", 429), 1.0), (Fault("reset"), 0.0)), id="spaces-and-empties"),
    pytest.param("", (), id="empty"),
])
def test_fault_spec_rules(spec, rules):
    assert parse_faults(spec).rules == rules


def test_fault_spec_grammar():
    spec = parse_faults("503:0.05,reset:0.01,slow:0.02@250ms,path=/crm/v3/objects")
    assert spec.rules == ((Fault("status", 503), 0.05), (Fault("reset"), 0.01), (Fault("slow", delay_s=0.25), 0.02))
    assert spec.path_prefix == "/crm/v3/objects"
    sequence = parse_faults("seq:200,429,503,reset,slow@1s,200")
    assert sequence.sequence == (None, Fault("status", 429), Fault("status", 503), Fault("reset"),
                                 Fault("slow", delay_s=1.0), None)
    for bad in ("418:0.5", "503:2", "teapot", "seq:200,302"):
        with pytest.raises(ValueError, match="bad fault item"):
            parse_faults(bad)


def test_probabilistic_faults_are_deterministic_from_the_seed():
    def outcomes(seed: int) -> list:
        plan = FaultPlan("503:0.2,429:0.1", seed=seed)
        return [plan.decide("/crm/v3/objects/contacts") for _ in range(200)]

    first, again = outcomes(3), outcomes(3)
    assert first == again
    hits = [f.status for f in first if f]
    assert 30 <= len(hits) <= 90 and set(hits) == {503, 429}
    assert outcomes(4) != first


def test_scripted_sequence_on_a_running_sandbox(api: Api):
    portal = api.sandbox.portal
    portal.set_faults("seq:200,429,503,502,504,423,500,200")
    try:
        statuses = [api.get("/crm/v3/objects/contacts").status_code for _ in range(9)]
    finally:
        portal.set_faults(None)
    assert statuses == [200, 429, 503, 502, 504, 423, 500, 200, 200]


def test_injected_error_bodies_keep_hubspot_shapes(api: Api):
    portal = api.sandbox.portal
    portal.set_faults("seq:429,503")
    try:
        limited, unavailable = api.get("/crm/v3/objects/contacts"), api.get("/crm/v3/objects/contacts")
    finally:
        portal.set_faults(None)
    assert limited.json()["policyName"] == "TEN_SECONDLY_ROLLING" and "category" not in limited.json()
    assert unavailable.json()["correlationId"] == unavailable.headers["x-hubspot-correlation-id"]
    assert unavailable.headers["content-type"] == "application/json;charset=utf-8"


def test_injected_429_on_search_says_secondly_without_rate_headers(api: Api):
    portal = api.sandbox.portal
    portal.set_faults("seq:429,429")
    try:
        searched = api.post("/crm/v3/objects/contacts/search", json={})
        listed = api.get("/crm/v3/objects/contacts")
    finally:
        portal.set_faults(None)
    assert searched.status_code == 429 and listed.status_code == 429
    body = searched.json()
    assert body["policyName"] == "SECONDLY" and body["message"] == "You have reached your secondly limit."
    assert body["errorType"] == "RATE_LIMIT" and "category" not in body
    assert body["groupName"].startswith("publicapi:search-api-calls-secondly")
    assert listed.json()["policyName"] == "TEN_SECONDLY_ROLLING"  # other paths keep the burst policy
    for response in (searched, listed):
        assert not any(h.startswith("x-hubspot-ratelimit") for h in response.headers)
        assert response.json()["correlationId"] == response.headers["x-hubspot-correlation-id"]


def test_faults_restricted_to_a_path_prefix(api: Api):
    portal = api.sandbox.portal
    portal.set_faults("path=/crm/v3/objects/deals,503:1")
    try:
        assert api.get("/crm/v3/objects/contacts").status_code == 200
        assert api.get("/crm/v3/objects/deals").status_code == 503
    finally:
        portal.set_faults(None)


def test_reset_closes_the_connection_without_an_answer(api: Api):
    portal = api.sandbox.portal
    portal.set_faults("seq:reset")
    try:
        with pytest.raises(requests.ConnectionError):
            requests.get(api.sandbox.base_url + "/crm/v3/objects/contacts",
                         headers={"Authorization": f"Bearer {api.token}"}, timeout=10)
        after = requests.get(api.sandbox.base_url + "/crm/v3/objects/contacts",
                             headers={"Authorization": f"Bearer {api.token}"}, timeout=10)
    finally:
        portal.set_faults(None)
    assert after.status_code == 200
    assert portal.faults.injected[-1][1] == Fault("reset")


def test_slow_answer_is_delayed_then_normal(api: Api):
    portal = api.sandbox.portal
    portal.set_faults("seq:slow@300ms")
    try:
        with pytest.raises(requests.Timeout):
            requests.get(api.sandbox.base_url + "/crm/v3/objects/contacts",
                         headers={"Authorization": f"Bearer {api.token}"}, timeout=0.1)
    finally:
        portal.set_faults(None)
    assert portal.faults.injected[-1][1] == Fault("slow", delay_s=0.3)


def test_burst_window_rolls(sandbox_factory):
    api = Api(sandbox_factory(portal=make_tiny_portal(profile=RateProfile("test", burst=2, daily=1000))))
    now = [1_000.0]
    api.sandbox.portal.budget.clock = lambda: now[0]
    assert [api.get("/crm/v3/objects/contacts").status_code for _ in range(3)] == [200, 200, 429]
    now[0] += 9.9
    assert api.get("/crm/v3/objects/contacts").status_code == 429
    now[0] += 0.2  # the first two calls leave the rolling 10-second window
    assert api.get("/crm/v3/objects/contacts").status_code == 200
