"""Canonical model: frozen dataclasses built from stored HubSpot records through the mappings.

CONTRACT (shared by mapping, metrics, health, segments): the dataclasses below are the only shape the pure
core sees. ``build_portfolio`` turns stored records into a ``Portfolio``. Times are timezone-aware UTC
``datetime``; calendar dates are ``date``; money is ``Decimal`` in the portal's reporting currency
(already converted, at constant FX). A value that could not be read is ``None`` and is reported once in
``Portfolio.issues``; it never stops the run.
"""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from decimal import Decimal, InvalidOperation
from typing import Any, Callable, Protocol, Sequence
from zoneinfo import ZoneInfo

from connector.mapping.sources import CANONICAL_FIELDS, FREQUENCY_ALIASES as _FREQUENCY_ALIASES, TIMELINES

# A property's past: (effective_at, value) pairs in ascending time order.
Timeline = tuple[tuple[datetime, Any], ...]


def value_at(timeline: Timeline, at: datetime, default: Any = None) -> Any:
    """Value in effect at instant ``at`` (the last change at or before it), else ``default``."""
    if not timeline:
        return default
    index = bisect_right([t for t, _ in timeline], at)
    return timeline[index - 1][1] if index else default


class RecordLike(Protocol):
    """What the model reads of a stored record (``connector.state.StoredRecord`` satisfies it)."""

    object_type: str  # contacts | companies | deals | line_items | subscriptions | feedback_submissions
    id: str
    properties: dict[str, str | None]
    history: dict[str, list[dict[str, Any]]]  # name -> [{value, timestamp (ISO str), sourceType}], newest first
    archived: bool
    created_at: datetime | None
    updated_at: datetime | None


class AssociationLike(Protocol):
    """One stored association (``connector.state.StoredAssociation`` satisfies it)."""

    from_type: str
    from_id: str
    to_type: str
    to_id: str
    type_id: int | None


@dataclass(frozen=True)
class DataIssue:
    """A malformed value: the field is left empty and the run goes on."""

    object_type: str
    record_id: str
    property: str
    raw_value: str | None
    reason: str


# Statuses in which a subscription still earns MRR (past-due counts until churn is recognised, METRICS §1.1).
LIVE_STATUSES = frozenset({"active", "past_due", "unpaid"})
OVERDUE_STATUSES = frozenset({"past_due", "unpaid"})
# Months per billing interval inverted: monthly amount = amount × factor (METRICS §1.3: weekly 52/12).
MONTHLY_FACTOR: dict[str, Decimal] = {
    "weekly": Decimal(52) / Decimal(12),
    "biweekly": Decimal(26) / Decimal(12),
    "monthly": Decimal(1),
    "quarterly": Decimal(1) / Decimal(3),
    "per_six_months": Decimal(1) / Decimal(6),
    "annually": Decimal(1) / Decimal(12),
    "per_two_years": Decimal(1) / Decimal(24),
    "per_three_years": Decimal(1) / Decimal(36),
    "per_four_years": Decimal(1) / Decimal(48),
    "per_five_years": Decimal(1) / Decimal(60),
}


