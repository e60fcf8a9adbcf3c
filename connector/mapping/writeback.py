"""Schema of mappings/writeback.yaml: which computed field lands in which CRM property, and enrollment rules."""

from __future__ import annotations

import re
from typing import Any, Iterable, Literal

from pydantic import ConfigDict, Field, field_validator, model_validator

from connector.mapping.base import StrictModel, did_you_mean
from connector.mapping.features import FEATURES

# Fields the health and segments stages add on top of the feature catalog, with their kind.
# Kinds: number | bool | str | date | list (a set of labels, e.g. tags).
EXTRA_OUTPUTS: dict[str, str] = {
    "health_explanation": "str",
    "health_scorecard": "str",
    "lifecycle": "str",
    "rfm_code": "str",
    "rfm_segment": "str",
    "tags": "list",
    "churn_risk": "str",
}


def output_kind(name: str) -> str | None:
    """Kind of a known output field, None if the name is unknown."""
    if name in EXTRA_OUTPUTS:
        return EXTRA_OUTPUTS[name]
    entry = FEATURES.get(name)
    return entry[0] if entry else None


def known_outputs() -> set[str]:
    return set(FEATURES) | set(EXTRA_OUTPUTS)


# HubSpot's property types and the field types each allows (API-NOTES §4).
FIELD_TYPES: dict[str, tuple[str, ...]] = {
    "string": ("text", "textarea"),
    "number": ("number",),
    "enumeration": ("select", "radio", "checkbox"),
    "date": ("date",),
    "datetime": ("date",),
    "bool": ("booleancheckbox",),
}
DEFAULT_FIELD_TYPE = {"string": "text", "number": "number", "enumeration": "select", "date": "date",
                      "datetime": "date", "bool": "booleancheckbox"}
# Which property types can carry a value of each output kind.
COMPATIBLE: dict[str, tuple[str, ...]] = {
    "number": ("number", "string"),
    "bool": ("bool", "enumeration", "string"),
    "str": ("string", "enumeration"),
    "date": ("date", "datetime", "string"),
    "list": ("enumeration", "string"),
}
TARGET_OBJECTS = ("companies", "contacts", "deals")
_NAME = re.compile(r"^[a-z][a-z0-9_]{0,99}$")
_OPTION_VALUE = re.compile(r"^[A-Za-z0-9_\-.]{1,100}$")


def humanise(value: str) -> str:
    """Default label of an option: 'at_risk' -> 'At risk'."""
    text = value.replace("_", " ").replace("-", " ").strip()
    return text[:1].upper() + text[1:] if text else value


class OptionDef(StrictModel):
    """One enumeration option; the label defaults to the value made readable."""

    value: str
    label: str | None = None
    description: str = ""

    @field_validator("value")
    @classmethod
    def _value_shape(cls, value: str) -> str:
        if not _OPTION_VALUE.match(value):
            raise ValueError(f'option value "{value}" must be 1-100 letters, digits, "_", "-" or "."')
        return value

    @property
    def display_label(self) -> str:
        return self.label or humanise(self.value)


