"""Schema of mappings/sources.yaml: which HubSpot property feeds which canonical field, through which transform.

The canonical field catalog below mirrors connector/model.py (the mapping package sits below the model in the
layer contract, so it cannot import it; tests/unit/test_model.py checks the two agree).
"""

from __future__ import annotations

import builtins
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator

from connector.mapping.base import StrictModel, did_you_mean
from connector.mapping.loader import LocatedError

# ---------------------------------------------------------------- canonical vocabulary (mirrors model.py)

SUBSCRIPTION_STATUSES = ("active", "past_due", "unpaid", "paused", "canceled", "expired", "scheduled")
# HubSpot's line-item `recurringbillingfrequency` values; model.MONTHLY_FACTOR normalises each to a month.
FREQUENCIES = ("weekly", "biweekly", "monthly", "quarterly", "per_six_months", "annually", "per_two_years",
               "per_three_years", "per_four_years", "per_five_years")
# Spellings of billing frequencies seen in HubSpot portals and billing tools; sources.yaml frequency_aliases adds more.
FREQUENCY_ALIASES: dict[str, str] = {
    **{name: name for name in FREQUENCIES},
    "week": "weekly", "every_week": "weekly", "p1w": "weekly",
    "bi_weekly": "biweekly", "fortnightly": "biweekly", "every_two_weeks": "biweekly", "p2w": "biweekly",
    "month": "monthly", "every_month": "monthly", "p1m": "monthly",
    "quarter": "quarterly", "every_quarter": "quarterly", "p3m": "quarterly",
    "semiannually": "per_six_months", "semi_annually": "per_six_months", "half_yearly": "per_six_months",
    "every_six_months": "per_six_months", "p6m": "per_six_months",
    "annual": "annually", "yearly": "annually", "year": "annually", "every_year": "annually", "p12m": "annually",
    "p1y": "annually", "biennially": "per_two_years", "p24m": "per_two_years", "p2y": "per_two_years",
    "p36m": "per_three_years", "p3y": "per_three_years", "p48m": "per_four_years", "p4y": "per_four_years",
    "p60m": "per_five_years", "p5y": "per_five_years",
}
RESPONSE_GROUPS = ("PROMOTER", "PASSIVE", "DETRACTOR")
BOOL_VALUES = ("true", "false")

Transform = Literal["string", "number", "integer", "money", "date", "datetime", "bool", "enumeration", "multi_select",
                    "frequency", "join"]
TRANSFORMS: tuple[str, ...] = Transform.__args__  # type: ignore[attr-defined]

# What each kind of canonical field accepts, and (for closed vocabularies) which canonical values.
KIND_TRANSFORMS: dict[str, tuple[str, ...]] = {
    "text": ("string", "enumeration", "join"),
    "money": ("money", "number", "integer"),
    "decimal": ("number", "integer"),
    "int": ("integer", "number", "enumeration"),
    "float": ("number", "integer"),
    "date": ("date", "datetime"),
    "datetime": ("datetime", "date"),
    "bool": ("bool", "enumeration"),
    "tags": ("multi_select",),
    "status": ("enumeration",),
    "frequency": ("frequency", "enumeration"),
    "group": ("enumeration", "string"),
}
KIND_VALUES: dict[str, tuple[str, ...]] = {
    "status": SUBSCRIPTION_STATUSES,
    "frequency": FREQUENCIES,
    "group": RESPONSE_GROUPS,
    "bool": BOOL_VALUES,
}