@dataclass(frozen=True)
class Subscription:
    id: str
    customer_id: str | None
    name: str | None
    status: str | None  # canonical: active | past_due | unpaid | paused | canceled | expired | scheduled
    mrr: Decimal | None  # current normalised monthly amount (reporting currency)
    currency: str | None
    billing_frequency: str | None  # canonical: weekly | biweekly | monthly | quarterly | per_six_months | annually | ...
    start_date: date | None
    next_payment_due: date | None
    last_payment_status: str | None  # e.g. succeeded | failed | pending
    cancel_requested_at: datetime | None
    created_at: datetime | None
    mrr_history: Timeline = ()  # (effective_at, Decimal MRR) ascending
    status_history: Timeline = ()  # (effective_at, canonical status) ascending
    # From portal.yaml active_customer (defaults: METRICS §1.1): statuses that earn MRR, and after how many days
    # in past_due/unpaid churn is recognised (None: only when the status leaves the live statuses).
    live_statuses: frozenset[str] = LIVE_STATUSES
    past_due_grace_days: int | None = None

    def status_at(self, at: datetime) -> str | None:
        if self.status_history:
            return value_at(self.status_history, at)
        if self.created_at is not None and at < self.created_at:
            return None
        return self.status

    def mrr_at(self, at: datetime) -> Decimal:
        """Recurring revenue in effect at ``at``: 0 unless the subscription counts as live then."""
        status = self.status_at(at)
        if status not in self.live_statuses:
            return Decimal(0)
        if self.past_due_grace_days is not None and status in OVERDUE_STATUSES:
            since = self._overdue_since(at)
            if since is not None and (at - since).days > self.past_due_grace_days:
                return Decimal(0)
        if self.mrr_history:
            value = value_at(self.mrr_history, at)
            return value if value is not None else Decimal(0)
        return self.mrr or Decimal(0)

    def _overdue_since(self, at: datetime) -> datetime | None:
        """Start of the unbroken past_due/unpaid run that contains ``at`` (None without a status history)."""
        index = bisect_right([t for t, _ in self.status_history], at) - 1
        since = None
        while index >= 0 and self.status_history[index][1] in OVERDUE_STATUSES:
            since = self.status_history[index][0]
            index -= 1
        return since


@dataclass(frozen=True)
class LineItem:
    id: str
    deal_id: str | None
    subscription_id: str | None
    name: str | None
    quantity: Decimal | None
    price: Decimal | None
    amount: Decimal | None
    discount_percentage: Decimal | None
    billing_frequency: str | None  # canonical, None for one-time
    mrr: Decimal | None  # normalised monthly amount for recurring items, None for one-time


@dataclass(frozen=True)
class Deal:
    id: str
    customer_id: str | None
    name: str | None
    amount: Decimal | None  # reporting currency
    currency: str | None
    close_date: datetime | None
    stage: str | None
    is_won: bool
    is_closed: bool
    created_at: datetime | None
    line_item_ids: tuple[str, ...] = ()


@dataclass(frozen=True)
class FeedbackResponse:
    id: str
    customer_id: str | None
    contact_id: str | None
    survey_type: str  # NPS | CSAT | CES | other (upper case)
    value: int | None  # the rating on the survey's own scale
    response_group: str | None  # HubSpot's group as given: PROMOTER | PASSIVE | DETRACTOR
    submitted_at: datetime | None
    channel: str | None = None


@dataclass(frozen=True)
class Usage:
    """Product usage and service signals of one customer, as of the last pull, with their pasts."""

    customer_id: str
    last_login_at: datetime | None = None
    logins_30d: int | None = None
    active_days_30d: int | None = None  # days with activity in the trailing 30 (0-30)
    active_users_30d: int | None = None  # MAU
    avg_daily_active_users_30d: float | None = None  # mean DAU
    seats_purchased: int | None = None
    seats_used: int | None = None
    onboarding_milestones_done: tuple[str, ...] = ()
    onboarding_milestones_total: int | None = None
    first_value_at: datetime | None = None
    open_tickets: int | None = None
    tickets_90d: int | None = None
    last_engagement_at: datetime | None = None
    active_days_history: Timeline = ()  # (effective_at, int) ascending
    logins_history: Timeline = ()
    seats_used_history: Timeline = ()


@dataclass(frozen=True)
class Customer:
    """The retention unit: a company, or a contact where there is no company (portal.yaml decides)."""

    id: str
    object_type: str  # companies | contacts
    name: str | None
    created_at: datetime | None
    customer_since: date | None
    acquisition_source: str | None
    industry: str | None
    country: str | None = None
    birthday: date | None = None  # the primary contact's
    contact_ids: tuple[str, ...] = ()
    primary_contact_id: str | None = None
    extra: tuple[tuple[str, Any], ...] = ()  # mapped custom fields (name, value) for custom rules


@dataclass(frozen=True)
class Portfolio:
    """Everything the pure core needs, for one portal, keyed by id."""

    customers: dict[str, Customer]
    subscriptions: tuple[Subscription, ...]
    deals: tuple[Deal, ...]
    line_items: tuple[LineItem, ...]
    feedback: tuple[FeedbackResponse, ...]
    usage: dict[str, Usage]  # by customer id
    reporting_currency: str = "USD"
    issues: tuple[DataIssue, ...] = field(default=())

    def subscriptions_by_customer(self) -> dict[str, list[Subscription]]:
        out: dict[str, list[Subscription]] = {}
        for sub in self.subscriptions:
            if sub.customer_id is not None:
                out.setdefault(sub.customer_id, []).append(sub)
        return out


