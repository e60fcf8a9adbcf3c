"""Tokens, scopes and the OAuth refresh grant."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any, Iterable

from connector.sandbox import schema
from connector.sandbox.portal.common import ApiError, bad_request, error_body, iso, now_ms


OAUTH_LIFETIME_S = 1_800.0
# Every scope a default token holds (API-NOTES §8).
ALL_SCOPES: frozenset[str] = frozenset(
    [f"crm.objects.{t}.{rw}" for t in schema.OBJECT_TYPES for rw in ("read", "write") if t != "feedback_submissions"]
    + ["crm.objects.feedback_submissions.read", "e-commerce", "crm.lists.read", "crm.lists.write", "automation"]
    + ["crm.schemas.custom.read"]
    + [f"crm.schemas.{t}.{rw}" for t in schema.OBJECT_TYPES for rw in ("read", "write")]
)


@dataclass
class Token:
    value: str
    scopes: frozenset[str]
    kind: str = "private"  # private | oauth
    expires_ms: int | None = None
    app_id: int = 1


@dataclass
class OAuthClient:
    client_id: str
    client_secret: str
    refresh_token: str


class AuthMixin:
    """Tokens, the scope check and the OAuth refresh grant.

    A mixin of ``Portal``, which owns ``lock`` and the state these methods use.
    """

    def _uuid(self) -> uuid.UUID:
        return uuid.UUID(int=self._rng.getrandbits(128), version=4)

    def create_token(self, scopes: Iterable[str] | None = None, *, kind: str = "private",
                     lifetime_s: float | None = None) -> str:
        """Mint a token (all scopes unless given); OAuth tokens expire after ``lifetime_s`` (default the portal's)."""
        with self.lock:
            if kind == "oauth":
                value = f"CN{self._uuid().hex}{self._uuid().hex}"
                life = self.oauth_lifetime_s if lifetime_s is None else lifetime_s
                expires = now_ms() + int(life * 1000)
            else:
                value = f"pat-na1-{self._uuid()}"
                expires = None if lifetime_s is None else now_ms() + int(lifetime_s * 1000)
            self.tokens[value] = Token(value, frozenset(ALL_SCOPES if scopes is None else scopes), kind, expires)
            return value

    def expire_token(self, value: str) -> None:
        with self.lock:
            self.tokens[value].expires_ms = now_ms() - 1

    def authenticate(self, authorization: str | None) -> Token:
        """Bearer token -> Token, or the 401 HubSpot sends (§5, §11)."""
        value = authorization[7:].strip() if authorization and authorization[:7].lower() == "bearer " else None
        token = self.tokens.get(value) if value else None
        if token is None:
            raise ApiError(401, error_body(
                "Authentication credentials not found. This API supports OAuth 2.0 authentication and you can find "
                "more details at https://developers.hubspot.com/docs/methods/auth/oauth-overview",
                "INVALID_AUTHENTICATION"))
        if token.expires_ms is not None and token.expires_ms <= now_ms():
            minutes = (now_ms() - token.expires_ms) // 60_000
            raise ApiError(401, error_body(f"The OAuth token used to make this call expired {minutes} minute(s) ago.",
                                           "EXPIRED_AUTHENTICATION", context={"expire time": [iso(token.expires_ms)]}))
        return token

    @staticmethod
    def require(token: Token, *any_of: str) -> None:
        """403 MISSING_SCOPES unless the token holds one of ``any_of`` (§5, §11 newer form plus errors[])."""
        if any(s in token.scopes for s in any_of):
            return
        context = {"requiredGranularScopes": list(any_of)}
        raise ApiError(403, error_body(
            "One or more of the following scopes are required.", "MISSING_SCOPES", context=context,
            errors=[{"message": "One or more of the following scopes are required.", "context": context}],
            links={"scopes": "https://developers.hubspot.com/scopes"}))

    def refresh_oauth(self, form: dict[str, str]) -> dict[str, Any]:
        """POST /oauth/v1/token with grant_type=refresh_token."""
        c = self.oauth_client
        if form.get("grant_type") != "refresh_token":
            raise bad_request("grant_type must be refresh_token in the sandbox", "BAD_GRANT_TYPE")
        if form.get("client_id") != c.client_id or form.get("client_secret") != c.client_secret:
            raise bad_request("missing or unknown client id", "BAD_CLIENT_ID")
        if form.get("refresh_token") != c.refresh_token:
            raise bad_request("missing or unknown refresh token", "BAD_REFRESH_TOKEN")
        access = self.create_token(kind="oauth")
        # token_use, hub_id and scopes: the spec's AccessTokenResponse; older answers had only the first four
        return {"token_type": "bearer", "refresh_token": c.refresh_token, "access_token": access,
                "expires_in": int(self.oauth_lifetime_s), "token_use": "access_token", "hub_id": self.portal_id,
                "scopes": sorted(ALL_SCOPES)}
