"""Property definitions and groups: the built-ins from ``schema`` and custom-property CRUD."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from connector.sandbox import schema
from connector.sandbox.portal.common import ApiError, bad_request, error_body, int_param, iso, now_ms


FIELD_TYPES = {
    "string": {"text", "textarea", "file", "html", "phonenumber", "calculation_equation"},
    "phone_number": {"phonenumber", "text"},
    "number": {"number", "calculation_equation"},
    "enumeration": {"select", "radio", "checkbox", "booleancheckbox", "calculation_equation"},
    "date": {"date", "calculation_equation"},
    "datetime": {"date", "calculation_equation"},
    "bool": {"booleancheckbox", "calculation_equation"},
}
_NAME_RE = re.compile(r"^[a-z][a-z0-9_]*$")


@dataclass
class PropDef:
    name: str
    label: str
    type: str
    field_type: str
    group: str
    options: list[dict[str, Any]]
    hubspot_defined: bool
    read_only: bool
    unique: bool
    description: str
    display_order: int
    created_ms: int
    updated_ms: int
    archived: bool = False
    hidden: bool = False
    form_field: bool = True
    option_values: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        self.refresh_options()

    def refresh_options(self) -> None:
        self.option_values = frozenset(o["value"] for o in self.options)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "updatedAt": iso(self.updated_ms), "createdAt": iso(self.created_ms), "name": self.name,
            "label": self.label, "type": self.type, "fieldType": self.field_type, "description": self.description,
            "groupName": self.group, "options": self.options, "displayOrder": self.display_order,
            "calculated": False, "externalOptions": False, "archived": self.archived,
            "hasUniqueValue": self.unique, "hidden": self.hidden,
            "modificationMetadata": {"archivable": not self.hubspot_defined,
                                     "readOnlyDefinition": self.hubspot_defined, "readOnlyValue": self.read_only},
            "formField": self.form_field, "dataSensitivity": "non_sensitive",
        }
        if self.hubspot_defined:  # only built-ins carry the flag (§11)
            out["hubspotDefined"] = True
        if self.name == schema.OWNER_PROPERTY and self.hubspot_defined:  # options are the portal's owners
            out["externalOptions"] = True
            out["referencedObjectType"] = "OWNER"
        return out

    def to_v2_json(self) -> dict[str, Any]:
        """The legacy shape of ``/properties/v2/{objectType}/properties``: epoch-ms dates, ``readOnlyValue`` and
        ``readOnlyDefinition`` at the top, ``deleted`` for ``archived``, options with ``readOnly`` and
        ``doubleData``. Written from HubSpot's v1/v2 property docs as remembered; no recording confirms it."""
        return {
            "name": self.name, "label": self.label, "description": self.description, "groupName": self.group,
            "type": self.type, "fieldType": self.field_type,
            "options": [{"label": o["label"], "value": o["value"], "displayOrder": o.get("displayOrder", i),
                         "hidden": o.get("hidden", False), "description": o.get("description"), "readOnly": False,
                         "doubleData": 0.0} for i, o in enumerate(self.options)],
            "createdAt": self.created_ms, "updatedAt": self.updated_ms, "createdUserId": None,
            "updatedUserId": None, "displayOrder": self.display_order, "formField": self.form_field,
            "readOnlyValue": self.read_only, "readOnlyDefinition": self.hubspot_defined, "hidden": self.hidden,
            "mutableDefinitionNotDeletable": self.hubspot_defined, "calculated": False, "externalOptions": False,
            "deleted": self.archived, "displayMode": "current_value", "hasUniqueValue": self.unique,
            # the v2 serializer writes the flag as null for custom properties, as v3 omits it (§11)
            "hubspotDefined": True if self.hubspot_defined else None,
            "showCurrencySymbol": None, "currencyPropertyName": None, "numberDisplayHint": None,
            "textDisplayHint": None, "optionsAreMutable": None, "referencedObjectType": None,
            "searchableInGlobalSearch": False, "isCustomizedDefault": False, "favorited": False,
            "favoritedOrder": -1,
        }


