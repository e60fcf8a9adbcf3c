"""No cassette may hold a token or secret: private-app tokens, OAuth tokens, client secrets, Authorization headers."""

from __future__ import annotations

import re
import pytest

from tests.adapter.conftest import CASSETTES, SCRUBBED, scrub_request, scrub_response

LEAKS = {
    "private-app token": re.compile(r"pat-[a-z0-9]+-[0-9a-f]{8}-"),
    "OAuth access token": re.compile(r"\bC[A-Z][A-Za-z0-9_-]{40,}"),
    "OAuth refresh token": re.compile(r"\b(na1|eu1|ap1)-[0-9a-f]{4,}-[0-9a-f]{4,}"),
    "Authorization header": re.compile(r"(?im)^\s*-?\s*authorization\s*:"),
    "Bearer credential": re.compile(r"Bearer\s+[A-Za-z0-9._-]{8,}"),
    "form secret": re.compile(rf"\b(client_secret|refresh_token|client_id|code)=(?!{SCRUBBED}\b)"),
    "JSON token": re.compile(rf'\\?"(access_token|refresh_token|client_secret)\\?"\s*:\s*\\?"(?!{SCRUBBED})'),
}
# The behaviours the issue asks a cassette for; losing one must fail here, not silently shrink the proof.
REQUIRED = [
    "test_iter_pages_follows_after_to_the_last_page",
    "test_iter_modified_since_restarts_before_the_10k_cap",
    "test_batch_update_207_splits_ok_and_failed",
    "test_429_then_success",
    "test_401_refresh",
    "test_403_missing_scopes",
    "test_5xx_and_423_retried_then_success",
]


def leaks_in(text: str) -> list[str]:
    return [name for name, pattern in LEAKS.items() if pattern.search(text)]


def test_cassettes_hold_no_token_or_secret():
    files = sorted(CASSETTES.glob("*.yaml"))
    assert {f.stem for f in files} >= set(REQUIRED)
    found = {f.name: leaks_in(f.read_text()) for f in files}
    assert {name: kinds for name, kinds in found.items() if kinds} == {}


@pytest.mark.parametrize(
    ("sample", "kind"),
    [
        pytest.param("Authorization: Bearer pat-na1-1a2b3c4d-0000-0000", "private-app token", id="pat"),
        pytest.param("    authorization:\n    - Bearer x", "Authorization header", id="header"),
        pytest.param("grant_type=refresh_token&client_secret=abc", "form secret", id="form"),
        pytest.param('{"access_token": "CNabcdefabcdefabcdefabcdefabcdefabcdefabcdef"}', "JSON token", id="json"),
        pytest.param("refresh na1-7d3c2b1a-9f8e-4d6c", "OAuth refresh token", id="refresh"),
    ],
)
def test_leak_detector_catches_each_kind(sample, kind):
    assert kind in leaks_in(sample)


def test_scrubbers_remove_secrets_from_form_and_token_bodies():
    class Req:
        body = b"grant_type=refresh_token&client_id=id1&client_secret=s3cr3t&refresh_token=na1-aaaa-bbbb"

    request = scrub_request(Req())
    assert b"s3cr3t" not in request.body and b"na1-aaaa" not in request.body
    assert b"grant_type=refresh_token" in request.body
    response = {"body": {"string": b'{"access_token": "CNxyz", "refresh_token": "na1-1", "expires_in": 1800}'}}
    scrubbed = scrub_response(response)["body"]["string"]
    assert b"CNxyz" not in scrubbed and b"na1-1" not in scrubbed and b"1800" in scrubbed