def build_portfolio(
    records: Sequence[RecordLike] | Any,
    associations: Sequence[AssociationLike] | Any,
    pack: Any,
) -> Portfolio:
    """Map stored records through the mapping pack into a Portfolio.

    One pass over the associations (only the pairs the pack needs, oriented the way they are looked up), one pass
    over the records (each converted by the readers compiled from sources.yaml), then one assembly pass over the
    converted rows. Archived records are skipped; a malformed value leaves its field None and adds a DataIssue.
    """
    plan = _Plan(pack)
    links = _Links(plan)
    for assoc in associations:
        links.add(assoc.from_type, str(assoc.from_id), assoc.to_type, str(assoc.to_id), assoc.type_id)

    issues: list[DataIssue] = []
    rows: dict[str, dict[str, _Row]] = {entity: {} for entity in plan.readers}
    dispatch = plan.dispatch
    for record in records:
        if record.archived:
            continue
        entities = dispatch.get(record.object_type)
        if not entities:
            continue
        props = record.properties or {}
        history = record.history or {}
        for entity, readers, historical in entities:
            values: dict[str, Any] = {}
            for attr, read in readers:
                try:
                    values[attr] = read(props)
                except _Bad as bad:
                    values[attr] = None
                    issues.append(DataIssue(record.object_type, str(record.id), bad.prop, bad.raw, bad.reason))
            for attr, prop, read_history in historical:
                entries = history.get(prop)
                if entries:
                    values[attr] = read_history(entries, props, record.object_type, str(record.id), issues)
            rows[entity][str(record.id)] = _Row(values, record.created_at)
    return _assemble(plan, links, rows, issues)


# ---------------------------------------------------------------- reading values (compiled once per pack)


class _Bad(Exception):
    """A value that could not be read: becomes a DataIssue."""

    def __init__(self, prop: str, raw: Any, reason: str):
        self.prop, self.raw, self.reason = prop, raw, reason


@dataclass(slots=True)
class _Row:
    values: dict[str, Any]
    created_at: datetime | None


_UTC = timezone.utc
_TRUE = frozenset({"true", "1", "yes", "y", "on"})
_FALSE = frozenset({"false", "0", "no", "n", "off"})


def parse_decimal(raw: str) -> Decimal:
    try:
        value = Decimal(raw)
    except (InvalidOperation, ValueError):
        raise ValueError("not a number") from None
    if not value.is_finite():
        raise ValueError("not a finite number")
    return value


def parse_int(raw: str) -> int:
    try:
        return int(raw)
    except ValueError:
        value = parse_decimal(raw)
        if value != value.to_integral_value():
            raise ValueError("not a whole number") from None
        return int(value)


def parse_datetime(raw: str | int) -> datetime:
    """ISO-8601 (HubSpot's ms and Z), a plain date (midnight UTC) or epoch milliseconds → aware UTC datetime."""
    if isinstance(raw, int) or raw.isdigit():
        try:
            return datetime.fromtimestamp(int(raw) / 1000, _UTC)
        except (OverflowError, OSError, ValueError):
            raise ValueError("not a valid epoch-milliseconds time") from None
    try:
        value = datetime.fromisoformat(raw)
    except ValueError:
        raise ValueError("not a valid date-time") from None
    if value.tzinfo is None:
        return value.replace(tzinfo=_UTC)
    return value.astimezone(_UTC) if value.utcoffset() else value


def parse_date(raw: str) -> date:
    if len(raw) == 10 and not raw.isdigit():
        try:
            return date.fromisoformat(raw)
        except ValueError:
            raise ValueError("not a valid date") from None
    return parse_datetime(raw).date()


def parse_bool(raw: str) -> bool:
    key = raw.strip().lower()
    if key in _TRUE:
        return True
    if key in _FALSE:
        return False
    raise ValueError("not a boolean (true/false)")


