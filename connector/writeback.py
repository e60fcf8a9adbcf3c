"""Write-back: plan_writeback (pure diff) and apply_plan (batches, ledger), enrollments, rollback."""

from __future__ import annotations

import json
import math
import re
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timezone
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any, Callable, Collection, Iterable, Iterator, Mapping, NamedTuple, Protocol, Sequence

from connector.errors import (
    AuthError,
    ConfigError,
    HubSpotError,
    RateLimitedError,
    RecordFailure,
    RejectedError,
    RetryableError,
    WritebackError,
)
from connector.mapping.base import did_you_mean
from connector.mapping.writeback import EnrollmentRule, OutputMapping, PropertyDef, WritebackConfig, humanise
from connector.model import Customer, Deal

# HubSpot's standard object type ids (lists are created per objectTypeId).
OBJECT_TYPE_IDS = {"contacts": "0-1", "companies": "0-2", "deals": "0-3"}
MAX_BATCH = 100  # HubSpot's batch update limit (API-NOTES §1)
MAX_TEXT = 65_536  # a string property holds at most this many characters (API-NOTES §4); longer is refused

CurrentValues = Mapping[tuple[str, str], Mapping[str, "str | None"]]


# ---------------------------------------------------------------- protocols (the adapter and the store satisfy them)


class BatchResultLike(Protocol):
    ok: list[str]
    failed: list[RecordFailure]


class CrmWriter(Protocol):
    """The part of connector.hubspot.HubSpotClient write-back uses."""

    def batch_update(self, object_type: str, updates: list[tuple[str, dict[str, str]]]) -> BatchResultLike: ...

    def fetch_properties(self, object_type: str) -> list[dict]: ...

    def ensure_property_group(self, object_type: str, name: str, label: str) -> Any: ...

    def ensure_properties(self, object_type: str, defs: list[dict]) -> Any: ...

    def enroll_contact(self, workflow_id: str, email: str) -> Any: ...

    def unenroll_contact(self, workflow_id: str, email: str) -> Any: ...

    def fetch_workflows(self) -> list[dict]: ...

    def find_list(self, name: str, object_type_id: str) -> dict | None: ...

    def create_list(self, name: str, object_type_id: str) -> dict: ...

    def add_to_list(self, list_id: str, ids: list[str]) -> Any: ...

    def remove_from_list(self, list_id: str, ids: list[str]) -> Any: ...


class LedgerStore(Protocol):
    """The part of connector.state.StateStore write-back uses: the write ledger and the enrollment ledger."""

    def save_plan(self, run_id: str, rows: list[dict]) -> None: ...

    def pending_changes(self, run_id: str) -> list[dict]: ...

    def record_outcomes(self, run_id: str, outcomes: list[dict]) -> None: ...

    def ledger(self, run_id: str) -> list[dict]: ...

    def unfinished_apply_runs(self) -> list[str]: ...

    def enrollments(self, kind: str, target: str) -> set[str]: ...

    def record_enrollment(
        self, run_id: str, kind: str, target: str, record_id: str, action: str, status: str, message: str | None
    ) -> None: ...


# ---------------------------------------------------------------- HubSpot value formats (pure)


def _decimal(value: Any) -> Decimal | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, Decimal):
        return value if value.is_finite() else None
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, float):
        # str() is the shortest repr, so 0.1 stays 0.1 rather than 0.1000000000000000055…
        return Decimal(str(value)) if math.isfinite(value) else None
    if isinstance(value, str):
        try:
            parsed = Decimal(value.strip())
        except InvalidOperation:
            return None
        return parsed if parsed.is_finite() else None
    return None


def format_number(value: Any, decimals: int | None = None) -> str | None:
    """A number as HubSpot returns it: no exponent, no trailing zeros or ".0", no "-0"."""
    number = _decimal(value)
    if number is None:
        return None
    if decimals is not None:
        number = number.quantize(Decimal(1).scaleb(-decimals), rounding=ROUND_HALF_UP)
    number = number.normalize()
    if number == 0:
        return "0"
    return format(number, "f")


def _utc(moment: datetime) -> datetime:
    # A naive datetime is taken as UTC: the pure core only deals in UTC.
    return moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment.astimezone(timezone.utc)


def format_datetime(moment: datetime) -> str:
    """ISO 8601 with milliseconds and Z, HubSpot's own timestamp format."""
    moment = _utc(moment)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _parse_instant(text: str) -> datetime | None:
    text = text.strip()
    if re.fullmatch(r"-?\d{9,}", text):  # epoch milliseconds, HubSpot's other timestamp format
        return datetime.fromtimestamp(int(text) / 1000, tz=timezone.utc)
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return _utc(parsed)


def _parse_date(text: str) -> date | None:
    text = text.strip()
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
        try:
            return date.fromisoformat(text)
        except ValueError:
            return None
    moment = _parse_instant(text)
    return moment.date() if moment else None


