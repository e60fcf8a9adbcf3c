"""`connector sync` end to end against the sandbox: exact writes, settling, change propagation, lock, kill + rerun."""

from __future__ import annotations

import json
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path

import pytest
from typer.testing import CliRunner

from connector.cli import app
from connector.errors import StateError

ROOT = Path(__file__).resolve().parents[2]
runner = CliRunner()
OWNED_PREFIX = "retention_"


@pytest.fixture
def sync_env(sandbox_factory, tmp_path, monkeypatch):
    """A fresh small portal, an empty SQLite store and the default mapping pack, wired through env vars."""
    sandbox = sandbox_factory(seed=11, size=300, profile="unlimited")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CONNECTOR_BASE_URL", sandbox.base_url)
    monkeypatch.setenv("CONNECTOR_TOKEN", sandbox.token)
    monkeypatch.setenv("CONNECTOR_STATE_URL", f"sqlite:///{tmp_path / 'state.db'}")
    monkeypatch.setenv("CONNECTOR_MAPPINGS_DIR", str(ROOT / "mappings"))
    return sandbox


def sync_json(*args: str) -> dict:
    result = runner.invoke(app, ["sync", "--output", "json", *args])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def owned_values(portal) -> dict[tuple[str, int, str], str | None]:
    """Every connector-owned property value in the portal (what a sync leaves behind)."""
    out = {}
    for object_type in ("companies", "contacts", "deals"):
        for record_id, record in portal.stores[object_type].records.items():
            for name, value in record.props.items():
                if name.startswith(OWNED_PREFIX):
                    out[(object_type, record_id, name)] = value
    return out


def test_first_sync_writes_exactly_the_plan_and_an_unchanged_portal_settles(sync_env):
    portal = sync_env.portal
    first = sync_json()
    changes = first["writeback"]["plan"]["changes"]
    assert first["status"] == "ok" and first["failures"] == 0
    assert first["values_written"] == len(changes) > 0
    for change in changes:  # read back from the sandbox: exactly what was planned
        record = portal.stores[change["object_type"]].records[int(change["record_id"])]
        assert (record.props.get(change["property"]) or None) == (change["after"] or None), change

    second = sync_json()
    # Nothing changed in the portal; the only news is that health trends became known (a previous run exists).
    assert {c["property"] for c in second["writeback"]["plan"]["changes"]} <= {"retention_health_trend"}

    stamps_before = {k: r.props.get("hs_lastmodifieddate") for k, r in portal.stores["companies"].records.items()}
    third = sync_json()
    assert third["values_changed"] == 0 and third["values_written"] == 0
    # Zero write calls (the start-up scope check's probes are counted apart, as "scope_probe").
    assert not {"batch_update", "properties_write", "lists_write"} & set(third["calls_by_kind"]), third["calls_by_kind"]
    assert {k: r.props.get("hs_lastmodifieddate") for k, r in portal.stores["companies"].records.items()} == stamps_before
    assert third["enrollments"] == 0  # each entry enrolled once, on the first run


def test_a_change_in_the_portal_reaches_exactly_the_affected_records(sync_env):
    portal = sync_env.portal
    sync_json()
    sync_json()
    companies = portal.stores["companies"].records
    paying = [cid for cid, r in companies.items() if r.props.get("retention_health_score")]
    target = paying[0]
    portal.update("companies", str(target), {"support_open_tickets": "40", "seats_used": "0"})

    after = sync_json()
    changes = after["writeback"]["plan"]["changes"]
    assert changes, "a worse support load and no seats in use must move the customer's health"
    contacts_of_target = {
        str(i) for i, r in portal.stores["contacts"].records.items() if r.props.get("associatedcompanyid") == str(target)
    }
    for change in changes:
        if change["object_type"] == "companies":
            assert change["record_id"] == str(target), change
        elif change["object_type"] == "contacts":
            assert change["record_id"] in contacts_of_target, change
    assert any(c["property"] == "retention_health_score" for c in changes)


def test_a_second_sync_on_a_locked_store_refuses_with_exit_4(sync_env, tmp_path):
    from connector.state import StateStore

    with StateStore.open(f"sqlite:///{tmp_path / 'state.db'}") as store:
        assert store.acquire_lock("sync", "other-host:42:run", stale_after_s=3600)
        result = runner.invoke(app, ["sync"])
        assert result.exit_code == StateError.exit_code
        assert "another sync holds the state store lock" in result.output
        assert "other-host:42:run" in result.output
        store.release_lock("sync", "other-host:42:run")
    assert runner.invoke(app, ["sync", "--output", "json"]).exit_code == 0  # once released, it runs


def test_dry_run_pulls_and_plans_but_writes_nothing(sync_env):
    portal = sync_env.portal
    planned = sync_json("--dry-run")
    assert planned["dry_run"] is True and planned["values_changed"] > 0 and planned["values_written"] == 0
    assert "batch_update" not in planned["calls_by_kind"]
    assert not owned_values(portal)
    assert not any(name.startswith(OWNED_PREFIX) for name in portal.properties["companies"])


class _DiesAfter:
    """The real client, killed (as by SIGKILL mid-run) after ``batches`` batch updates."""

    def __init__(self, client, batches: int):
        self._client = client
        self._left = batches

    def batch_update(self, *args, **kwargs):
        if self._left == 0:
            raise KeyboardInterrupt("killed mid-apply")
        self._left -= 1
        return self._client.batch_update(*args, **kwargs)

    def __getattr__(self, name):
        return getattr(self._client, name)


