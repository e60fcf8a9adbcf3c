"""Reading a developer-platform project (2025.2): the example app, and what HubSpot's format refuses (file, field)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable

import pytest

from connector.sandbox.platform import ProjectError, load_project
from tests.sandbox.receiver import EXAMPLE_APP, project_pointing_at

APP = "src/app/app-hsmeta.json"
HOOKS = "src/app/webhooks/webhooks-hsmeta.json"
ACTION = "src/app/workflow-actions/score-record-hsmeta.json"
CARD = "src/app/cards/health-card-hsmeta.json"


def test_the_example_project_reads_into_an_app():
    app = load_project(EXAMPLE_APP)
    assert (app.project_name, app.platform_version, app.uid, app.auth_type) == \
        ("retention-app", "2025.2", "retention_app", "oauth")
    assert app.redirect_urls == ("https://retention-app.example.com/oauth/callback",)
    assert "crm.objects.companies.write" in app.required_scopes and "crm.lists.write" in app.optional_scopes
    assert app.fetch_urls == ("https://retention-app.example.com/api",)
    hooks = app.webhooks
    assert hooks.target_url == "https://retention-app.example.com/webhooks" and hooks.max_concurrent_requests == 10
    types = [(s.subscription_type, s.object_type_id, s.property_name, s.active) for s in hooks.subscriptions]
    assert ("object.propertyChange", "0-2", "product_logins_30d", True) in types
    assert ("contact.associationChange", "0-1", None, True) in types
    assert ("deal.propertyChange", "0-3", "dealstage", False) in types
    action = app.actions[0]
    assert action.uid == "score_record" and action.object_type_ids == ("0-2", "0-1")
    assert [f.typeDefinition.name for f in action.output_fields] == ["health_score", "health_band"]
    assert action.requested_properties == ("name", "email")
    assert app.cards[0].location == "crm.record.tab" and app.cards[0].object_types == ("0-2",)


def _json_edit(rel: str, change: Callable[[dict], Any]) -> Callable[[Path], None]:
    def edit(root: Path) -> None:
        path = root / rel
        data = json.loads(path.read_text())
        change(data)
        path.write_text(json.dumps(data))
    return edit


def _set(*keys_and_value: Any) -> Callable[[dict], None]:
    *keys, value = keys_and_value

    def change(data: dict) -> None:
        for key in keys[:-1]:
            data = data[key]
        data[keys[-1]] = value
    return change


def _write(rel: str, text: str) -> Callable[[Path], None]:
    def edit(root: Path) -> None:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return edit


def _remove(rel: str) -> Callable[[Path], None]:
    return lambda root: (root / rel).unlink()


REFUSALS = [
    pytest.param(_json_edit("hsproject.json", _set("platformVersion", "2023.1")), "hsproject.json",
                 "platformVersion", "must be one of 2025.2", id="old-platform-version"),
    pytest.param(_json_edit("hsproject.json", lambda d: d.pop("srcDir")), "hsproject.json", "srcDir",
                 "Field required", id="no-srcDir"),
    pytest.param(_write("hsproject.json", "{not json"), "hsproject.json", "", "not valid JSON", id="bad-json"),
    pytest.param(_remove(APP), "src/app", "", "exactly one config of type app", id="no-app"),
    pytest.param(_json_edit(APP, _set("config", "distribution", "public")), APP, "config.distribution",
                 "'private' or 'marketplace'", id="bad-distribution"),
    pytest.param(_json_edit(APP, lambda d: d["config"].update(distribution="marketplace", auth={
        **d["config"]["auth"], "type": "static"})), APP, "config", "marketplace must use oauth",
        id="marketplace-static"),
    pytest.param(_json_edit(APP, _set("config", "auth", "redirectUrls", [])), APP, "config.auth",
                 "needs at least one redirect URL", id="oauth-without-redirect"),
    pytest.param(_json_edit(APP, _set("config", "auth", "redirectUrls", ["http://app.example/cb"])), APP,
                 "config.auth.redirectUrls", "must be an https URL", id="redirect-not-https"),
    pytest.param(_json_edit(APP, _set("config", "auth", "requiredScopes", ["oauth", "crm.objects.widgets.read"])),
                 APP, "config.auth.requiredScopes.1", "unknown scope 'crm.objects.widgets.read'", id="unknown-scope"),
    pytest.param(_json_edit(APP, _set("config", "auth", "requiredScopes", [])), APP, "config.auth.requiredScopes",
                 "at least 1 item", id="no-scopes"),
    pytest.param(_json_edit(APP, _set("config", "auth", "optionalScopes", ["oauth"])), APP, "config.auth",
                 "both required and optional", id="scope-required-and-optional"),
    pytest.param(_json_edit(APP, _set("config", "permittedUrls", "fetch", ["ftp://files.example"])), APP,
                 "config.permittedUrls.fetch", "must be an https URL", id="fetch-url-not-https"),
    pytest.param(_json_edit(APP, _set("uid", "retention app!")), APP, "uid", "letters, digits", id="bad-uid"),
    pytest.param(_json_edit(HOOKS, _set("uid", "retention_app")), HOOKS, "uid", "already the uid of",
                 id="duplicate-uid"),
    pytest.param(_json_edit(HOOKS, _set("config", "settings", "maxConcurrentRequests", 2)), HOOKS,
                 "config.settings.maxConcurrentRequests", "greater than or equal to 5", id="concurrency-below-5"),
    pytest.param(_json_edit(HOOKS, lambda d: d["config"]["settings"].pop("targetUrl")), HOOKS,
                 "config.settings.targetUrl", "Field required", id="no-target-url"),
    pytest.param(_json_edit(HOOKS, _set("config", "subscriptions", "crmObjects", [
        {"subscriptionType": "object.propertyChange", "objectType": "company"}])), HOOKS,
        "config.subscriptions.crmObjects.0.propertyName", "names its property", id="property-change-without-name"),
    pytest.param(_json_edit(HOOKS, _set("config", "subscriptions", "crmObjects", [
        {"subscriptionType": "object.creation", "objectType": "widget"}])), HOOKS,
        "config.subscriptions.crmObjects.0.objectType", "unknown object type 'widget'", id="unknown-object"),
    pytest.param(_json_edit(HOOKS, _set("config", "subscriptions", "legacyCrmObjects", [
        {"subscriptionType": "contact.exploded"}])), HOOKS,
        "config.subscriptions.legacyCrmObjects.0.subscriptionType", "event must be one of", id="unknown-event"),
    pytest.param(_json_edit(HOOKS, _set("config", "subscriptions", "crmObjects", [
        {"subscriptionType": "object.creation", "objectType": "product"}])), HOOKS,
        "config.subscriptions.crmObjects.0", "scopes must include one of ['crm.objects.products.read'",
        id="subscription-without-scope"),
    pytest.param(lambda root: (root / HOOKS).rename(root / "src/app/webhooks-hsmeta.json"),
                 "src/app/webhooks-hsmeta.json", "type", "must be in src/app/webhooks/", id="webhooks-wrong-folder"),
    pytest.param(_json_edit(ACTION, lambda d: d["config"]["labels"].pop("en")), ACTION, "config.labels",
                 "English labels", id="action-without-english-labels"),
    pytest.param(_json_edit(ACTION, _set("config", "objectTypes", [])), ACTION, "config.objectTypes",
                 "at least 1 item", id="action-without-object-types"),
    pytest.param(_json_edit(ACTION, lambda d: d["config"].pop("actionUrl")), ACTION, "config.actionUrl",
                 "Field required", id="action-without-url"),
    pytest.param(_json_edit(ACTION, lambda d: d["config"]["outputFields"].append(d["config"]["outputFields"][0])),
                 ACTION, "config.outputFields", "field names must be unique", id="duplicate-output-field"),
    pytest.param(_json_edit(ACTION, _set("config", "inputFields", 0, "typeDefinition", "type", "float")), ACTION,
                 "config.inputFields.0.typeDefinition.type", "Input should be", id="bad-field-type"),
    pytest.param(_remove("src/app/cards/HealthCard.jsx"), CARD, "config.entrypoint", "does not exist",
                 id="card-entrypoint-missing"),
]


@pytest.mark.parametrize("edit, file, field, reason", REFUSALS)
def test_what_hubspots_format_refuses_is_refused_naming_file_and_field(tmp_path, edit, file, field, reason):
    root = project_pointing_at(tmp_path, "https://retention-app.example.com", edit)
    with pytest.raises(ProjectError) as refused:
        load_project(root)
    assert (refused.value.file, refused.value.field) == (file, field), str(refused.value)
    assert reason in refused.value.reason
    assert str(refused.value).startswith(file)


def test_loopback_http_urls_are_accepted_for_local_backends(tmp_path):
    app = load_project(project_pointing_at(tmp_path, "http://127.0.0.1:9999"))
    assert app.webhooks.target_url == "http://127.0.0.1:9999/webhooks"
    assert app.actions[0].action_url == "http://127.0.0.1:9999/actions/score"


def test_component_types_not_simulated_are_kept_by_name(tmp_path):
    settings = json.dumps({"uid": "settings_page", "type": "settings", "config": {"entrypoint": "/app/s.jsx"}})
    app = load_project(project_pointing_at(tmp_path, "https://retention-app.example.com",
                                           _write("src/app/settings/settings-hsmeta.json", settings)))
    assert app.ignored == ("settings_page",)


def test_a_missing_folder_is_refused():
    with pytest.raises(ProjectError, match="not a folder"):
        load_project("/nonexistent/project")