def format_value(value: Any, prop: PropertyDef, *, decimals: int | None = None) -> str | None:
    """A computed value in HubSpot's string form for ``prop``; None means "no value" (written as "")."""
    if value is None:
        return None
    if isinstance(value, (list, tuple, set, frozenset)):
        # Multi-select: `;`-joined, sorted so the same set always gives the same string.
        items = sorted({str(v) for v in value if v is not None and str(v) != ""})
        return ";".join(items) if items else None
    if isinstance(value, bool):
        return "true" if value else "false"
    if prop.type == "number":
        return format_number(value, decimals)
    if prop.type == "date":
        if isinstance(value, datetime):
            return _utc(value).date().isoformat()  # midnight UTC: HubSpot rejects any other time on a date
        if isinstance(value, date):
            return value.isoformat()
        parsed = _parse_date(str(value))
        return parsed.isoformat() if parsed else str(value)
    if prop.type == "datetime":
        if isinstance(value, datetime):
            return format_datetime(value)
        if isinstance(value, date):
            return format_datetime(datetime(value.year, value.month, value.day, tzinfo=timezone.utc))
        parsed = _parse_instant(str(value))
        return format_datetime(parsed) if parsed else str(value)
    if isinstance(value, (int, float, Decimal)):
        return format_number(value, decimals)
    if isinstance(value, datetime):
        return format_datetime(value)
    if isinstance(value, date):
        return value.isoformat()
    text = str(value)[:MAX_TEXT]
    return text if text != "" else None


def same_value(prop: PropertyDef | None, current: str | None, desired: str | None) -> bool:
    """Whether the CRM's ``current`` string already holds ``desired`` in ``prop``'s format.

    None, "" and a missing value are all "empty". Without a property definition (rollback of old ledger
    rows), numbers compare by value and everything else exactly.
    """
    current = None if current is None or current == "" else current
    desired = None if desired is None or desired == "" else desired
    if current is None or desired is None:
        return current is desired
    if current == desired:
        return True
    kind = prop.type if prop is not None else None
    if kind == "enumeration" and prop is not None and prop.multi:
        return _multi(current) == _multi(desired)
    if kind == "bool":
        return current.strip().lower() == desired.strip().lower()
    if kind == "date":
        left, right = _parse_date(current), _parse_date(desired)
        return left is not None and left == right
    if kind == "datetime":
        left, right = _parse_instant(current), _parse_instant(desired)
        return left is not None and right is not None and _ms(left) == _ms(right)
    if kind in ("number", None):
        left, right = _decimal(current), _decimal(desired)
        return left is not None and right is not None and left == right
    return False


def _multi(text: str) -> frozenset[str]:
    return frozenset(part.strip() for part in text.split(";") if part.strip())


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


# ---------------------------------------------------------------- the plan (pure)


class Change(NamedTuple):
    """One property of one record to set; ``after`` "" clears it. (A tuple: plans hold millions of them.)"""

    object_type: str
    record_id: str
    property: str
    before: str | None
    after: str


@dataclass(frozen=True)
class KeptEdit:
    """A value someone changed after our run wrote it: rollback leaves it alone."""

    object_type: str
    record_id: str
    property: str
    written: str | None
    current: str | None


@dataclass(frozen=True)
class Plan:
    """A write plan: the changes, in a stable order, and what planning noticed."""

    changes: tuple[Change, ...] = ()
    kept: tuple[KeptEdit, ...] = ()  # rollback only
    conflicts: int = 0  # records two customers wanted different values for (the primary one won)

    def __len__(self) -> int:
        return len(self.changes)

    def __bool__(self) -> bool:
        return bool(self.changes)

    def counts(self) -> dict[str, dict[str, int]]:
        """Changes per object type and property."""
        out: dict[str, dict[str, int]] = {}
        for change in self.changes:
            per = out.setdefault(change.object_type, {})
            per[change.property] = per.get(change.property, 0) + 1
        return {obj: dict(sorted(props.items())) for obj, props in sorted(out.items())}

    def record_count(self) -> int:
        return len({(c.object_type, c.record_id) for c in self.changes})

    def properties(self) -> frozenset[tuple[str, str]]:
        return frozenset((c.object_type, c.property) for c in self.changes)

    def to_dict(self) -> dict[str, Any]:
        return {
            "changes": [c._asdict() for c in self.changes],
            "counts": self.counts(),
            "records": self.record_count(),
            "kept": [asdict(k) for k in self.kept],
            "conflicts": self.conflicts,
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=False)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "Plan":
        return cls(
            changes=tuple(Change(**c) for c in data.get("changes", ())),
            kept=tuple(KeptEdit(**k) for k in data.get("kept", ())),
            conflicts=int(data.get("conflicts", 0)),
        )


def _contact_targets(output: OutputMapping, customer: Customer) -> list[str]:
    if customer.object_type == "contacts":
        return [customer.id]  # the customer is itself a contact
    if output.contacts == "primary":
        return [customer.primary_contact_id] if customer.primary_contact_id else []
    return list(customer.contact_ids)


