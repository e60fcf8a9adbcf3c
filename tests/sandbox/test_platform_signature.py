"""HubSpot's request signatures: the guide's v1 example reproduced, a v3 vector from the documented algorithm, and
what a receiver refuses (wrong signature, stale timestamp)."""

from __future__ import annotations

import pytest

from connector.sandbox.platform.signature import (
    SignatureError, check_v3, decoded_uri, sign_v1, sign_v2, sign_v3, signed_headers,
)

SECRET = "yyyyyyyy-yyyy-yyyy-yyyy-yyyyyyyyyyyy"  # the guide's example client secret
BODY = ('[{"eventId":1,"subscriptionId":12345,"portalId":62515,"occurredAt":1564113600000,'
        '"subscriptionType":"contact.creation","attemptNumber":0,"objectId":123,"changeSource":"CRM",'
        '"changeFlag":"NEW","appId":54321}]')
STAMP = 1_564_113_600_000


def test_v1_reproduces_the_example_of_hubspots_guide():
    # "Validating requests", v1 example: this secret and body give this X-HubSpot-Signature.
    assert sign_v1(SECRET, BODY) == "232db2615f3d666fe21a8ec971ac7b5402d33b9a925784df3ca654d05f4817de"


def test_v3_matches_a_vector_built_from_the_documented_algorithm():
    # Built with `openssl dgst -sha256 -hmac SECRET -binary | base64` over
    # "POST" + URI (with %40 decoded to @, as the guide's table says) + body + timestamp: not the guide's own
    # vector (it prints none for v3), the same algorithm computed by another tool.
    uri = "https://www.example.com/webhook_uri?portalId=62515&userEmail=ada%40acme.example"
    assert sign_v3(SECRET, "POST", uri, BODY, STAMP) == "4cytYD6465KS/PpU304QnogaEJsfAnsyM9Q/7Mw9AfY="


def test_v2_reproduces_the_example_of_hubspots_guide():
    # "v2 request validation", GET example: secret + method + URI, no body.
    assert sign_v2(SECRET, "GET", "https://www.example.com/webhook_uri", "") == \
        "eee2dddcc73c94d699f5e395f4b9d454a069a6855fbfa152e91e88823087200e"


def test_v2_covers_method_uri_and_body():
    a = sign_v2(SECRET, "POST", "https://www.example.com/webhook_uri", BODY)
    assert a != sign_v2(SECRET, "POST", "https://www.example.com/other", BODY)
    assert a != sign_v2(SECRET, "PUT", "https://www.example.com/webhook_uri", BODY)
    assert len(a) == 64


def test_uri_decoding_follows_the_guides_table():
    assert decoded_uri("https://x.example/a%3Ab%2Fc%3Fd%40e%21%24%27%28%29%2A%2C%3B") == \
        "https://x.example/a:b/c?d@e!$'()*,;"
    assert decoded_uri("https://x.example/q?a=%20b") == "https://x.example/q?a=%20b"  # not in the table: kept


def test_a_receiver_accepts_the_signed_request():
    headers = signed_headers(SECRET, "POST", "https://app.example/hook", BODY.encode(), now_ms=STAMP)
    check_v3(SECRET, "POST", "https://app.example/hook", BODY, headers["X-HubSpot-Signature-v3"],
             headers["X-HubSpot-Request-Timestamp"], now_ms=STAMP + 1_000)
    assert headers["X-HubSpot-Signature"] == sign_v1(SECRET, BODY) and headers["X-HubSpot-Signature-Version"] == "v1"


@pytest.mark.parametrize("change, message", [
    pytest.param({"signature": "AAAA" + "x" * 40}, "does not match", id="wrong-signature"),
    pytest.param({"secret": "another-secret"}, "does not match", id="wrong-secret"),
    pytest.param({"body": BODY.replace("123", "124")}, "does not match", id="body-changed"),
    pytest.param({"uri": "https://app.example/other"}, "does not match", id="uri-changed"),
    pytest.param({"now": STAMP + 5 * 60 * 1000 + 1}, "older than 5 minutes", id="timestamp-older-than-5-minutes"),
    pytest.param({"signature": None}, "required", id="no-signature"),
    pytest.param({"timestamp": "yesterday"}, "not a number", id="bad-timestamp"),
])
def test_a_receiver_refuses(change, message):
    headers = signed_headers(SECRET, "POST", "https://app.example/hook", BODY.encode(), now_ms=STAMP)
    args = {"secret": SECRET, "uri": "https://app.example/hook", "body": BODY,
            "signature": headers["X-HubSpot-Signature-v3"], "timestamp": headers["X-HubSpot-Request-Timestamp"],
            "now": STAMP + 60_000, **change}
    with pytest.raises(SignatureError, match=message) as refused:
        check_v3(args["secret"], "POST", args["uri"], args["body"], args["signature"], args["timestamp"],
                 now_ms=args["now"])
    assert SECRET not in str(refused.value)


def test_the_5_minute_window_is_inclusive_of_its_edge():
    headers = signed_headers(SECRET, "GET", "https://app.example/card", b"", now_ms=STAMP)
    check_v3(SECRET, "GET", "https://app.example/card", b"", headers["X-HubSpot-Signature-v3"],
             headers["X-HubSpot-Request-Timestamp"], now_ms=STAMP + 5 * 60 * 1000)
