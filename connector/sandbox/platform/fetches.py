"""App card data fetches: the signed request ``hubspot.fetch`` makes to an app's backend.

HubSpot proxies the card's request to the app's backend only when the URL starts with one of the app's
``permittedUrls.fetch``; it appends the context as query parameters (``userId``, ``userEmail``, ``portalId``,
``appId``, and for a card on a record ``associatedObjectId`` / ``associatedObjectType``) and signs the request with
v3 over the final URL. Timeout 15 s.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urlsplit

import orjson
import requests

from connector.sandbox.platform.project import object_type_id, singular_of
from connector.sandbox.platform.signature import signed_headers
from connector.sandbox.portal import bad_request

FETCH_TIMEOUT_S = 15.0
FETCH_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")


@dataclass
class FetchResult:
    url: str  # as sent, with HubSpot's query parameters
    status: int | None
    body: Any  # JSON when the answer is JSON, else text
    latency_ms: float
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"url": self.url, "status": self.status, "body": self.body, "latencyMs": round(self.latency_ms, 1),
                "error": self.error}


def permitted(url: str, prefixes: tuple[str, ...]) -> bool:
    """Same scheme and host, and a path under the permitted one (a plain string prefix would let
    https://api.example.com.evil.test through)."""
    target = urlsplit(url)
    for prefix in prefixes:
        allowed = urlsplit(prefix)
        path = allowed.path.rstrip("/")
        if (target.scheme, target.netloc) == (allowed.scheme, allowed.netloc) and \
                (target.path == path or target.path.startswith(path + "/") or not path):
            return True
    return False


class FetchesMixin:
    """The card-fetch half of ``AppPlatform``."""

    def card_fetch(self, app_id: int, hub_id: int, url: str, *, method: str = "GET", body: Any = None,
                   user_id: int | None = None, user_email: str | None = None, object_type: str | None = None,
                   object_id: int | str | None = None, timeout_s: float = FETCH_TIMEOUT_S) -> FetchResult:
        method = method.upper()
        if method not in FETCH_METHODS:
            raise bad_request(f"method must be one of {', '.join(FETCH_METHODS)}")
        with self.lock:
            app = self.app(app_id)
            install = self.require_install(app_id, hub_id)
            if not permitted(url, app.fetch_urls):
                raise bad_request(f"{url} is not in the app's permittedUrls.fetch {list(app.fetch_urls)}",
                                  "FETCH_URL_NOT_PERMITTED")
            default_user, default_email = self.user_of(install.user_id, hub_id)
            secret = app.client_secret
        context = {"userId": user_id if user_id is not None else default_user,
                   "userEmail": user_email or default_email, "portalId": hub_id, "appId": app_id}
        if object_id is not None:
            type_id = object_type_id(str(object_type or ""))
            if type_id is None:
                raise bad_request(f"unknown object type {object_type!r}")
            context.update({"associatedObjectId": object_id, "associatedObjectType": singular_of(type_id).upper()})
        full = f"{url}{'&' if urlsplit(url).query else '?'}{urlencode(context)}"
        payload = orjson.dumps(body) if body is not None and method != "GET" else b""
        headers = {**signed_headers(secret, method, full, payload, legacy=None)}
        if payload:
            headers["Content-Type"] = "application/json"
        started = time.perf_counter()
        try:
            response = requests.request(method, full, data=payload or None, headers=headers, timeout=timeout_s,
                                        allow_redirects=False)
        except requests.RequestException as exc:
            error = "timeout" if isinstance(exc, requests.Timeout) else f"connection error ({type(exc).__name__})"
            return FetchResult(full, None, None, (time.perf_counter() - started) * 1000, error)
        latency = (time.perf_counter() - started) * 1000
        try:
            answer: Any = response.json()
        except ValueError:
            answer = response.text
        return FetchResult(full, response.status_code, answer, latency)