def _converter(spec: Any, kind: str, pack: Any) -> Callable[[str, dict], Any]:
    """raw string (and the record's properties, for money's currency) → canonical value; ValueError if malformed."""
    transform = spec.transform
    tz = ZoneInfo(pack.portal.periods.time_zone)
    if transform == "money":
        currency = pack.portal.currency
        fixed = spec.currency
        currency_prop = spec.currency_property

        def base(raw: str, props: dict) -> Any:
            amount = parse_decimal(raw)
            code = fixed or (props.get(currency_prop) if currency_prop else None) or None
            rate = currency.rate(code)
            if rate is None:
                raise ValueError(f'no FX rate for currency "{code}" in portal.yaml')
            return amount if rate == 1 else amount * rate
    elif transform == "number":
        base = _ignore_props(parse_decimal)
    elif transform == "integer":
        base = _ignore_props(parse_int)
    elif transform == "date":
        base = _ignore_props(parse_date)
    elif transform == "datetime":
        base = _ignore_props(parse_datetime)
    elif transform == "bool":
        base = _ignore_props(parse_bool)
    elif transform == "multi_select":
        def base(raw: str, props: dict) -> Any:
            return tuple(part for part in raw.split(";") if part)
    elif transform in ("enumeration", "frequency"):
        mapping = dict(spec.values or {})
        default = spec.default
        if transform == "frequency":
            aliases = {**_FREQUENCY_ALIASES, **{k.lower(): v for k, v in pack.sources.frequency_aliases.items()}}

            def base(raw: str, props: dict) -> Any:
                if raw in mapping:
                    return mapping[raw]
                found = aliases.get(raw.strip().lower().replace(" ", "_").replace("-", "_"))
                if found is None:
                    raise ValueError("unknown billing frequency")
                return found
        elif spec.values is None and default is None:
            def base(raw: str, props: dict) -> Any:
                return raw
        else:
            def base(raw: str, props: dict) -> Any:
                found = mapping.get(raw, default)
                if found is None:
                    raise ValueError("unknown enumeration value")
                return found
    else:  # string
        def base(raw: str, props: dict) -> Any:
            return raw
    # Bring the transform's value to the canonical field's type.
    if kind == "date" and transform == "datetime":
        return lambda raw, props: base(raw, props).astimezone(tz).date()
    if kind == "datetime" and transform == "date":
        return lambda raw, props: datetime.combine(base(raw, props), datetime.min.time(), _UTC)
    if kind == "int" and transform in ("number", "enumeration"):
        return lambda raw, props: parse_int(str(base(raw, props)))
    if kind == "float":
        return lambda raw, props: float(base(raw, props))
    if kind == "bool" and transform == "enumeration":
        return lambda raw, props: parse_bool(str(base(raw, props)))
    return base


def _ignore_props(fn: Callable[[str], Any]) -> Callable[[str, dict], Any]:
    return lambda raw, props: fn(raw)


def _reader(spec: Any, kind: str, pack: Any) -> Callable[[dict], Any]:
    """props → value, raising _Bad for a malformed value. Empty strings are HubSpot's "no value"."""
    if spec.constant is not None:
        constant = _converter(spec, kind, pack)(str(spec.constant).lower() if isinstance(spec.constant, bool)
                                                 else str(spec.constant), {})
        return lambda props: constant
    convert = _converter(spec, kind, pack)
    if spec.transform == "join":
        names = spec.property

        def read_join(props: dict) -> Any:
            parts = [props.get(name) for name in names]
            text = " ".join(p.strip() for p in parts if p and p.strip())
            return text or None
        return read_join
    names = spec.property if isinstance(spec.property, tuple) else (spec.property,)
    if len(names) == 1:
        name = names[0]

        def read_one(props: dict) -> Any:
            raw = props.get(name)
            if raw is None or raw == "":
                return None
            try:
                return convert(raw, props)
            except (ValueError, TypeError, ArithmeticError) as exc:
                raise _Bad(name, raw, str(exc) or "malformed value") from None
        return read_one

    def read_first(props: dict) -> Any:
        for name in names:
            raw = props.get(name)
            if raw is not None and raw != "":
                try:
                    return convert(raw, props)
                except (ValueError, TypeError, ArithmeticError) as exc:
                    raise _Bad(name, raw, str(exc) or "malformed value") from None
        return None
    return read_first