def _targets(output: OutputMapping, customer: Customer, open_deals: Mapping[str, list[str]]) -> list[tuple[str, int]]:
    """(record id, priority) the output goes to for this customer; lower priority wins a shared record."""
    if output.object == "companies":
        return [(customer.id, 0)] if customer.object_type == "companies" else []
    if output.object == "deals":
        return [(deal_id, 0) for deal_id in open_deals.get(customer.id, ())]
    return [(cid, 0 if cid == customer.primary_contact_id or customer.object_type == "contacts" else 1)
            for cid in _contact_targets(output, customer)]


def _id_order(record_id: str) -> tuple[int, str]:
    # HubSpot ids are numbers in strings: shorter first sorts them numerically, and any string still sorts.
    return (len(record_id), record_id)


def _open_deals(deals: Iterable[Deal]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = defaultdict(list)
    for deal in deals:
        if deal.customer_id is not None and not deal.is_closed:
            out[deal.customer_id].append(deal.id)
    return out


def _customers(customers: Mapping[str, Customer] | Iterable[Customer]) -> list[Customer]:
    items = customers.values() if isinstance(customers, Mapping) else customers
    return sorted(items, key=lambda c: c.id)


def plan_writeback(
    config: WritebackConfig,
    outputs: Mapping[str, Mapping[str, Any]],
    customers: Mapping[str, Customer] | Iterable[Customer],
    current: CurrentValues,
    *,
    deals: Iterable[Deal] = (),
) -> Plan:
    """The diff between computed ``outputs`` (per customer id) and the CRM's ``current`` values.

    A field missing from a customer's outputs is left alone; a field present with None clears the property.
    A record several customers reach (a contact of two companies) takes the value of the customer it is
    the primary contact of, else of the lowest customer id; each such disagreement counts as a conflict.
    """
    open_deals = _open_deals(deals)
    # object_type -> record id -> property -> (priority, customer id, desired, output)
    wanted: dict[str, dict[str, dict[str, tuple[int, str, str, OutputMapping]]]] = {}
    conflicts: set[tuple[str, str, str]] = set()
    for customer in _customers(customers):
        values = outputs.get(customer.id)
        if values is None:
            continue
        reach: dict[tuple[str, str], list[tuple[str, int]]] = {}
        for output in config.outputs:
            if output.field not in values:
                continue
            desired = format_value(values[output.field], output.property, decimals=output.decimals) or ""
            targets = reach.get((output.object, output.contacts))
            if targets is None:
                targets = reach[(output.object, output.contacts)] = _targets(output, customer, open_deals)
            records = wanted.setdefault(output.object, {})
            name = output.property.name
            entry = (0, customer.id, desired, output)
            for record_id, priority in targets:
                props = records.get(record_id)
                if props is None:
                    records[record_id] = {name: entry if priority == 0 else (priority, customer.id, desired, output)}
                    continue
                held = props.get(name)
                if held is not None:
                    if held[2] != desired:
                        conflicts.add((output.object, record_id, name))
                    if (held[0], held[1]) <= (priority, customer.id):
                        continue
                props[name] = entry if priority == 0 else (priority, customer.id, desired, output)
    changes: list[Change] = []
    for object_type in sorted(wanted):
        records = wanted[object_type]
        for record_id in sorted(records, key=_id_order):
            held_values = current.get((object_type, record_id)) or {}
            props = records[record_id]
            for name in sorted(props):
                desired, output = props[name][2], props[name][3]
                before = held_values.get(name)
                if before == desired or same_value(output.property, before, desired):
                    continue
                changes.append(Change(object_type, record_id, name, before, desired))
    return Plan(changes=tuple(changes), conflicts=len(conflicts))


def format_plan(plan: Plan, sample: int = 5) -> str:
    """The plan for a terminal: totals, counts per object and property, and a few example changes."""
    if not plan.changes:
        lines = ["Nothing to write: the CRM already holds every computed value."]
    else:
        lines = [f"{len(plan.changes)} changes to {plan.record_count()} records"]
        for object_type, props in plan.counts().items():
            lines.append(f"  {object_type}:")
            for name, count in props.items():
                lines.append(f"    {name:<40} {count:>7}")
        if sample > 0:
            lines.append(f"  e.g. (first {min(sample, len(plan.changes))}):")
            for change in plan.changes[:sample]:
                before = "(empty)" if change.before in (None, "") else repr(change.before)
                after = "(empty)" if change.after == "" else repr(change.after)
                lines.append(f"    {change.object_type}/{change.record_id} {change.property}: {before} -> {after}")
    if plan.conflicts:
        lines.append(f"  {plan.conflicts} records were reached by several customers with different values "
                     "(the primary customer's value is written)")
    if plan.kept:
        lines.append(f"  {len(plan.kept)} values edited since the run are kept:")
        for kept in plan.kept[:sample]:
            lines.append(f"    {kept.object_type}/{kept.record_id} {kept.property}: "
                         f"we wrote {kept.written!r}, now {kept.current!r}")
    return "\n".join(lines)


# ---------------------------------------------------------------- batching (pure)


@dataclass(frozen=True)
class Batch:
    """Up to 100 records of one object type, each with all its changed properties in one input."""

    object_type: str
    updates: tuple[tuple[str, dict[str, str]], ...]

    def record_ids(self) -> list[str]:
        return [record_id for record_id, _ in self.updates]


def plan_batches(changes: Iterable[Change] | Iterable[Mapping[str, Any]], size: int = MAX_BATCH) -> list[Batch]:
    """Group changes by object type and record (first-seen order) into batches of at most ``size`` records."""
    if not 1 <= size <= MAX_BATCH:
        raise ValueError(f"batch size must be 1-{MAX_BATCH}, got {size}")
    grouped: dict[str, dict[str, dict[str, str]]] = {}
    for change in changes:
        if isinstance(change, Change):
            object_type, record_id, name, after = change.object_type, change.record_id, change.property, change.after
        else:  # a ledger row
            object_type, record_id, name, after = (change["object_type"], str(change["record_id"]), change["property"],
                                                   change.get("after"))
        per_record = grouped.setdefault(object_type, {}).setdefault(record_id, {})
        per_record[name] = "" if after is None else after
    batches = []
    for object_type, records in grouped.items():
        items = list(records.items())
        for start in range(0, len(items), size):
            batches.append(Batch(object_type, tuple(items[start:start + size])))
    return batches


# ---------------------------------------------------------------- apply (side effects)


@dataclass
class ApplyResult:
    """What an apply (or resume) did; ``failures`` are the records HubSpot refused."""

    run_id: str
    planned: int = 0  # changes this call set out to send
    records_written: int = 0
    changes_written: int = 0
    batches: int = 0
    failures: list[RecordFailure] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failures

    def raise_for_failures(self) -> None:
        """WritebackError (exit 5) if any record was refused; every outcome is already in the ledger."""
        if self.failures:
            raise WritebackError(
                f"{len(self.failures)} records refused by HubSpot in run {self.run_id} "
                f"({self.records_written} written); see `connector writeback` ledger for the reasons",
                failures=self.failures,
            )

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id, "planned": self.planned, "records_written": self.records_written,
            "changes_written": self.changes_written, "batches": self.batches,
            "failures": [asdict(f) for f in self.failures],
        }


