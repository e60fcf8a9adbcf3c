"""`connector writeback ledger | rollback | resume` through Typer's CliRunner against the sandbox and a real store."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from connector.cli import app
from connector.writeback import apply_plan
from tests.e2e.test_writeback_apply import DiesAfter, Killed, build_world, outputs_for, provision_and_plan, score_of

runner = CliRunner()


@pytest.fixture
def cli_world(sandbox_factory, tmp_path, monkeypatch):
    w = build_world(sandbox_factory, tmp_path)
    monkeypatch.chdir(tmp_path)  # no stray .env is read
    monkeypatch.setenv("CONNECTOR_BASE_URL", w.sandbox.base_url)
    monkeypatch.setenv("CONNECTOR_TOKEN", w.sandbox.token)
    monkeypatch.setenv("CONNECTOR_STATE_URL", str(w.store.engine.url))
    monkeypatch.setenv("CONNECTOR_MAPPINGS_DIR", str(Path(__file__).resolve().parents[2] / "mappings"))
    yield w
    w.store.close()
    w.client.close()


def test_ledger_then_rollback_from_the_command_line(cli_world):
    w = cli_world
    ids = [c.id for c in w.customers]
    plan = provision_and_plan(w, outputs_for(ids))
    run_id = w.store.start_run("writeback")
    assert apply_plan(run_id, plan, w.client, w.store).ok
    edited = ids[2]
    w.client.batch_update("companies", [(edited, {"retention_health_score": "3"})])

    shown = runner.invoke(app, ["writeback", "ledger", run_id, "--output", "json"])
    assert shown.exit_code == 0, shown.output
    rows = json.loads(shown.stdout)
    assert len(rows) == len(plan.changes) and {r["status"] for r in rows} == {"written"}

    dry = runner.invoke(app, ["writeback", "rollback", run_id, "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert "values edited since the run are kept" in dry.stdout
    assert w.crm_value("companies", ids[0], "retention_health_score") == str(score_of(ids[0]))  # nothing written

    done = runner.invoke(app, ["writeback", "rollback", run_id])
    assert done.exit_code == 0, done.output
    assert "values restored" in done.stdout
    assert w.crm_value("companies", ids[0], "retention_health_score") is None  # back to empty
    assert w.crm_value("companies", edited, "retention_health_score") == "3"  # the human's value stays


def test_resume_from_the_command_line_finishes_a_killed_apply(cli_world):
    w = cli_world
    plan = provision_and_plan(w, outputs_for([c.id for c in w.customers]))
    run_id = w.store.start_run("writeback")
    with pytest.raises(Killed):
        apply_plan(run_id, plan, DiesAfter(w.client, 1), w.store, batch_size=10)
    assert w.store.unfinished_apply_runs() == [run_id]
    result = runner.invoke(app, ["writeback", "resume"])
    assert result.exit_code == 0, result.output
    assert f"run {run_id}:" in result.stdout
    assert w.store.unfinished_apply_runs() == []
    assert all(w.crm_value(c.object_type, c.record_id, c.property) == (c.after or None) for c in plan.changes)


def test_rollback_of_an_unknown_run_exits_2(cli_world):
    result = runner.invoke(app, ["writeback", "rollback", "20000101T000000Z-none"])
    assert result.exit_code == 2 and "wrote nothing" in result.output


def test_plan_then_sync_then_rollback_through_the_whole_pipeline(sandbox_factory, tmp_path, monkeypatch):
    from connector import pipeline
    from connector.settings import Settings

    sandbox = sandbox_factory(seed=5, size=200, profile="unlimited")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CONNECTOR_BASE_URL", sandbox.base_url)
    monkeypatch.setenv("CONNECTOR_TOKEN", sandbox.token)
    monkeypatch.setenv("CONNECTOR_STATE_URL", f"sqlite:///{tmp_path / 'state.db'}")
    monkeypatch.setenv("CONNECTOR_MAPPINGS_DIR", str(Path(__file__).resolve().parents[2] / "mappings"))
    companies = sandbox.portal.stores["companies"].records

    planned = runner.invoke(app, ["writeback", "plan", "--output", "json"])
    assert planned.exit_code == 0, planned.output
    plan = json.loads(planned.stdout)["plan"]
    assert plan["counts"]["companies"]["retention_health_score"] > 0
    assert not any(r.props.get("retention_health_score") for r in companies.values())  # a plan writes nothing

    summary, _, written = pipeline.run_sync(Settings())
    assert summary.status == "ok" and written.applied.changes_written == len(written.plan.changes)
    scored = [c for c in written.plan.changes if c.property == "retention_health_score" and c.after]
    assert scored and all(companies[int(c.record_id)].props["retention_health_score"] == c.after for c in scored)

    undone = runner.invoke(app, ["writeback", "rollback", summary.run_id])
    assert undone.exit_code == 0, undone.output
    assert not any(r.props.get("retention_health_score") for r in companies.values())