class PropertyDef(StrictModel):
    """The CRM property that receives a field: HubSpot's own keys (name, label, type, fieldType, …)."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    name: str
    label: str | None = None
    type: Literal["string", "number", "enumeration", "date", "datetime", "bool"]
    field_type: str | None = Field(default=None, alias="fieldType")
    description: str = ""
    options: tuple[OptionDef, ...] = ()

    @field_validator("name")
    @classmethod
    def _name_shape(cls, name: str) -> str:
        if not _NAME.match(name):
            raise ValueError(f'property name "{name}" must be lower case letters, digits and "_", starting with a letter')
        return name

    @field_validator("options", mode="before")
    @classmethod
    def _plain_options(cls, value: Any) -> Any:
        # `options: [at_risk, champion]` is the short form of `[{value: at_risk}, …]`.
        if isinstance(value, list):
            return [{"value": str(v)} if isinstance(v, (str, int)) else v for v in value]
        return value

    @model_validator(mode="after")
    def _field_type_fits(self) -> "PropertyDef":
        allowed = FIELD_TYPES[self.type]
        if self.field_type is not None and self.field_type not in allowed:
            raise ValueError(
                f'fieldType "{self.field_type}" does not fit type "{self.type}"{did_you_mean(self.field_type, allowed)}'
            )
        if self.options and self.type != "enumeration":
            raise ValueError(f'options are only for type "enumeration", not "{self.type}"')
        values = [o.value for o in self.options]
        dupes = sorted({v for v in values if values.count(v) > 1})
        if dupes:
            raise ValueError(f"duplicate option values: {', '.join(dupes)}")
        return self

    @property
    def effective_field_type(self) -> str:
        return self.field_type or DEFAULT_FIELD_TYPE[self.type]

    @property
    def multi(self) -> bool:
        """A multi-select (checkbox) enumeration: values are `;`-joined."""
        return self.type == "enumeration" and self.effective_field_type == "checkbox"


class OutputMapping(StrictModel):
    """One computed field written to one property of one kind of record."""

    field: str
    object: Literal["companies", "contacts", "deals"]
    # contacts only: the customer's primary contact or every associated contact.
    contacts: Literal["primary", "all"] = "primary"
    property: PropertyDef
    # true: the property is the portal's own (not provisioned by us); we write it only because it is named here.
    existing: bool = False
    # numbers only: round half-up to this many decimals before writing (money: 2).
    decimals: int | None = Field(default=None, ge=0, le=10)

    @field_validator("field")
    @classmethod
    def _known_field(cls, name: str) -> str:
        if output_kind(name) is None:
            raise ValueError(f'unknown output field "{name}"{did_you_mean(name, known_outputs())}')
        return name

    @model_validator(mode="after")
    def _consistent(self) -> "OutputMapping":
        kind = output_kind(self.field) or "str"
        prop = self.property
        if prop.type not in COMPATIBLE[kind]:
            raise ValueError(
                f'field "{self.field}" ({kind}) cannot go to a property of type "{prop.type}" '
                f"(valid: {', '.join(COMPATIBLE[kind])})"
            )
        if kind == "list" and prop.type == "enumeration" and not prop.multi:
            raise ValueError(f'field "{self.field}" holds several values: use fieldType "checkbox" (multi-select)')
        if self.decimals is not None and kind != "number":
            raise ValueError(f'decimals only applies to number fields, not "{self.field}" ({kind})')
        if not self.existing:
            if prop.name.startswith("hs_"):
                raise ValueError(f'"{prop.name}": the hs_ prefix is HubSpot\'s; name our property otherwise')
            if not prop.label:
                raise ValueError(f'property "{prop.name}" needs a label (it is created by the connector)')
        return self


class GroupDef(StrictModel):
    """The property group the connector creates and owns."""

    name: str = "retention_connector"
    label: str = "Retention connector"

    @field_validator("name")
    @classmethod
    def _name_shape(cls, name: str) -> str:
        if not _NAME.match(name):
            raise ValueError(f'group name "{name}" must be lower case letters, digits and "_"')
        return name


class EnrollmentRule(StrictModel):
    """When a record enters a tag: enroll its contact in a workflow, or add the record to a static list."""

    tag: str
    workflow_id: str | None = None  # v2 workflow id; contacts only, enrolled by e-mail
    list: str | None = None  # name of a MANUAL list; created if missing
    object: Literal["companies", "contacts", "deals"] = "contacts"
    contacts: Literal["primary", "all"] = "primary"
    on_exit: Literal["keep", "unenroll"] = "keep"

    @field_validator("workflow_id", mode="before")
    @classmethod
    def _id_as_text(cls, value: Any) -> Any:
        return str(value) if isinstance(value, int) else value

    @model_validator(mode="after")
    def _one_target(self) -> "EnrollmentRule":
        if (self.workflow_id is None) == (self.list is None):
            raise ValueError(f'rule for tag "{self.tag}": give exactly one of workflow_id or list')
        if self.workflow_id is not None and self.object != "contacts":
            raise ValueError(
                f'rule for tag "{self.tag}": workflows enroll contacts only (v2 API); use a list for {self.object}'
            )
        return self

    @property
    def kind(self) -> str:
        return "workflow" if self.workflow_id is not None else "list"

    @property
    def target(self) -> str:
        return self.workflow_id if self.workflow_id is not None else str(self.list)


class WritebackConfig(StrictModel):
    """mappings/writeback.yaml."""

    group: GroupDef = GroupDef()
    batch_size: int = Field(default=100, ge=1, le=100)  # HubSpot's batch update takes at most 100 inputs
    outputs: tuple[OutputMapping, ...] = ()
    enrollments: tuple[EnrollmentRule, ...] = ()

    @model_validator(mode="after")
    def _no_clashes(self) -> "WritebackConfig":
        seen: dict[tuple[str, str], str] = {}
        for out in self.outputs:
            key = (out.object, out.property.name)
            if key in seen:
                raise ValueError(
                    f'property "{out.property.name}" on {out.object} receives both "{seen[key]}" and "{out.field}"'
                )
            seen[key] = out.field
        targets: set[tuple[str, str]] = set()
        for rule in self.enrollments:
            key = (rule.kind, rule.target)
            if key in targets:
                # Two rules feeding one target would undo each other's exits.
                raise ValueError(f"{rule.kind} {rule.target!r} is the target of more than one rule")
            targets.add(key)
        return self

    def owned_properties(self) -> frozenset[tuple[str, str]]:
        """(object_type, property) pairs the connector may write: provisioned or named as existing."""
        return frozenset((o.object, o.property.name) for o in self.outputs)

    def provisioned(self) -> tuple[OutputMapping, ...]:
        return tuple(o for o in self.outputs if not o.existing)

    def check_tags(self, known_tags: Iterable[str]) -> list[tuple[tuple[Any, ...], str]]:
        """(key path, reason) for every enrollment rule naming a tag segments.yaml does not define.

        A cross-file check for the pack loader (``pack.error("writeback.yaml", path, reason)``)."""
        known = set(known_tags)
        return [
            (("enrollments", i, "tag"), f'enrollments[{i}].tag: unknown tag "{rule.tag}"{did_you_mean(rule.tag, known)}')
            for i, rule in enumerate(self.enrollments)
            if rule.tag not in known
        ]