_EMAIL = re.compile(r"[^\s@/\"']+@[^\s@/\"']+")


def _safe(message: str | None) -> str | None:
    """HubSpot messages may echo an e-mail (an enrollment path, a contact value): never store one."""
    return _EMAIL.sub("<email>", message) if message else message


def apply_plan(
    run_id: str,
    plan: Plan,
    writer: CrmWriter,
    ledger: LedgerStore,
    *,
    owned: Collection[tuple[str, str]] | None = None,
    batch_size: int = MAX_BATCH,
    progress: Callable[[ApplyResult], None] | None = None,
) -> ApplyResult:
    """Save the plan to the ledger (status planned), then send it batch by batch, recording each outcome.

    ``owned`` (WritebackConfig.owned_properties()) makes apply refuse, before any write, a plan that touches a
    property the connector neither created nor was told to write. A crash leaves the unsent rows planned:
    ``resume_apply`` finishes them.
    """
    if owned is not None:
        foreign = sorted(plan.properties() - set(owned))
        if foreign:
            names = ", ".join(f"{obj}.{prop}" for obj, prop in foreign[:10])
            raise ConfigError(f"refusing to write properties the connector does not own: {names} "
                              "(provision them in mappings/writeback.yaml or mark them existing: true)")
    if not plan.changes:
        return ApplyResult(run_id)
    if ledger.ledger(run_id):
        raise WritebackError(f"run {run_id} already has a plan in the ledger; resume it instead")
    ledger.save_plan(run_id, [c._asdict() for c in plan.changes])
    return _send(run_id, ledger.pending_changes(run_id), writer, ledger, batch_size, progress)


def resume_apply(
    run_id: str,
    writer: CrmWriter,
    ledger: LedgerStore,
    *,
    batch_size: int = MAX_BATCH,
    progress: Callable[[ApplyResult], None] | None = None,
) -> ApplyResult:
    """Send what a killed apply left planned; what was recorded as written is not sent again.

    A batch that reached HubSpot but whose outcome was not yet recorded is sent again: the values are the
    same absolute values, so a second write changes nothing in the CRM.
    """
    return _send(run_id, ledger.pending_changes(run_id), writer, ledger, batch_size, progress)


