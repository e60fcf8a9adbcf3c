"""Enrollments: who enters (and leaves) each rule's workflow or list, planned from the tags as joins, then applied."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Collection, Iterable, Iterator, Mapping

import polars as pl

from connector.errors import ConfigError, HubSpotError, RecordFailure, RetryableError, WritebackError
from connector.mapping.base import did_you_mean
from connector.mapping.writeback import WritebackConfig
from connector.model import Deal
from connector.writeback.apply import CrmWriter, LedgerStore, _safe, gave_up_message, stops_the_run
from connector.writeback.desired import OutputColumns
from connector.writeback.plan import CurrentFrames, CurrentValues, Reaches, Rows, output_properties

# HubSpot's standard object type ids (lists are created per objectTypeId).
OBJECT_TYPE_IDS = {"contacts": "0-1", "companies": "0-2", "deals": "0-3"}


@dataclass(frozen=True)
class EnrollmentAction:
    """Enroll or unenroll one record: a contact in a workflow, or a record in a list (by list name)."""

    kind: str  # workflow | list
    target: str  # workflow id, or list name
    object_type: str
    record_id: str
    action: str  # enroll | unenroll
    tag: str


ACTION_SCHEMA = {"kind": pl.String, "target": pl.String, "object_type": pl.String, "record_id": pl.String,
                 "action": pl.String, "tag": pl.String}


class EnrollmentPlan:
    """The enrollment actions in order (a frame of ``ACTION_SCHEMA``, read as ``EnrollmentAction`` rows on demand)
    and the records skipped: (object_type, record_id, reason)."""

    def __init__(self, actions: Iterable[EnrollmentAction] = (), skipped: Iterable[tuple[str, str, str]] = (), *,
                 frame: pl.DataFrame | None = None):
        self._rows = Rows(EnrollmentAction, ACTION_SCHEMA, actions, frame=frame)
        self.skipped = tuple(skipped)

    @property
    def frame(self) -> pl.DataFrame:
        return self._rows.frame

    @property
    def actions(self) -> tuple[EnrollmentAction, ...]:
        return self._rows.rows

    def __len__(self) -> int:
        return len(self._rows)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, EnrollmentPlan):
            return NotImplemented
        return (self.actions, self.skipped) == (other.actions, other.skipped)

    def __repr__(self) -> str:
        return f"EnrollmentPlan({len(self)} actions, {len(self.skipped)} skipped)"

    def counts(self) -> dict[str, dict[str, int]]:
        out: dict[str, dict[str, int]] = {}
        for kind, target, action, count in self.frame.group_by("kind", "target", "action",
                                                                maintain_order=True).len().iter_rows():
            out.setdefault(f"{kind}:{target}", {})[action] = count
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"actions": [asdict(a) for a in self.actions], "counts": self.counts(),
                "skipped": [list(s) for s in self.skipped]}


@dataclass(frozen=True)
class EnrollmentTargets:
    """The portal's side of the rules: workflow ids that exist, list ids by name (None: not created yet)."""

    workflows: frozenset[str]
    lists: dict[str, str | None]

def tags_frame(tags: pl.DataFrame | OutputColumns | Mapping[str, Iterable[str]]) -> pl.DataFrame:
    """(customer_id, tags): the customers whose tags are known, from the outputs (their ``tags`` field) or a dict."""
    schema = {"customer_id": pl.String, "tags": pl.List(pl.String)}
    if isinstance(tags, OutputColumns):
        found = tags.get("tags")
        if found is None:
            return pl.DataFrame(schema=schema)
        return found.select("customer_id", pl.col("value").cast(pl.List(pl.String)).alias("tags"))
    if isinstance(tags, pl.DataFrame):
        return tags.select("customer_id", pl.col("tags").cast(pl.List(pl.String)))
    return pl.DataFrame({"customer_id": list(tags), "tags": [list(v or ()) for v in tags.values()]}, schema=schema)


