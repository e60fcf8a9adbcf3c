"""Provisioning: our property group and properties, checked against the portal so we only touch what we own."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Sequence

import polars as pl

from connector.errors import ConfigError
from connector.mapping.base import did_you_mean
from connector.mapping.writeback import OutputMapping, WritebackConfig, humanise
from connector.writeback.apply import CrmWriter
from connector.writeback.desired import OutputColumns



@dataclass(frozen=True)
class ProvisionPlan:
    """The group and property definitions to ensure, per object type."""

    group_name: str
    group_label: str
    defs: dict[str, tuple[dict, ...]]
    # Object types whose portal has nothing of ours to add: no group, property or option missing. A run on a
    # provisioned portal makes no write call at all.
    settled: frozenset[str] = frozenset()
    groups_present: frozenset[str] = frozenset()

    def property_count(self) -> int:
        return sum(len(d) for d in self.defs.values())


def observed_options(config: WritebackConfig, outputs: OutputColumns | pl.DataFrame | Mapping[str, Mapping[str, Any]]
                     ) -> dict[tuple[str, str], set[str]]:
    """Values the computed data puts in each enumeration property we own (new tags become options)."""
    columns = OutputColumns.of(outputs)
    seen: dict[tuple[str, str], set[str]] = {}
    for output in config.provisioned():
        if output.property.type != "enumeration":
            continue
        desired = columns.formatted(output)
        if desired is None:
            continue
        texts = desired["text"].drop_nulls().unique()
        if output.property.multi:
            texts = texts.str.split(";").explode()
        found = set(texts.filter(texts != "").to_list())
        if found:
            seen.setdefault((output.object, output.property.name), set()).update(found)
    return seen


def property_definition(output: OutputMapping, group: str, extra_options: Iterable[str] = ()) -> dict:
    """The HubSpot create body of an output's property (API-NOTES §4)."""
    prop = output.property
    body: dict[str, Any] = {
        "name": prop.name, "label": prop.label or prop.name, "type": prop.type,
        "fieldType": prop.effective_field_type, "groupName": group, "description": prop.description,
    }
    if prop.type == "enumeration":
        options = [(o.value, o.display_label, o.description) for o in prop.options]
        known = {o.value for o in prop.options}
        options += [(v, humanise(v), "") for v in sorted(set(extra_options) - known)]
        body["options"] = [{"label": label, "value": value, "description": description, "hidden": False,
                            "displayOrder": i} for i, (value, label, description) in enumerate(options)]
    elif prop.type == "bool":
        body["options"] = [{"label": "Yes", "value": "true", "hidden": False, "displayOrder": 0},
                           {"label": "No", "value": "false", "hidden": False, "displayOrder": 1}]
    return body


def plan_provisioning(
    config: WritebackConfig,
    portal_properties: Mapping[str, Sequence[Mapping[str, Any]]],
    outputs: Mapping[str, Mapping[str, Any]] | None = None,
) -> ProvisionPlan:
    """What to create, checked against the portal's properties so we only ever touch what we own.

    Refuses (ConfigError, nothing written) a property of ours that exists in another group or with another
    type, and an ``existing`` property the portal lacks or types differently.
    """
    group = config.group.name
    extra = observed_options(config, outputs or {})
    problems = provisioning_problems(config, portal_properties)
    if problems:
        raise ConfigError("write-back cannot start:\n  " + "\n  ".join(message for _, message in problems))
    defs: dict[str, list[dict]] = defaultdict(list)
    done: set[tuple[str, str]] = set()
    for output in config.outputs:
        key = (output.object, output.property.name)
        if output.existing or key in done:
            continue
        done.add(key)
        defs[output.object].append(property_definition(output, group, extra.get(key, ())))
    settled, groups = set(), set()
    for object_type, wanted in defs.items():
        found = {p.get("name"): p for p in portal_properties.get(object_type, ())}
        if any(p.get("groupName") == group for p in found.values()):
            groups.add(object_type)
        if all(_provisioned(found.get(d["name"]), d) for d in wanted):
            settled.add(object_type)
    return ProvisionPlan(group, config.group.label, {k: tuple(v) for k, v in sorted(defs.items())},
                         settled=frozenset(settled), groups_present=frozenset(groups))


def provisioning_problems(
    config: WritebackConfig, portal_properties: Mapping[str, Sequence[Mapping[str, Any]]]
) -> list[tuple[int, str]]:
    """(index in ``config.outputs``, reason) for every output we may not write: a property of ours that the portal
    already has in another group (HubSpot's own, or another integration's) or with another type, and an
    ``existing`` one the portal lacks, types differently or keeps read-only. ``mappings validate --online`` reports
    the same list with file:line, so it refuses exactly what a sync would."""
    group = config.group.name
    problems: list[tuple[int, str]] = []
    for index, output in enumerate(config.outputs):
        prop = output.property
        found = {p.get("name"): p for p in portal_properties.get(output.object, ())}
        there = found.get(prop.name)
        if output.existing:
            if there is None:
                problems.append((index, f"{output.object}.{prop.name} is marked existing but the portal has no such "
                                        f"property{did_you_mean(prop.name, [n for n in found if n])}"))
            elif there.get("type") != prop.type:
                problems.append((index, f"{output.object}.{prop.name} is of type {there.get('type')!r} in the portal, "
                                        f"not {prop.type!r}"))
            elif (there.get("modificationMetadata") or {}).get("readOnlyValue") or there.get("calculated"):
                problems.append((index, f"{output.object}.{prop.name} is read-only in the portal"))
        elif there is not None and there.get("groupName") != group:
            owner = " (HubSpot's own property)" if there.get("hubspotDefined") else ""
            problems.append((index, f"{output.object}.{prop.name} already exists in group {there.get('groupName')!r}"
                                    f"{owner}, not the connector's {group!r}: rename it in writeback.yaml, or set "
                                    "existing: true to write that property on purpose"))
        elif there is not None and there.get("type") != prop.type:
            problems.append((index, f"{output.object}.{prop.name} exists with type {there.get('type')!r}, "
                                    f"the mapping says {prop.type!r} (HubSpot cannot change it in place)"))
    return problems


def _provisioned(there: Mapping[str, Any] | None, wanted: Mapping[str, Any]) -> bool:
    """The portal's property already has what we would ensure (it exists with every option we need)."""
    if there is None:
        return False
    have = {o.get("value") for o in there.get("options") or ()}
    return all(o["value"] in have for o in wanted.get("options") or ())


def apply_provisioning(plan: ProvisionPlan, writer: CrmWriter) -> None:
    """Create our group and properties where missing; the adapter treats 409 as done and adds new options."""
    for object_type, defs in plan.defs.items():
        if object_type in plan.settled:
            continue
        if object_type not in plan.groups_present:
            writer.ensure_property_group(object_type, plan.group_name, plan.group_label)
        writer.ensure_properties(object_type, list(defs))


def provision(
    config: WritebackConfig, writer: CrmWriter, outputs: Mapping[str, Mapping[str, Any]] | None = None
) -> ProvisionPlan:
    """Fetch the portal's properties, check ownership, create what is missing (idempotent)."""
    objects = sorted({o.object for o in config.outputs})
    portal = {obj: writer.fetch_properties(obj) for obj in objects}
    plan = plan_provisioning(config, portal, outputs)
    apply_provisioning(plan, writer)
    return plan

