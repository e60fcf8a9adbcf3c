"""The write plan as it was computed before the columnar plan, one customer at a time: kept only as the tests' oracle."""

from __future__ import annotations

from collections import defaultdict
from typing import Any, Iterable, Mapping

from connector.mapping.writeback import WritebackConfig
from connector.model import Customer, Deal
from connector.writeback import Change, format_value, same_value


def _targets(output, customer: Customer, open_deals) -> list[tuple[str, int]]:
    if output.object == "companies":
        return [(customer.id, 0)] if customer.object_type == "companies" else []
    if output.object == "deals":
        return [(deal_id, 0) for deal_id in open_deals.get(customer.id, ())]
    if customer.object_type == "contacts":
        ids = [customer.id]
    elif output.contacts == "primary":
        ids = [customer.primary_contact_id] if customer.primary_contact_id else []
    else:
        ids = list(customer.contact_ids)
    return [(cid, 0 if cid == customer.primary_contact_id or customer.object_type == "contacts" else 1) for cid in ids]


def _open_deals(deals: Iterable[Deal]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = defaultdict(list)
    for deal in deals:
        if deal.customer_id is not None and not deal.is_closed:
            out[deal.customer_id].append(deal.id)
    return out


def plan_changes(config: WritebackConfig, outputs: Mapping[str, Mapping[str, Any]], customers: list[Customer],
                 current: Mapping[tuple[str, str], Mapping[str, Any]], deals: Iterable[Deal] = ()
                 ) -> tuple[list[Change], int]:
    open_deals = _open_deals(deals)
    wanted: dict[str, dict[str, dict[str, tuple]]] = {}
    conflicts: set[tuple[str, str, str]] = set()
    for customer in sorted(customers, key=lambda c: c.id):
        values = outputs.get(customer.id)
        if values is None:
            continue
        for output in config.outputs:
            if output.field not in values:
                continue
            desired = format_value(values[output.field], output.property, decimals=output.decimals) or ""
            records = wanted.setdefault(output.object, {})
            name = output.property.name
            for record_id, priority in _targets(output, customer, open_deals):
                props = records.setdefault(record_id, {})
                held = props.get(name)
                if held is not None:
                    if held[2] != desired:
                        conflicts.add((output.object, record_id, name))
                    if (held[0], held[1]) <= (priority, customer.id):
                        continue
                props[name] = (priority, customer.id, desired, output)
    changes = []
    for object_type in sorted(wanted):
        records = wanted[object_type]
        for record_id in sorted(records, key=lambda i: (len(i), i)):
            held_values = current.get((object_type, record_id)) or {}
            for name in sorted(records[record_id]):
                _, _, desired, output = records[record_id][name]
                before = held_values.get(name)
                if before == desired or same_value(output.property, before, desired):
                    continue
                changes.append(Change(object_type, record_id, name, before, desired))
    return changes, len(conflicts)


def plan_enrollment_actions(config: WritebackConfig, tags: Mapping[str, Iterable[str]], customers: list[Customer],
                            enrolled, current, deals: Iterable[Deal] = ()) -> tuple[list[tuple], list[tuple]]:
    open_deals = _open_deals(deals)
    actions, skipped = [], []
    for rule in config.enrollments:
        should: dict[str, None] = {}
        reachable: set[str] = set()
        for customer in sorted(customers, key=lambda c: c.id):
            if customer.id not in tags:
                continue
            records = [r for r, _ in _targets(rule, customer, open_deals)]
            reachable.update(records)
            if rule.tag in set(tags[customer.id]):
                should.update(dict.fromkeys(records))
        already = set(enrolled.get((rule.kind, rule.target), ()))
        leaving = sorted(already & reachable - set(should)) if rule.on_exit == "unenroll" else []
        for verb, ids in (("enroll", [r for r in should if r not in already]), ("unenroll", leaving)):
            for record_id in ids:
                if rule.kind == "workflow" and not (current.get(("contacts", record_id)) or {}).get("email"):
                    skipped.append(("contacts", record_id))
                    continue
                actions.append((rule.kind, rule.target, rule.object, record_id, verb))
    return actions, skipped
