"""Deal and ticket pipelines with their stages (pipelines v3), as a new portal has them by default."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from connector.sandbox import schema
from connector.sandbox.portal.common import ApiError, bad_request, error_body, iso

# HubSpot's default pipelines: created "at 0" (the spec: "The default pipelines will have createdAt = 0").
_DEFAULT_MS = 0


@dataclass(frozen=True)
class Stage:
    id: str
    label: str
    metadata: dict[str, str]  # deals: isClosed, probability; tickets: ticketState (all values strings)

    def to_json(self, order: int) -> dict[str, Any]:
        return {"id": self.id, "label": self.label, "displayOrder": order, "metadata": dict(self.metadata),
                "createdAt": iso(_DEFAULT_MS), "updatedAt": iso(_DEFAULT_MS), "archived": False,
                "writePermissions": "CRM_PERMISSIONS_ENFORCEMENT"}


@dataclass(frozen=True)
class Pipeline:
    id: str
    label: str
    stages: tuple[Stage, ...]

    def to_json(self, order: int = 0) -> dict[str, Any]:
        return {"id": self.id, "label": self.label, "displayOrder": order,
                "stages": [s.to_json(i) for i, s in enumerate(self.stages)],
                "createdAt": iso(_DEFAULT_MS), "updatedAt": iso(_DEFAULT_MS), "archived": False}


def _deal_stage(stage_id: str, label: str, probability: float) -> Stage:
    closed = stage_id in ("closedwon", "closedlost")
    return Stage(stage_id, label, {"isClosed": "true" if closed else "false", "probability": str(probability)})


def _ticket_stage(stage_id: str, label: str, state: str) -> Stage:
    return Stage(stage_id, label, {"ticketState": state})


# object type -> its pipelines; stage ids are the option values of dealstage / hs_pipeline_stage in ``schema``.
PIPELINES: dict[str, tuple[Pipeline, ...]] = {
    "deals": (Pipeline("default", "Sales Pipeline", (
        _deal_stage("appointmentscheduled", "Appointment Scheduled", 0.2),
        _deal_stage("qualifiedtobuy", "Qualified To Buy", 0.4),
        _deal_stage("presentationscheduled", "Presentation Scheduled", 0.6),
        _deal_stage("decisionmakerboughtin", "Decision Maker Bought-In", 0.8),
        _deal_stage("contractsent", "Contract Sent", 0.9),
        _deal_stage("closedwon", "Closed Won", 1.0),
        _deal_stage("closedlost", "Closed Lost", 0.0),
    )),),
    "tickets": (Pipeline("0", "Support Pipeline", (
        _ticket_stage("1", "New", "OPEN"),
        _ticket_stage("2", "Waiting on contact", "OPEN"),
        _ticket_stage("3", "Waiting on us", "OPEN"),
        _ticket_stage("4", "Closed", "CLOSED"),
    )),),
}
CLOSED_TICKET_STAGES = frozenset(s.id for p in PIPELINES["tickets"] for s in p.stages
                                 if s.metadata.get("ticketState") == "CLOSED")


def pipelines_of(object_type: str) -> tuple[Pipeline, ...]:
    """The pipelines of ``object_type`` (a canonical name); 400 for a type that has none."""
    found = PIPELINES.get(object_type)
    if found is None:
        raise bad_request(f"Object type {object_type} ({schema.OBJECT_TYPES[object_type]}) has no pipelines; "
                          f"pipelines exist for {', '.join(PIPELINES)}.", context={"objectType": [object_type]})
    return found


def pipeline(object_type: str, pipeline_id: str) -> Pipeline:
    for p in pipelines_of(object_type):
        if p.id == pipeline_id:
            return p
    raise ApiError(404, error_body(f"Unable to find pipeline {pipeline_id} for {object_type}.", "OBJECT_NOT_FOUND",
                                   context={"pipelineId": [pipeline_id]}))


def stage(object_type: str, pipeline_id: str, stage_id: str) -> tuple[int, Stage]:
    for order, s in enumerate(pipeline(object_type, pipeline_id).stages):
        if s.id == stage_id:
            return order, s
    raise ApiError(404, error_body(f"Unable to find stage {stage_id} in pipeline {pipeline_id}.", "OBJECT_NOT_FOUND",
                                   context={"stageId": [stage_id]}))
