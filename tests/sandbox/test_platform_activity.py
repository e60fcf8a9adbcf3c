"""Simulated activity (`--activity RATE`): seeded, through the API's write path, seen by webhooks and by search;
and `connector sandbox serve --app DIR`."""

from __future__ import annotations

import subprocess
import sys
import time

import requests

from connector.sandbox.platform import AppPlatform
from connector.sandbox.server import build_portal, running_sandbox
from connector.sandbox.simulation import KINDS, Simulator
from tests.sandbox.conftest import Api
from tests.sandbox.receiver import EXAMPLE_APP, project_pointing_at


def _run(seed: int, steps: int) -> list[tuple]:
    simulator = Simulator(build_portal(seed=seed, size=40, now=1_767_225_600_000), 60, seed)
    for _ in range(steps):
        simulator.step()
    # timestamps are the clock's; everything else is the seed's
    return [(a.kind, a.object_type, a.object_id,
             sorted((k, v) for k, v in a.properties.items() if not k.endswith(("_at", "_date"))), a.error)
            for a in simulator.log]


def test_the_same_seed_makes_the_same_changes():
    first, second = _run(5, 60), _run(5, 60)
    assert first == second and len(first) >= 50
    assert {kind for kind, *_ in first} >= {"usage", "seats", "ticket_opened"}
    assert all(error is None for *_, error in first)
    assert _run(6, 60) != first


def test_changes_go_through_the_write_path_so_search_sees_them():
    portal = build_portal(seed=5, size=40)
    with running_sandbox(portal=portal) as sb:
        since = str(int(time.time() * 1000) - 1)
        simulator = Simulator(portal, 60, 5)
        changed = set()
        while len(changed) < 5:
            activity = simulator.step()
            if activity is not None and activity.object_type == "companies":
                changed.add(activity.object_id)
        found = Api(sb).post("/crm/v3/objects/companies/search", json={
            "filterGroups": [{"filters": [{"propertyName": "hs_lastmodifieddate", "operator": "GTE",
                                           "value": since}]}], "limit": 100}).json()
        assert changed <= {int(r["id"]) for r in found["results"]}
        last = next(a for a in reversed(simulator.log) if a.object_type == "companies")
        record = portal.get("companies", last.object_id)
        assert all(record.props[k] == v for k, v in last.properties.items())
        assert all(record.history[k][-1][0] == v for k, v in last.properties.items())  # as an API write appends


def test_simulated_changes_reach_the_apps_webhooks(receiver, tmp_path):
    platform = AppPlatform(seed=2, batch_window_s=0.02)
    with running_sandbox(seed=2, size=40, app=project_pointing_at(tmp_path, receiver.base_url), platform=platform,
                         activity=1200) as sb:
        receiver.secret = sb.app.client_secret
        platform.install(sb.app.app_id, sb.portal.portal_id)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and not receiver.received:
            time.sleep(0.05)
    events = [e for r in receiver.received for e in r.json()]
    assert events and all(r.verified for r in receiver.received)
    assert {(e["changeSource"], e["sourceId"]) for e in events} == {("INTEGRATION", "sandbox-activity")}
    # the subscribed properties the simulation changes (hs_pipeline_stage: tickets closed, now that tickets exist)
    assert {e["propertyName"] for e in events if "propertyName" in e} <= {"product_logins_30d", "seats_used",
                                                                          "hs_status", "hs_pipeline_stage"}


def test_kinds_are_what_the_issue_names():
    assert set(KINDS) == {"usage", "seats", "ticket_opened", "ticket_closed", "payment_failed", "payment_recovered",
                          "cancellation"}


def test_serve_with_an_app_prints_its_credentials_and_installs_by_oauth(serve):
    _, lines = serve("--size", "10", "--app", str(EXAMPLE_APP), "--activity", "30", "--webhook-time-scale", "0.001")
    exports = dict(line[len("export "):].split("=", 1) for line in lines if line.startswith("export "))
    install = next(line for line in lines if line.startswith("Install (approved for portal"))
    response = requests.get(install.split(": ", 1)[1], allow_redirects=False, timeout=10)
    assert response.status_code == 302 and "code=" in response.headers["location"]
    assert exports["HUBSPOT_CLIENT_ID"] and exports["HUBSPOT_CLIENT_SECRET"]
    assert "Simulated activity: 30 changes per minute" in lines


def test_serve_refuses_a_bad_project_naming_file_and_field(tmp_path):
    def bad(root):
        path = root / "src/app/app-hsmeta.json"
        path.write_text(path.read_text().replace('"private"', '"everyone"'))

    project = project_pointing_at(tmp_path, "https://retention-app.example.com", bad)
    result = subprocess.run([sys.executable, "-m", "connector", "sandbox", "serve", "--port", "0", "--size", "0",
                             "--app", str(project)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "src/app/app-hsmeta.json: config.distribution:" in result.stderr
