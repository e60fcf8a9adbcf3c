"""Error translation table, record conversion and redaction of the adapter (no network)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import hubspot.crm.contacts
import hubspot.crm.objects
import hubspot.crm.properties
import pytest
import requests
import urllib3

from connector.errors import (
    AuthError,
    HubSpotError,
    MissingScopesError,
    NotFoundError,
    RateLimitedError,
    RejectedError,
    RetryableError,
)
from connector.hubspot.client import HubSpotClient, modified_property, redact, to_datetime, to_record, translate_errors
from connector.hubspot.http import HttpStatusError
from connector.settings import Settings

CORRELATION = "a43683b0-5717-4ceb-80b4-104d02915d8c"


def _response(status: int, body: dict | None, headers: dict | None = None) -> urllib3.HTTPResponse:
    data = json.dumps(body).encode() if body is not None else b""
    return urllib3.HTTPResponse(body=data, headers={"content-type": "application/json;charset=utf-8",
                                                    "x-hubspot-correlation-id": CORRELATION, **(headers or {})},
                                status=status, preload_content=True)


def _sdk_error(module, status: int, body: dict | None, headers: dict | None = None):
    exc = module.ApiException(http_resp=_response(status, body, headers))
    exc.body = exc.body.decode() if isinstance(exc.body, bytes) else exc.body  # as the SDK's ApiClient does
    return exc


SCOPES_403 = {
    "status": "error", "message": "One or more of the following scopes are required.", "correlationId": CORRELATION,
    "errors": [{"message": "One or more of the following scopes are required.",
                "context": {"requiredGranularScopes": ["crm.objects.deals.read", "crm.lists.read"]}}],
    "category": "MISSING_SCOPES",
}
BURST_429 = {"status": "error", "message": "You have reached your ten_secondly_rolling limit.", "errorType": "RATE_LIMIT",
             "correlationId": CORRELATION, "policyName": "TEN_SECONDLY_ROLLING",
             "groupName": "publicapi:private_app-api-calls-ten-secondly:1:1"}


@pytest.mark.parametrize(
    ("status", "body", "cls", "category"),
    [
        pytest.param(400, {"status": "error", "message": "Property values were not valid", "category": "VALIDATION_ERROR",
                           "correlationId": CORRELATION}, RejectedError, "VALIDATION_ERROR", id="400-validation"),
        pytest.param(400, {"status": "error", "message": "Unable to infer object type from: x",
                           "correlationId": CORRELATION}, RejectedError, None, id="400-no-category"),
        pytest.param(401, {"status": "error", "message": "Authentication credentials not found.",
                           "category": "INVALID_AUTHENTICATION", "correlationId": CORRELATION}, AuthError,
                     "INVALID_AUTHENTICATION", id="401-invalid"),
        pytest.param(401, {"status": "error", "message": "The OAuth token used to make this call expired 9 minute(s) ago.",
                           "category": "EXPIRED_AUTHENTICATION", "correlationId": CORRELATION}, AuthError,
                     "EXPIRED_AUTHENTICATION", id="401-expired"),
        pytest.param(403, SCOPES_403, MissingScopesError, "MISSING_SCOPES", id="403-scopes"),
        pytest.param(404, {"status": "error", "message": "Object not found.  objectId are usually numeric.",
                           "category": "OBJECT_NOT_FOUND", "correlationId": CORRELATION}, NotFoundError,
                     "OBJECT_NOT_FOUND", id="404"),
        pytest.param(409, {"status": "error", "message": "A property named 'x' already exists.",
                           "category": "OBJECT_ALREADY_EXISTS", "correlationId": CORRELATION}, RejectedError,
                     "OBJECT_ALREADY_EXISTS", id="409"),
        pytest.param(423, {"status": "error", "message": "Locked", "correlationId": CORRELATION}, RetryableError, None,
                     id="423"),
        pytest.param(429, BURST_429, RateLimitedError, "RATE_LIMIT", id="429-burst"),
        pytest.param(500, {"status": "error", "message": "internal", "correlationId": CORRELATION}, RetryableError, None,
                     id="500"),
        pytest.param(502, None, RetryableError, None, id="502-empty-body"),
        pytest.param(504, {"status": "error", "message": "timeout"}, RetryableError, None, id="504"),
        pytest.param(418, {"status": "error", "message": "teapot"}, HubSpotError, None, id="other-4xx"),
    ],
)
@pytest.mark.parametrize("module", [hubspot.crm.objects, hubspot.crm.contacts, hubspot.crm.properties],
                         ids=["objects", "contacts", "properties"])
def test_translate_errors_table(module, status, body, cls, category):
    error = translate_errors(_sdk_error(module, status, body), path="/crm/v3/objects/contacts")
    assert type(error) is cls
    assert error.status == status
    assert error.category == category
    assert error.correlation_id == CORRELATION
    assert error.path == "/crm/v3/objects/contacts"


def test_translate_errors_403_names_every_scope():
    error = translate_errors(_sdk_error(hubspot.crm.objects, 403, SCOPES_403))
    assert isinstance(error, MissingScopesError)
    assert error.scopes == ("crm.objects.deals.read", "crm.lists.read")
    assert "crm.lists.read" in str(error)


def test_translate_errors_429_carries_policy():
    error = translate_errors(HttpStatusError(429, json.dumps({**BURST_429, "policyName": "SECONDLY"}), {}))
    assert isinstance(error, RateLimitedError)
    assert error.policy == "SECONDLY"


def test_translate_errors_400_lists_per_record_failures():
    body = {"status": "error", "message": "bad", "category": "VALIDATION_ERROR", "correlationId": CORRELATION,
            "errors": [{"message": "Property \"x\" does not exist", "code": "PROPERTY_DOESNT_EXIST",
                        "context": {"propertyName": ["x"]}}]}
    error = translate_errors(HttpStatusError(400, json.dumps(body), {}))
    assert isinstance(error, RejectedError)
    assert error.failures[0].message == 'Property "x" does not exist'
    assert error.failures[0].category == "PROPERTY_DOESNT_EXIST"


@pytest.mark.parametrize(
    "exc",
    [
        pytest.param(urllib3.exceptions.MaxRetryError(None, "/x", reason=ConnectionResetError()), id="max-retry"),
        pytest.param(urllib3.exceptions.ProtocolError("Connection aborted."), id="protocol-reset"),
        pytest.param(urllib3.exceptions.ReadTimeoutError(None, "/x", "read timed out"), id="read-timeout"),
        pytest.param(requests.exceptions.ConnectionError("reset"), id="requests-connection"),
        pytest.param(requests.exceptions.ReadTimeout("slow"), id="requests-timeout"),
        pytest.param(ConnectionResetError(104, "reset"), id="socket-reset"),
    ],
)
def test_translate_errors_transport_failures_are_retryable(exc):
    error = translate_errors(exc, path="/crm/v3/objects/contacts")
    assert type(error) is RetryableError
    assert error.status is None


def test_translate_errors_redacts_emails_and_tokens():
    body = {"status": "error", "message": "jane.doe@example.com was not valid, token pat-na1-11111111-2222",
            "category": "VALIDATION_ERROR"}
    error = translate_errors(HttpStatusError(400, json.dumps(body), {}),
                             path="/automation/v2/workflows/1/enrollments/contacts/jane.doe@example.com")
    text = str(error)
    assert "jane.doe" not in text and "pat-na1" not in text
    assert "<email>" in text and "<token>" in text


def test_redact_keeps_ordinary_text():
    assert redact("Property values were not valid") == "Property values were not valid"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param("2024-08-15T17:09:13.648Z", datetime(2024, 8, 15, 17, 9, 13, 648000, tzinfo=UTC), id="iso-ms-z"),
        pytest.param("1579514400000", datetime(2020, 1, 20, 10, 0, tzinfo=UTC), id="epoch-ms-string"),
        pytest.param(1579514400000, datetime(2020, 1, 20, 10, 0, tzinfo=UTC), id="epoch-ms-number"),
        pytest.param("2024-08-15T19:09:13+02:00", datetime(2024, 8, 15, 17, 9, 13, tzinfo=UTC), id="offset"),
        pytest.param(None, None, id="none"),
        pytest.param("", None, id="empty"),
    ],
)
def test_to_datetime(value, expected):
    assert to_datetime(value) == expected


def test_to_record_plain_values_strings_and_utc():
    raw = {
        "id": 501, "archived": True, "createdAt": "2024-01-01T00:00:00.000Z", "updatedAt": "2024-02-01T00:00:00.000Z",
        "archivedAt": "2024-03-01T00:00:00.000Z",
        "properties": {"amount": 10000, "hs_is_closed_won": False, "dealname": "A", "closedate": None},
        "propertiesWithHistory": {"dealstage": [{"value": "closedwon", "timestamp": "2024-02-01T00:00:00.000Z",
                                                 "sourceType": "CRM_UI"}], "amount": []},
    }
    record = to_record(raw)
    assert record["id"] == "501"
    assert record["properties"] == {"amount": "10000", "hs_is_closed_won": "false", "dealname": "A", "closedate": None}
    assert record["archived"] is True
    assert record["archived_at"] == datetime(2024, 3, 1, tzinfo=UTC)
    assert record["history"]["dealstage"][0] == {"value": "closedwon", "timestamp": datetime(2024, 2, 1, tzinfo=UTC),
                                                 "sourceType": "CRM_UI"}
    assert record["history"]["amount"] == []


@pytest.mark.parametrize(
    ("object_type", "expected"),
    [
        pytest.param("contacts", "lastmodifieddate", id="contacts"),
        pytest.param("0-1", "lastmodifieddate", id="contacts-by-id"),
        pytest.param("companies", "hs_lastmodifieddate", id="companies"),
        pytest.param("subscriptions", "hs_lastmodifieddate", id="subscriptions"),
    ],
)
def test_modified_property(object_type, expected):
    assert modified_property(object_type) == expected


def test_client_repr_and_stats_never_show_the_token():
    token = "-".join(["pat", "na1", "0" * 8, "1" * 4, "2" * 4, "3" * 4, "4" * 12])  # assembled: no token-like literal
    client = HubSpotClient(Settings(_env_file=None, token=token, base_url="http://127.0.0.1:9"))
    assert token not in repr(client)
    assert token not in repr(client._auth)
    assert token not in repr(client.stats.as_dict())
