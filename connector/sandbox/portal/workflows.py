"""Workflows (automation v2): the seeded workflows and contact enrollments."""

from __future__ import annotations

from dataclasses import dataclass

from connector.sandbox.portal.common import ApiError, error_body, now_ms


SEEDED_WORKFLOWS = ((1001, "At-risk save play"), (1002, "Referral ask"), (1003, "Welcome"), (1004, "Renewal reminder"))


@dataclass
class Workflow:
    id: int
    name: str
    enabled: bool
    created_ms: int
    updated_ms: int
    object_type_id: str = "0-1"


class WorkflowsMixin:
    """Workflows and contact enrollments.

    A mixin of ``Portal``, which owns ``lock`` and the state these methods use.
    """

    def create_workflow(self, name: str, enabled: bool = True) -> int:
        with self.lock:
            wf_id = max(self.workflows, default=1000) + 1
            ms = now_ms()
            self.workflows[wf_id] = Workflow(wf_id, name, enabled, ms, ms)
            self.enrollments[wf_id] = {}
            return wf_id

    def workflow_named(self, name: str) -> int:
        return next(w.id for w in self.workflows.values() if w.name == name)

    def enroll(self, workflow_id: str, email: str, enroll: bool = True) -> None:
        with self.lock:
            wf = self.workflows.get(int(workflow_id)) if workflow_id.isdigit() else None
            if wf is None:
                raise ApiError(404, error_body(f"Workflow {workflow_id} does not exist.", "OBJECT_NOT_FOUND",
                                               context={"workflowId": [workflow_id]}))
            rec = self.find("contacts", email, "email")
            if rec is None:
                raise ApiError(404, error_body(f"Contact with email {email} does not exist.", "OBJECT_NOT_FOUND",
                                               context={"email": [email]}))
            if enroll:
                self.enrollments[wf.id].setdefault(rec.id, now_ms())
            else:
                self.enrollments[wf.id].pop(rec.id, None)
            self.enrollment_log.append(("enroll" if enroll else "unenroll", wf.id, rec.id))

    def enrolled(self, workflow_id: int) -> set[int]:
        """Contact ids currently enrolled in a workflow (for tests' assertions)."""
        with self.lock:
            return set(self.enrollments.get(workflow_id, {}))

    def workflows_of(self, contact_id: int) -> list[Workflow]:
        with self.lock:
            return [self.workflows[w] for w, members in self.enrollments.items() if contact_id in members]
