"""HTTP routes of the app platform: HubSpot's OAuth and action-callback endpoints, and sandbox-only controls under
``/_sandbox/`` (installs, webhook deliveries, workflow action runs, card fetches) for tests and demos.

``app.py`` wraps each handler with its error guard; paths under ``UNAUTHENTICATED_PREFIXES`` skip the bearer check.
"""

from __future__ import annotations

import re
from typing import Any, Awaitable, Callable
from urllib.parse import parse_qsl

import orjson
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from connector.sandbox.platform import AppPlatform
from connector.sandbox.portal import ApiError, bad_request, error_body

JSON_TYPE = "application/json;charset=utf-8"
# OAuth endpoints take client credentials or the token itself; the sandbox's controls are open on loopback.
UNAUTHENTICATED_PREFIXES = ("/oauth/", "/_sandbox/")


_SECRET_SEGMENT = re.compile(r"(/oauth/v1/(?:access|refresh)-tokens/)[^/]+")


def redacted(path: str) -> str:
    """A request path fit for logs and error messages: tokens in OAuth paths become {token}."""
    return _SECRET_SEGMENT.sub(r"\1{token}", path)


def _json(body: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(body), status_code=status, headers={"content-type": JSON_TYPE})


def _platform(request: Request) -> AppPlatform:
    return request.scope["sandbox.platform"]


def _only(request: Request, *methods: str) -> None:
    if request.method not in methods:
        raise ApiError(405, error_body(f"HTTP {request.method} is not supported by {redacted(request.url.path)}",
                                       None))


async def _form(request: Request) -> dict[str, str]:
    raw = (await request.body()).decode("utf-8", "replace")
    form = dict(parse_qsl(raw)) if raw else {}
    form.update({k: v for k, v in request.query_params.items() if k not in form})  # the spec allows query params
    return form


async def _object(request: Request) -> dict[str, Any]:
    raw = await request.body()
    try:
        body = orjson.loads(raw) if raw.strip() else {}
    except orjson.JSONDecodeError:
        raise bad_request("Invalid input JSON") from None
    if not isinstance(body, dict):
        raise bad_request("Invalid input JSON: expected an object")
    return body


def _int(value: Any, name: str) -> int | None:
    if value is None or value == "":
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        raise bad_request(f"{name} must be an integer, got {value!r}") from None


# ---------------------------------------------------------------- HubSpot's endpoints


async def authorize(request: Request) -> Response:
    _only(request, "GET")
    location = _platform(request).authorize(dict(request.query_params))
    return RedirectResponse(location, status_code=302)


async def token(request: Request) -> Response:
    _only(request, "POST")
    return _json(_platform(request).token_grant(await _form(request)))


async def access_token(request: Request) -> Response:
    _only(request, "GET")
    return _json(_platform(request).access_token_info(request.path_params["token"]))


async def refresh_token(request: Request) -> Response:
    _only(request, "GET", "DELETE")
    platform = _platform(request)
    if request.method == "DELETE":
        platform.delete_refresh_token(request.path_params["token"])
        return Response(status_code=204)
    return _json(platform.refresh_token_info(request.path_params["token"]))


async def private_token_info(request: Request) -> Response:
    _only(request, "POST")
    key = (await _object(request)).get("tokenKey")
    if not isinstance(key, str) or not key:
        raise bad_request("tokenKey is required")
    return _json(_platform(request).private_token_info(key))


async def callback_complete(request: Request) -> Response:
    _only(request, "POST")
    body = await _object(request)
    token = request.scope.get("sandbox.token")
    _platform(request).complete_callback(request.path_params["callbackId"], body.get("outputFields"),
                                         token.app_id if token else None)
    return Response(status_code=204)


async def callbacks_complete(request: Request) -> Response:
    _only(request, "POST")
    inputs = (await _object(request)).get("inputs")
    if not isinstance(inputs, list) or not all(isinstance(i, dict) for i in inputs):
        raise bad_request("inputs must be an array of {callbackId, outputFields}")
    token = request.scope.get("sandbox.token")
    for item in inputs:
        _platform(request).complete_callback(str(item.get("callbackId", "")), item.get("outputFields"),
                                             token.app_id if token else None)
    return Response(status_code=204)


# ---------------------------------------------------------------- sandbox controls


async def apps(request: Request) -> Response:
    _only(request, "GET")
    platform = _platform(request)
    return _json({"results": [a.to_json() for a in platform.apps.values() if not a.builtin],
                  "installingPortalId": platform.installing_hub_id})


