"""Custom workflow actions: run an app's action on a record as a workflow would, and take its outputs from the answer
or from ``POST /automation/v4/actions/callbacks/{callbackId}/complete`` when the action blocks.

The request is HubSpot's execution payload (API-NOTES §12): callbackId, origin (portal, action definition and
version), context, object (id, type and the properties the definition asks for), inputFields, and the older
``fields`` copy of them; signed with v3 (and v2). An answer whose ``outputFields.hs_execution_state`` is ``BLOCK``
(or an empty 2xx answer) leaves the execution blocked until the callback completes it.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

import orjson
import requests

from connector.sandbox import schema
from connector.sandbox.platform.project import object_type_id, singular_of
from connector.sandbox.platform.signature import signed_headers
from connector.sandbox.portal import ApiError, bad_request, error_body, now_ms

ACTION_TIMEOUT_S = 20.0
FINAL_STATES = ("SUCCESS", "FAIL_CONTINUE", "FAILED")


@dataclass
class Execution:
    """One run of an action on a record, kept for tests."""

    callback_id: str
    app_id: int
    hub_id: int
    action_uid: str
    definition_id: int
    object_type_id: str
    object_id: int
    input_fields: dict[str, Any]
    started_ms: int
    state: str = "PENDING"  # PENDING | BLOCKED | SUCCESS | FAIL_CONTINUE | FAILED
    output_fields: dict[str, Any] = field(default_factory=dict)
    http_status: int | None = None
    error: str | None = None
    completed_by: str | None = None  # response | callback
    completed_ms: int | None = None
    done: threading.Event = field(default_factory=threading.Event, repr=False)

    def to_json(self) -> dict[str, Any]:
        return {"callbackId": self.callback_id, "appId": self.app_id, "portalId": self.hub_id,
                "actionUid": self.action_uid, "actionDefinitionId": self.definition_id,
                "objectTypeId": self.object_type_id, "objectId": self.object_id, "inputFields": self.input_fields,
                "state": self.state, "outputFields": self.output_fields, "httpStatus": self.http_status,
                "error": self.error, "completedBy": self.completed_by, "startedAt": self.started_ms,
                "completedAt": self.completed_ms}

    def finish(self, state: str, outputs: dict[str, Any], by: str) -> None:
        self.state, self.output_fields, self.completed_by, self.completed_ms = state, outputs, by, now_ms()
        self.done.set()


class ActionsMixin:
    """The workflow-action half of ``AppPlatform``."""

    def run_action(self, app_id: int, action: str | int, hub_id: int, object_type: str, object_id: int | str,
                   input_fields: dict[str, Any] | None = None, *, timeout_s: float = ACTION_TIMEOUT_S) -> Execution:
        """Call the action's URL for one record and return the execution (blocked ones complete by callback)."""
        inputs = dict(input_fields or {})
        with self.lock:
            app = self.app(app_id)
            definition_id, definition = app.action(action)
            self.require_install(app_id, hub_id)
            type_id = object_type_id(str(object_type))
            if type_id is None or type_id not in definition.object_type_ids:
                raise bad_request(f"action {definition.uid} runs on {list(definition.object_type_ids)}, "
                                  f"not on {object_type!r}")
            portal = self.portal(hub_id)
            plural = next((t for t, tid in schema.OBJECT_TYPES.items() if tid == type_id), None)
            record = portal.find(plural, str(object_id)) if plural else None
            if record is None:
                raise ApiError(404, error_body("Object not found.  objectId are usually numeric.",
                                               "OBJECT_NOT_FOUND", context={"id": [str(object_id)]}))
            missing = [f.typeDefinition.name for f in definition.input_fields
                       if f.isRequired and f.typeDefinition.name not in inputs]
            if missing:
                raise bad_request(f"required input fields missing: {missing}")
            self._executions += 1
            callback_id = f"ap-{app_id}-{hub_id}-{definition_id}-{self._executions}"
            execution = Execution(callback_id, app_id, hub_id, definition.uid, definition_id, type_id, record.id,
                                  inputs, now_ms())
            self.executions[callback_id] = execution
            properties = {p: record.props.get(p) for p in definition.requested_properties}
            payload = {"callbackId": callback_id,
                       "origin": {"portalId": hub_id, "actionDefinitionId": definition_id,
                                  "actionDefinitionVersion": 1, "extensionDefinitionId": definition_id,
                                  "extensionDefinitionVersionId": 1},
                       "context": {"source": "WORKFLOWS", "workflowId": self.workflow_id},
                       "object": {"objectId": record.id, "objectType": singular_of(type_id).upper(),
                                  "properties": properties},
                       "inputFields": inputs, "fields": inputs}
            secret, url = app.client_secret, definition.action_url
        # Outside the lock: the app's backend may call the sandbox's API while it answers.
        body = orjson.dumps(payload)
        headers = {"Content-Type": "application/json", **signed_headers(secret, "POST", url, body, legacy="v2")}
        try:
            response = requests.post(url, data=body, headers=headers, timeout=timeout_s, allow_redirects=False)
        except requests.RequestException as exc:
            execution.error = "timeout" if isinstance(exc, requests.Timeout) else \
                f"connection error ({type(exc).__name__})"
            execution.finish("FAILED", {}, "response")
            return execution
        execution.http_status = response.status_code
        if response.status_code >= 300:
            execution.error = f"HTTP {response.status_code}"
            execution.finish("FAILED", {}, "response")
            return execution
        try:
            answer = response.json() if response.content else {}
        except ValueError:
            execution.error = "the answer is not JSON"
            execution.finish("FAILED", {}, "response")
            return execution
        outputs = dict((answer or {}).get("outputFields") or {}) if isinstance(answer, dict) else {}
        state = str(outputs.get("hs_execution_state", "SUCCESS" if response.content else "BLOCK")).upper()
        if state in ("BLOCK", "ASYNC"):
            execution.state, execution.output_fields = "BLOCKED", outputs
        else:
            execution.finish(state if state in FINAL_STATES else "SUCCESS", outputs, "response")
        return execution

    def complete_callback(self, callback_id: str, output_fields: Any, app_id: int | None) -> None:
        """POST …/callbacks/{callbackId}/complete by the app's token: finish a blocked execution."""
        if not isinstance(output_fields, dict):
            raise bad_request("outputFields must be an object", context={"callbackId": [callback_id]})
        with self.lock:
            execution = self.executions.get(callback_id)
            if execution is None or (app_id is not None and execution.app_id != app_id):
                raise ApiError(404, error_body(f"No pending action execution with callbackId {callback_id}",
                                               "OBJECT_NOT_FOUND", context={"callbackId": [callback_id]}))
            if execution.state != "BLOCKED":
                raise bad_request(f"The action execution {callback_id} is already complete ({execution.state})",
                                  context={"callbackId": [callback_id]})
            state = str(output_fields.get("hs_execution_state", "SUCCESS")).upper()
            execution.finish(state if state in FINAL_STATES else "SUCCESS", dict(output_fields), "callback")

    def execution(self, callback_id: str) -> Execution:
        with self.lock:
            found = self.executions.get(callback_id)
        if found is None:
            raise KeyError(callback_id)
        return found

    def wait_execution(self, callback_id: str, timeout_s: float = 10.0) -> Execution:
        """The execution once it is complete (or as it is after ``timeout_s``)."""
        execution = self.execution(callback_id)
        execution.done.wait(timeout_s)
        return execution
