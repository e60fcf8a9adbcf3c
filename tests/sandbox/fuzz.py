"""Drive a running sandbox with schemathesis from HubSpot's official specs: bounded, seeded, findings as values.

Each served operation of a spec gets a few generated requests that the spec calls valid and a few it calls
invalid (hypothesis, derandomized: the same requests every run); schemathesis' checks judge the answers. What
they flag comes back as ``Finding`` values, so a test (or ``python -m tests.sandbox.fuzz`` for the counts) decides
what to do with them; ``spec.FUZZ_RELAXATIONS`` names the findings that are HubSpot's own behaviour.
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from dataclasses import dataclass
from typing import Any

import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import (
    negative_data_rejection, not_a_server_error, positive_data_acceptance, response_schema_conformance,
)
from schemathesis.core.failures import Failure, FailureGroup

from tests.sandbox.spec import SPECS, relaxed_spec

CHECKS = {not_a_server_error: "server error", response_schema_conformance: "non-conforming response",
          positive_data_acceptance: "valid refused", negative_data_rejection: "invalid accepted"}
KINDS = tuple(CHECKS.values())
# Path parameters pinned to what exists in the sandbox's portals: a random objectType is only ever the 400
# "Unable to infer object type" (API-NOTES §11), which would stop every request before the handler's own rules.
PINNED_PATH_PARAMETERS = {"objectType": "contacts", "fromObjectType": "contacts", "toObjectType": "companies",
                          "objectTypeId": "0-1"}
# Request schemas whose ``filterBranch`` (a recursive union of ~40 filter shapes) takes minutes a request to
# generate: fuzzed without it. The sandbox keeps lists MANUAL/SNAPSHOT-like and never evaluates branches anyway.
SLOW_TO_GENERATE = ("ListCreateRequest",)
# Operations of the fuzzed specs that the sandbox does not serve (they answer 404/405): not fuzzed, listed in the
# report. The sandbox's connector never calls them; add a handler before taking one off this list.
UNSERVED = frozenset({
    "POST /crm/v3/objects/contacts/gdpr-delete", "POST /crm/v3/objects/contacts/merge",
    "POST /crm/v3/objects/companies/merge",
    "POST /crm/v3/properties/{objectType}/batch/archive", "PATCH /crm/v3/properties/{objectType}/groups/{groupName}",
    "DELETE /crm/v3/properties/{objectType}/groups/{groupName}",
    "POST /crm/v4/associations/usage/high-usage-report/{userId}",
    "POST /crm/v4/associations/{fromObjectType}/{toObjectType}/batch/archive",
    "POST /crm/v4/associations/{fromObjectType}/{toObjectType}/batch/associate/default",
    "POST /crm/v4/associations/{fromObjectType}/{toObjectType}/batch/create",
    "POST /crm/v4/associations/{fromObjectType}/{toObjectType}/batch/labels/archive",
    "PUT /crm/v4/objects/{objectType}/{objectId}/associations/{toObjectType}/{toObjectId}",
    "GET /crm/v3/lists/folders", "POST /crm/v3/lists/folders", "PUT /crm/v3/lists/folders/move-list",
    "DELETE /crm/v3/lists/folders/{folderId}", "PUT /crm/v3/lists/folders/{folderId}/move/{newParentFolderId}",
    "PUT /crm/v3/lists/folders/{folderId}/rename", "GET /crm/v3/lists/idmapping", "POST /crm/v3/lists/idmapping",
    "POST /crm/v3/lists/records/memberships/batch/read",
    "GET /crm/v3/lists/records/{objectTypeId}/{recordId}/memberships", "DELETE /crm/v3/lists/{listId}",
    "DELETE /crm/v3/lists/{listId}/memberships", "PUT /crm/v3/lists/{listId}/memberships/add-from/{sourceListId}",
    "GET /crm/v3/lists/{listId}/memberships/join-order", "PUT /crm/v3/lists/{listId}/restore",
    "GET /crm/v3/lists/{listId}/schedule-conversion", "PUT /crm/v3/lists/{listId}/schedule-conversion",
    "DELETE /crm/v3/lists/{listId}/schedule-conversion", "GET /crm/v3/lists/{listId}/size-and-edits-history/between",
    "PUT /crm/v3/lists/{listId}/update-list-filters", "PUT /crm/v3/lists/{listId}/update-list-name",
})


@dataclass(frozen=True)
class Finding:
    """One check that failed on one answer."""

    spec: str
    operation: str  # "POST /crm/v3/objects/contacts/search", as the spec names it
    mode: str  # positive | negative
    kind: str  # one of KINDS
    status: int
    message: str  # the answer's message (error bodies) or the first 300 characters of the body
    reason: str  # what schemathesis says is wrong
    request: str  # the query and body sent, cut to 300 characters

    def __str__(self) -> str:
        return (f"{self.kind}: {self.operation} ({self.mode}) -> {self.status} {self.message[:160]!r}\n"
                f"      sent {self.request!r}\n      {' | '.join(self.reason.splitlines())[:400]}")


def _message(response: requests.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:300]
    return str(body.get("message", "")) if isinstance(body, dict) else json.dumps(body)[:300]


def fuzz(spec_name: str, base_url: str, token: str, examples: int = 2, *, include_unserved: bool = False,
         unrelaxed: bool = False) -> tuple[list[Finding], int]:
    """Fuzz every served operation of ``spec_name``: (findings, requests sent). ``unrelaxed`` judges answers by
    the spec as HubSpot publishes it, without spec.py's relaxations (for the report's counts)."""
    raw = json.loads((SPECS / f"{spec_name}.json").read_text()) if unrelaxed else relaxed_spec(spec_name)
    for name in SLOW_TO_GENERATE:
        raw.get("components", {}).get("schemas", {}).get(name, {}).get("properties", {}).pop("filterBranch", None)
    schema = schemathesis.openapi.from_dict(raw)
    # Printable ASCII and no NUL: control bytes only test the HTTP parser, which is uvicorn's, not the sandbox's.
    schema.config.generation.update(allow_x00=False, codec="ascii")
    session = requests.Session()
    headers = {"Authorization": f"Bearer {token}"}
    findings: list[Finding] = []
    sent = [0]
    for result in schema.get_all_operations():
        operation = result.ok()
        if operation.label in UNSERVED and not include_unserved:
            continue
        pins = {p.name: PINNED_PATH_PARAMETERS[p.name] for p in operation.path_parameters
                if p.name in PINNED_PATH_PARAMETERS}
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @settings(max_examples=examples, derandomize=True, database=None, deadline=None,
                      phases=[Phase.generate], suppress_health_check=list(HealthCheck))
            @given(case=operation.as_strategy(generation_mode=mode, path_parameters=pins or None))
            def run(case: Any) -> None:
                response = case.call(base_url=base_url, headers=headers, session=session, timeout=30)
                sent[0] += 1
                try:
                    case.validate_response(response, checks=list(CHECKS))
                except FailureGroup as group:
                    failures = list(group.exceptions)
                except Failure as failure:
                    failures = [failure]
                else:
                    return
                for failure in failures:
                    kind = next((k for check, k in CHECKS.items() if _is(failure, check)), failure.title)
                    findings.append(Finding(spec_name, operation.label, case.meta.generation.mode.value, kind,
                                            response.status_code,
                                            _message(response), f"{failure.title}: {failure.message}",
                                            f"{case.path_parameters} {case.query} {case.body}"[:300]))

            try:
                run()
            except Unsatisfiable:
                pass  # nothing in this operation can be made invalid once its path parameters are pinned
    return findings, sent[0]


_TITLES = {not_a_server_error: "Server error", response_schema_conformance: "Response violates schema",
           positive_data_acceptance: "Schema-valid request rejected",
           negative_data_rejection: "Schema-violating request accepted"}


def _is(failure: Failure, check: Any) -> bool:
    return failure.title.startswith(_TITLES[check])


def main() -> None:
    """Print the counts per kind for each spec against a running sandbox (``connector sandbox serve``)."""
    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("base_url")
    parser.add_argument("token")
    parser.add_argument("--examples", type=int, default=2)
    parser.add_argument("--specs", default="contacts-v3,companies-v3,properties-v3,associations-v4,lists-v3")
    parser.add_argument("--relaxed", action="store_true", help="leave out the findings FUZZ_RELAXATIONS names")
    parser.add_argument("--unrelaxed", action="store_true", help="judge by the spec as published")
    parser.add_argument("--unserved", action="store_true", help="fuzz the operations the sandbox lacks too")
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args()
    from tests.sandbox.spec import split_relaxed

    total: Counter[str] = Counter()
    print(f"specs from {SPECS}")
    for name in args.specs.split(","):
        findings, sent = fuzz(name, args.base_url, args.token, args.examples, include_unserved=args.unserved,
                              unrelaxed=args.unrelaxed)
        if args.relaxed:
            findings, _ = split_relaxed(findings)
        counts = Counter(f.kind for f in findings)
        total.update(counts)
        print(f"{name:16} {sent:4} requests  " + "  ".join(f"{k}: {counts[k]}" for k in KINDS))
        if args.verbose:
            for finding in findings:
                print("   ", finding)
    print(f"{'all':16}                " + "  ".join(f"{k}: {total[k]}" for k in KINDS))


if __name__ == "__main__":
    main()
