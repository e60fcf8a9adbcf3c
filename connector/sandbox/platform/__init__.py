"""HubSpot's side of an app, beside the portals: registered apps, their installs per portal, OAuth, webhooks,
workflow actions and card fetches.

``AppPlatform`` is a facade like ``Portal``: it owns the lock, the apps, the installs and the portals it serves (by
hub id), and takes its methods from one mixin per concern (``oauth``, ``actions``, ``fetches``); webhooks go through
its ``Dispatcher`` thread. An app is registered from its project folder (``project.load_project``) and installed on
a portal by hub id: OAuth installs on ``installing_hub_id`` (the portal that "clicks approve"), static-auth apps are
installed there at registration. Tokens an install gets are the portal's own tokens, so they act on that portal's
records with the install's scopes.

Lock order: the platform's lock may take a portal's lock, never the reverse; portal observers (``_on_change``) run
under the portal's lock and so read only snapshots and never take the platform's lock.
"""

from __future__ import annotations

import itertools
import random
import threading
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from connector.sandbox.platform.actions import ActionsMixin, Execution
from connector.sandbox.platform.fetches import FetchesMixin, FetchResult
from connector.sandbox.platform.oauth import OAuthMixin
from connector.sandbox.platform.project import (
    ActionDef, AppDefinition, ProjectError, SubscriptionDef, WebhooksDef, load_project,
)
from connector.sandbox.platform.signature import SignatureError, check_v3, sign_v3, signed_headers
from connector.sandbox.platform.webhooks import Attempt, Dispatcher, Target, events_for
from connector.sandbox.portal import ALL_SCOPES, ApiError, Change, Portal, bad_request, error_body, now_ms

__all__ = ["AppPlatform", "AppDefinition", "Attempt", "Execution", "FetchResult", "Install", "ProjectError",
           "RegisteredApp", "SignatureError", "check_v3", "load_project", "sign_v3", "signed_headers"]

FIRST_APP_ID = 3_000_001
FIRST_SUBSCRIPTION_ID = 1_001
FIRST_ACTION_ID = 5_001
DEFAULT_USER_ID = 9_000_001


@dataclass
class RegisteredApp:
    app_id: int
    uid: str
    name: str
    distribution: str
    auth_type: str  # static | oauth
    client_id: str
    client_secret: str = field(repr=False)
    redirect_urls: tuple[str, ...] = ()
    required_scopes: tuple[str, ...] = ()
    optional_scopes: tuple[str, ...] = ()
    fetch_urls: tuple[str, ...] = ()
    webhooks: WebhooksDef | None = None
    subscriptions: list[tuple[int, SubscriptionDef]] = field(default_factory=list)
    actions: dict[int, ActionDef] = field(default_factory=dict)
    builtin: bool = False  # a portal's built-in OAuth client (profile "oauth"), not from project files

    def action(self, key: str | int) -> tuple[int, ActionDef]:
        for definition_id, definition in self.actions.items():
            if str(key) in (str(definition_id), definition.uid):
                return definition_id, definition
        raise ApiError(404, error_body(f"App {self.app_id} has no workflow action {key!r}", "OBJECT_NOT_FOUND"))

    def to_json(self) -> dict[str, Any]:
        """What a developer sees of the app (the client secret is shown once, when the sandbox starts)."""
        return {"appId": self.app_id, "uid": self.uid, "name": self.name, "distribution": self.distribution,
                "authType": self.auth_type, "clientId": self.client_id, "redirectUrls": list(self.redirect_urls),
                "requiredScopes": list(self.required_scopes), "optionalScopes": list(self.optional_scopes),
                "permittedFetchUrls": list(self.fetch_urls),
                "webhooks": None if self.webhooks is None else {
                    "targetUrl": self.webhooks.target_url,
                    "subscriptions": [{"id": sid, "subscriptionType": s.subscription_type,
                                       "objectTypeId": s.object_type_id, "propertyName": s.property_name,
                                       "active": s.active} for sid, s in self.subscriptions]},
                "workflowActions": [{"id": did, "uid": d.uid, "actionUrl": d.action_url,
                                     "objectTypes": list(d.object_type_ids)} for did, d in self.actions.items()]}


@dataclass
class Install:
    app_id: int
    hub_id: int
    scopes: frozenset[str]
    user_id: int
    installed_ms: int
    active: bool = True
    refresh_tokens: set[str] = field(default_factory=set, repr=False)
    access_tokens: set[str] = field(default_factory=set, repr=False)  # minted for it (OAuth, or the static token)


