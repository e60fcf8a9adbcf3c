"""OAuth as HubSpot serves it to apps: authorize (auto-approved for the installing portal), code and refresh grants,
token introspection, refresh-token revocation (uninstall).

Error bodies keep the sandbox's envelope (``status: "error"``) and put HubSpot's OAuth error word (``BAD_AUTH_CODE``,
``BAD_CLIENT_ID``, …) in ``category``; no message ever holds a token, code or secret.
"""

from __future__ import annotations

import hmac
from typing import Any
from urllib.parse import urlencode, urlsplit

from connector.sandbox.portal import ApiError, Portal, Token, bad_request, error_body, now_ms

CODE_LIFETIME_MS = 10 * 60 * 1000  # an authorization code is good for one exchange within this time
GRANTS = ("authorization_code", "refresh_token")


def _not_found(what: str) -> ApiError:
    return ApiError(404, error_body(f"{what} not found, expired or revoked", "NOT_FOUND"))


class OAuthMixin:
    """The OAuth half of ``AppPlatform`` (which owns ``lock``, ``apps``, ``installs``, ``portals`` and ids)."""

    # ------------------------------------------------------------ authorize

    def authorize(self, params: dict[str, str]) -> str:
        """GET /oauth/authorize -> the redirect URL with ``code`` (and ``state``) for the installing portal."""
        with self.lock:
            app = self.app_by_client_id(params.get("client_id"))
            if app is None:
                raise bad_request("missing or unknown client id", "BAD_CLIENT_ID")
            if app.auth_type != "oauth":
                raise bad_request("this app uses static auth: it is installed, not authorized through OAuth",
                                  "BAD_CLIENT_ID")
            redirect = params.get("redirect_uri", "")
            if redirect not in app.redirect_urls:
                # Never redirect to an unregistered URL: the error stays on HubSpot's page.
                raise bad_request("redirect_uri does not match any redirect URL of the app", "BAD_REDIRECT_URI")
            asked = set(params.get("scope", "").split())
            optional = set(params.get("optional_scope", "").split())
            missing = set(app.required_scopes) - asked
            if missing:
                raise bad_request(f"scope must include the app's required scopes; missing {sorted(missing)}",
                                  "BAD_SCOPES")
            unknown = (asked | optional) - set(app.required_scopes) - set(app.optional_scopes)
            if unknown:
                raise bad_request(f"scopes not configured for the app: {sorted(unknown)}", "BAD_SCOPES")
            hub_id = self.installing_hub_id
            self.portal(hub_id)  # the approving portal must exist
            code = self._secret("na1-")
            self.codes[code] = (app.app_id, hub_id, redirect, frozenset(asked | optional), now_ms() + CODE_LIFETIME_MS)
            query = {"code": code}
            if "state" in params:
                query["state"] = params["state"]
            sep = "&" if urlsplit(redirect).query else "?"
            return f"{redirect}{sep}{urlencode(query)}"

    # ------------------------------------------------------------ token endpoint (v1 and v3 alike)

    def token_grant(self, form: dict[str, str]) -> dict[str, Any]:
        grant = form.get("grant_type")
        if grant not in GRANTS:
            raise bad_request(f"grant_type must be one of {', '.join(GRANTS)}", "BAD_GRANT_TYPE")
        with self.lock:
            app = self.app_by_client_id(form.get("client_id"))
            if app is None:
                raise bad_request("missing or unknown client id", "BAD_CLIENT_ID")
            if not hmac.compare_digest(app.client_secret.encode(), form.get("client_secret", "").encode()):
                raise bad_request("missing or invalid client secret", "BAD_CLIENT_SECRET")
            if grant == "authorization_code":
                return self._code_grant(app, form)
            install = self.refresh_tokens.get(form.get("refresh_token", ""))
            if install is None or install.app_id != app.app_id or not install.active:
                raise bad_request("missing or unknown refresh token", "BAD_REFRESH_TOKEN")
            return self._token_answer(install, form["refresh_token"])

    def _code_grant(self, app: Any, form: dict[str, str]) -> dict[str, Any]:
        entry = self.codes.get(form.get("code", ""))
        if entry is None or entry[0] != app.app_id or entry[4] < now_ms():
            raise bad_request("missing or unknown auth code", "BAD_AUTH_CODE")
        if form.get("redirect_uri") != entry[2]:
            raise bad_request("redirect_uri does not match the one the code was issued for", "BAD_REDIRECT_URI")
        del self.codes[form["code"]]  # single use
        install = self.install(app.app_id, entry[1], entry[3])
        refresh = self._secret("na1-")
        install.refresh_tokens.add(refresh)
        self.refresh_tokens[refresh] = install
        return self._token_answer(install, refresh)

    def _token_answer(self, install: Any, refresh: str) -> dict[str, Any]:
        portal = self.portal(install.hub_id)
        access = portal.create_token(install.scopes, kind="oauth", app_id=install.app_id, user_id=install.user_id)
        install.access_tokens.add(access)
        # token_use, hub_id, scopes and user_id: the spec's AccessTokenResponse
        return {"token_type": "bearer", "refresh_token": refresh, "access_token": access,
                "expires_in": int(portal.oauth_lifetime_s), "token_use": "access_token", "hub_id": install.hub_id,
                "user_id": install.user_id, "scopes": sorted(install.scopes)}

    # ------------------------------------------------------------ introspection

    def _find_token(self, value: str) -> tuple[Portal, Token] | None:
        for portal in self.portals.values():
            token = portal.tokens.get(value)
            if token is not None:
                return portal, token
        return None

    def access_token_info(self, value: str) -> dict[str, Any]:
        """GET /oauth/v1/access-tokens/{token} for an OAuth access token (oauth-v1.json AccessTokenInfoResponse)."""
        with self.lock:
            found = self._find_token(value)
            if found is None or found[1].kind != "oauth" or (found[1].expires_ms or 0) <= now_ms():
                raise _not_found("access token")
            portal, token = found
            app = self.apps.get(token.app_id)
            user_id, email = self.user_of(token.user_id, portal.portal_id)
            return {"token": value, "user": email, "hub_domain": self.hub_domain(portal.portal_id),
                    "scopes": sorted(token.scopes), "hub_id": portal.portal_id, "app_id": token.app_id,
                    "expires_in": max(0, (token.expires_ms - now_ms()) // 1000), "user_id": user_id,
                    "token_type": "access", "is_private_distribution": bool(app and app.distribution == "private")}

    def refresh_token_info(self, value: str) -> dict[str, Any]:
        """GET /oauth/v1/refresh-tokens/{token} (oauth-v1.json RefreshTokenInfoResponse)."""
        with self.lock:
            install = self.refresh_tokens.get(value)
            if install is None or not install.active:
                raise _not_found("refresh token")
            user_id, email = self.user_of(install.user_id, install.hub_id)
            return {"token": value, "user": email, "hub_domain": self.hub_domain(install.hub_id),
                    "scopes": sorted(install.scopes), "hub_id": install.hub_id,
                    "client_id": self.apps[install.app_id].client_id, "user_id": user_id, "token_type": "refresh"}

    def private_token_info(self, value: str) -> dict[str, Any]:
        """POST /oauth/v2/private-apps/get/access-token-info {"tokenKey"}: private-app (and Service Key) tokens."""
        with self.lock:
            found = self._find_token(value)
            if found is None or found[1].kind == "oauth":
                raise _not_found("private app access token")
            portal, token = found
            user_id, _ = self.user_of(token.user_id, portal.portal_id)
            return {"userId": user_id, "hubId": portal.portal_id, "appId": token.app_id,
                    "scopes": sorted(token.scopes)}

    def delete_refresh_token(self, value: str) -> None:
        """DELETE /oauth/v1/refresh-tokens/{token}; deleting an install's last one uninstalls the app from the portal
        (its access tokens stop working and its webhooks stop)."""
        with self.lock:
            install = self.refresh_tokens.pop(value, None)
            if install is None:
                raise _not_found("refresh token")
            install.refresh_tokens.discard(value)
            if not install.refresh_tokens:  # the app's last grant on the portal: it is uninstalled
                self.uninstall(install.app_id, install.hub_id)