def _send(
    run_id: str,
    rows: list[dict],
    writer: CrmWriter,
    ledger: LedgerStore,
    batch_size: int,
    progress: Callable[[ApplyResult], None] | None,
) -> ApplyResult:
    result = ApplyResult(run_id, planned=len(rows))
    for batch in plan_batches(rows, batch_size):
        try:
            answer = writer.batch_update(batch.object_type, [(rid, dict(props)) for rid, props in batch.updates])
            ok, failed = list(answer.ok), list(answer.failed)
        except RejectedError as exc:
            # The whole batch was refused (the adapter could not isolate it): every record carries the reason.
            ok, failed = [], list(exc.failures) or [RecordFailure(None, exc.message, exc.category)]
        except RetryableError as exc:
            if stops_the_run(exc):
                raise
            # 5xx, resets or 429s past the retry budget: this batch failed, the others may well go through. The
            # CRM still holds the old values, so the next sync plans them again.
            ok, failed = [], [RecordFailure(None, gave_up_message(exc), exc.category or "RETRIES_EXHAUSTED")]
        outcomes, written, failures = _outcomes(batch, ok, failed)
        # Recorded before the next batch goes out: a crash loses at most this batch's bookkeeping.
        ledger.record_outcomes(run_id, outcomes)
        result.batches += 1
        result.records_written += written
        result.changes_written += sum(1 for o in outcomes if o["status"] == "written")
        result.failures.extend(failures)
        if progress is not None:
            progress(result)
    return result


def _outcomes(
    batch: Batch, ok: Sequence[str], failed: Sequence[RecordFailure]
) -> tuple[list[dict], int, list[RecordFailure]]:
    ok_ids = {str(i) for i in ok}
    by_id = {str(f.record_id): f for f in failed if f.record_id is not None}
    unattributed = [f for f in failed if f.record_id is None]
    outcomes: list[dict] = []
    failures: list[RecordFailure] = []
    written = 0
    for record_id, props in batch.updates:
        if record_id in ok_ids:
            status, message = "written", None
            written += 1
        else:
            failure = by_id.get(record_id)
            if failure is None:
                reason = "; ".join(f.message for f in unattributed) or "HubSpot returned no result for this record"
                failure = RecordFailure(record_id, reason, unattributed[0].category if unattributed else None)
            failure = RecordFailure(record_id, _safe(failure.message) or "", failure.category, failure.context)
            failures.append(failure)
            status, message = "failed", failure.message
        for name in props:
            outcomes.append({"object_type": batch.object_type, "record_id": record_id, "property": name,
                             "status": status, "message": message})
    return outcomes, written, failures


# ---------------------------------------------------------------- rollback (pure)


def plan_rollback(
    ledger_rows: Iterable[Mapping[str, Any]],
    current_values: CurrentValues,
    *,
    properties: Mapping[tuple[str, str], PropertyDef] | None = None,
) -> Plan:
    """Restore a run's before-values wherever the CRM still holds what the run wrote.

    Rows recorded as written are restored; rows still planned are too when the CRM holds their value (the
    batch may have gone out just before a crash). A value someone changed since is kept and reported.
    ``properties`` (object_type, name) -> definition lets values compare in their type's format.
    """
    changes: list[Change] = []
    kept: list[KeptEdit] = []
    for row in ledger_rows:
        status = row.get("status")
        if status not in ("written", "planned"):
            continue
        object_type, record_id, name = row["object_type"], str(row["record_id"]), row["property"]
        prop = properties.get((object_type, name)) if properties else None
        written, before = row.get("after"), row.get("before")
        now = current_values.get((object_type, record_id), {}).get(name)
        if not same_value(prop, now, written):
            if status == "written":
                kept.append(KeptEdit(object_type, record_id, name, written, now))
            continue
        if same_value(prop, now, before):
            continue
        changes.append(Change(object_type, record_id, name, now, "" if before is None else before))
    return Plan(changes=tuple(changes), kept=tuple(kept))


def apply_rollback(
    run_id: str,
    source_run_id: str,
    plan: Plan,
    writer: CrmWriter,
    ledger: LedgerStore,
    *,
    batch_size: int = MAX_BATCH,
    progress: Callable[[ApplyResult], None] | None = None,
) -> ApplyResult:
    """Apply a rollback plan under its own ``run_id`` (ledgered like any write), then mark the source run's
    restored rows "rolled_back" so a second rollback neither repeats them nor mistakes them for human edits."""
    result = apply_plan(run_id, plan, writer, ledger, batch_size=batch_size, progress=progress)
    restored = {(r["object_type"], str(r["record_id"]), r["property"])
                for r in ledger.ledger(run_id) if r.get("status") == "written"} if plan.changes else set()
    marks = [{"object_type": o, "record_id": i, "property": p, "status": "rolled_back", "message": f"by run {run_id}"}
             for (o, i, p) in sorted(restored)]
    if marks:
        ledger.record_outcomes(source_run_id, marks)
    return result


# ---------------------------------------------------------------- provisioning


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


def observed_options(config: WritebackConfig, outputs: Mapping[str, Mapping[str, Any]]) -> dict[tuple[str, str], set[str]]:
    """Values the computed data puts in each enumeration property we own (new tags become options)."""
    seen: dict[tuple[str, str], set[str]] = defaultdict(set)
    enum_outputs = [o for o in config.provisioned() if o.property.type == "enumeration"]
    if not enum_outputs:
        return {}
    for values in outputs.values():
        for output in enum_outputs:
            text = format_value(values.get(output.field), output.property)
            if text:
                parts = text.split(";") if output.property.multi else [text]
                seen[(output.object, output.property.name)].update(p for p in parts if p)
    return dict(seen)


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


