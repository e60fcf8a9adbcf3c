"""Read a HubSpot developer-platform project (2025.2: ``hsproject.json`` + ``src/app/**/*-hsmeta.json``) into an app.

What is checked is what HubSpot's upload refuses, as far as its developer docs say (API-NOTES §12); every refusal
names the file and the field. Component types the sandbox does not simulate (settings pages, app objects, …) are
kept by name in ``AppDefinition.ignored`` rather than refused, since HubSpot accepts them.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

PLATFORM_VERSIONS = ("2025.2",)
# type -> the folder under src/app/ where HubSpot expects its configs
COMPONENT_FOLDERS = {"app": "", "webhooks": "webhooks", "workflow-action": "workflow-actions", "card": "cards"}
_UID = re.compile(r"^[A-Za-z0-9_.\-]{1,64}$")
_LOOPBACK = {"localhost", "127.0.0.1", "::1"}

# Object types an app may name (HubSpot's standard ones: singular name -> objectTypeId), whether or not this sandbox
# serves them; a subscription to a type the sandbox lacks is accepted and simply never fires.
HUBSPOT_OBJECT_TYPES = {
    "contact": "0-1", "company": "0-2", "deal": "0-3", "ticket": "0-5", "product": "0-7", "line_item": "0-8",
    "quote": "0-14", "feedback_submission": "0-19", "task": "0-27", "note": "0-46", "meeting": "0-47", "call": "0-48",
    "email": "0-49", "invoice": "0-53", "subscription": "0-69", "payment": "0-101", "lead": "0-136",
}
_PLURAL = {"company": "companies", "feedback_submission": "feedback_submissions"}
OBJECT_EVENTS = ("creation", "deletion", "propertyChange", "associationChange", "merge", "restore")
_OTHER_SCOPES = frozenset({"oauth", "e-commerce", "automation", "crm.lists.read", "crm.lists.write", "tickets",
                          "timeline", "crm.objects.owners.read", "crm.objects.users.read", "crm.objects.users.write",
                          "settings.users.read", "settings.users.teams.read", "crm.pipelines.orders.read",
                          "crm.objects.custom.read", "crm.objects.custom.write", "crm.schemas.custom.read"})
# Scopes an app may ask for: the CRM object and schema scopes of HubSpot's standard types, and the others above.
KNOWN_SCOPES = _OTHER_SCOPES | frozenset(
    f"crm.{kind}.{_PLURAL.get(name, name + 's')}.{rw}" for name in HUBSPOT_OBJECT_TYPES
    for kind in ("objects", "schemas") for rw in ("read", "write"))


class ProjectError(ValueError):
    """A project HubSpot would refuse: ``file`` and ``field`` say where, ``reason`` what."""

    def __init__(self, file: str, field: str, reason: str):
        super().__init__(f"{file}: {field}: {reason}" if field else f"{file}: {reason}")
        self.file, self.field, self.reason = file, field, reason


def object_type_id(name: str) -> str | None:
    """contact / contacts / CONTACT / 0-1 -> "0-1"; None if HubSpot has no such standard type."""
    text = name.strip()
    if text in HUBSPOT_OBJECT_TYPES.values():
        return text
    key = text.lower()
    if key in HUBSPOT_OBJECT_TYPES:
        return HUBSPOT_OBJECT_TYPES[key]
    for singular in HUBSPOT_OBJECT_TYPES:
        if key == _PLURAL.get(singular, singular + "s"):
            return HUBSPOT_OBJECT_TYPES[singular]
    return None


def singular_of(type_id: str) -> str:
    return next(name for name, tid in HUBSPOT_OBJECT_TYPES.items() if tid == type_id)


def _check_url(url: str, what: str) -> str:
    parts = urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return url
    if parts.scheme == "http" and parts.hostname in _LOOPBACK:
        return url  # the sandbox serves local backends (HubSpot reaches them through `hs project dev`)
    raise ValueError(f"{what} must be an https URL (http only for localhost in the sandbox), got {url!r}")


# ---------------------------------------------------------------- configs (pydantic: HubSpot's field names)


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)


class ProjectFile(_Model):
    name: str = Field(min_length=1)
    srcDir: str = Field(min_length=1)
    platformVersion: str

    @field_validator("platformVersion")
    @classmethod
    def _version(cls, v: str) -> str:
        if v not in PLATFORM_VERSIONS:
            raise ValueError(f"must be one of {', '.join(PLATFORM_VERSIONS)} (the format this sandbox reads), "
                             f"got {v!r}")
        return v


class Auth(_Model):
    type: Literal["static", "oauth"]
    redirectUrls: list[str] = []
    requiredScopes: list[str] = Field(min_length=1)
    optionalScopes: list[str] = []
    conditionallyRequiredScopes: list[str] = []

    @field_validator("redirectUrls")
    @classmethod
    def _urls(cls, v: list[str]) -> list[str]:
        return [_check_url(u, "a redirect URL") for u in v]

    @model_validator(mode="after")
    def _oauth_needs_redirect(self) -> "Auth":
        if self.type == "oauth" and not self.redirectUrls:
            raise ValueError("redirectUrls: an app with OAuth needs at least one redirect URL")
        both = set(self.requiredScopes) & set(self.optionalScopes)
        if both:
            raise ValueError(f"scopes both required and optional: {sorted(both)}")
        return self


class PermittedUrls(_Model):
    fetch: list[str] = []
    iframe: list[str] = []
    img: list[str] = []

    @field_validator("fetch")
    @classmethod
    def _urls(cls, v: list[str]) -> list[str]:
        return [_check_url(u, "a permitted fetch URL") for u in v]


class AppConfig(_Model):
    name: str = Field(min_length=1, max_length=200)
    description: str = ""
    distribution: Literal["private", "marketplace"]
    auth: Auth
    permittedUrls: PermittedUrls = PermittedUrls()

    @model_validator(mode="after")
    def _marketplace_is_oauth(self) -> "AppConfig":
        if self.distribution == "marketplace" and self.auth.type != "oauth":
            raise ValueError("auth.type: an app for the marketplace must use oauth, not static auth")
        return self


class WebhookSettings(_Model):
    targetUrl: str
    maxConcurrentRequests: int = Field(default=10, ge=5)  # HubSpot's minimum concurrency is 5

    @field_validator("targetUrl")
    @classmethod
    def _url(cls, v: str) -> str:
        return _check_url(v, "targetUrl")


class CrmSubscription(_Model):
    subscriptionType: str
    objectType: str | None = None
    propertyName: str | None = None
    active: bool = True


class Subscriptions(_Model):
    crmObjects: list[CrmSubscription] = []
    legacyCrmObjects: list[CrmSubscription] = []
    hubEvents: list[CrmSubscription] = []


class WebhooksConfig(_Model):
    settings: WebhookSettings
    subscriptions: Subscriptions = Subscriptions()


class TypeDefinition(_Model):
    name: str = Field(min_length=1)
    type: Literal["string", "number", "bool", "date", "datetime", "enumeration", "phone_number", "object_coordinates",
                  "json"]
    fieldType: str | None = None
    options: list[dict[str, Any]] = []


class InputField(_Model):
    typeDefinition: TypeDefinition
    supportedValueTypes: list[Literal["STATIC_VALUE", "OBJECT_PROPERTY", "FIELD_DATA"]] = ["STATIC_VALUE"]
    isRequired: bool = False


class OutputField(_Model):
    typeDefinition: TypeDefinition


class ActionLabels(_Model):
    actionName: str = Field(min_length=1)
    actionDescription: str = ""
    actionCardContent: str = ""
    inputFieldLabels: dict[str, str] = {}
    outputFieldLabels: dict[str, str] = {}


class ActionConfig(_Model):
    actionUrl: str
    isPublished: bool = False
    objectTypes: list[str] = Field(min_length=1)
    inputFields: list[InputField] = []
    outputFields: list[OutputField] = []
    labels: dict[str, ActionLabels]
    objectRequestOptions: dict[str, Any] = {}

    @field_validator("actionUrl")
    @classmethod
    def _url(cls, v: str) -> str:
        return _check_url(v, "actionUrl")

    @field_validator("objectTypes")
    @classmethod
    def _types(cls, v: list[str]) -> list[str]:
        for name in v:
            if object_type_id(name) is None:
                raise ValueError(f"{name!r} is not an object type HubSpot knows (e.g. CONTACT, COMPANY, 0-1)")
        return v

    @field_validator("labels")
    @classmethod
    def _english(cls, v: dict[str, ActionLabels]) -> dict[str, ActionLabels]:
        if "en" not in v:
            raise ValueError("English labels (labels.en with actionName) are required")
        return v

    @field_validator("inputFields", "outputFields")
    @classmethod
    def _unique(cls, v: list[Any]) -> list[Any]:
        names = [f.typeDefinition.name for f in v]
        if len(set(names)) != len(names):
            raise ValueError(f"field names must be unique, got {names}")
        return v


class CardConfig(_Model):
    name: str = Field(min_length=1)
    location: str
    entrypoint: str | None = None
    objectTypes: list[Any] = []


class Component(_Model):
    uid: str
    type: str
    config: dict[str, Any]

    @field_validator("uid")
    @classmethod
    def _uid(cls, v: str) -> str:
        if not _UID.match(v):
            raise ValueError("must be 1 to 64 letters, digits, '_', '-' or '.'")
        return v


# ---------------------------------------------------------------- what the sandbox registers


@dataclass(frozen=True)
class SubscriptionDef:
    object_type_id: str
    event: str  # one of OBJECT_EVENTS
    property_name: str | None
    active: bool
    legacy: bool  # legacyCrmObjects ("contact.propertyChange") rather than crmObjects ("object.propertyChange")

    @property
    def subscription_type(self) -> str:
        return f"{singular_of(self.object_type_id)}.{self.event}" if self.legacy else f"object.{self.event}"


@dataclass(frozen=True)
class WebhooksDef:
    uid: str
    target_url: str
    max_concurrent_requests: int
    subscriptions: tuple[SubscriptionDef, ...]


@dataclass(frozen=True)
class ActionDef:
    uid: str
    action_url: str
    object_type_ids: tuple[str, ...]
    input_fields: tuple[InputField, ...]
    output_fields: tuple[OutputField, ...]
    labels: dict[str, ActionLabels]
    requested_properties: tuple[str, ...]
    published: bool


@dataclass(frozen=True)
class CardDef:
    uid: str
    name: str
    location: str
    object_types: tuple[str, ...]


@dataclass(frozen=True)
class AppDefinition:
    project_name: str
    platform_version: str
    uid: str
    name: str
    distribution: str
    auth_type: str
    redirect_urls: tuple[str, ...]
    required_scopes: tuple[str, ...]
    optional_scopes: tuple[str, ...]
    fetch_urls: tuple[str, ...]
    webhooks: WebhooksDef | None
    actions: tuple[ActionDef, ...]
    cards: tuple[CardDef, ...]
    ignored: tuple[str, ...] = ()  # uids of components of types the sandbox does not simulate


# ---------------------------------------------------------------- reading


def _load_json(path: Path, root: Path) -> Any:
    rel = str(path.relative_to(root))
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ProjectError(rel, "", "file not found") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ProjectError(rel, "", f"not valid JSON ({exc})") from None


def _parse(model: type[BaseModel], data: Any, file: str, prefix: str = "") -> Any:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = ".".join(str(p) for p in (prefix, *first["loc"]) if p != "")
        raise ProjectError(file, loc, first["msg"].removeprefix("Value error, ")) from None


def load_project(directory: str | Path, more_scopes: frozenset[str] = frozenset()) -> AppDefinition:
    """Read and check a project folder; ``more_scopes`` adds to KNOWN_SCOPES (the sandbox's own scope names)."""
    root = Path(directory).resolve()
    if not root.is_dir():
        raise ProjectError(str(directory), "", "not a folder")
    project = _parse(ProjectFile, _load_json(root / "hsproject.json", root), "hsproject.json")
    app_dir = root / project.srcDir / "app"
    if not app_dir.is_dir():
        raise ProjectError("hsproject.json", "srcDir", f"{project.srcDir}/app/ does not exist")
    components: dict[str, list[tuple[str, Component]]] = {}
    uids: dict[str, str] = {}
    for path in sorted(app_dir.rglob("*-hsmeta.json")):
        rel = str(path.relative_to(root))
        component = _parse(Component, _load_json(path, root), rel)
        if component.uid in uids:
            raise ProjectError(rel, "uid", f"{component.uid!r} is already the uid of {uids[component.uid]}")
        uids[component.uid] = rel
        folder = COMPONENT_FOLDERS.get(component.type)
        if folder is not None and path.parent != (app_dir / folder if folder else app_dir):
            where = f"{project.srcDir}/app/{folder + '/' if folder else ''}"
            raise ProjectError(rel, "type", f"a {component.type} config must be in {where}")
        components.setdefault(component.type, []).append((rel, component))
    apps = components.get("app", [])
    if len(apps) != 1:
        raise ProjectError(f"{project.srcDir}/app", "", f"exactly one config of type app is needed, found {len(apps)}")
    app_file, app_component = apps[0]
    app = _parse(AppConfig, app_component.config, app_file, "config")
    scopes = KNOWN_SCOPES | more_scopes
    for kind, listed in (("requiredScopes", app.auth.requiredScopes), ("optionalScopes", app.auth.optionalScopes)):
        for i, scope in enumerate(listed):
            if scope not in scopes:
                raise ProjectError(app_file, f"config.auth.{kind}.{i}", f"unknown scope {scope!r}")
    granted = set(app.auth.requiredScopes) | set(app.auth.optionalScopes)
    hooks = components.get("webhooks", [])
    if len(hooks) > 1:
        raise ProjectError(hooks[1][0], "type", "an app has at most one webhooks config")
    webhooks = _webhooks(*hooks[0], granted) if hooks else None
    actions = tuple(_action(rel, c) for rel, c in components.get("workflow-action", []))
    cards = tuple(_card(rel, c, root / project.srcDir) for rel, c in components.get("card", []))
    ignored = tuple(c.uid for t, items in components.items() if t not in COMPONENT_FOLDERS for _, c in items)
    return AppDefinition(
        project.name, project.platformVersion, app_component.uid, app.name, app.distribution, app.auth.type,
        tuple(app.auth.redirectUrls), tuple(app.auth.requiredScopes), tuple(app.auth.optionalScopes),
        tuple(app.permittedUrls.fetch), webhooks, actions, cards, ignored)


def _webhooks(rel: str, component: Component, granted: set[str]) -> WebhooksDef:
    config = _parse(WebhooksConfig, component.config, rel, "config")
    subs: list[SubscriptionDef] = []
    for group, legacy in (("crmObjects", False), ("legacyCrmObjects", True)):
        for i, item in enumerate(getattr(config.subscriptions, group)):
            where = f"config.subscriptions.{group}.{i}"
            prefix, _, event = item.subscriptionType.partition(".")
            if legacy:
                type_id = object_type_id(prefix)
                if type_id is None:
                    raise ProjectError(rel, f"{where}.subscriptionType", f"unknown object in {item.subscriptionType!r}")
            else:
                if prefix != "object":
                    raise ProjectError(rel, f"{where}.subscriptionType",
                                       f"crmObjects take object.<event>, got {item.subscriptionType!r}")
                type_id = object_type_id(item.objectType or "")
                if type_id is None:
                    raise ProjectError(rel, f"{where}.objectType", f"unknown object type {item.objectType!r}")
            if event not in OBJECT_EVENTS:
                raise ProjectError(rel, f"{where}.subscriptionType",
                                   f"event must be one of {', '.join(OBJECT_EVENTS)}, got {event!r}")
            if event == "propertyChange" and not item.propertyName:
                raise ProjectError(rel, f"{where}.propertyName", "a propertyChange subscription names its property")
            needed = _read_scopes(type_id)
            if not granted & needed:
                raise ProjectError(rel, where, f"the app's scopes must include one of {sorted(needed)} to subscribe "
                                               f"to {singular_of(type_id)} events")
            subs.append(SubscriptionDef(type_id, event, item.propertyName, item.active, legacy))
    return WebhooksDef(component.uid, config.settings.targetUrl, config.settings.maxConcurrentRequests, tuple(subs))


def _read_scopes(type_id: str) -> set[str]:
    singular = singular_of(type_id)
    plural = _PLURAL.get(singular, singular + "s")
    legacy = {"tickets"} if singular == "ticket" else set()  # tickets' older scope still grants reading them
    return {f"crm.objects.{plural}.read", f"crm.objects.{plural}.write"} | legacy


def _action(rel: str, component: Component) -> ActionDef:
    config = _parse(ActionConfig, component.config, rel, "config")
    props = config.objectRequestOptions.get("properties") or []
    return ActionDef(component.uid, config.actionUrl, tuple(object_type_id(t) for t in config.objectTypes),
                     tuple(config.inputFields), tuple(config.outputFields), config.labels,
                     tuple(str(p) for p in props), config.isPublished)


def _card(rel: str, component: Component, src: Path) -> CardDef:
    config = _parse(CardConfig, component.config, rel, "config")
    if config.entrypoint and not (src / config.entrypoint.lstrip("/")).exists():
        raise ProjectError(rel, "config.entrypoint", f"{config.entrypoint} does not exist")
    names = []
    for i, item in enumerate(config.objectTypes):
        name = item.get("name") if isinstance(item, dict) else item
        if not isinstance(name, str) or object_type_id(name) is None:
            raise ProjectError(rel, f"config.objectTypes.{i}", f"unknown object type {item!r}")
        names.append(object_type_id(name))
    return CardDef(component.uid, config.name, config.location, tuple(names))