class PropertiesMixin:
    """Property definitions and groups of every object type.

    A mixin of ``Portal``, which owns ``lock`` and the state these methods use.
    """

    def _load_definitions(self) -> None:
        created = 1_420_070_400_000  # 2015-01-01: built-ins predate any seeded record
        for object_type, props in schema.PROPERTIES.items():
            defs: dict[str, PropDef] = {}
            groups: dict[str, dict[str, Any]] = {}
            for order, p in enumerate(props):
                options = [{"label": o.replace("_", " ").capitalize() if p.type != "bool" else o.capitalize(),
                            "value": o, "displayOrder": i, "hidden": False} for i, o in enumerate(p.options)]
                defs[p.name] = PropDef(p.name, p.label, p.type, p.field_type, p.group, options, p.hubspot_defined,
                                       p.read_only, p.has_unique_value, p.description, order, created, created)
                if p.group not in groups:
                    groups[p.group] = {"name": p.group, "label": p.group.replace("_", " ").capitalize(),
                                       "displayOrder": len(groups), "archived": False}
            self.properties[object_type] = defs
            self.groups[object_type] = groups
            self.stores[object_type].unique = {name: {} for name, d in defs.items() if d.unique}

    def create_property(self, object_type: str, body: Any) -> PropDef:
        with self.lock:
            defn = self._property_from(object_type, body)
            existing = self.properties[object_type].get(defn.name)
            if existing is not None and not existing.archived:
                raise ApiError(409, error_body(f"A property named '{defn.name}' already exists.",
                                               "OBJECT_ALREADY_EXISTS",
                                               subCategory="Properties.PROPERTY_WITH_NAME_EXISTS",
                                               context={"name": [defn.name]}))
            self.properties[object_type][defn.name] = defn
            if defn.unique:
                self.stores[object_type].unique.setdefault(defn.name, {})
            return defn

    @staticmethod
    def check_property_enums(inputs: list[dict[str, Any]]) -> None:
        """A type or fieldType outside the spec's enums fails the whole batch body, as JSON that does not
        deserialize does (API-NOTES §11), not one input."""
        field_types = set().union(*FIELD_TYPES.values())
        for item in inputs:
            kind, field_type = item.get("type"), item.get("fieldType")
            if (kind is not None and kind not in FIELD_TYPES) or (field_type is not None
                                                                  and field_type not in field_types):
                raise bad_request(f"Invalid input JSON: type {kind!r} / fieldType {field_type!r} is not one of "
                                  f"the allowed values", None)

    def _property_from(self, object_type: str, body: Any) -> PropDef:
        if not isinstance(body, dict):
            raise bad_request("Invalid JSON input: a request body was expected, but none found")
        missing = [k for k in ("name", "label", "type", "fieldType", "groupName") if not body.get(k)]
        if missing:
            raise bad_request(f"Missing required fields: {', '.join(missing)}",
                              context={k: ["required"] for k in missing})
        wrong = [k for k in ("name", "label", "type", "fieldType", "groupName") if not isinstance(body[k], str)]
        if wrong:
            raise bad_request(f"These fields must be strings: {', '.join(wrong)}",
                              context={k: ["string"] for k in wrong})
        name, kind, field_type = body["name"], body["type"], body["fieldType"]
        if not _NAME_RE.match(name):
            raise bad_request(f"Property name '{name}' must start with a letter and hold only lower-case letters, "
                              "digits and underscores.", context={"name": [name]})
        if kind not in FIELD_TYPES:
            raise bad_request(f"Invalid property type '{kind}'; use one of {', '.join(FIELD_TYPES)}.",
                              context={"type": [kind]})
        if field_type not in FIELD_TYPES[kind]:
            raise bad_request(f"fieldType '{field_type}' is not valid for type '{kind}'; use one of "
                              f"{', '.join(sorted(FIELD_TYPES[kind]))}.", context={"fieldType": [field_type]})
        if body["groupName"] not in self.groups[object_type]:
            raise bad_request(f"Property group '{body['groupName']}' does not exist.",
                              context={"groupName": [body["groupName"]]})
        options = self._options(kind, body.get("options"))
        unique = bool(body.get("hasUniqueValue", False))
        if unique and sum(d.unique for d in self.properties[object_type].values()) >= 10:
            raise bad_request("An object can have at most 10 unique-value properties.")
        ms = now_ms()
        order = int_param(body.get("displayOrder"), -1, "displayOrder")
        return PropDef(name, body["label"], kind, field_type, body["groupName"], options, False, False, unique,
                       str(body.get("description", "")), order, ms, ms,
                       hidden=bool(body.get("hidden", False)), form_field=bool(body.get("formField", False)))

    @staticmethod
    def _options(kind: str, raw: Any) -> list[dict[str, Any]]:
        if kind not in ("enumeration", "bool"):
            return []
        if kind == "bool" and not raw:
            raw = [{"label": "Yes", "value": "true"}, {"label": "No", "value": "false"}]
        if not isinstance(raw, list) or not raw:
            raise bad_request("Enumeration properties need options [{label, value}].",
                              context={"options": ["required"]})
        options = []
        for i, o in enumerate(raw):
            if not isinstance(o, dict) or "label" not in o or "value" not in o:
                raise bad_request("Each option needs label and value.", context={"options": [str(i)]})
            options.append({"label": str(o["label"]), "value": str(o["value"]),
                            "displayOrder": int_param(o.get("displayOrder"), i, "displayOrder"),
                            "hidden": bool(o.get("hidden", False)),
                            **({"description": str(o["description"])} if o.get("description") else {})})
        return options

    def update_property(self, object_type: str, name: str, body: Any) -> PropDef:
        with self.lock:
            defn = self.properties[object_type].get(name)
            if defn is None or defn.archived:
                raise ApiError(404, error_body(f"Unable to find property {name} of {object_type}", "OBJECT_NOT_FOUND",
                                               context={"name": [name]}))
            if not isinstance(body, dict):
                raise bad_request("Invalid JSON input: a request body was expected, but none found")
            wrong = [k for k in ("type", "fieldType", "groupName", "label", "description")
                     if k in body and not isinstance(body[k], str)]
            if wrong:
                raise bad_request(f"These fields must be strings: {', '.join(wrong)}")
            kind = body.get("type", defn.type)
            field_type = body.get("fieldType", defn.field_type)
            if kind not in FIELD_TYPES or field_type not in FIELD_TYPES[kind]:
                raise bad_request(f"fieldType '{field_type}' is not valid for type '{kind}'.")
            if "groupName" in body and body["groupName"] not in self.groups[object_type]:
                raise bad_request(f"Property group '{body['groupName']}' does not exist.")
            if "options" in body:
                defn.options = self._options(kind, body["options"])
                defn.refresh_options()
            defn.type, defn.field_type = kind, field_type
            for attr, key in (("label", "label"), ("description", "description"), ("group", "groupName"),
                              ("display_order", "displayOrder"), ("hidden", "hidden"), ("form_field", "formField")):
                if key in body:
                    setattr(defn, attr, body[key])
            defn.updated_ms = now_ms()
            return defn

    def archive_property(self, object_type: str, name: str) -> None:
        """DELETE a custom property (HubSpot keeps it archived); built-ins cannot be archived."""
        with self.lock:
            defn = self.properties[object_type].get(name)
            if defn is None or defn.archived:
                raise ApiError(404, error_body(f"Unable to find property {name} of {object_type}", "OBJECT_NOT_FOUND",
                                               context={"name": [name]}))
            if defn.hubspot_defined:
                raise bad_request(f"Property {name} is defined by HubSpot and cannot be archived.",
                                  context={"name": [name]})
            defn.archived = True
            defn.updated_ms = now_ms()

    def create_group(self, object_type: str, body: Any) -> dict[str, Any]:
        with self.lock:
            if not isinstance(body, dict) or not body.get("name") or not body.get("label"):
                raise bad_request("Property groups need name and label.")
            if not isinstance(body["name"], str) or not isinstance(body["label"], str):
                raise bad_request("Property group name and label must be strings.")
            if body["name"] in self.groups[object_type]:
                raise ApiError(409, error_body(f"A property group named '{body['name']}' already exists.",
                                               "OBJECT_ALREADY_EXISTS", context={"name": [body["name"]]}))
            group = {"name": body["name"], "label": body["label"],
                     "displayOrder": int_param(body.get("displayOrder"), -1, "displayOrder"), "archived": False}
            self.groups[object_type][body["name"]] = group
            return group
