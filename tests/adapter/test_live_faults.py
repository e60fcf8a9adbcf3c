"""Faults a cassette cannot hold (a reset has no response, a timeout no answer), against the live sandbox."""

from __future__ import annotations

import pytest

from connector.errors import RetryableError
from connector.hubspot import HubSpotClient
from connector.sandbox.server import running_sandbox
from connector.settings import Settings


@pytest.fixture(scope="module")
def faulty():
    """A tiny portal of this module's own: its faults are scripted per test (the shared ``sandbox`` stays clean)."""
    with running_sandbox(seed=1, size=20) as sb:
        yield sb


def _client(faulty, **overrides) -> HubSpotClient:
    values = {"token": faulty.token, "base_url": faulty.base_url, **overrides}
    return HubSpotClient(Settings(_env_file=None, **values), sleep=lambda s: None)


@pytest.mark.parametrize(
    ("faults", "kind"),
    [
        pytest.param("seq:reset,200", "list", id="reset-on-list-get"),
        pytest.param("seq:reset,reset,200", "search", id="resets-on-search-post"),
    ],
)
def test_connection_reset_is_retried(faulty, faults, kind):
    from datetime import UTC, datetime

    client = _client(faulty)
    faulty.portal.set_faults(faults)
    try:
        if kind == "list":
            records = next(iter(client.iter_pages("contacts", ["email"]))).records
        else:
            records = next(iter(client.iter_modified_since("contacts", datetime(2000, 1, 1, tzinfo=UTC), []))).records
    finally:
        faulty.portal.set_faults(None)
    assert len(records) == 20
    assert client.stats.retries == faults.count("reset")


def test_slow_answer_times_out_and_is_retried(faulty):
    client = _client(faulty, request_timeout=0.3)
    faulty.portal.set_faults("seq:slow@1s,200")
    try:
        records = next(iter(client.iter_pages("contacts", ["email"]))).records
    finally:
        faulty.portal.set_faults(None)
    assert len(records) == 20
    assert client.stats.retries == 1


def test_retries_are_bounded(faulty, caplog):
    caplog.set_level("WARNING", logger="connector.hubspot")
    client = _client(faulty, max_retries=3)
    faulty.portal.set_faults("seq:503,503,503,503,200")
    try:
        with pytest.raises(RetryableError) as info:
            next(iter(client.iter_pages("contacts", ["email"])))
    finally:
        faulty.portal.set_faults(None)
    assert info.value.status == 503
    assert client.stats.calls["list"] == 3
    # Each retry is logged for operators, without the token.
    assert len([r for r in caplog.records if "retrying" in r.getMessage()]) == 2
    assert faulty.token not in caplog.text


def test_oauth_refresh_survives_a_5xx_on_the_token_endpoint():
    with running_sandbox(seed=1, size=20, profile="oauth", faults="path=/oauth/v1/token,seq:503,200") as sb:
        oauth = sb.portal.oauth_client
        client = HubSpotClient(Settings(_env_file=None, base_url=sb.base_url, client_id=oauth.client_id,
                                        client_secret=oauth.client_secret, refresh_token=oauth.refresh_token),
                               sleep=lambda s: None)
        records = next(iter(client.iter_pages("contacts", ["email"]))).records
        assert len(records) == 20
        assert client.stats.token_refreshes == 1
        assert [p for m, p in sb.portal.calls if p == "/oauth/v1/token"] == ["/oauth/v1/token"] * 2
        assert oauth.client_secret not in repr(client) and oauth.client_secret not in repr(client._auth)
