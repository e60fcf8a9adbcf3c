"""Custom workflow actions and card fetches against a real local backend: signed requests with HubSpot's payloads,
outputs from the answer or from the callback (official client and plain HTTP), permitted fetch URLs only."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from hubspot import HubSpot
from hubspot.automation.actions import BatchInputCallbackCompletionBatchRequest, CallbackCompletionRequest

from connector.sandbox.server import running_sandbox
from tests.sandbox.conftest import make_tiny_portal
from tests.sandbox.receiver import project_pointing_at


@pytest.fixture
def sb(receiver, tmp_path):
    with running_sandbox(portal=make_tiny_portal(), app=project_pointing_at(tmp_path, receiver.base_url)) as sandbox:
        receiver.secret = sandbox.app.client_secret
        sandbox.platform.install(sandbox.app.app_id, sandbox.portal.portal_id)
        yield sandbox


def _app_token(sb) -> str:
    """An OAuth access token of the app on the portal, through the code grant."""
    platform, app = sb.platform, sb.app
    location = platform.authorize({"client_id": app.client_id, "redirect_uri": app.redirect_urls[0],
                                   "scope": " ".join(app.required_scopes)})
    code = parse_qs(urlsplit(location).query)["code"][0]
    return platform.token_grant({"grant_type": "authorization_code", "client_id": app.client_id,
                                 "client_secret": app.client_secret, "redirect_uri": app.redirect_urls[0],
                                 "code": code})["access_token"]


def test_an_action_answered_at_once_gives_its_output_fields(sb, receiver):
    receiver.answer = lambda got: (200, {"outputFields": {"health_score": 42, "health_band": "red"}})
    response = requests.post(sb.base_url + "/_sandbox/workflows/run-action", timeout=30, json={
        "action": "score_record", "objectType": "COMPANY", "objectId": 2001, "inputFields": {"reason": "renewal"}})
    outcome = response.json()
    assert outcome["state"] == "SUCCESS" and outcome["completedBy"] == "response"
    assert outcome["outputFields"] == {"health_score": 42, "health_band": "red"}
    got = receiver.received[0]
    assert got.verified and got.url.endswith("/actions/score") and got.headers["x-hubspot-signature-version"] == "v2"
    payload = got.json()
    definition_id = next(iter(sb.app.actions))
    assert payload["callbackId"] == outcome["callbackId"]
    assert payload["origin"] == {"portalId": sb.portal.portal_id, "actionDefinitionId": definition_id,
                                 "actionDefinitionVersion": 1, "extensionDefinitionId": definition_id,
                                 "extensionDefinitionVersionId": 1}
    assert payload["object"] == {"objectId": 2001, "objectType": "COMPANY",
                                 "properties": {"name": "Acme", "email": None}}
    assert payload["inputFields"] == payload["fields"] == {"reason": "renewal"}
    kept = requests.get(f"{sb.base_url}/_sandbox/workflows/executions/{outcome['callbackId']}", timeout=10).json()
    assert kept["state"] == "SUCCESS"


def test_a_blocking_action_completes_through_the_callback_with_the_official_client(sb, receiver):
    receiver.answer = lambda got: (200, {"outputFields": {"hs_execution_state": "BLOCK",
                                                          "hs_expiration_duration": "P1D"}})
    execution = sb.platform.run_action(sb.app.app_id, "score_record", sb.portal.portal_id, "contacts", 1001)
    assert execution.state == "BLOCKED"
    client = HubSpot(access_token=_app_token(sb), host=sb.base_url)
    client.automation.actions.callbacks_api.complete(
        callback_id=execution.callback_id,
        callback_completion_request=CallbackCompletionRequest(output_fields={"health_score": "77",
                                                                             "hs_execution_state": "SUCCESS"}))
    done = sb.platform.wait_execution(execution.callback_id, 5)
    assert (done.state, done.completed_by, done.output_fields["health_score"]) == ("SUCCESS", "callback", "77")
    # a second completion is refused
    again = requests.post(f"{sb.base_url}/automation/v4/actions/callbacks/{execution.callback_id}/complete",
                          json={"outputFields": {}}, headers={"Authorization": f"Bearer {_app_token(sb)}"},
                          timeout=10)
    assert again.status_code == 400


def test_the_batch_callback_completes_several_executions(sb, receiver):
    receiver.answer = lambda got: (200, None)  # an empty 2xx answer: the action completes later
    runs = [sb.platform.run_action(sb.app.app_id, "score_record", sb.portal.portal_id, "COMPANY", i)
            for i in (2001, 2002)]
    assert [r.state for r in runs] == ["BLOCKED", "BLOCKED"]
    client = HubSpot(access_token=_app_token(sb), host=sb.base_url)
    client.automation.actions.callbacks_api.complete_batch(
        batch_input_callback_completion_batch_request=BatchInputCallbackCompletionBatchRequest(inputs=[
            {"callbackId": r.callback_id, "outputFields": {"hs_execution_state": "FAIL_CONTINUE"}} for r in runs]))
    assert [sb.platform.wait_execution(r.callback_id, 5).state for r in runs] == ["FAIL_CONTINUE"] * 2


def test_callbacks_need_the_apps_token_and_a_known_id(sb, receiver):
    receiver.answer = lambda got: (200, {"outputFields": {"hs_execution_state": "BLOCK"}})
    execution = sb.platform.run_action(sb.app.app_id, "score_record", sb.portal.portal_id, "COMPANY", 2001)
    url = f"{sb.base_url}/automation/v4/actions/callbacks/{execution.callback_id}/complete"
    assert requests.post(url, json={"outputFields": {}}, timeout=10).status_code == 401
    other_app = requests.post(url, json={"outputFields": {}}, headers={"Authorization": f"Bearer {sb.token}"},
                              timeout=10)
    assert other_app.status_code == 404  # the portal's own token belongs to another app
    unknown = requests.post(f"{sb.base_url}/automation/v4/actions/callbacks/ap-0-0-0-0/complete",
                            json={"outputFields": {}}, headers={"Authorization": f"Bearer {_app_token(sb)}"},
                            timeout=10)
    assert unknown.status_code == 404 and unknown.json()["category"] == "OBJECT_NOT_FOUND"
    assert sb.platform.execution(execution.callback_id).state == "BLOCKED"


@pytest.mark.parametrize("body, status, message", [
    pytest.param({"objectType": "COMPANY", "objectId": 999999}, 404, "Object not found", id="no-such-record"),
    pytest.param({"objectType": "DEAL", "objectId": 3001}, 400, "runs on", id="type-not-in-definition"),
    pytest.param({"objectType": "COMPANY", "objectId": 2001, "action": "nope"}, 404, "no workflow action",
                 id="unknown-action"),
])
def test_bad_runs_are_refused_before_calling_the_app(sb, receiver, body, status, message):
    response = requests.post(sb.base_url + "/_sandbox/workflows/run-action", json={"action": "score_record", **body},
                             timeout=10)
    assert response.status_code == status and message in response.json()["message"]
    assert receiver.received == []


def test_a_failing_action_is_kept_failed(sb, receiver):
    receiver.answer = lambda got: (500, {"message": "boom"})
    execution = sb.platform.run_action(sb.app.app_id, "score_record", sb.portal.portal_id, "COMPANY", 2001)
    assert (execution.state, execution.http_status, execution.error) == ("FAILED", 500, "HTTP 500")


# ---------------------------------------------------------------- card fetches


def test_a_card_fetch_is_signed_and_carries_hubspots_context(sb, receiver):
    receiver.answer = lambda got: (200, {"score": 64})
    response = requests.post(sb.base_url + "/_sandbox/cards/fetch", timeout=30, json={
        "url": receiver.base_url + "/api/card?view=full", "objectType": "companies", "objectId": 2001,
        "userId": 77, "userEmail": "csm@acme.example"})
    result = response.json()
    assert result["status"] == 200 and result["body"] == {"score": 64}
    got = receiver.received[0]
    assert got.verified and got.method == "GET"
    query = parse_qs(urlsplit(got.url).query)
    assert query == {"view": ["full"], "userId": ["77"], "userEmail": ["csm@acme.example"],
                     "portalId": [str(sb.portal.portal_id)], "appId": [str(sb.app.app_id)],
                     "associatedObjectId": ["2001"], "associatedObjectType": ["COMPANY"]}


def test_a_card_fetch_posts_json(sb, receiver):
    receiver.answer = lambda got: (200, got.json())
    result = sb.platform.card_fetch(sb.app.app_id, sb.portal.portal_id, receiver.base_url + "/api/recompute",
                                    method="POST", body={"companyId": 2001})
    assert result.status == 200 and result.body == {"companyId": 2001} and receiver.received[0].verified


@pytest.mark.parametrize("path", [
    pytest.param("/webhooks", id="outside-the-permitted-path"),
    pytest.param("/apiary", id="prefix-but-not-a-sub-path"),
])
def test_urls_outside_permitted_fetch_are_refused(sb, receiver, path):
    response = requests.post(sb.base_url + "/_sandbox/cards/fetch", json={"url": receiver.base_url + path},
                             timeout=10)
    assert response.status_code == 400 and response.json()["category"] == "FETCH_URL_NOT_PERMITTED"
    other_host = requests.post(sb.base_url + "/_sandbox/cards/fetch", json={"url": "https://evil.example/api"},
                               timeout=10)
    assert other_host.status_code == 400
    assert receiver.received == []
