"""OAuth for a registered app: authorize (auto-approved for the installing portal), code and refresh grants at
/oauth/v1/token and /oauth/v3/token, introspection, private-app token info, uninstall; plain HTTP and the official
client, every answer the specs cover validated with openapi-core."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from hubspot import HubSpot

from connector.sandbox.server import running_sandbox
from tests.sandbox.conftest import Api, make_tiny_portal
from tests.sandbox.receiver import EXAMPLE_APP
from tests.sandbox.spec import check

REDIRECT = "https://retention-app.example.com/oauth/callback"


@pytest.fixture(scope="module")
def sb():
    with running_sandbox(portal=make_tiny_portal(), app=EXAMPLE_APP) as sandbox:
        yield sandbox


def _authorize(sb, **params) -> requests.Response:
    app = sb.app
    query = {"client_id": app.client_id, "redirect_uri": REDIRECT, "scope": " ".join(app.required_scopes), **params}
    return requests.get(sb.base_url + "/oauth/authorize", params=query, allow_redirects=False, timeout=10)


def _code(sb, **params) -> str:
    response = _authorize(sb, **params)
    assert response.status_code == 302, response.text
    return parse_qs(urlsplit(response.headers["location"]).query)["code"][0]


def _exchange(sb, code: str, path: str = "/oauth/v1/token", **overrides) -> requests.Response:
    form = {"grant_type": "authorization_code", "client_id": sb.app.client_id,
            "client_secret": sb.app.client_secret, "redirect_uri": REDIRECT, "code": code, **overrides}
    return requests.post(sb.base_url + path, data=form, timeout=10)


def test_authorize_redirects_with_a_code_and_the_state(sb):
    response = _authorize(sb, state="xyz 1", optional_scope="crm.lists.write")
    assert response.status_code == 302
    location = urlsplit(response.headers["location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == REDIRECT
    query = parse_qs(location.query)
    assert query["state"] == ["xyz 1"] and query["code"][0].startswith("na1-")


def test_code_grant_gives_tokens_that_act_on_the_portal_with_the_apps_scopes(sb):
    response = _exchange(sb, _code(sb, optional_scope="crm.lists.write"))
    body = check("oauth-v1", response)
    assert body["token_type"] == "bearer" and body["expires_in"] == 1800 and body["token_use"] == "access_token"
    assert body["hub_id"] == sb.portal.portal_id
    assert set(body["scopes"]) == set(sb.app.required_scopes) | {"crm.lists.write"}
    api = Api(sb, body["access_token"])
    assert api.get("/crm/v3/objects/companies").status_code == 200
    # deals: read only; line items: not granted at all
    refused = api("PATCH", "/crm/v3/objects/deals/3001", json={"properties": {"dealname": "x"}})
    assert refused.status_code == 403 and refused.json()["category"] == "MISSING_SCOPES"
    assert api.get("/crm/v3/objects/line_items").status_code == 403


def test_the_code_is_single_use(sb):
    code = _code(sb)
    assert _exchange(sb, code).status_code == 200
    again = _exchange(sb, code)
    assert again.status_code == 400 and again.json()["category"] == "BAD_AUTH_CODE"


@pytest.mark.parametrize("override, category", [
    pytest.param({"client_secret": "wrong"}, "BAD_CLIENT_SECRET", id="bad-secret"),
    pytest.param({"client_id": "nobody"}, "BAD_CLIENT_ID", id="bad-client"),
    pytest.param({"redirect_uri": "https://retention-app.example.com/other"}, "BAD_REDIRECT_URI", id="bad-redirect"),
    pytest.param({"code": "na1-made-up"}, "BAD_AUTH_CODE", id="bad-code"),
    pytest.param({"grant_type": "password"}, "BAD_GRANT_TYPE", id="bad-grant"),
])
def test_bad_exchanges_get_hubspots_error_bodies_without_secrets(sb, override, category):
    response = _exchange(sb, **{"code": _code(sb), **override})
    body = check("oauth-v1", response)
    assert response.status_code == 400 and body["category"] == category and body["status"] == "error"
    assert sb.app.client_secret not in response.text and "na1-made-up" not in response.text


@pytest.mark.parametrize("params, category", [
    pytest.param({"client_id": "nobody"}, "BAD_CLIENT_ID", id="unknown-client"),
    pytest.param({"redirect_uri": "https://evil.example/cb"}, "BAD_REDIRECT_URI", id="unregistered-redirect"),
    pytest.param({"scope": "oauth"}, "BAD_SCOPES", id="required-scope-missing"),
    pytest.param({"optional_scope": "crm.objects.line_items.write"}, "BAD_SCOPES", id="scope-not-configured"),
])
def test_authorize_refuses_without_redirecting(sb, params, category):
    response = _authorize(sb, **params)
    assert response.status_code == 400 and "location" not in response.headers
    assert response.json()["category"] == category


def test_refresh_and_introspection_with_the_official_client(sb):
    client = HubSpot(host=sb.base_url)
    tokens = client.oauth.tokens_api.create(grant_type="authorization_code", code=_code(sb), redirect_uri=REDIRECT,
                                            client_id=sb.app.client_id, client_secret=sb.app.client_secret)
    assert tokens.expires_in == 1800 and tokens.refresh_token
    refreshed = client.oauth.tokens_api.create(grant_type="refresh_token", refresh_token=tokens.refresh_token,
                                               client_id=sb.app.client_id, client_secret=sb.app.client_secret)
    assert refreshed.access_token != tokens.access_token and refreshed.refresh_token == tokens.refresh_token
    info = client.oauth.access_tokens_api.get(refreshed.access_token)
    assert (info.hub_id, info.app_id) == (sb.portal.portal_id, sb.app.app_id)
    assert set(info.scopes) == set(sb.app.required_scopes) and 1700 < info.expires_in <= 1800
    assert info.user and info.token_type == "access"
    refresh_info = client.oauth.refresh_tokens_api.get(tokens.refresh_token)
    assert refresh_info.client_id == sb.app.client_id and refresh_info.hub_id == sb.portal.portal_id
    # The client's token is what a HubSpot(access_token=...) then reads the portal with.
    reader = HubSpot(access_token=refreshed.access_token, host=sb.base_url)
    assert reader.crm.companies.basic_api.get_page(limit=2).results


def test_v3_token_endpoint_answers_per_its_spec(sb):
    body = check("oauth-v3", _exchange(sb, _code(sb), path="/oauth/v3/token"))
    form = {"grant_type": "refresh_token", "client_id": sb.app.client_id, "client_secret": sb.app.client_secret,
            "refresh_token": body["refresh_token"]}
    again = check("oauth-v3", requests.post(sb.base_url + "/oauth/v3/token", data=form, timeout=10))
    assert again["hub_id"] == sb.portal.portal_id and again["access_token"] != body["access_token"]
    bad = requests.post(sb.base_url + "/oauth/v3/token", data={**form, "refresh_token": "nope"}, timeout=10)
    assert check("oauth-v3", bad)["category"] == "BAD_REFRESH_TOKEN"


def test_introspection_of_unknown_or_expired_tokens_is_404_without_echo(sb):
    access = _exchange(sb, _code(sb)).json()["access_token"]
    sb.portal.expire_token(access)
    for token in (access, "CNmade-up-token"):
        response = requests.get(f"{sb.base_url}/oauth/v1/access-tokens/{token}", timeout=10)
        assert check("oauth-v1", response)["category"] == "NOT_FOUND"
        assert token not in response.text


def test_access_token_info_validates_against_the_spec(sb):
    access = _exchange(sb, _code(sb)).json()["access_token"]
    body = check("oauth-v1", requests.get(f"{sb.base_url}/oauth/v1/access-tokens/{access}", timeout=10))
    assert body["token"] == access and body["hub_id"] == sb.portal.portal_id


def test_private_app_token_info_gives_scopes_and_hub():
    portal = make_tiny_portal()
    narrow = portal.create_token(["crm.objects.contacts.read"])
    with running_sandbox(portal=portal) as sb:
        url = sb.base_url + "/oauth/v2/private-apps/get/access-token-info"
        body = requests.post(url, json={"tokenKey": narrow}, timeout=10).json()
        assert body["hubId"] == portal.portal_id and body["scopes"] == ["crm.objects.contacts.read"]
        oauth = portal.create_token(kind="oauth")
        refused = requests.post(url, json={"tokenKey": oauth}, timeout=10)
        assert refused.status_code == 404 and oauth not in refused.text
        assert requests.post(url, json={}, timeout=10).status_code == 400


def test_deleting_the_refresh_token_uninstalls_the_app(sb):
    tokens = _exchange(sb, _code(sb)).json()
    api = Api(sb, tokens["access_token"])
    assert api.get("/crm/v3/objects/contacts").status_code == 200
    # the other grants of the test module share the install: remove them all, as an uninstall would
    for refresh in list(sb.platform.installs[(sb.app.app_id, sb.portal.portal_id)].refresh_tokens):
        deleted = requests.delete(f"{sb.base_url}/oauth/v1/refresh-tokens/{refresh}", timeout=10)
        assert deleted.status_code == 204
    assert api.get("/crm/v3/objects/contacts").status_code == 401
    form = {"grant_type": "refresh_token", "client_id": sb.app.client_id, "client_secret": sb.app.client_secret,
            "refresh_token": tokens["refresh_token"]}
    assert requests.post(sb.base_url + "/oauth/v1/token", data=form, timeout=10).json()["category"] == \
        "BAD_REFRESH_TOKEN"
    # and it can be installed again
    again = _exchange(sb, _code(sb)).json()
    assert Api(sb, again["access_token"]).get("/crm/v3/objects/contacts").status_code == 200


def test_the_installing_portal_is_a_setting_checked_against_known_portals(sb):
    response = requests.put(sb.base_url + "/_sandbox/oauth/installing-portal", json={"portalId": 1}, timeout=10)
    assert response.status_code == 404
    ok = requests.put(sb.base_url + "/_sandbox/oauth/installing-portal", json={"portalId": sb.portal.portal_id},
                      timeout=10)
    assert ok.json() == {"installingPortalId": sb.portal.portal_id}


def test_the_apps_listing_shows_no_secret(sb):
    listing = requests.get(sb.base_url + "/_sandbox/apps", timeout=10)
    assert listing.json()["results"][0]["clientId"] == sb.app.client_id
    assert sb.app.client_secret not in listing.text
    assert sb.app.client_secret not in repr(sb.app) and sb.app.client_secret not in repr(sb.platform.installs)


def test_a_static_auth_app_is_installed_with_a_static_token(tmp_path):
    from tests.sandbox.receiver import project_pointing_at

    def static(root):
        path = root / "src/app/app-hsmeta.json"
        path.write_text(path.read_text().replace('"type": "oauth"', '"type": "static"'))

    project = project_pointing_at(tmp_path, "https://retention-app.example.com", static)
    with running_sandbox(portal=make_tiny_portal(), app=project) as sb:
        token = sb.platform.static_token(sb.app.app_id, sb.portal.portal_id)
        assert token.startswith("pat-na1-")
        assert Api(sb, token).get("/crm/v3/objects/companies").status_code == 200
        info = requests.post(sb.base_url + "/oauth/v2/private-apps/get/access-token-info", json={"tokenKey": token},
                             timeout=10).json()
        assert info["appId"] == sb.app.app_id
        assert _authorize(sb).json()["category"] == "BAD_CLIENT_ID"  # static auth: no OAuth install


def test_tokens_in_paths_never_come_back_in_error_messages(sb):
    access = _exchange(sb, _code(sb)).json()["access_token"]
    for method, path in (("POST", f"/oauth/v1/access-tokens/{access}"), ("PUT", f"/oauth/v1/refresh-tokens/{access}"),
                         ("GET", f"/oauth/v1/access-tokens/{access}/more")):
        response = requests.request(method, sb.base_url + path, timeout=10)
        assert response.status_code in (404, 405) and access not in response.text
        assert "{token}" in response.json()["message"]


def test_refresh_token_info_and_delete_validate_against_the_spec(sb):
    refresh = _exchange(sb, _code(sb)).json()["refresh_token"]
    info = check("oauth-v1", requests.get(f"{sb.base_url}/oauth/v1/refresh-tokens/{refresh}", timeout=10))
    assert info["client_id"] == sb.app.client_id and info["token_type"] == "refresh"
    deleted = requests.delete(f"{sb.base_url}/oauth/v1/refresh-tokens/{refresh}", timeout=10)
    assert deleted.status_code == 204 and deleted.content == b""  # the spec's 204, no content
    gone = requests.get(f"{sb.base_url}/oauth/v1/refresh-tokens/{refresh}", timeout=10)
    assert gone.status_code == 404 and refresh not in gone.text


GARBAGE_PATHS = [("POST", "/oauth/v3/token"), ("POST", "/oauth/v2/private-apps/get/access-token-info"),
                 ("POST", "/automation/v4/actions/callbacks/complete"),
                 ("POST", "/automation/v4/actions/callbacks/ap-1/complete"), ("POST", "/_sandbox/workflows/run-action"),
                 ("POST", "/_sandbox/cards/fetch"), ("PUT", "/_sandbox/oauth/installing-portal"),
                 ("POST", "/_sandbox/apps/3000001/installs"), ("GET", "/oauth/authorize")]


@pytest.mark.parametrize("method, path", [pytest.param(m, p, id=f"{m} {p}") for m, p in GARBAGE_PATHS])
def test_garbage_gets_hubspot_errors_never_500(sb, method, path):
    from tests.sandbox.test_server import GARBAGE

    for body in GARBAGE:
        response = requests.request(method, sb.base_url + path, data=body, timeout=10, allow_redirects=False,
                                    headers={"Content-Type": "application/json", "Authorization": f"Bearer {sb.token}"})
        assert response.status_code < 500, (body, response.text)
        if response.status_code >= 400:
            error = response.json()
            assert error["status"] == "error" and error["message"], (body, error)
