"""Cassette set-up for the adapter tests: top-level cassettes/, tokens and secrets scrubbed, host not matched.

Replay (CI, ``--record-mode=none``) needs no server. Record against the real sandbox with
``.venv/bin/python -m pytest tests/adapter --record-mode=rewrite`` (or ``once`` for new cassettes only): each test then
starts the sandbox portal it needs (size, profile, faults) and may also assert on the portal's state.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode

import pytest

from connector.hubspot import HubSpotClient
from connector.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
CASSETTES = ROOT / "cassettes"
SCRUBBED = "SCRUBBED"
SECRET_FORM_FIELDS = ("client_id", "client_secret", "refresh_token", "code", "access_token")
SECRET_JSON_FIELDS = ("access_token", "refresh_token", "client_secret", "id_token")
# Placeholders used when replaying: not tokens of any portal.
REPLAY_BASE_URL = "http://sandbox.cassette.invalid"
REPLAY_TOKEN = "replay-placeholder"


def scrub_request(request: Any) -> Any:
    """Form bodies (OAuth) lose their secrets; applied before recording and before matching on replay."""
    body = request.body
    if body:
        text = body.decode("utf-8", "replace") if isinstance(body, bytes) else str(body)
        if "=" in text and not text.lstrip().startswith(("{", "[")):
            pairs = [(k, SCRUBBED if k in SECRET_FORM_FIELDS else v) for k, v in parse_qsl(text, keep_blank_values=True)]
            request.body = urlencode(pairs).encode()
    return request


def scrub_response(response: dict) -> dict:
    """Token responses keep their shape but not their tokens."""
    body = response.get("body", {}).get("string")
    if body:
        text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
        if any(f'"{field}"' in text for field in SECRET_JSON_FIELDS):
            try:
                data = json.loads(text)
            except ValueError:
                data = None
            if isinstance(data, dict):
                for field in SECRET_JSON_FIELDS:
                    if field in data:
                        data[field] = SCRUBBED
                response["body"]["string"] = json.dumps(data).encode()
    return response


@pytest.fixture(scope="module")
def vcr_config() -> dict:
    return {
        "filter_headers": ["authorization"],
        "match_on": ["method", "path", "query", "body"],
        "before_record_request": scrub_request,
        "before_record_response": scrub_response,
        "decode_compressed_response": True,
    }


@pytest.fixture(scope="module")
def vcr_cassette_dir() -> str:
    return str(CASSETTES)


@dataclass
class Target:
    """Where the client talks: the live sandbox when recording, a placeholder when replaying (portal None)."""

    base_url: str
    token: str
    portal: Any | None
    sandbox: Any | None = None

    def settings(self, **overrides: Any) -> Settings:
        values = {"token": self.token, "base_url": self.base_url, "max_retries": 6, "max_retry_seconds": 120.0}
        values.update(overrides)
        return Settings(_env_file=None, **values)

    def client(self, **overrides: Any) -> HubSpotClient:
        # Waits are zero in tests: the policy still decides what to retry, only the sleeping is skipped.
        return HubSpotClient(self.settings(**overrides), sleep=lambda seconds: None)


@pytest.fixture
def target_factory(record_mode: str, request: pytest.FixtureRequest) -> Iterator[Any]:
    """``make(size=..., profile=..., faults=...)`` → Target; starts a sandbox (``sandbox_factory``) only when recording."""

    def make(**sandbox_kw: Any) -> Target:
        if record_mode == "none":
            return Target(REPLAY_BASE_URL, REPLAY_TOKEN, None)
        sandbox = request.getfixturevalue("sandbox_factory")(**sandbox_kw)
        return Target(sandbox.base_url, sandbox.token, sandbox.portal, sandbox)

    yield make
