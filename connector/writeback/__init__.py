"""Write-back: plan (columnar diff), apply (batches, ledger), rollback, provisioning, enrollments — and one pass of all."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Iterable, Mapping

import polars as pl

from connector.errors import RecordFailure, WritebackError
from connector.mapping.writeback import WritebackConfig
from connector.model import Customer, Deal
from connector.writeback.apply import (
    MAX_BATCH, ApplyResult, Batch, BatchResultLike, CrmWriter, LedgerStore, apply_plan, apply_rollback,
    gave_up_message, plan_batches, plan_rollback, resume_apply, stops_the_run,
)
from connector.writeback.desired import OutputColumns, output_frame
from connector.writeback.enroll import (
    OBJECT_TYPE_IDS, EnrollmentAction, EnrollmentPlan, EnrollmentResult, EnrollmentTargets, apply_enrollments,
    fetch_enrollment_targets, iter_ledger_failures, ledger_target, load_enrolled, plan_enrollments, tags_frame,
)
from connector.writeback.format import MAX_TEXT, format_column, format_datetime, format_number, format_value, same_value
from connector.writeback.plan import (
    CHANGE_SCHEMA, Change, CurrentFrames, CurrentValues, KeptEdit, Plan, customers_frame, deals_frame, format_plan,
    output_properties, Reaches, plan_writeback, reach,
)
from connector.writeback.provision import (
    ProvisionPlan, apply_provisioning, observed_options, plan_provisioning, property_definition, provision,
    provisioning_problems,
)

__all__ = [
    "CHANGE_SCHEMA", "MAX_BATCH", "MAX_TEXT", "OBJECT_TYPE_IDS", "ApplyResult", "Batch", "BatchResultLike", "Change",
    "CrmWriter", "CurrentFrames", "CurrentValues", "EnrollmentAction", "EnrollmentPlan", "EnrollmentResult",
    "EnrollmentTargets", "KeptEdit", "LedgerStore", "OutputColumns", "Plan", "ProvisionPlan", "WritebackSummary",
    "apply_enrollments", "apply_plan", "apply_provisioning", "apply_rollback", "apply_writeback",
    "current_from_records", "customers_frame", "deals_frame", "fetch_enrollment_targets", "format_column",
    "format_datetime", "format_number", "format_plan", "format_value", "gave_up_message", "iter_ledger_failures",
    "ledger_target", "load_enrolled", "observed_options", "output_frame", "output_properties", "Reaches",
    "plan_batches", "plan_enrollments", "plan_provisioning", "plan_rollback", "plan_writeback", "property_definition",
    "provision", "provisioning_problems", "reach", "resume_apply", "resume_unfinished", "same_value",
    "stops_the_run", "tags_frame",
]


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
    outputs: OutputColumns | pl.DataFrame | Mapping[str, Mapping[str, Any]],
    customers: pl.DataFrame | Mapping[str, Customer] | Iterable[Customer],
    current: CurrentFrames | CurrentValues,
    writer: CrmWriter,
    ledger: LedgerStore,
    *,
    deals: pl.DataFrame | Iterable[Deal] = (),
    dry_run: bool = False,
) -> WritebackSummary:
    """Check targets and ownership, provision, plan, apply, then enroll — or, with ``dry_run``, only plan.

    ``outputs``, ``customers``, ``deals`` and ``current`` as frames (what a sync hands over) or as rows and dicts.
    Every check that can fail on configuration (unknown workflow, a property of ours owned by someone else)
    runs before the first write. A dry run reads the portal but writes nothing, not even properties.
    """
    columns = OutputColumns.of(outputs)
    reaches = Reaches.of(customers, deals)  # each target computed once, for the plan and the enrollments
    current = CurrentFrames.of(current, output_properties(config))
    targets = fetch_enrollment_targets(config, writer)
    objects = sorted({o.object for o in config.outputs})
    provision_plan = plan_provisioning(config, {obj: writer.fetch_properties(obj) for obj in objects}, columns)
    plan = plan_writeback(config, columns, reaches, current)
    enrolled = load_enrolled(config, targets, ledger)
    enrollment_plan = plan_enrollments(config, columns, reaches, enrolled, current=current)
    summary = WritebackSummary(run_id, plan, enrollment_plan, provision_plan, dry_run=dry_run)
    if dry_run:
        return summary
    apply_provisioning(provision_plan, writer)
    summary.applied = apply_plan(run_id, plan, writer, ledger, owned=config.owned_properties(),
                                 batch_size=config.batch_size)
    summary.enrolled = apply_enrollments(run_id, enrollment_plan, writer, ledger, targets, current=current)
    return summary