def test_a_sync_killed_mid_apply_and_rerun_ends_like_an_uninterrupted_one(sandbox_factory, tmp_path):
    from pydantic import SecretStr

    from connector import pipeline
    from connector.hubspot import HubSpotClient
    from connector.settings import Settings

    now_ms = int(datetime(2026, 11, 20, 12, tzinfo=timezone.utc).timestamp() * 1000)
    as_of = datetime(2026, 11, 20, 12, 30, tzinfo=timezone.utc)
    final = []
    for name, kill_after in (("whole", None), ("killed", 2)):
        sandbox = sandbox_factory(seed=13, size=300, profile="unlimited", now=now_ms)
        settings = Settings(_env_file=None, token=SecretStr(sandbox.token), base_url=sandbox.base_url,
                            state_url=f"sqlite:///{tmp_path / name}.db", mappings_dir=ROOT / "mappings")
        if kill_after is not None:
            client = HubSpotClient.from_settings(settings)
            with pytest.raises(KeyboardInterrupt):
                pipeline.run_sync(settings, as_of=as_of, client=_DiesAfter(client, kill_after))
            assert owned_values(sandbox.portal), "the killed run had written its first batches"
        summary, _, _ = pipeline.run_sync(settings, as_of=as_of)  # the killed run's lock is its own: released
        assert summary.failures == 0
        final.append(owned_values(sandbox.portal))
    whole, resumed = final
    assert resumed == whole
    assert Counter(k[2] for k in whole)["retention_health_score"] > 0


def test_a_lock_left_by_a_dead_process_of_this_host_is_taken_over_at_once(sync_env, tmp_path):
    import socket
    import subprocess
    import sys

    from connector.state import StateStore

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    owner = f"{socket.gethostname()}:{int(dead.stdout)}:20261123T000000Z-dead"
    with StateStore.open(f"sqlite:///{tmp_path / 'state.db'}") as store:
        assert store.acquire_lock("sync", owner, stale_after_s=3600)  # fresh heartbeat: not stale
    assert runner.invoke(app, ["sync", "--output", "json"]).exit_code == 0


def test_missing_scopes_are_all_named_before_any_work(sync_env, monkeypatch, tmp_path):
    from connector.mapping import load_pack
    from connector.pipeline import required_scopes

    needed = required_scopes(load_pack(ROOT / "mappings"), write=True)
    lacking = {"crm.objects.deals.read", "crm.schemas.companies.write", "crm.lists.write"}
    assert lacking <= needed
    monkeypatch.setenv("CONNECTOR_TOKEN", sync_env.portal.create_token(scopes=sorted(needed - lacking)))
    result = runner.invoke(app, ["sync"])
    assert result.exit_code == 3, result.output
    for scope in lacking:
        assert scope in result.output
    from connector.state import StateStore

    with StateStore.open(f"sqlite:///{tmp_path / 'state.db'}") as store:
        assert store.count_records() == 0


def test_required_scopes_follow_the_mapping_pack():
    from connector.mapping import load_pack
    from connector.pipeline import required_scopes

    pack = load_pack(ROOT / "mappings")
    reading = required_scopes(pack, write=False)
    assert "crm.objects.feedback_submissions.read" in reading and "crm.objects.subscriptions.read" in reading
    assert not any(scope.endswith(".write") for scope in reading)
    writing = required_scopes(pack, write=True)
    assert {"crm.objects.companies.write", "crm.schemas.companies.write", "crm.lists.write"} <= writing


def test_metrics_and_report_read_what_the_sync_stored(sync_env, tmp_path):
    sync_json()
    metrics = runner.invoke(app, ["metrics", "--output", "json"])
    assert metrics.exit_code == 0, metrics.output
    figures = json.loads(metrics.stdout)
    customers = figures["customers"]
    assert customers["end"] == customers["start"] - customers["lost"] + customers["new_or_returned"]  # E = S − L + N
    assert float(figures["revenue"]["end_mrr"]) > 0

    table = runner.invoke(app, ["report"])
    assert table.exit_code == 0, table.output
    assert "MRR movements" in table.output and "Health:" in table.output

    page = tmp_path / "report.html"
    written = runner.invoke(app, ["report", "--html", str(page)])
    assert written.exit_code == 0, written.output
    html = page.read_text()
    for heading in ("MRR movements", "Cohort retention", "Health distribution", "NPS trend"):
        assert heading in html
    assert "<script" not in html


def test_report_before_any_sync_says_what_to_do(sync_env):
    result = runner.invoke(app, ["report"])
    assert result.exit_code == StateError.exit_code
    assert "run `connector sync` first" in result.output


def test_sync_without_the_stage_files_fails_before_any_call(sync_env, tmp_path, monkeypatch):
    import shutil

    pack = tmp_path / "partial"
    pack.mkdir()
    for name in ("portal.yaml", "sources.yaml"):
        shutil.copy(ROOT / "mappings" / name, pack / name)
    monkeypatch.setenv("CONNECTOR_MAPPINGS_DIR", str(pack))
    calls_before = len(sync_env.portal.calls)
    result = runner.invoke(app, ["sync"])
    assert result.exit_code == 2, result.output
    assert "health.yaml, segments.yaml, writeback.yaml" in result.output
    assert len(sync_env.portal.calls) == calls_before  # refused before talking to HubSpot