_CUSTOMER = {
    "name": "text", "created_at": "datetime", "customer_since": "date", "acquisition_source": "text",
    "industry": "text", "country": "text", "birthday": "date",
}
# entity (top-level key of sources.yaml) -> canonical field -> kind
CANONICAL_FIELDS: dict[str, dict[str, str]] = {
    "companies": dict(_CUSTOMER),
    "contacts": dict(_CUSTOMER),
    "subscriptions": {
        "name": "text", "status": "status", "mrr": "money", "currency": "text", "billing_frequency": "frequency",
        "start_date": "date", "next_payment_due": "date", "last_payment_status": "text",
        "cancel_requested_at": "datetime", "created_at": "datetime",
    },
    "deals": {
        "name": "text", "amount": "money", "currency": "text", "close_date": "datetime", "stage": "text",
        "is_won": "bool", "is_closed": "bool", "created_at": "datetime",
    },
    "line_items": {
        "name": "text", "quantity": "decimal", "price": "money", "amount": "money", "discount_percentage": "decimal",
        "billing_frequency": "frequency",
    },
    "feedback": {
        "survey_type": "text", "value": "int", "response_group": "group", "submitted_at": "datetime", "channel": "text",
    },
    "usage": {
        "last_login_at": "datetime", "logins_30d": "int", "active_days_30d": "int", "active_users_30d": "int",
        "avg_daily_active_users_30d": "float", "seats_purchased": "int", "seats_used": "int",
        "onboarding_milestones_done": "tags", "onboarding_milestones_total": "int", "first_value_at": "datetime",
        "open_tickets": "int", "tickets_90d": "int", "last_engagement_at": "datetime",
    },
}
# Canonical fields whose past the model keeps as a Timeline: field -> the model attribute holding it.
TIMELINES: dict[str, dict[str, str]] = {
    "subscriptions": {"mrr": "mrr_history", "status": "status_history"},
    "usage": {"active_days_30d": "active_days_history", "logins_30d": "logins_history", "seats_used": "seats_used_history"},
}
ENTITIES: tuple[str, ...] = tuple(CANONICAL_FIELDS)


# ---------------------------------------------------------------- schema


class FieldSpec(StrictModel):
    """One canonical field: where its value comes from and how it is read."""

    property: str | tuple[str, ...] | None = None  # HubSpot property name; a list: first non-empty (join: all)
    constant: str | int | float | bool | None = None  # a fixed value instead of a property
    transform: Transform = "string"
    values: dict[str, str] | None = None  # enumeration/frequency: HubSpot value -> canonical value
    default: str | None = None  # enumeration: canonical value for HubSpot values not in `values`
    currency_property: str | None = None  # money: property of the same record holding its ISO currency code
    currency: str | None = None  # money: fixed ISO currency code of the amounts
    historical: bool = False  # pull propertiesWithHistory and keep the past as a Timeline
    range: tuple[float, float] | None = None  # number/integer/money: [min, max]; a value outside is a data issue
    # historical fields: false = an empty entry in the field's past is a data issue and is dropped, so the value
    # before it stays in effect (an MRR blanked by mistake must not read as a cancellation)
    allow_empty: bool = True

    @field_validator("values", mode="before")
    @classmethod
    def _keys_as_text(cls, value: Any) -> Any:
        # YAML reads `9: promoter` with an int key and `yes: x` with a bool key; HubSpot values are strings.
        if isinstance(value, dict):
            return {(str(k).lower() if isinstance(k, bool) else str(k)): v for k, v in value.items()}
        return value

    @model_validator(mode="after")
    def _consistent(self) -> "FieldSpec":
        problems: list[LocatedError] = []
        if (self.property is None) == (self.constant is None):
            problems.append(LocatedError('give exactly one of "property" or "constant"', ()))
        if isinstance(self.property, tuple) and not self.property:
            problems.append(LocatedError("property list is empty", ("property",)))
        if self.transform == "join" and not isinstance(self.property, tuple):
            problems.append(LocatedError('transform "join" needs a list of properties', ("transform",)))
        if self.transform != "money":
            for key in ("currency_property", "currency"):
                if getattr(self, key) is not None:
                    problems.append(LocatedError(f'"{key}" only applies to transform "money"', (key,)))
        elif self.currency_property is not None and self.currency is not None:
            problems.append(LocatedError('give "currency_property" or "currency", not both', ("currency",)))
        if self.currency is not None and not _is_currency(self.currency):
            problems.append(LocatedError(f'"{self.currency}" is not an ISO currency code (three capitals)', ("currency",)))
        if self.transform not in ("enumeration", "frequency"):
            for key in ("values", "default"):
                if getattr(self, key) is not None:
                    problems.append(LocatedError(f'"{key}" only applies to transforms "enumeration" and "frequency"', (key,)))
        if self.range is not None:
            if self.transform not in ("number", "integer", "money"):
                problems.append(LocatedError('"range" only applies to transforms number, integer and money', ("range",)))
            elif self.range[0] > self.range[1]:
                problems.append(LocatedError(f"range minimum {self.range[0]} is above its maximum {self.range[1]}",
                                             ("range",)))
        if self.historical and self.constant is not None:
            problems.append(LocatedError("a constant has no history", ("historical",)))
        if not self.allow_empty and not self.historical:
            problems.append(LocatedError('"allow_empty: false" applies to historical fields (their past entries)',
                                         ("allow_empty",)))
        if problems:
            raise LocatedError.many(problems)
        return self

    @builtins.property  # the field named `property` shadows the builtin in this class body
    def properties(self) -> tuple[str, ...]:
        """Every HubSpot property this field reads (including the currency property)."""
        names: tuple[str, ...] = ()
        if isinstance(self.property, tuple):
            names = self.property
        elif self.property is not None:
            names = (self.property,)
        if self.currency_property:
            names += (self.currency_property,)
        return names