def output_properties(config: WritebackConfig) -> dict[str, list[str]]:
    """Per object type, the properties the pull must read so the plan can diff against them."""
    out: dict[str, set[str]] = defaultdict(set)
    for output in config.outputs:
        out[output.object].add(output.property.name)
    if any(r.kind == "workflow" for r in config.enrollments):
        out["contacts"].add("email")  # v2 enrollment is by e-mail
    return {k: sorted(v) for k, v in sorted(out.items())}


# ---------------------------------------------------------------- enrollments


@dataclass(frozen=True)
class EnrollmentAction:
    """Enroll or unenroll one record: a contact in a workflow, or a record in a list (by list name)."""

    kind: str  # workflow | list
    target: str  # workflow id, or list name
    object_type: str
    record_id: str
    action: str  # enroll | unenroll
    tag: str


@dataclass(frozen=True)
class EnrollmentPlan:
    actions: tuple[EnrollmentAction, ...] = ()
    skipped: tuple[tuple[str, str, str], ...] = ()  # (object_type, record_id, reason)

    def counts(self) -> dict[str, dict[str, int]]:
        out: dict[str, dict[str, int]] = {}
        for a in self.actions:
            per = out.setdefault(f"{a.kind}:{a.target}", {})
            per[a.action] = per.get(a.action, 0) + 1
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"actions": [asdict(a) for a in self.actions], "counts": self.counts(),
                "skipped": [list(s) for s in self.skipped]}


@dataclass(frozen=True)
class EnrollmentTargets:
    """The portal's side of the rules: workflow ids that exist, list ids by name (None: not created yet)."""

    workflows: frozenset[str]
    lists: dict[str, str | None]


def _rule_records(rule: EnrollmentRule, customer: Customer, open_deals: Mapping[str, list[str]]) -> list[str]:
    if rule.object == "companies":
        return [customer.id] if customer.object_type == "companies" else []
    if rule.object == "deals":
        return list(open_deals.get(customer.id, ()))
    if customer.object_type == "contacts":
        return [customer.id]
    if rule.contacts == "primary":
        return [customer.primary_contact_id] if customer.primary_contact_id else []
    return list(customer.contact_ids)


def plan_enrollments(
    config: WritebackConfig,
    tags: Mapping[str, Iterable[str]],
    customers: Mapping[str, Customer] | Iterable[Customer],
    enrolled: Mapping[tuple[str, str], Collection[str]],
    *,
    current: CurrentValues | None = None,
    deals: Iterable[Deal] = (),
) -> EnrollmentPlan:
    """Who enters and (with on_exit: unenroll) who leaves each rule's workflow or list.

    ``tags``: the current tags per customer id (customers absent from it are left as they are);
    ``enrolled``: (kind, target) -> record ids the enrollment ledger says are in (target = workflow id or
    list name). A record already in is never enrolled again; workflow rules need the contact's e-mail
    from ``current`` (contacts without one are skipped and reported).
    """
    open_deals = _open_deals(deals)
    current = current or {}
    known = _customers(customers)
    actions: list[EnrollmentAction] = []
    skipped: list[tuple[str, str, str]] = []
    for rule in config.enrollments:
        should: dict[str, None] = {}  # ordered set
        reachable: set[str] = set()
        for customer in known:
            if customer.id not in tags:
                continue
            records = _rule_records(rule, customer, open_deals)
            reachable.update(records)
            if rule.tag in set(tags[customer.id]):
                should.update(dict.fromkeys(records))
        already = set(enrolled.get((rule.kind, rule.target), ()))
        for record_id in should:
            if record_id in already:
                continue
            if rule.kind == "workflow" and not (current.get(("contacts", record_id)) or {}).get("email"):
                skipped.append(("contacts", record_id, f"no e-mail: cannot enroll in workflow {rule.target}"))
                continue
            actions.append(EnrollmentAction(rule.kind, rule.target, rule.object, record_id, "enroll", rule.tag))
        if rule.on_exit == "unenroll":
            for record_id in sorted(already & reachable - set(should)):
                if rule.kind == "workflow" and not (current.get(("contacts", record_id)) or {}).get("email"):
                    skipped.append(("contacts", record_id, f"no e-mail: cannot unenroll from workflow {rule.target}"))
                    continue
                actions.append(EnrollmentAction(rule.kind, rule.target, rule.object, record_id, "unenroll", rule.tag))
    return EnrollmentPlan(tuple(actions), tuple(skipped))


