"""Apply (side effects): the plan sent in batches of 100, every outcome in the ledger; resume after a crash; rollback."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Collection, Iterable, Mapping, Protocol, Sequence

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
from connector.mapping.writeback import PropertyDef
from connector.writeback.format import same_value
from connector.writeback.plan import Change, CurrentValues, KeptEdit, Plan

MAX_BATCH = 100  # HubSpot's batch update limit (API-NOTES §1)


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
    if not plan:
        return ApplyResult(run_id)
    if ledger.ledger(run_id):
        raise WritebackError(f"run {run_id} already has a plan in the ledger; resume it instead")
    ledger.save_plan(run_id, plan.frame.to_dicts())
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
                for r in ledger.ledger(run_id) if r.get("status") == "written"} if plan else set()
    marks = [{"object_type": o, "record_id": i, "property": p, "status": "rolled_back", "message": f"by run {run_id}"}
             for (o, i, p) in sorted(restored)]
    if marks:
        ledger.record_outcomes(source_run_id, marks)
    return result


def stops_the_run(exc: HubSpotError) -> bool:
    """Failures no later call can avoid (the token refused, the daily budget spent): stop instead of failing every
    remaining record the same way. Anything else fails its batch or record, and the apply goes on."""
    return isinstance(exc, AuthError) or (isinstance(exc, RateLimitedError) and exc.policy == "DAILY")


def gave_up_message(exc: HubSpotError) -> str:
    status = f"HTTP {exc.status}" if exc.status else "no answer"
    return f"{status} after every retry: {exc.message} (the next sync tries again)"