class ObjectSource(StrictModel):
    """One canonical entity fed by one HubSpot object type."""

    object: str  # HubSpot object type: plural name (companies) or objectTypeId (0-2, 2-1234 for custom objects)
    created_property: str = "hs_createdate"  # the record's creation-date property
    modified_property: str = "hs_lastmodifieddate"  # the property incremental pulls search on
    fields: dict[str, FieldSpec] = Field(default_factory=dict)
    extra: dict[str, FieldSpec] = Field(default_factory=dict)  # companies/contacts only: custom fields for rules


class AssociationSpec(StrictModel):
    """An association to pull: from one mapped object type to another."""

    from_: str = Field(alias="from")
    to: str


class SourcesConfig(StrictModel):
    """sources.yaml: one section per canonical entity (omit those the portal lacks) plus the associations."""

    companies: ObjectSource | None = None
    contacts: ObjectSource | None = None
    subscriptions: ObjectSource | None = None
    deals: ObjectSource | None = None
    line_items: ObjectSource | None = None
    feedback: ObjectSource | None = None
    usage: ObjectSource | None = None
    associations: tuple[AssociationSpec, ...] = ()
    # Extra HubSpot values of `frequency` transforms, merged over the built-in aliases (e.g. "yearly": annually).
    frequency_aliases: dict[str, str] = Field(default_factory=dict)

    @field_validator(*ENTITIES)
    @classmethod
    def _canonical(cls, source: ObjectSource | None, info: ValidationInfo) -> ObjectSource | None:
        if source is None:
            return source
        entity = info.field_name
        catalog = CANONICAL_FIELDS[entity]
        timelines = TIMELINES.get(entity, {})
        problems: list[LocatedError] = []
        for name, spec in source.fields.items():
            at = ("fields", name)
            kind = catalog.get(name)
            if kind is None:
                problems.append(_unknown_field(entity, name, at))
                continue
            allowed = KIND_TRANSFORMS[kind]
            if spec.transform not in allowed:
                problems.append(LocatedError(
                    f'transform "{spec.transform}" cannot feed {entity}.{name} (valid: {", ".join(allowed)})',
                    at + ("transform",)))
            vocabulary = KIND_VALUES.get(kind)
            if vocabulary and spec.values:
                for hubspot_value, canonical in spec.values.items():
                    if canonical not in vocabulary:
                        problems.append(LocatedError(
                            f'"{canonical}" is not a canonical {entity}.{name} value{did_you_mean(canonical, vocabulary)}',
                            at + ("values", hubspot_value)))
            if vocabulary and spec.default is not None and spec.default not in vocabulary:
                problems.append(LocatedError(
                    f'"{spec.default}" is not a canonical {entity}.{name} value{did_you_mean(spec.default, vocabulary)}',
                    at + ("default",)))
            if spec.historical and name not in timelines:
                valid = ", ".join(f"{entity}.{f}" for f in timelines) or "none here"
                problems.append(LocatedError(
                    f"{entity}.{name} keeps no history in the model (historical fields: {valid})", at + ("historical",)))
        if source.extra and entity not in ("companies", "contacts"):
            problems.append(LocatedError('"extra" fields are only for customers (companies, contacts)', ("extra",)))
        if problems:
            raise LocatedError.many(problems)
        return source

    @field_validator("frequency_aliases")
    @classmethod
    def _aliases(cls, aliases: dict[str, str]) -> dict[str, str]:
        problems = [LocatedError(f'"{target}" is not a canonical frequency{did_you_mean(target, FREQUENCIES)}', (key,))
                    for key, target in aliases.items() if target not in FREQUENCIES]
        if problems:
            raise LocatedError.many(problems)
        return aliases

    @model_validator(mode="after")
    def _associations_refer_to_mapped_objects(self) -> "SourcesConfig":
        mapped = {source.object for _, source in self.entities()}
        pairs = [(assoc.from_, assoc.to) for assoc in self.associations]
        problems = _association_problems(pairs, mapped)
        if problems:
            raise LocatedError.many(problems)
        return self

    @classmethod
    def raw_problems(cls, data: dict) -> list[LocatedError]:
        """Unknown canonical fields and dangling association ends, read off the raw YAML (see loader)."""
        problems: list[LocatedError] = []
        mapped: set[str] = set()
        for entity in ENTITIES:
            section = data.get(entity)
            if not isinstance(section, dict):
                continue
            if isinstance(section.get("object"), str):
                mapped.add(section["object"])
            fields = section.get("fields")
            if isinstance(fields, dict):
                problems.extend(_unknown_field(entity, str(name), (entity, "fields", str(name)))
                                for name in fields if str(name) not in CANONICAL_FIELDS[entity])
        assocs = data.get("associations")
        if isinstance(assocs, list):
            pairs = [(a.get("from"), a.get("to")) if isinstance(a, dict) else (None, None) for a in assocs]
            problems.extend(_association_problems(pairs, mapped))
        return problems

    def entities(self) -> list[tuple[str, ObjectSource]]:
        """(entity, source) for every entity mapped, in catalog order."""
        return [(name, getattr(self, name)) for name in ENTITIES if getattr(self, name) is not None]

    def has_association(self, a: str, b: str) -> bool:
        return any({assoc.from_, assoc.to} == {a, b} for assoc in self.associations)