def _history_reader(spec: Any, kind: str, pack: Any) -> Callable[..., Timeline]:
    """HubSpot's newest-first [{value, timestamp}] → ascending Timeline; bad entries dropped, reported once."""
    convert = _converter(spec, kind, pack)
    prop = spec.properties[0]

    def read(entries: list[dict], props: dict, object_type: str, record_id: str, issues: list[DataIssue]) -> Timeline:
        points = []
        reported = False
        for entry in entries:
            raw = entry.get("value")
            try:
                at = parse_datetime(entry.get("timestamp"))
                value = None if raw is None or raw == "" else convert(raw, props)
            except (ValueError, TypeError, ArithmeticError, AttributeError) as exc:
                if not reported:
                    issues.append(DataIssue(object_type, record_id, prop, raw, f"history: {exc or 'malformed value'}"))
                    reported = True
                continue
            points.append((at, value))
        points.sort(key=lambda point: point[0])  # HubSpot gives newest first; sort rather than trust the order
        return tuple(points)
    return read


class _Plan:
    """Everything compiled from the pack that the builder needs."""

    def __init__(self, pack: Any):
        self.pack = pack
        sources = pack.sources
        self.readers: dict[str, list[tuple[str, Callable[[dict], Any]]]] = {}
        self.object_of: dict[str, str] = {}
        self.dispatch: dict[str, list[tuple[str, list, list]]] = {}
        for entity, source in sources.entities():
            catalog = CANONICAL_FIELDS[entity]
            timelines = TIMELINES.get(entity, {})
            readers = [(name, _reader(spec, catalog[name], pack)) for name, spec in source.fields.items()]
            readers += [(f"extra:{name}", _reader(spec, _extra_kind(spec), pack)) for name, spec in source.extra.items()]
            historical = [(timelines[name], spec.properties[0], _history_reader(spec, catalog[name], pack))
                          for name, spec in source.fields.items() if spec.historical and name in timelines]
            self.readers[entity] = readers
            self.object_of[entity] = source.object
            self.dispatch.setdefault(source.object, []).append((entity, readers, historical))
        customer = pack.portal.customer
        self.customer_entity = customer.object
        self.customer_type = self.object_of.get(customer.object, customer.object)
        self.contacts_type = self.object_of.get("contacts")
        self.primary_ids = frozenset(customer.primary_association_type_ids)
        self.live = frozenset(pack.portal.active_customer.live_statuses)
        self.grace = pack.portal.active_customer.past_due_grace_days


def _extra_kind(spec: Any) -> str:
    return {"number": "decimal", "integer": "int", "money": "money", "date": "date", "datetime": "datetime",
            "bool": "bool", "multi_select": "tags"}.get(spec.transform, "text")


# ---------------------------------------------------------------- associations


def _id_order(value: str) -> tuple[int, str]:
    # HubSpot ids are numeric strings: order 9 before 10
    return (len(value), value)


class _Links:
    """Associations the builder looks up, each stored once in its lookup direction: (from, to) -> id -> [(id, primary)]."""

    def __init__(self, plan: _Plan):
        o = plan.object_of
        wanted = [
            (o.get("contacts"), plan.customer_type),
            (o.get("subscriptions"), plan.customer_type), (o.get("subscriptions"), o.get("contacts")),
            (o.get("deals"), plan.customer_type), (o.get("deals"), o.get("contacts")),
            (o.get("feedback"), plan.customer_type), (o.get("feedback"), o.get("contacts")),
            (o.get("line_items"), o.get("deals")), (o.get("line_items"), o.get("subscriptions")),
        ]
        self.maps: dict[tuple[str, str], dict[str, list[tuple[str, bool]]]] = {
            pair: {} for pair in wanted if pair[0] and pair[1] and pair[0] != pair[1]
        }
        self.primary = plan.primary_ids

    def add(self, from_type: str, from_id: str, to_type: str, to_id: str, type_id: int | None) -> None:
        target = self.maps.get((from_type, to_type))
        if target is None:
            target = self.maps.get((to_type, from_type))
            if target is None:
                return
            from_id, to_id = to_id, from_id
        target.setdefault(from_id, []).append((to_id, type_id in self.primary))

    def pick(self, from_type: str | None, from_id: str, to_type: str | None, exists: Any) -> str | None:
        """The associated id to use: a primary association first, then the lowest id; only ids in ``exists``."""
        if from_type is None or to_type is None:
            return None
        candidates = self.maps.get((from_type, to_type), {}).get(from_id)
        if not candidates:
            return None
        best: tuple[bool, tuple[int, str]] | None = None
        chosen = None
        for to_id, primary in candidates:
            if to_id not in exists:
                continue
            key = (not primary, _id_order(to_id))
            if best is None or key < best:
                best, chosen = key, to_id
        return chosen

    def pick_primary(self, from_type: str | None, from_id: str, to_type: str | None, to_id: str) -> bool:
        for candidate, primary in self.maps.get((from_type, to_type), {}).get(from_id, ()):  # type: ignore[arg-type]
            if candidate == to_id and primary:
                return True
        return False