async def installs(request: Request) -> Response:
    _only(request, "POST")
    platform = _platform(request)
    hub_id = _int((await _object(request)).get("portalId"), "portalId") or platform.installing_hub_id
    install = platform.install(int(request.path_params["appId"]), hub_id)
    app = platform.app(install.app_id)
    body: dict[str, Any] = {"appId": install.app_id, "portalId": install.hub_id, "scopes": sorted(install.scopes)}
    if app.auth_type == "static":  # what HubSpot's app settings page shows the installing developer
        body["accessToken"] = platform.static_token(install.app_id, install.hub_id)
    return _json(body, 201)


async def install_item(request: Request) -> Response:
    _only(request, "DELETE")
    _platform(request).uninstall(int(request.path_params["appId"]), int(request.path_params["portalId"]))
    return Response(status_code=204)


async def installing_portal(request: Request) -> Response:
    _only(request, "PUT")
    hub_id = _int((await _object(request)).get("portalId"), "portalId")
    if hub_id is None:
        raise bad_request("portalId is required")
    _platform(request).set_installing_portal(hub_id)
    return _json({"installingPortalId": hub_id})


async def webhook_deliveries(request: Request) -> Response:
    _only(request, "GET")
    attempts = _platform(request).deliveries(_int(request.query_params.get("appId"), "appId"),
                                             _int(request.query_params.get("portalId"), "portalId"))
    return _json({"results": [a.to_json() for a in attempts]})


async def _app_control(request: Request) -> tuple[dict[str, Any], AppPlatform, int, int]:
    """A POSTed control about one app on one portal: (body, platform, app id, hub id); both ids may be left out
    when there is one app and the installing portal is meant."""
    _only(request, "POST")
    body = await _object(request)
    platform = _platform(request)
    app = platform.app(_int(body.get("appId"), "appId"))
    return body, platform, app.app_id, _int(body.get("portalId"), "portalId") or platform.installing_hub_id


async def run_action(request: Request) -> Response:
    body, platform, app_id, hub_id = await _app_control(request)
    if body.get("action") is None or body.get("objectId") is None or not body.get("objectType"):
        raise bad_request("action, objectType and objectId are required")
    # In a worker thread: the app's backend may call this sandbox back while it answers.
    execution = await run_in_threadpool(platform.run_action, app_id, body["action"], hub_id, body["objectType"],
                                        body["objectId"], body.get("inputFields") or {})
    return _json(execution.to_json())


async def execution(request: Request) -> Response:
    _only(request, "GET")
    try:
        found = _platform(request).execution(request.path_params["callbackId"])
    except KeyError:
        raise ApiError(404, error_body("No such action execution", "OBJECT_NOT_FOUND")) from None
    return _json(found.to_json())


async def card_fetch(request: Request) -> Response:
    body, platform, app_id, hub_id = await _app_control(request)
    if not isinstance(body.get("url"), str):
        raise bad_request("url is required")
    result = await run_in_threadpool(
        lambda: platform.card_fetch(app_id, hub_id, body["url"], method=str(body.get("method", "GET")),
                                    body=body.get("body"), user_id=_int(body.get("userId"), "userId"),
                                    user_email=body.get("userEmail"), object_type=body.get("objectType"),
                                    object_id=body.get("objectId")))
    return _json(result.to_json())


ROUTES: list[tuple[str, Callable[[Request], Awaitable[Response]]]] = [
    ("/oauth/authorize", authorize),
    ("/oauth/v1/token", token),
    ("/oauth/v3/token", token),
    ("/oauth/v1/access-tokens/{token}", access_token),
    ("/oauth/v1/refresh-tokens/{token}", refresh_token),
    ("/oauth/v2/private-apps/get/access-token-info", private_token_info),
    ("/automation/v4/actions/callbacks/complete", callbacks_complete),
    ("/automation/v4/actions/callbacks/{callbackId}/complete", callback_complete),
    ("/_sandbox/apps", apps),
    ("/_sandbox/apps/{appId:int}/installs", installs),
    ("/_sandbox/apps/{appId:int}/installs/{portalId:int}", install_item),
    ("/_sandbox/oauth/installing-portal", installing_portal),
    ("/_sandbox/webhook-deliveries", webhook_deliveries),
    ("/_sandbox/workflows/run-action", run_action),
    ("/_sandbox/workflows/executions/{callbackId}", execution),
    ("/_sandbox/cards/fetch", card_fetch),
]
