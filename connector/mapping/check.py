"""The pack against a portal's property definitions: properties exist, types fit the transforms, values are known."""

from __future__ import annotations

from typing import Any

from connector.errors import MappingError
from connector.mapping.base import did_you_mean
from connector.mapping.sources import FREQUENCY_ALIASES

# HubSpot property types each transform can read (API-NOTES §4: string, number, enumeration, date, datetime, bool …).
TRANSFORM_TYPES: dict[str, frozenset[str]] = {
    "string": frozenset({"string", "number", "enumeration", "date", "datetime", "bool", "phone_number"}),
    "join": frozenset({"string", "number", "enumeration", "phone_number"}),
    "number": frozenset({"number"}),
    "integer": frozenset({"number"}),
    "money": frozenset({"number"}),
    "date": frozenset({"date", "datetime"}),
    "datetime": frozenset({"datetime", "date"}),
    "bool": frozenset({"bool", "enumeration"}),
    "enumeration": frozenset({"enumeration", "bool"}),
    "multi_select": frozenset({"enumeration"}),
    "frequency": frozenset({"enumeration", "string"}),
}
CURRENCY_TYPES = frozenset({"enumeration", "string"})
_BOOL_WORDS = frozenset({"true", "false", "1", "0", "yes", "no", "y", "n", "on", "off"})  # what model.parse_bool reads


def check_against_portal(pack: Any, properties_by_type: dict[str, list[dict]]) -> list[MappingError]:
    """Every problem of the pack's sources.yaml against HubSpot property definitions (name, type, options …).

    ``properties_by_type`` maps a HubSpot object type (as sources.yaml names it) to the list that
    ``GET /crm/v3/properties/{type}`` returns. Pure: the caller fetches.
    """
    problems: list[MappingError] = []
    for entity, source in pack.sources.entities():
        definitions = properties_by_type.get(source.object)
        if definitions is None:
            problems.append(pack.error("sources.yaml", (entity, "object"),
                                       f'{entity}.object: the portal has no object type "{source.object}"'
                                       f"{did_you_mean(source.object, properties_by_type)}"))
            continue
        by_name = {d.get("name"): d for d in definitions}
        for section in ("fields", "extra"):
            for name, spec in getattr(source, section).items():
                at = (entity, section, name)
                label = f"{entity}.{section}.{name}"
                names = spec.property if isinstance(spec.property, tuple) else ((spec.property,) if spec.property else ())
                for prop in names:
                    problems.extend(_check_property(pack, at, label, source.object, prop, spec, by_name))
                if spec.currency_property:
                    definition = by_name.get(spec.currency_property)
                    if definition is None:
                        problems.append(_missing(pack, at + ("currency_property",), label, source.object,
                                                 spec.currency_property, by_name))
                    elif definition.get("type") not in CURRENCY_TYPES:
                        problems.append(pack.error("sources.yaml", at + ("currency_property",),
                                                   f'{label}.currency_property: "{spec.currency_property}" is of type '
                                                   f'{definition.get("type")}, not a currency code (enumeration or string)'))
        for key in ("created_property", "modified_property"):
            prop = getattr(source, key)
            if prop not in by_name:
                problems.append(_missing(pack, (entity, key), f"{entity}.{key}", source.object, prop, by_name))
    return problems


def _check_property(pack: Any, at: tuple, label: str, object_type: str, prop: str, spec: Any,
                    by_name: dict[str, dict]) -> list[MappingError]:
    definition = by_name.get(prop)
    if definition is None:
        return [_missing(pack, at + ("property",), label, object_type, prop, by_name)]
    problems = []
    kind = definition.get("type")
    allowed = TRANSFORM_TYPES.get(spec.transform, frozenset())
    if kind not in allowed:
        problems.append(pack.error("sources.yaml", at + ("transform",),
                                   f'{label}: property "{prop}" is of type {kind}, which transform "{spec.transform}" '
                                   f"cannot read (it reads: {', '.join(sorted(allowed))})"))
        return problems
    options = [str(o.get("value")) for o in definition.get("options") or [] if o.get("value") is not None]
    if spec.values and options:
        for value in spec.values:
            if value not in options:
                problems.append(pack.error("sources.yaml", at + ("values", value),
                                           f'{label}.values: "{value}" is not an option of {object_type}.{prop}'
                                           f"{did_you_mean(value, options)}"))
        if spec.default is None and spec.transform == "enumeration":
            unmapped = [o for o in options if o not in spec.values]
            if unmapped:
                problems.append(pack.error("sources.yaml", at + ("values",),
                                           f"{label}.values: options of {object_type}.{prop} not mapped (they would "
                                           f"be reported as data issues): {', '.join(unmapped)}; map them or set a default"))
    if spec.transform == "bool" and kind == "enumeration" and options:
        odd = [o for o in options if o.strip().lower() not in _BOOL_WORDS]
        if odd:
            problems.append(pack.error("sources.yaml", at + ("transform",),
                                       f"{label}: options of {object_type}.{prop} that are not true/false: "
                                       f"{', '.join(odd)}; use transform enumeration with values"))
    if spec.transform == "frequency" and options:
        unknown = [o for o in options if o not in (spec.values or {}) and not _frequency_known(o, pack)]
        if unknown:
            problems.append(pack.error("sources.yaml", at + ("transform",),
                                       f"{label}: options of {object_type}.{prop} that are no known billing "
                                       f"frequency: {', '.join(unknown)}; map them under values"))
    return problems


def _missing(pack: Any, at: tuple, label: str, object_type: str, prop: str, by_name: dict) -> MappingError:
    return pack.error("sources.yaml", at, f'{label}: {object_type} has no property "{prop}"'
                                          f"{did_you_mean(prop, [n for n in by_name if n])}")


def _frequency_known(value: str, pack: Any) -> bool:
    key = value.strip().lower().replace(" ", "_").replace("-", "_")
    aliases = {k.lower() for k in pack.sources.frequency_aliases}
    return key in FREQUENCY_ALIASES or key in aliases