class AppPlatform(OAuthMixin, ActionsMixin, FetchesMixin):
    """Apps and installs across the sandbox's portals."""

    def __init__(self, *, seed: int = 0, time_scale: float = 1.0, batch_window_s: float = 0.05,
                 installing_hub_id: int | None = None):
        self.lock = threading.RLock()
        self._rng = random.Random(f"platform-{seed}")
        self.portals: dict[int, Portal] = {}
        self.apps: dict[int, RegisteredApp] = {}
        self.installs: dict[tuple[int, int], Install] = {}
        self.codes: dict[str, tuple[int, int, str, frozenset[str], int]] = {}
        self.refresh_tokens: dict[str, Install] = {}
        self.executions: dict[str, Execution] = {}
        self._executions = 0
        self.workflow_id = 7_001  # the workflow the sandbox's action runs belong to
        self.installing_hub_id = installing_hub_id
        self._next_builtin = 1
        self._next_app = FIRST_APP_ID
        self._next_subscription = FIRST_SUBSCRIPTION_ID
        self._next_action = FIRST_ACTION_ID
        self._event_ids = itertools.count(1)
        # hub id -> ((app id, subscriptions), …) of active installs with webhooks: replaced whole, read lock-free
        self._hooks: dict[int, tuple[tuple[int, list[tuple[int, SubscriptionDef]]], ...]] = {}
        self._observers: dict[int, Any] = {}  # hub id -> this platform's observer of that portal
        self.dispatcher = Dispatcher(self._target, time_scale=time_scale, batch_window_s=batch_window_s, seed=seed)

    # ------------------------------------------------------------ portals

    def attach(self, portal: Portal) -> None:
        """Serve ``portal`` (by its hub id): its changes feed webhooks, and its built-in OAuth client is an app."""
        with self.lock:
            self.portals[portal.portal_id] = portal
            if self.installing_hub_id is None:
                self.installing_hub_id = portal.portal_id
            self._observers[portal.portal_id] = lambda change, hub=portal.portal_id: self._on_change(hub, change)
            client = portal.oauth_client
            app = RegisteredApp(self._next_builtin, f"builtin-{portal.portal_id}", "Sandbox OAuth client", "private",
                                "oauth", client.client_id, client.client_secret,
                                required_scopes=tuple(sorted(ALL_SCOPES)), builtin=True)
            self._next_builtin += 1
            self.apps[app.app_id] = app
            install = self._new_install(app.app_id, portal.portal_id, ALL_SCOPES)
            install.refresh_tokens.add(client.refresh_token)
            self.refresh_tokens[client.refresh_token] = install

    def portal(self, hub_id: int) -> Portal:
        found = self.portals.get(int(hub_id))
        if found is None:
            raise ApiError(404, error_body(f"No portal with hub id {hub_id} in this sandbox", "OBJECT_NOT_FOUND"))
        return found

    def set_installing_portal(self, hub_id: int) -> None:
        with self.lock:
            self.portal(hub_id)
            self.installing_hub_id = int(hub_id)

    # ------------------------------------------------------------ apps

    def register(self, project: AppDefinition | str | Path) -> RegisteredApp:
        """Register an app from its project folder (or a loaded definition); static-auth apps get installed on the
        installing portal at once."""
        definition = project if isinstance(project, AppDefinition) else load_project(project, self.known_scopes())
        with self.lock:
            app = RegisteredApp(self._next_app, definition.uid, definition.name, definition.distribution,
                                definition.auth_type, self._secret(""), self._secret(""), definition.redirect_urls,
                                definition.required_scopes, definition.optional_scopes, definition.fetch_urls,
                                definition.webhooks)
            self._next_app += 1
            for sub in definition.webhooks.subscriptions if definition.webhooks else ():
                app.subscriptions.append((self._next_subscription, sub))
                self._next_subscription += 1
            for action in definition.actions:
                app.actions[self._next_action] = action
                self._next_action += 1
            self.apps[app.app_id] = app
            if app.auth_type == "static" and self.installing_hub_id is not None:
                self.install(app.app_id, self.installing_hub_id)
            return app

    @staticmethod
    def known_scopes() -> frozenset[str]:
        return ALL_SCOPES

    def app(self, app_id: int | None = None) -> RegisteredApp:
        """The app with this id, or the only registered app when ``app_id`` is None."""
        with self.lock:
            if app_id is None:
                registered = [a for a in self.apps.values() if not a.builtin]
                if len(registered) != 1:
                    raise bad_request(f"name the app: {len(registered)} apps are registered")
                return registered[0]
            found = self.apps.get(int(app_id))
            if found is None:
                raise ApiError(404, error_body(f"No app with id {app_id}", "OBJECT_NOT_FOUND"))
            return found

    def app_by_client_id(self, client_id: str | None) -> RegisteredApp | None:
        return next((a for a in self.apps.values() if client_id and a.client_id == client_id), None)

    # ------------------------------------------------------------ installs

    def _new_install(self, app_id: int, hub_id: int, scopes: frozenset[str]) -> Install:
        install = Install(app_id, hub_id, frozenset(scopes), DEFAULT_USER_ID, now_ms())
        self.installs[(app_id, hub_id)] = install
        self._refresh_hooks(hub_id)
        return install

    def install(self, app_id: int, hub_id: int, scopes: frozenset[str] | None = None) -> Install:
        """Install (or re-install) an app on a portal; a static-auth app gets its static access token."""
        with self.lock:
            app = self.app(app_id)
            portal = self.portal(hub_id)
            granted = frozenset(scopes) if scopes is not None else \
                frozenset(app.required_scopes) | frozenset(app.optional_scopes)
            current = self.installs.get((app.app_id, portal.portal_id))
            if current is not None and current.active:
                current.scopes = granted
                self._refresh_hooks(portal.portal_id)
                return current
            install = self._new_install(app.app_id, portal.portal_id, granted)
            if app.auth_type == "static":
                install.access_tokens.add(portal.create_token(granted, kind="private", app_id=app.app_id,
                                                              user_id=install.user_id))
            return install

    def uninstall(self, app_id: int, hub_id: int) -> None:
        """The app leaves the portal: its tokens stop working, its webhooks and pending retries stop."""
        with self.lock:
            install = self.installs.get((int(app_id), int(hub_id)))
            if install is None or not install.active:
                raise ApiError(404, error_body(f"App {app_id} is not installed on portal {hub_id}",
                                               "OBJECT_NOT_FOUND"))
            install.active = False
            portal = self.portal(hub_id)
            for token in install.access_tokens:
                portal.revoke_token(token)
            for refresh in install.refresh_tokens:
                self.refresh_tokens.pop(refresh, None)
            install.access_tokens.clear()
            install.refresh_tokens.clear()
            self._refresh_hooks(install.hub_id)

    def require_install(self, app_id: int, hub_id: int) -> Install:
        install = self.installs.get((int(app_id), int(hub_id)))
        if install is None or not install.active:
            raise bad_request(f"App {app_id} is not installed on portal {hub_id}")
        return install

    def static_token(self, app_id: int, hub_id: int) -> str:
        """The access token of a static-auth app on a portal (HubSpot shows it in the app's settings)."""
        install = self.require_install(app_id, hub_id)
        return next(iter(install.access_tokens))

    def user_of(self, user_id: int | None, hub_id: int) -> tuple[int, str]:
        uid = user_id or DEFAULT_USER_ID
        return uid, f"user{uid}@portal-{hub_id}.sandbox.example"

    @staticmethod
    def hub_domain(hub_id: int) -> str:
        return f"portal-{hub_id}.sandbox.example"

    def _secret(self, prefix: str) -> str:
        return f"{prefix}{uuid.UUID(int=self._rng.getrandbits(128), version=4)}"

    # ------------------------------------------------------------ webhooks

    def _refresh_hooks(self, hub_id: int) -> None:
        hooks = tuple((install.app_id, self.apps[install.app_id].subscriptions)
                      for (app_id, hub), install in self.installs.items()
                      if hub == hub_id and install.active and self.apps[app_id].subscriptions)
        self._hooks[hub_id] = hooks
        # Observe the portal only while some app wants its events: its writes pay nothing otherwise.
        observers, mine = self.portals[hub_id].observers, self._observers[hub_id]
        if hooks and mine not in observers:
            observers.append(mine)
        elif not hooks and mine in observers:
            observers.remove(mine)

    def _on_change(self, hub_id: int, change: Change) -> None:
        for app_id, subscriptions in self._hooks.get(hub_id, ()):
            events = events_for(change, subscriptions, hub_id, app_id, self._event_ids.__next__)
            self.dispatcher.submit(app_id, hub_id, events)

    def _target(self, app_id: int, hub_id: int) -> Target | None:
        with self.lock:
            install = self.installs.get((app_id, hub_id))
            app = self.apps.get(app_id)
            if install is None or not install.active or app is None or app.webhooks is None:
                return None
            return Target(app.webhooks.target_url, app.client_secret, app.webhooks.max_concurrent_requests)

    def deliveries(self, app_id: int | None = None, hub_id: int | None = None) -> list[Attempt]:
        return [a for a in self.dispatcher.snapshot()
                if (app_id is None or a.app_id == app_id) and (hub_id is None or a.hub_id == hub_id)]

    def wait_idle(self, timeout_s: float = 10.0) -> bool:
        """Block until every webhook is delivered or given up (retries included); True when idle."""
        return self.dispatcher.wait_idle(timeout_s)

    def close(self) -> None:
        self.dispatcher.stop()