def plan_enrollments(
    config: WritebackConfig,
    tags: pl.DataFrame | OutputColumns | Mapping[str, Iterable[str]],
    customers: Any,
    enrolled: Mapping[tuple[str, str], Collection[str]],
    *,
    current: CurrentFrames | CurrentValues | None = None,
    deals: pl.DataFrame | Iterable[Deal] = (),
) -> EnrollmentPlan:
    """Who enters and (with on_exit: unenroll) who leaves each rule's workflow or list.

    ``tags``: the current tags per customer id (customers absent from it are left as they are);
    ``customers`` / ``deals``: the model's frames (or Customer / Deal rows); ``enrolled``: (kind, target) -> record
    ids the enrollment ledger says are in (target = workflow id or list name). A record already in is never enrolled
    again; workflow rules need the contact's e-mail from ``current`` (contacts without one are skipped and
    reported). Records enter in customer id order, each customer's records in the model's order.
    """
    if not config.enrollments:
        return EnrollmentPlan()
    reaches = Reaches.of(customers, deals)
    known = tags_frame(tags)
    current = CurrentFrames.of(current, output_properties(config))
    emails = current.values("contacts", "email").rename({"before": "email"})
    actions: list[pl.DataFrame] = []
    skipped: list[tuple[str, str, str]] = []
    for rule in config.enrollments:
        reached = reaches(rule.object, rule.contacts).join(known, on="customer_id", how="inner",
                                                           maintain_order="left")
        should = reached.filter(pl.col("tags").list.contains(rule.tag)).select("record_id").unique(
            keep="first", maintain_order=True)
        already = pl.Series("record_id", sorted(enrolled.get((rule.kind, rule.target), ())), dtype=pl.String)
        entering = should.filter(~pl.col("record_id").is_in(already.implode()))
        leaving = pl.DataFrame(schema={"record_id": pl.String})
        if rule.on_exit == "unenroll":
            leaving = already.to_frame().filter(pl.col("record_id").is_in(reached["record_id"].implode())
                                                & ~pl.col("record_id").is_in(should["record_id"].implode()))
        for verb, records in (("enroll", entering), ("unenroll", leaving)):
            if rule.kind == "workflow":
                records = records.join(emails, on="record_id", how="left", maintain_order="left")
                reachable = pl.col("email").is_not_null() & (pl.col("email") != "")
                preposition = "in" if verb == "enroll" else "from"
                skipped += [("contacts", record_id, f"no e-mail: cannot {verb} {preposition} workflow {rule.target}")
                            for record_id in records.filter(~reachable)["record_id"]]
                records = records.filter(reachable)
            actions.append(records.select(
                pl.lit(rule.kind).alias("kind"), pl.lit(rule.target).alias("target"),
                pl.lit(rule.object).alias("object_type"), "record_id", pl.lit(verb).alias("action"),
                pl.lit(rule.tag).alias("tag")))
    frame = pl.concat(actions) if actions else pl.DataFrame(schema=ACTION_SCHEMA)
    return EnrollmentPlan(frame=frame, skipped=skipped)


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
    current: CurrentFrames | CurrentValues | None = None,
) -> EnrollmentResult:
    """Enroll / unenroll as planned, creating missing MANUAL lists; every outcome goes to the enrollment ledger."""
    contacts = [a.record_id for a in plan.actions if a.kind == "workflow"]
    emails = CurrentFrames.of(current, {"contacts": ["email"]}).lookup("contacts", "email", contacts) if contacts \
        else {}
    result = EnrollmentResult()
    list_ids = dict(targets.lists)
    groups: dict[tuple[str, str, str, str], list[EnrollmentAction]] = {}
    for action in plan.actions:
        groups.setdefault((action.kind, action.target, action.object_type, action.action), []).append(action)
    for (kind, target, object_type, verb), actions in groups.items():
        if kind == "workflow":
            for action in actions:
                email = emails.get(action.record_id)
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