def fetch_enrollment_targets(config: WritebackConfig, writer: CrmWriter) -> EnrollmentTargets:
    """Check every rule's workflow exists (ConfigError before any write) and look lists up by name."""
    workflows: set[str] = set()
    names: dict[str, str] = {}
    if any(r.kind == "workflow" for r in config.enrollments):
        for flow in writer.fetch_workflows():
            for key in ("id", "workflowId", "flowId", "legacyId"):
                if flow.get(key) is not None:
                    workflows.add(str(flow[key]))
                    names.setdefault(str(flow[key]), str(flow.get("name") or ""))
    problems = []
    for index, rule in enumerate(config.enrollments):
        if rule.kind == "workflow" and rule.workflow_id not in workflows:
            known = ", ".join(f"{i} ({n})" if n else i for i, n in sorted(names.items())) or "none"
            problems.append(f"enrollments[{index}] (tag {rule.tag}): workflow {rule.workflow_id} does not exist "
                            f"in the portal{did_you_mean(str(rule.workflow_id), workflows) if workflows else ''}; "
                            f"known workflows: {known}")
    if problems:
        raise ConfigError("write-back cannot start:\n  " + "\n  ".join(problems))
    lists: dict[str, str | None] = {}
    for rule in config.enrollments:
        if rule.kind == "list":
            found = writer.find_list(rule.target, OBJECT_TYPE_IDS[rule.object])
            lists[rule.target] = _list_id(found)
    return EnrollmentTargets(frozenset(workflows), lists)


def _list_id(answer: Mapping[str, Any] | None) -> str | None:
    if not answer:
        return None
    body = answer.get("list", answer)
    value = body.get("listId", body.get("id"))
    return None if value is None else str(value)


def ledger_target(kind: str, target: str, targets: EnrollmentTargets) -> str | None:
    """The enrollment ledger's key for a rule's target: the workflow id, or the list's HubSpot id."""
    return target if kind == "workflow" else targets.lists.get(target)


def load_enrolled(config: WritebackConfig, targets: EnrollmentTargets, ledger: LedgerStore) -> dict[tuple[str, str], set[str]]:
    """Who the enrollment ledger says is in, keyed as plan_enrollments wants (list name, not id)."""
    out: dict[tuple[str, str], set[str]] = {}
    for rule in config.enrollments:
        key = ledger_target(rule.kind, rule.target, targets)
        out[(rule.kind, rule.target)] = set(ledger.enrollments(rule.kind, key)) if key else set()
    return out


@dataclass
class EnrollmentResult:
    done: int = 0
    failures: list[RecordFailure] = field(default_factory=list)
    lists_created: list[str] = field(default_factory=list)


_LIST_CHUNK = 100


def apply_enrollments(
    run_id: str,
    plan: EnrollmentPlan,
    writer: CrmWriter,
    ledger: LedgerStore,
    targets: EnrollmentTargets,
    *,
    current: CurrentValues | None = None,
) -> EnrollmentResult:
    """Enroll / unenroll as planned, creating missing MANUAL lists; every outcome goes to the enrollment ledger."""
    current = current or {}
    result = EnrollmentResult()
    list_ids = dict(targets.lists)
    groups: dict[tuple[str, str, str, str], list[EnrollmentAction]] = {}
    for action in plan.actions:
        groups.setdefault((action.kind, action.target, action.object_type, action.action), []).append(action)
    for (kind, target, object_type, verb), actions in groups.items():
        if kind == "workflow":
            for action in actions:
                email = (current.get(("contacts", action.record_id)) or {}).get("email")
                call = writer.enroll_contact if verb == "enroll" else writer.unenroll_contact
                _one(run_id, ledger, result, kind, target, action.record_id, verb, lambda: call(target, email or ""))
            continue
        list_id = list_ids.get(target)
        if list_id is None:
            if verb == "unenroll":
                continue  # nothing can be in a list that does not exist
            list_id = _list_id(writer.create_list(target, OBJECT_TYPE_IDS[object_type]))
            if list_id is None:
                raise WritebackError(f"HubSpot created list {target!r} but returned no list id")
            list_ids[target] = list_id
            result.lists_created.append(target)
        ids = [a.record_id for a in actions]
        for start in range(0, len(ids), _LIST_CHUNK):
            chunk = ids[start:start + _LIST_CHUNK]
            call = writer.add_to_list if verb == "enroll" else writer.remove_from_list
            try:
                answer = call(list_id, chunk)
            except HubSpotError as exc:
                if stops_the_run(exc):
                    raise
                reason = gave_up_message(exc) if isinstance(exc, RetryableError) else exc.message
                for record_id in chunk:
                    _record(run_id, ledger, result, "list", list_id, record_id, verb, "failed", reason)
                continue
            missing = {str(i) for i in (answer or {}).get("recordIdsMissing", ())} if isinstance(answer, Mapping) else set()
            for record_id in chunk:
                if record_id in missing:
                    _record(run_id, ledger, result, "list", list_id, record_id, verb, "failed", "record not found")
                else:
                    _record(run_id, ledger, result, "list", list_id, record_id, verb, "done", None)
    return result


def _one(run_id, ledger, result, kind, target, record_id, verb, call) -> None:
    try:
        call()
    except HubSpotError as exc:
        if stops_the_run(exc):
            raise  # the run stops; what was done is recorded, the rest is planned again next run
        reason = gave_up_message(exc) if isinstance(exc, RetryableError) else exc.message
        _record(run_id, ledger, result, kind, target, record_id, verb, "failed", reason)
        return
    _record(run_id, ledger, result, kind, target, record_id, verb, "done", None)


