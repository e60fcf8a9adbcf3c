"""Access tokens: a private-app token as is, or OAuth access tokens refreshed before their 30-minute expiry."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from connector.errors import AuthError, ConfigError, HubSpotError
from connector.settings import Settings

from .http import Http, RawResponse
from .retry import call_with_retry

TOKEN_PATH = "/oauth/v1/token"
REFRESH_MARGIN_S = 300.0  # refresh five minutes before HubSpot says the token expires
REFRESH_ATTEMPTS = 4
REFRESH_MAX_S = 60.0


class TokenProvider:
    """Hands out the current access token; never shows it in ``repr``/``str``."""

    can_refresh = False

    def token(self) -> str:
        raise NotImplementedError

    def refresh(self) -> None:  # pragma: no cover - only OAuth refreshes
        raise AuthError("the private-app token was refused; create a new one in HubSpot", status=401)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(<hidden>)"

    __str__ = __repr__


class StaticToken(TokenProvider):
    """A private-app token (``pat-…``): it does not expire, a 401 means it was revoked."""

    def __init__(self, token: str):
        self._token = token

    def token(self) -> str:
        return self._token


class OAuthToken(TokenProvider):
    """OAuth: POST /oauth/v1/token (form-encoded refresh_token grant) at ``expires_in`` minus a margin, and on a 401."""

    can_refresh = True

    def __init__(
        self,
        http: Http,
        client_id: str,
        client_secret: str,
        refresh_token: str,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        margin_s: float = REFRESH_MARGIN_S,
    ):
        self._http = http
        self._client_id = client_id
        self._client_secret = client_secret
        self._refresh_token = refresh_token
        self._clock = clock
        self._sleep = sleep
        self._margin = margin_s
        self._access: str | None = None
        self._expires_at = 0.0
        self._lock = threading.Lock()
        self.refreshes = 0

    def token(self) -> str:
        with self._lock:
            if self._access is None or self._clock() >= self._expires_at:
                self._refresh_locked()
            assert self._access is not None
            return self._access

    def refresh(self) -> None:
        with self._lock:
            self._refresh_locked()

    def _refresh_locked(self) -> None:
        # Imported here: client.py imports this module, and the translation table lives there.
        from .client import translate_errors

        form = {
            "grant_type": "refresh_token",
            "client_id": self._client_id,
            "client_secret": self._client_secret,
            "refresh_token": self._refresh_token,
        }

        def post() -> RawResponse:
            try:
                return self._http.request("POST", TOKEN_PATH, form=form)
            except Exception as exc:  # noqa: BLE001 - translated, never shown raw (the form holds secrets)
                raise translate_errors(exc, path=TOKEN_PATH) from None

        try:
            # A 5xx or a reset on the token endpoint must not end a long run: same policy, fewer attempts.
            answer = call_with_retry(post, max_attempts=REFRESH_ATTEMPTS, max_seconds=REFRESH_MAX_S,
                                     sleep=self._sleep, clock=self._clock)
        except HubSpotError as error:
            if not isinstance(error, AuthError) and error.status in (400, 401, 403):
                raise AuthError("OAuth refresh was refused: check the client id, secret and refresh token",
                                status=error.status, category=error.category,
                                correlation_id=error.correlation_id, path=TOKEN_PATH) from None
            raise
        body = answer.body if isinstance(answer.body, dict) else {}
        access = body.get("access_token")
        if not access:
            raise AuthError("OAuth refresh answered without an access token", status=answer.status, path=TOKEN_PATH)
        expires_in = float(body.get("expires_in") or 1800)
        self._access = access
        # HubSpot may rotate the refresh token; keep the newest one.
        self._refresh_token = body.get("refresh_token") or self._refresh_token
        self._expires_at = self._clock() + max(0.0, expires_in - min(self._margin, expires_in / 2))
        self.refreshes += 1


def token_provider(settings: Settings, http: Http, *, clock: Callable[[], float] = time.monotonic,
                   sleep: Callable[[float], None] = time.sleep) -> TokenProvider:
    """The provider the settings describe: OAuth when client id, secret and refresh token are set, else the token."""
    if settings.client_id and settings.client_secret and settings.refresh_token:
        return OAuthToken(
            http,
            settings.client_id,
            settings.client_secret.get_secret_value(),
            settings.refresh_token.get_secret_value(),
            clock=clock,
            sleep=sleep,
        )
    if settings.token is not None:
        return StaticToken(settings.token.get_secret_value())
    raise ConfigError(
        "No HubSpot credentials: set CONNECTOR_TOKEN (private app) or CONNECTOR_CLIENT_ID, "
        "CONNECTOR_CLIENT_SECRET and CONNECTOR_REFRESH_TOKEN (OAuth)"
    )