@dataclass(frozen=True)
class PullSpec:
    """What the extractor pulls for one HubSpot object type."""

    object_type: str
    properties: tuple[str, ...]  # every property the mappings name, plus id and timestamps
    historical: tuple[str, ...]  # the subset needing propertiesWithHistory
    associations: tuple[str, ...]  # to-types to read associations for
    created_property: str
    modified_property: str


def plan_pull(sources: SourcesConfig, extra_properties: dict[str, tuple[str, ...]] | None = None) -> dict[str, PullSpec]:
    """Per HubSpot object type: the properties, historical properties and association to-types the pack needs."""
    props: dict[str, set[str]] = {}
    hist: dict[str, set[str]] = {}
    created: dict[str, str] = {}
    modified: dict[str, str] = {}
    for _, source in sources.entities():
        kind = source.object
        names = props.setdefault(kind, {"hs_object_id", source.created_property, source.modified_property})
        created.setdefault(kind, source.created_property)
        modified.setdefault(kind, source.modified_property)
        hist.setdefault(kind, set())
        for spec in list(source.fields.values()) + list(source.extra.values()):
            names.update(spec.properties)
            if spec.historical and spec.property is not None:
                hist[kind].update(spec.properties if not spec.currency_property else spec.properties[:-1])
    for kind, extra in (extra_properties or {}).items():
        if kind in props:
            props[kind].update(extra)
    to_types: dict[str, list[str]] = {kind: [] for kind in props}
    for assoc in sources.associations:
        if assoc.to not in to_types[assoc.from_]:
            to_types[assoc.from_].append(assoc.to)
    return {
        kind: PullSpec(kind, tuple(sorted(props[kind])), tuple(sorted(hist[kind])), tuple(to_types[kind]),
                       created[kind], modified[kind])
        for kind in props
    }


def _unknown_field(entity: str, name: str, at: tuple) -> LocatedError:
    return LocatedError(f'unknown canonical field "{name}" for {entity}{did_you_mean(name, CANONICAL_FIELDS[entity])}', at)


def _association_problems(pairs: list[tuple[Any, Any]], mapped: set[str]) -> list[LocatedError]:
    problems = []
    for position, (source, target) in enumerate(pairs):
        for key, value in (("from", source), ("to", target)):
            if isinstance(value, str) and value not in mapped:
                problems.append(LocatedError(
                    f'association {key} "{value}" is not an object mapped in this file{did_you_mean(value, mapped)}',
                    ("associations", position, key)))
    return problems


def _is_currency(code: str) -> bool:
    return len(code) == 3 and code.isalpha() and code.isupper()