def stops_the_run(exc: HubSpotError) -> bool:
    """Failures no later call can avoid (the token refused, the daily budget spent): stop instead of failing every
    remaining record the same way. Anything else fails its batch or record, and the apply goes on."""
    return isinstance(exc, AuthError) or (isinstance(exc, RateLimitedError) and exc.policy == "DAILY")


def gave_up_message(exc: HubSpotError) -> str:
    status = f"HTTP {exc.status}" if exc.status else "no answer"
    return f"{status} after every retry: {exc.message} (the next sync tries again)"


def _record(run_id, ledger, result, kind, target, record_id, verb, status, message) -> None:
    message = _safe(message)
    ledger.record_enrollment(run_id, kind, target, record_id, verb, status, message)
    if status == "done":
        result.done += 1
    else:
        result.failures.append(RecordFailure(record_id, message or "", None, {"kind": kind, "target": target}))


def iter_ledger_failures(rows: Iterable[Mapping[str, Any]]) -> Iterator[Mapping[str, Any]]:
    """The ledger rows of a run that HubSpot refused (for reports)."""
    return (row for row in rows if row.get("status") == "failed")


# ---------------------------------------------------------------- one write-back pass (what the pipeline calls)


def current_from_records(records: Iterable[Any]) -> dict[tuple[str, str], dict[str, str | None]]:
    """(object_type, id) -> properties of stored records (connector.model.RecordLike), for plan_writeback."""
    return {(r.object_type, str(r.id)): dict(r.properties) for r in records}


@dataclass
class WritebackSummary:
    """Everything one write-back pass planned and did."""

    run_id: str
    plan: Plan
    enrollment_plan: EnrollmentPlan
    provisioned: ProvisionPlan | None = None
    applied: ApplyResult | None = None
    enrolled: EnrollmentResult | None = None
    dry_run: bool = False

    @property
    def failures(self) -> list[RecordFailure]:
        return [*(self.applied.failures if self.applied else ()), *(self.enrolled.failures if self.enrolled else ())]

    def raise_for_failures(self) -> None:
        """WritebackError (exit 5) when HubSpot refused any record or enrollment; all of it is in the ledger."""
        failures = self.failures
        if failures:
            written = self.applied.records_written if self.applied else 0
            raise WritebackError(
                f"{len(failures)} records or enrollments refused by HubSpot in run {self.run_id} "
                f"({written} records written); the ledger holds each reason",
                failures=failures,
            )

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id, "dry_run": self.dry_run, "plan": self.plan.to_dict(),
            "enrollments": self.enrollment_plan.to_dict(),
            "provisioned": None if self.provisioned is None else
            {k: [d["name"] for d in v] for k, v in self.provisioned.defs.items()},
            "applied": None if self.applied is None else self.applied.to_dict(),
            "enrolled": None if self.enrolled is None else {
                "done": self.enrolled.done, "lists_created": self.enrolled.lists_created,
                "failures": [asdict(f) for f in self.enrolled.failures]},
        }


def resume_unfinished(writer: CrmWriter, ledger: LedgerStore, *, batch_size: int = MAX_BATCH) -> list[ApplyResult]:
    """Finish every apply a crash left with planned rows, oldest first (run this before planning anew)."""
    return [resume_apply(run_id, writer, ledger, batch_size=batch_size) for run_id in ledger.unfinished_apply_runs()]


def apply_writeback(
    run_id: str,
    config: WritebackConfig,
    outputs: Mapping[str, Mapping[str, Any]],
    customers: Mapping[str, Customer] | Iterable[Customer],
    current: CurrentValues,
    writer: CrmWriter,
    ledger: LedgerStore,
    *,
    deals: Iterable[Deal] = (),
    dry_run: bool = False,
) -> WritebackSummary:
    """Check targets and ownership, provision, plan, apply, then enroll — or, with ``dry_run``, only plan.

    Every check that can fail on configuration (unknown workflow, a property of ours owned by someone else)
    runs before the first write. A dry run reads the portal but writes nothing, not even properties.
    """
    customers = _customers(customers)
    deals = tuple(deals)
    targets = fetch_enrollment_targets(config, writer)
    objects = sorted({o.object for o in config.outputs})
    provision_plan = plan_provisioning(config, {obj: writer.fetch_properties(obj) for obj in objects}, outputs)
    plan = plan_writeback(config, outputs, customers, current, deals=deals)
    tags = {cid: list(values.get("tags") or ()) for cid, values in outputs.items() if "tags" in values}
    enrolled = load_enrolled(config, targets, ledger)
    enrollment_plan = plan_enrollments(config, tags, customers, enrolled, current=current, deals=deals)
    summary = WritebackSummary(run_id, plan, enrollment_plan, provision_plan, dry_run=dry_run)
    if dry_run:
        return summary
    apply_provisioning(provision_plan, writer)
    summary.applied = apply_plan(run_id, plan, writer, ledger, owned=config.owned_properties(),
                                 batch_size=config.batch_size)
    summary.enrolled = apply_enrollments(run_id, enrollment_plan, writer, ledger, targets, current=current)
    return summary
