"""`connector mappings init`: guess sources.yaml/portal.yaml from a portal's property list, every guess marked REVIEW."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from connector.mapping.sources import CANONICAL_FIELDS, FREQUENCY_ALIASES, RESPONSE_GROUPS, SUBSCRIPTION_STATUSES, TIMELINES

# entity -> HubSpot object types it is usually read from, in order of preference
ENTITY_OBJECTS: dict[str, tuple[str, ...]] = {
    "companies": ("companies", "0-2"),
    "contacts": ("contacts", "0-1"),
    "subscriptions": ("subscriptions", "0-69"),
    "deals": ("deals", "0-3"),
    "line_items": ("line_items", "0-8"),
    "feedback": ("feedback_submissions", "0-19"),
}
# canonical kind -> HubSpot property types that can feed it
KIND_SOURCE_TYPES: dict[str, tuple[str, ...]] = {
    "text": ("string", "enumeration"), "money": ("number",), "decimal": ("number",), "int": ("number",),
    "float": ("number",), "date": ("date", "datetime"), "datetime": ("datetime", "date"), "bool": ("bool",),
    "tags": ("enumeration",), "status": ("enumeration",), "frequency": ("enumeration", "string"),
    "group": ("enumeration",),
}
# canonical field -> patterns over "name label" (lower case), most specific first
_CUSTOMER_RULES = {
    "name": [r"^name ", r"^company "],
    "created_at": [r"^createdate ", r"^hs_createdate "],
    "customer_since": [r"lifecyclestage_customer_date", r"became a customer", r"customer since"],
    "acquisition_source": [r"^hs_analytics_source ", r"original source"],
    "industry": [r"^industry "],
    "country": [r"^country ", r"country"],
    "birthday": [r"date_of_birth", r"birthday", r"birth ?date"],
}
RULES: dict[str, dict[str, list[str]]] = {
    "companies": {k: v for k, v in _CUSTOMER_RULES.items() if k != "birthday"},
    "contacts": {k: v for k, v in _CUSTOMER_RULES.items() if k not in ("name", "industry", "customer_since")},
    "usage": {
        "last_login_at": [r"last.{0,12}login", r"login.{0,6}last"],
        "logins_30d": [r"logins?.{0,12}30", r"logins?"],
        "active_days_30d": [r"active.?days"],
        "active_users_30d": [r"active.?users", r"\bmau\b", r"monthly active"],
        "avg_daily_active_users_30d": [r"\bdau\b", r"daily active"],
        "seats_purchased": [r"seats?.{0,6}(purchased|bought|licen)", r"licen[cs]es"],
        "seats_used": [r"seats?.{0,6}(used|active|in use)"],
        "onboarding_milestones_done": [r"onboarding.{0,6}(milestone|step)"],
        "first_value_at": [r"first.?value"],
        "open_tickets": [r"open.{0,12}tickets?"],
        "tickets_90d": [r"tickets?.{0,12}90"],
        "last_engagement_at": [r"notes_last_contacted", r"last.?(contacted|engagement|activity)"],
    },
    "subscriptions": {
        "name": [r"^hs_name ", r"^name "],
        "status": [r"^hs_status ", r"status"],
        "mrr": [r"^hs_mrr ", r"\bmrr\b", r"monthly recurring"],
        "currency": [r"currency"],
        "billing_frequency": [r"billing.?frequency", r"frequency"],
        "start_date": [r"billing_start_date", r"start"],
        "next_payment_due": [r"next.{0,12}(payment|due)"],
        "last_payment_status": [r"last.{0,12}payment.{0,6}status"],
        "cancel_requested_at": [r"cancel"],
        "created_at": [r"^hs_createdate ", r"^createdate "],
    },
    "deals": {
        "name": [r"^dealname "], "amount": [r"^amount "], "currency": [r"currency"], "close_date": [r"^closedate "],
        "stage": [r"^dealstage "], "is_won": [r"is_closed_won"], "is_closed": [r"^hs_is_closed "],
        "created_at": [r"^createdate ", r"^hs_createdate "],
    },
    "line_items": {
        "name": [r"^name "], "quantity": [r"^quantity "], "price": [r"^price "], "amount": [r"^amount "],
        "discount_percentage": [r"discount_percentage", r"discount"],
        "billing_frequency": [r"recurringbillingfrequency", r"billing.?frequency"],
    },
    "feedback": {
        "survey_type": [r"survey_type"], "value": [r"^hs_value ", r"rating", r"score"],
        "response_group": [r"response_group"], "submitted_at": [r"submission_timestamp", r"submitted"],
        "channel": [r"channel"],
    },
}
TRANSFORM_FOR_KIND = {
    "text": "string", "money": "money", "decimal": "number", "int": "integer", "float": "number", "date": "date",
    "datetime": "datetime", "bool": "bool", "tags": "multi_select", "status": "enumeration",
    "frequency": "frequency", "group": "enumeration",
}
VOCABULARY = {"status": SUBSCRIPTION_STATUSES, "group": RESPONSE_GROUPS}


@dataclass
class Guess:
    field: str
    prop: dict[str, Any]
    transform: str
    extra: dict[str, Any]
    notes: list[str]


def scaffold_pack(properties_by_type: dict[str, list[dict]]) -> dict[str, str]:
    """File name -> YAML text of a starting pack for a portal whose property definitions are given."""
    objects = {entity: next((t for t in candidates if t in properties_by_type), None)
               for entity, candidates in ENTITY_OBJECTS.items()}
    customer = "companies" if objects["companies"] else "contacts"
    if objects[customer] is None:
        raise ValueError("the property list has neither companies nor contacts")
    objects["usage"] = objects[customer]
    sections: list[str] = []
    currencies: set[str] = set()
    for entity in ("companies", "contacts", "usage", "subscriptions", "deals", "line_items", "feedback"):
        object_type = objects.get(entity)
        if object_type is None:
            continue
        definitions = properties_by_type[object_type]
        guesses = _guess_entity(entity, definitions)
        if entity == "usage" and not guesses:
            continue
        for guess in guesses:
            if guess.transform == "money" and "currency_property" in guess.extra:
                currency = next(d for d in definitions if d.get("name") == guess.extra["currency_property"])
                currencies.update(str(o.get("value")) for o in currency.get("options") or [])
        sections.append(_render_entity(entity, object_type, definitions, guesses))
        objects[entity] = object_type
    mapped = {e: t for e, t in objects.items() if t and any(s.startswith(f"{e}:") for s in sections)}
    sections.append(_render_associations(mapped, customer))
    header = ("# sources.yaml — generated by `connector mappings init`. Every guessed mapping is marked REVIEW:\n"
              "# check it, then delete the comment. See mappings/README.md for every key.\n\n")
    return {"sources.yaml": header + "\n".join(sections), "portal.yaml": _render_portal(customer, currencies)}


def _guess_entity(entity: str, definitions: list[dict]) -> list[Guess]:
    catalog = CANONICAL_FIELDS[entity]
    texts = [(f"{d.get('name', '')} {d.get('label', '')}".lower(), d) for d in definitions if d.get("name")]
    used: set[str] = set()
    guesses = []
    for field, patterns in RULES[entity].items():
        kind = catalog[field]
        types = KIND_SOURCE_TYPES[kind]
        found = None
        for pattern in patterns:
            found = next((d for text, d in texts if d.get("type") in types and d["name"] not in used
                          and re.search(pattern, text)), None)
            if found:
                break
        if found is None:
            continue
        used.add(found["name"])
        guesses.append(_guess(entity, field, kind, found, definitions))
    if entity == "contacts":
        names = {d.get("name") for d in definitions}
        if {"firstname", "lastname"} <= names:
            guesses.insert(0, Guess("name", {"name": ["firstname", "lastname"], "label": "First Name + Last Name"},
                                    "join", {}, []))
    return guesses


def _guess(entity: str, field: str, kind: str, prop: dict, definitions: list[dict]) -> Guess:
    transform = TRANSFORM_FOR_KIND[kind]
    if kind == "text" and prop.get("type") == "enumeration":
        transform = "enumeration"
    if kind == "int" and prop.get("type") == "enumeration":
        transform = "enumeration"
    if kind in ("date",) and prop.get("type") == "datetime":
        transform = "datetime"
    if kind in ("datetime",) and prop.get("type") == "date":
        transform = "date"
    extra: dict[str, Any] = {}
    notes: list[str] = []
    options = [str(o.get("value")) for o in prop.get("options") or [] if o.get("value") is not None]
    vocabulary = VOCABULARY.get(kind)
    if vocabulary and options:
        values = {}
        for option in options:
            canonical = next((v for v in vocabulary if v.lower() == option.lower().replace(" ", "_")), None)
            if canonical is not None:
                values[option] = canonical
        extra["values"] = values
        missing = [o for o in options if o not in values]
        if missing:
            notes.append(f"options without a canonical value (map them): {', '.join(missing)}")
    if kind == "frequency" and options:
        unknown = [o for o in options if o.strip().lower().replace(" ", "_").replace("-", "_") not in FREQUENCY_ALIASES]
        if unknown:
            extra["values"] = {}
            notes.append(f"options that are no known billing frequency (map them): {', '.join(unknown)}")
    if transform == "money":
        currency = next((d for d in definitions if "currency" in d.get("name", "") and d.get("type") in ("enumeration", "string")), None)
        if currency is not None:
            extra["currency_property"] = currency["name"]
    if field in TIMELINES.get(entity, {}):
        extra["historical"] = True
    return Guess(field, prop, transform, extra, notes)


def _render_entity(entity: str, object_type: str, definitions: list[dict], guesses: list[Guess]) -> str:
    names = {d.get("name") for d in definitions}
    created = "createdate" if "createdate" in names else "hs_createdate"
    modified = "lastmodifieddate" if object_type in ("contacts", "0-1") and "lastmodifieddate" in names else "hs_lastmodifieddate"
    lines = [f"{entity}:", f"  object: {object_type}", f"  created_property: {created}",
             f"  modified_property: {modified}", "  fields:"]
    if not guesses:
        lines.append("    {}  # REVIEW: nothing recognised; map the fields by hand")
    for guess in guesses:
        prop = guess.prop["name"]
        prop_text = f"[{', '.join(prop)}]" if isinstance(prop, list) else prop
        parts = [f"property: {prop_text}", f"transform: {guess.transform}"]
        for key, value in guess.extra.items():
            parts.append(f"{key}: {_flow(value)}")
        lines.append(f"    {guess.field}: {{{', '.join(parts)}}}")
        note = f'guessed from "{guess.prop.get("label", prop_text)}"'
        if guess.notes:
            note += "; " + "; ".join(guess.notes)
        lines[-1] += f"  # REVIEW: {note}"
    if entity == "usage" and "onboarding_milestones_done" in {g.field for g in guesses}:
        milestones = next(g for g in guesses if g.field == "onboarding_milestones_done").prop
        total = len(milestones.get("options") or [])
        if total:
            lines.append(f"    onboarding_milestones_total: {{constant: {total}, transform: integer}}"
                         f"  # REVIEW: the number of options of {milestones['name']}")
    return "\n".join(lines) + "\n"


def _flow(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_quote(k)}: {_quote(v)}" for k, v in value.items()) + "}"
    return _quote(value)


def _quote(value: Any) -> str:
    text = str(value)
    if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_\-]*", text) and text.lower() not in ("true", "false", "yes", "no", "null", "on", "off", "y", "n"):
        return text
    return '"' + text.replace('"', '\\"') + '"'


def _render_associations(objects: dict[str, str], customer: str) -> str:
    customer_type = objects[customer]
    contacts = objects.get("contacts")
    lines = ["associations:  # REVIEW: the associations the connector pulls to tie records to customers"]
    pairs = []
    if contacts and customer_type != contacts:
        pairs.append((contacts, customer_type))
    for entity in ("subscriptions", "deals", "feedback"):
        own = objects.get(entity)
        if own:
            if entity != "feedback":
                pairs.append((own, customer_type))
            if contacts and contacts != customer_type or entity == "feedback" and contacts:
                pairs.append((own, contacts))
    if objects.get("line_items"):
        for parent in ("deals", "subscriptions"):
            if objects.get(parent):
                pairs.append((objects[parent], objects["line_items"]))
    for a, b in dict.fromkeys(pairs):
        lines.append(f"  - {{from: {a}, to: {b}}}")
    if len(lines) == 1:
        lines[0] = "associations: []"
    return "\n".join(lines) + "\n"


def _render_portal(customer: str, currencies: set[str]) -> str:
    reporting = "USD" if not currencies or "USD" in currencies else sorted(currencies)[0]
    others = sorted(c for c in currencies if c != reporting)
    rate_lines = [f"    {reporting}: 1"]
    rate_lines += [f"    # {code}: 1.00  # REVIEW: rate of {code} in {reporting}; until set, {code} amounts are "
                   f"left empty and reported" for code in others]
    return "\n".join([
        "# portal.yaml — generated by `connector mappings init`; see mappings/README.md for every key.",
        "customer:",
        f"  object: {customer}  # REVIEW: companies (B2B) or contacts (B2C)",
        "  contacts_without_company: when_linked",
        "  primary_association_type_ids: [1, 2]",
        "currency:",
        f"  reporting: {reporting}  # REVIEW: the currency reports are in",
        "  rate_date: 2026-01-01  # REVIEW: the date the rates below were taken",
        "  rates:",
        *rate_lines,
        "periods:",
        "  time_zone: UTC  # REVIEW: the zone periods start and end in",
        "  default_period: month",
        "  fiscal_year_start_month: 1",
        "  mau_window: trailing_30_days",
        "active_customer:",
        "  live_statuses: [active, past_due, unpaid]",
        "  past_due_grace_days: null",
        "conventions:",
        "  churn: chartmogul",
        "  nrr: fixed_cohort",
        "clv:",
        "  gross_margin: 0.8  # REVIEW: your gross margin",
        "  cap_months: 60",
        "",
    ])
