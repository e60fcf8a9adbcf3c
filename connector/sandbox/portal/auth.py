"""Tokens and scopes of one portal (the OAuth grants that mint them live in the app platform, ``sandbox/platform``)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Iterable

from connector.sandbox import schema
from connector.sandbox.portal.common import ApiError, error_body, iso, now_ms


OAUTH_LIFETIME_S = 1_800.0


def read_scopes(object_type: str) -> tuple[str, ...]:
    """Scopes of which one lets a token read records of ``object_type`` (API-NOTES §8; the objects spec's security)."""
    if object_type == "tickets":  # tickets have the one legacy scope, no crm.objects.tickets.read
        return ("tickets",)
    scopes = [f"crm.objects.{object_type}.read"]
    if object_type in ("line_items", "products"):
        scopes.append("e-commerce")
    if object_type in ("feedback_submissions",) + schema.ENGAGEMENT_TYPES:  # engagements: contacts scopes too
        scopes.append("crm.objects.contacts.read")
    return tuple(scopes)


def write_scopes(object_type: str) -> tuple[str, ...]:
    """Scopes of which one lets a token write ``object_type`` (read-only types are refused before this)."""
    if object_type == "tickets":
        return ("tickets",)
    if object_type in schema.ENGAGEMENT_TYPES:  # the engagement guides name the contacts write scope
        return ("crm.objects.contacts.write",)
    return (f"crm.objects.{object_type}.write",) + (("e-commerce",) if object_type in ("line_items", "products")
                                                    else ())


# Every scope a default token holds (API-NOTES §8).
ALL_SCOPES: frozenset[str] = frozenset(
    [s for t in schema.OBJECT_TYPES for s in read_scopes(t)]
    + [s for t in schema.OBJECT_TYPES if t not in schema.READ_ONLY_TYPES for s in write_scopes(t)]
    + ["crm.lists.read", "crm.lists.write", "automation", "crm.objects.owners.read"]
    + ["crm.schemas.custom.read"]
    + [f"crm.schemas.{t}.{rw}" for t in schema.OBJECT_TYPES for rw in ("read", "write")]
)


TOKEN_KINDS = ("private", "service_key", "oauth")


@dataclass
class Token:
    value: str = field(repr=False)
    scopes: frozenset[str]
    kind: str = "private"  # one of TOKEN_KINDS
    expires_ms: int | None = None
    app_id: int = 1
    user_id: int | None = None  # the installing user of an app's token (introspection's user_id)


@dataclass
class OAuthClient:
    """The portal's built-in OAuth client (profile ``oauth``); the app platform serves its refresh grant."""

    client_id: str
    client_secret: str = field(repr=False)
    refresh_token: str = field(repr=False)


class AuthMixin:
    """Tokens and the scope check.

    A mixin of ``Portal``, which owns ``lock`` and the state these methods use.
    """

    def _uuid(self) -> uuid.UUID:
        return uuid.UUID(int=self._rng.getrandbits(128), version=4)

    def create_token(self, scopes: Iterable[str] | None = None, *, kind: str = "private",
                     lifetime_s: float | None = None, app_id: int = 1, user_id: int | None = None) -> str:
        """Mint a token (all scopes unless given); OAuth tokens expire after ``lifetime_s`` (default the portal's)."""
        if kind not in TOKEN_KINDS:
            raise ValueError(f"kind must be one of {', '.join(TOKEN_KINDS)}, got {kind!r}")
        with self.lock:
            if kind == "oauth":
                value = f"CN{self._uuid().hex}{self._uuid().hex}"
                life = self.oauth_lifetime_s if lifetime_s is None else lifetime_s
                expires = now_ms() + int(life * 1000)
            else:
                value = f"pat-na1-{self._uuid()}"
                expires = None if lifetime_s is None else now_ms() + int(lifetime_s * 1000)
            self.tokens[value] = Token(value, frozenset(ALL_SCOPES if scopes is None else scopes), kind, expires,
                                       app_id, user_id)
            return value

    def revoke_token(self, value: str) -> None:
        with self.lock:
            self.tokens.pop(value, None)

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