# ---------------------------------------------------------------- assembly


def _assemble(plan: _Plan, links: _Links, rows: dict[str, dict[str, _Row]], issues: list[DataIssue]) -> Portfolio:
    o = plan.object_of
    contacts = rows.get("contacts", {})
    customer_rows = rows.get(plan.customer_entity, {})
    by_company = plan.customer_entity == "companies"
    fallback = plan.pack.portal.customer.contacts_without_company

    # contact -> customer id
    contact_customer: dict[str, str] = {}
    loose_contacts: set[str] = set()  # contacts with no company that may become customers
    if by_company:
        for contact_id in contacts:
            company = links.pick(o.get("contacts"), contact_id, plan.customer_type, customer_rows)
            if company is not None:
                contact_customer[contact_id] = company
            elif fallback != "never":
                loose_contacts.add(contact_id)
    else:
        contact_customer = {contact_id: contact_id for contact_id in customer_rows}
    promoted: set[str] = set(loose_contacts) if fallback == "always" else set()

    def customer_of(entity: str, record_id: str) -> tuple[str | None, str | None]:
        """(customer id, contact id) of a subscription, deal or survey answer."""
        direct = links.pick(o.get(entity), record_id, plan.customer_type, customer_rows)
        contact = links.pick(o.get(entity), record_id, o.get("contacts"), contacts) if plan.contacts_type else None
        if direct is not None:
            return direct, contact
        if contact is None:
            return None, None
        if contact in contact_customer:
            return contact_customer[contact], contact
        if contact in loose_contacts:
            promoted.add(contact)
            return contact, contact
        return None, contact

    reporting = plan.pack.portal.currency.reporting
    live, grace = plan.live, plan.grace
    subscriptions = []
    first_start: dict[str, date] = {}
    for sub_id, row in rows.get("subscriptions", {}).items():
        v = row.values
        customer_id, _ = customer_of("subscriptions", sub_id)
        start = v.get("start_date")
        if customer_id is not None and start is not None:
            known = first_start.get(customer_id)
            if known is None or start < known:
                first_start[customer_id] = start
        subscriptions.append(Subscription(
            id=sub_id, customer_id=customer_id, name=v.get("name"), status=v.get("status"), mrr=v.get("mrr"),
            currency=v.get("currency"), billing_frequency=v.get("billing_frequency"), start_date=start,
            next_payment_due=v.get("next_payment_due"), last_payment_status=v.get("last_payment_status"),
            cancel_requested_at=v.get("cancel_requested_at"), created_at=v.get("created_at") or row.created_at,
            mrr_history=v.get("mrr_history", ()), status_history=v.get("status_history", ()),
            live_statuses=live, past_due_grace_days=grace,
        ))

    line_items = []
    items_by_deal: dict[str, list[str]] = {}
    deal_rows = rows.get("deals", {})
    sub_ids = rows.get("subscriptions", {})
    for item_id, row in rows.get("line_items", {}).items():
        v = row.values
        deal_id = links.pick(o.get("line_items"), item_id, o.get("deals"), deal_rows)
        sub_id = links.pick(o.get("line_items"), item_id, o.get("subscriptions"), sub_ids)
        if deal_id is not None:
            items_by_deal.setdefault(deal_id, []).append(item_id)
        frequency, amount = v.get("billing_frequency"), v.get("amount")
        mrr = amount * MONTHLY_FACTOR[frequency] if frequency in MONTHLY_FACTOR and amount is not None else None
        line_items.append(LineItem(
            id=item_id, deal_id=deal_id, subscription_id=sub_id, name=v.get("name"), quantity=v.get("quantity"),
            price=v.get("price"), amount=amount, discount_percentage=v.get("discount_percentage"),
            billing_frequency=frequency, mrr=mrr,
        ))

    deals = []
    for deal_id, row in deal_rows.items():
        v = row.values
        customer_id, _ = customer_of("deals", deal_id)
        items = items_by_deal.get(deal_id)
        deals.append(Deal(
            id=deal_id, customer_id=customer_id, name=v.get("name"), amount=v.get("amount"), currency=v.get("currency"),
            close_date=v.get("close_date"), stage=v.get("stage"), is_won=bool(v.get("is_won")),
            is_closed=bool(v.get("is_closed")), created_at=v.get("created_at") or row.created_at,
            line_item_ids=tuple(sorted(items, key=_id_order)) if items else (),
        ))

    feedback = []
    for answer_id, row in rows.get("feedback", {}).items():
        v = row.values
        customer_id, contact_id = customer_of("feedback", answer_id)
        survey_type = v.get("survey_type")
        feedback.append(FeedbackResponse(
            id=answer_id, customer_id=customer_id, contact_id=contact_id,
            survey_type=survey_type.upper() if survey_type else "OTHER", value=v.get("value"),
            response_group=v.get("response_group"), submitted_at=v.get("submitted_at") or row.created_at,
            channel=v.get("channel"),
        ))

    # Customers last: they need the contacts rolled up to them and their first subscription start.
    contacts_of: dict[str, list[str]] = {}
    for contact_id, customer_id in contact_customer.items():
        contacts_of.setdefault(customer_id, []).append(contact_id)
    customer_object = plan.customer_entity
    customers: dict[str, Customer] = {}
    for customer_id, row in customer_rows.items():
        members = contacts_of.get(customer_id, [])
        primary = None
        if by_company and members:
            members.sort(key=_id_order)
            primary = next((c for c in members if links.pick_primary(o.get("contacts"), c, plan.customer_type,
                                                                      customer_id)), members[0])
        elif not by_company:
            primary = customer_id
        customers[customer_id] = _customer(customer_id, customer_object, row, members, primary, contacts,
                                           first_start)
    for contact_id in sorted(promoted, key=_id_order):
        customers[contact_id] = _customer(contact_id, "contacts", contacts[contact_id], [contact_id], contact_id,
                                          contacts, first_start)

    usage: dict[str, Usage] = {}
    for customer_id, row in rows.get("usage", {}).items():
        if customer_id in customers:
            usage[customer_id] = Usage(customer_id=customer_id, **row.values)

    return Portfolio(
        customers=customers, subscriptions=tuple(subscriptions), deals=tuple(deals), line_items=tuple(line_items),
        feedback=tuple(feedback), usage=usage, reporting_currency=reporting, issues=tuple(issues),
    )


def _customer(customer_id: str, object_type: str, row: _Row, members: list[str], primary: str | None,
              contacts: dict[str, _Row], first_start: dict[str, date]) -> Customer:
    v = row.values
    birthday = v.get("birthday")
    if birthday is None and primary is not None and primary in contacts:
        birthday = contacts[primary].values.get("birthday")
    extra = tuple((key[6:], value) for key, value in v.items() if key.startswith("extra:"))
    return Customer(
        id=customer_id, object_type=object_type, name=v.get("name"), created_at=v.get("created_at") or row.created_at,
        # Without a mapped "customer since" date, the first subscription's start stands in for it.
        customer_since=v.get("customer_since") or first_start.get(customer_id),
        acquisition_source=v.get("acquisition_source"), industry=v.get("industry"), country=v.get("country"),
        birthday=birthday, contact_ids=tuple(members), primary_contact_id=primary, extra=extra,
    )
