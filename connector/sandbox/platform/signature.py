"""HubSpot's request signatures (v1, v2, v3) on requests it sends to an app, and the check a receiver makes.

From HubSpot's "Validating requests" guide (API-NOTES §12):
- v1: hex SHA-256 of client secret + body (header ``X-HubSpot-Signature``, ``X-HubSpot-Signature-Version: v1``);
- v2: hex SHA-256 of client secret + method + URI + body (same header, version ``v2``);
- v3: base64 of HMAC-SHA256 keyed with the client secret over method + URI + body + timestamp (ms), in
  ``X-HubSpot-Signature-v3`` with ``X-HubSpot-Request-Timestamp``; the URI has the URL-encoded characters of the
  guide's table decoded first; a receiver refuses a timestamp older than 5 minutes and compares in constant time.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time

MAX_AGE_MS = 5 * 60 * 1000
# The guide's table of URL-encoded characters to decode in the URI before hashing (v3).
_DECODE = {"%3A": ":", "%2F": "/", "%3F": "?", "%40": "@", "%21": "!", "%24": "$", "%27": "'", "%28": "(",
           "%29": ")", "%2A": "*", "%2C": ",", "%3B": ";"}


class SignatureError(ValueError):
    """A request whose signature or timestamp a receiver must refuse (the message never holds the secret)."""


def decoded_uri(uri: str) -> str:
    for encoded, char in _DECODE.items():
        uri = uri.replace(encoded, char).replace(encoded.lower(), char)
    return uri


def _text(body: bytes | str) -> bytes:
    return body.encode("utf-8") if isinstance(body, str) else body


def sign_v1(secret: str, body: bytes | str) -> str:
    return hashlib.sha256(secret.encode("utf-8") + _text(body)).hexdigest()


def sign_v2(secret: str, method: str, uri: str, body: bytes | str) -> str:
    return hashlib.sha256(f"{secret}{method.upper()}{uri}".encode("utf-8") + _text(body)).hexdigest()


def sign_v3(secret: str, method: str, uri: str, body: bytes | str, timestamp_ms: int) -> str:
    message = f"{method.upper()}{decoded_uri(uri)}".encode("utf-8") + _text(body) + str(timestamp_ms).encode()
    return base64.b64encode(hmac.new(secret.encode("utf-8"), message, hashlib.sha256).digest()).decode("ascii")


def signed_headers(secret: str, method: str, uri: str, body: bytes, *, legacy: str | None = "v1",
                   now_ms: int | None = None) -> dict[str, str]:
    """The headers HubSpot puts on a request to an app: v3 and its timestamp, plus one legacy version if asked."""
    timestamp = int(time.time() * 1000) if now_ms is None else now_ms
    headers = {"X-HubSpot-Signature-v3": sign_v3(secret, method, uri, body, timestamp),
               "X-HubSpot-Request-Timestamp": str(timestamp)}
    if legacy == "v1":
        headers.update({"X-HubSpot-Signature": sign_v1(secret, body), "X-HubSpot-Signature-Version": "v1"})
    elif legacy == "v2":
        headers.update({"X-HubSpot-Signature": sign_v2(secret, method, uri, body),
                        "X-HubSpot-Signature-Version": "v2"})
    return headers


def check_v3(secret: str, method: str, uri: str, body: bytes | str, signature: str | None, timestamp: str | None,
             *, now_ms: int | None = None, max_age_ms: int = MAX_AGE_MS) -> None:
    """What a receiver does: raise SignatureError unless the v3 signature matches and the timestamp is fresh."""
    if not signature or not timestamp:
        raise SignatureError("X-HubSpot-Signature-v3 and X-HubSpot-Request-Timestamp are required")
    try:
        stamp = int(timestamp)
    except ValueError:
        raise SignatureError("X-HubSpot-Request-Timestamp is not a number of milliseconds") from None
    now = int(time.time() * 1000) if now_ms is None else now_ms
    if now - stamp > max_age_ms:
        raise SignatureError(f"the request timestamp is older than {max_age_ms // 60_000} minutes")
    expected = sign_v3(secret, method, uri, body, stamp)
    if not hmac.compare_digest(expected.encode("ascii"), signature.encode("ascii", "replace")):
        raise SignatureError("the v3 signature does not match")
