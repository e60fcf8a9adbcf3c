"""Plain HTTP (requests) for what hubspot-api-client 12.0.0 lacks: v2 enrollment, v4 flows, the OAuth token."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import requests

USER_AGENT = "hubspot-retention-connector"


@dataclass
class RawResponse:
    """A response reduced to plain values: status, case-insensitive headers, decoded JSON (or None)."""

    status: int
    headers: Mapping[str, str]
    body: Any


class HttpStatusError(Exception):
    """A non-2xx answer; carries ``status``, ``body`` and ``headers`` like the SDK's ApiException."""

    def __init__(self, status: int, body: str, headers: Mapping[str, str]):
        self.status = status
        self.body = body
        self.headers = headers
        super().__init__(f"HTTP {status}")


def decode(data: bytes | str | None) -> Any:
    """JSON of a body, None when empty, the text itself when it is not JSON."""
    if not data:
        return None
    text = data.decode("utf-8", "replace") if isinstance(data, bytes) else data
    try:
        return json.loads(text)
    except ValueError:
        return text


class Http:
    """One pooled ``requests`` session; the token is passed per call and never stored here."""

    def __init__(self, base_url: str, timeout: float):
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.session = requests.Session()
        self.session.headers["User-Agent"] = USER_AGENT

    def request(
        self,
        method: str,
        path: str,
        *,
        token: str | None = None,
        params: Mapping[str, Any] | None = None,
        json_body: Any = None,
        form: Mapping[str, str] | None = None,
    ) -> RawResponse:
        headers = {"Accept": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        response = self.session.request(
            method,
            self.base_url + path,
            params=params,
            json=json_body,
            data=form,
            headers=headers,
            timeout=self.timeout,
        )
        if not 200 <= response.status_code <= 299:
            raise HttpStatusError(response.status_code, response.text, response.headers)
        return RawResponse(response.status_code, response.headers, decode(response.content))

    def close(self) -> None:
        self.session.close()
