"""The pull against the sandbox over real HTTP: exact copies, faults, changes mid-run, kill and resume, CLI."""

from __future__ import annotations

import json
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from typer.testing import CliRunner

from connector.cli import app
from connector.errors import HubSpotError
from connector.extract import pull
from connector.hubspot.client import HubSpotClient
from connector.mapping import load_pack
from connector.settings import Settings
from connector.state import StateStore

ROOT = Path(__file__).resolve().parents[2]
UTC = timezone.utc


class Killed(Exception):
    """Stands for the process dying right after a commit."""


@pytest.fixture(scope="module")
def plan():
    return load_pack(ROOT / "mappings").pull_plan()


def make_client(sb, **settings) -> HubSpotClient:
    config = Settings(_env_file=None, base_url=sb.base_url, token=sb.token, **settings)
    return HubSpotClient.from_settings(config, sleep=lambda _s: None)  # retry and pacing waits are zero in tests


def make_store(tmp_path, name="state") -> StateStore:
    return StateStore.open(f"sqlite:///{tmp_path}/{name}.db")


def sandbox_view(portal, plan) -> tuple[dict, set]:
    """What the store must hold: every record (pulled properties, archived flag) and the live records' associations."""
    records = {}
    assocs = set()
    for object_type, spec in plan.items():
        defined = portal.properties[object_type]
        names = [p for p in spec.properties if p in defined]
        for rid, rec in portal.stores[object_type].records.items():
            records[(object_type, str(rid))] = (rec.archived, {p: rec.props.get(p) for p in names})
        for to_type in spec.associations:
            for from_id, targets in portal.assoc.get((object_type, to_type), {}).items():
                if portal.stores[object_type].records[from_id].archived:
                    continue
                for to_id, types in targets.items():
                    assocs.update((object_type, str(from_id), to_type, str(to_id), t) for t in types)
    return records, assocs


def store_view(store, portal, plan) -> tuple[dict, set]:
    records = {}
    for object_type, spec in plan.items():
        defined = portal.properties[object_type]
        names = [p for p in spec.properties if p in defined]
        for rec in store.iter_records(object_type, include_archived=True):
            records[(object_type, rec.id)] = (rec.archived, {p: rec.properties.get(p) for p in names})
    assocs = {(a.from_type, a.from_id, a.to_type, a.to_id, a.type_id) for a in store.iter_associations()}
    return records, assocs


def full_dump(store, plan) -> tuple[dict, set]:
    """Everything stored, history included: two stores from the same portal must be identical."""
    records = {}
    for object_type in plan:
        for rec in store.iter_records(object_type, include_archived=True):
            records[(object_type, rec.id)] = (rec.archived, rec.properties, rec.history, rec.created_at, rec.updated_at)
    return records, {(a.from_type, a.from_id, a.to_type, a.to_id, a.type_id) for a in store.iter_associations()}


def assert_same(store, portal, plan) -> None:
    want_records, want_assocs = sandbox_view(portal, plan)
    got_records, got_assocs = store_view(store, portal, plan)
    assert set(got_records) == set(want_records), "record ids differ"
    diff = [k for k in want_records if got_records[k] != want_records[k]]
    assert not diff, f"{len(diff)} records differ, e.g. {diff[:3]}: {got_records[diff[0]]} != {want_records[diff[0]]}"
    assert got_assocs == want_assocs, (sorted(want_assocs - got_assocs)[:5], sorted(got_assocs - want_assocs)[:5])


# ---------------------------------------------------------------- exact copy under faults


def test_pull_under_faults_holds_exactly_the_sandbox(sandbox_factory, plan, tmp_path):
    sb = sandbox_factory(
        seed=11, size=400, profile="unlimited", faults="503:0.04,429:0.03,reset:0.02,502:0.02,slow:0.01@50ms"
    )
    client = make_client(sb, max_retries=12)
    store = make_store(tmp_path)

    first = pull(client, store, plan)
    assert first.retries > 0, "no fault was met: the test proves nothing"
    assert all(o.mode == "full" for o in first.objects.values())
    assert_same(store, sb.portal, plan)
    # Histories came with the records that have historical properties.
    subs = list(store.iter_records("subscriptions"))
    assert subs and all(r.history.get("hs_status") for r in subs)
    assert all(r.history["hs_status"][0]["timestamp"] >= r.history["hs_status"][-1]["timestamp"] for r in subs)

    # Changes: updates, an archive, a creation; the next pull is incremental and reads only what changed.
    portal = sb.portal
    contact_ids = portal.stores["contacts"].live_ids[:60]
    for cid in contact_ids:
        portal.update("contacts", str(cid), {"jobtitle": f"Head of Retention {cid}"})
    archived_company = portal.stores["companies"].live_ids[0]
    portal.archive("companies", str(archived_company))
    created = portal.create("contacts", {"email": "new.person@example.com", "firstname": "New"})
    second = pull(client, store, plan)
    assert all(o.mode == "incremental" for o in second.objects.values())
    assert second.objects["contacts"].records >= 61
    assert second.objects["contacts"].records < len(portal.stores["contacts"].live_ids)
    assert second.calls < first.calls
    assert store.load_records("companies", [str(archived_company)])[str(archived_company)].archived
    assert second.objects["companies"].newly_archived == 1
    assert second.newly_archived == 1 and second.archived == sum(len(portal.stores[t].archived_ids) for t in plan)
    assert str(created.id) in store.load_records("contacts", [str(created.id)])
    assert_same(store, portal, plan)


def test_association_change_without_modification_is_caught_by_the_periodic_refresh(sandbox_factory, plan, tmp_path):
    sb = sandbox_factory(seed=12, size=150, profile="unlimited")
    client, store = make_client(sb), make_store(tmp_path)
    pull(client, store, plan, association_refresh_every=2)
    portal = sb.portal
    deal = portal.stores["deals"].live_ids[0]
    contact = next(
        c for c in portal.stores["contacts"].live_ids if c not in portal.associated_ids("deals", deal, "contacts")
    )
    before = portal.stores["deals"].records[deal].updated_ms
    portal.associate_default("deals", deal, "contacts", contact)  # HubSpot leaves lastmodifieddate alone
    assert portal.stores["deals"].records[deal].updated_ms == before

    second = pull(client, store, plan, association_refresh_every=2)
    assert not second.objects["deals"].associations_full_refresh
    stored = {(a.from_id, a.to_id) for a in store.iter_associations("deals", "contacts")}
    assert (str(deal), str(contact)) not in stored  # invisible to an incremental read, as in HubSpot

    third = pull(client, store, plan, association_refresh_every=2)
    assert third.objects["deals"].associations_full_refresh
    assert third.objects["deals"].association_ids == len(portal.stores["deals"].live_ids)
    assert_same(store, portal, plan)


# ---------------------------------------------------------------- changes while the pull runs


def test_records_changed_during_a_pull_are_picked_up_by_the_next(sandbox_factory, plan, tmp_path):
    sb = sandbox_factory(seed=13, size=300, profile="unlimited", search_lag_ms=300)
    portal = sb.portal
    client, store = make_client(sb), make_store(tmp_path)
    changed: list[int] = []

    def meddle(event):
        # On the first committed contacts page, edit records on both sides of the cursor and archive one.
        if event.object_type == "contacts" and event.phase == "records" and not changed:
            live = portal.stores["contacts"].live_ids
            for cid in (live[0], live[5], live[-1], live[-7]):
                portal.update("contacts", str(cid), {"firstname": "Evangelist"})
                changed.append(cid)
            portal.archive("contacts", str(live[10]))
            portal.create("contacts", {"email": "during@example.com"})

    pull(client, store, plan, progress=meddle)
    assert changed
    first_values = store.load_records("contacts", [str(changed[0])])
    assert first_values[str(changed[0])].properties["firstname"] != "Evangelist"  # committed before the edit

    time.sleep(portal.search_lag_ms / 1000)  # edits become searchable only after the index lag
    second = pull(client, store, plan)
    assert second.objects["contacts"].mode == "incremental"
    for cid in changed:
        assert store.load_records("contacts", [str(cid)])[str(cid)].properties["firstname"] == "Evangelist"
    assert_same(store, portal, plan)

    # The same during an incremental pull: the third pull sees what the second could not.
    done: list[int] = []

    def meddle_again(event):
        if event.object_type == "companies" and not done:
            for cid in portal.stores["companies"].live_ids[:3]:
                portal.update("companies", str(cid), {"industry": "RETAIL"})
                done.append(cid)

    pull(client, store, plan, progress=meddle_again)
    time.sleep(portal.search_lag_ms / 1000)  # let the search index catch up (the cursor margin keeps them in range)
    pull(client, store, plan)
    assert done
    assert_same(store, portal, plan)


def test_cursor_never_passes_now_minus_margin(sandbox_factory, plan, tmp_path):
    sb = sandbox_factory(seed=14, size=100, profile="unlimited")
    client, store = make_client(sb), make_store(tmp_path)
    margin = timedelta(minutes=10)
    pull(client, store, plan, margin=margin)
    for cid in sb.portal.stores["contacts"].live_ids[:5]:
        sb.portal.update("contacts", str(cid), {"firstname": "Ada"})
    now = datetime.now(UTC)
    second = pull(client, store, plan, margin=margin, now=lambda: now)
    assert second.objects["contacts"].records >= 5
    cursor = store.load_cursor("contacts")
    assert cursor["phase"] == "incremental"
    assert datetime.fromisoformat(cursor["since"].replace("Z", "+00:00")) <= now - margin
    # Everything inside the margin is read again: a record the search index had not yet shown is not lost.
    third = pull(client, store, plan, margin=margin)
    assert third.objects["contacts"].records >= 5


# ---------------------------------------------------------------- killed and resumed


def _uninterrupted(sandbox, plan, tmp_path):
    store = make_store(tmp_path, "reference")
    pull(make_client(sandbox), store, plan)
    return store


@pytest.mark.parametrize(
    "phase, nth",
    [
        pytest.param("records", 1, id="first-page"),
        pytest.param("records", 4, id="mid-records"),
        pytest.param("archived", 1, id="after-deletions"),
        pytest.param("associations", 1, id="mid-associations"),
        pytest.param("associations", 3, id="later-associations"),
    ],
)
def test_killed_pull_resumes_to_the_same_store(sandbox, plan, tmp_path, phase, nth):
    reference = _uninterrupted(sandbox, plan, tmp_path)
    store, client = make_store(tmp_path), make_client(sandbox)
    seen = {"n": 0}

    def die(event):
        if event.phase == phase:
            seen["n"] += 1
            if seen["n"] == nth:
                raise Killed(f"{phase} #{nth}")

    with pytest.raises(Killed):
        pull(client, store, plan, progress=die)
    resumed = pull(client, store, plan)
    assert resumed.records + resumed.archived < sum(len(v) for v in full_dump(reference, plan)[:1])  # not from scratch
    assert full_dump(store, plan) == full_dump(reference, plan)


def test_pull_killed_again_and_again_loses_nothing(sandbox, plan, tmp_path):
    """Run i dies at its (i + 2)-th commit until a run completes: resume points all along the pull."""
    reference = _uninterrupted(sandbox, plan, tmp_path)
    store, client = make_store(tmp_path), make_client(sandbox)
    kills = 0
    while True:
        count = {"n": 0}

        def die(event, limit=kills + 2, count=count):
            count["n"] += 1
            if count["n"] == limit:
                raise Killed

        try:
            pull(client, store, plan, progress=die)
            break
        except Killed:
            kills += 1
            assert kills < 100
    assert kills >= 10
    assert full_dump(store, plan) == full_dump(reference, plan)


def test_pull_stopped_by_a_failing_api_resumes(sandbox_factory, plan, tmp_path):
    sb = sandbox_factory(seed=15, size=250, profile="unlimited")
    reference = _uninterrupted(sb, plan, tmp_path)
    store, client = make_store(tmp_path), make_client(sb, max_retries=2)
    # After a few good answers the sandbox fails every call on contacts: the run stops with the error.
    sb.portal.set_faults("seq:" + ",".join(["200"] + ["503"] * 30) + ",path=/crm/v3/objects/contacts")
    with pytest.raises(HubSpotError):
        pull(client, store, plan)
    sb.portal.set_faults(None)
    pull(client, store, plan)
    assert full_dump(store, plan) == full_dump(reference, plan)


# ---------------------------------------------------------------- the command


@pytest.fixture
def cli_env(sandbox, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no stray .env from the working tree
    monkeypatch.setenv("CONNECTOR_BASE_URL", sandbox.base_url)
    monkeypatch.setenv("CONNECTOR_TOKEN", sandbox.token)
    monkeypatch.setenv("CONNECTOR_STATE_URL", f"sqlite:///{tmp_path}/cli/state.db")
    monkeypatch.setenv("CONNECTOR_MAPPINGS_DIR", str(ROOT / "mappings"))
    return f"sqlite:///{tmp_path}/cli/state.db"


def test_cli_pull_json_then_text(cli_env, sandbox, plan):
    runner = CliRunner()
    result = runner.invoke(app, ["pull", "--output", "json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    live = sum(len(sandbox.portal.stores[t].live_ids) for t in plan)
    assert data["records"] == live
    assert {o["mode"] for o in data["objects"].values()} == {"full"}
    assert sandbox.token not in result.output

    result = runner.invoke(app, ["pull", "--objects", "contacts,companies"])
    assert result.exit_code == 0, result.output
    (line,) = result.stdout.strip().splitlines()
    assert line.startswith("pull ok:") and "contacts incremental" in line and "deals" not in line

    with StateStore.open(cli_env) as store:
        runs = store.list_runs("pull")
        assert [r["status"] for r in runs] == ["ok", "ok"]
        assert runs[-1]["summary"]["records"] == live
        assert store.lock_holder("pull") is None


def test_cli_pull_unknown_object_is_exit_2(cli_env):
    result = CliRunner().invoke(app, ["pull", "--objects", "contact"])
    assert result.exit_code == 2
    assert 'did you mean "contacts"' in result.output


def test_cli_pull_refuses_while_another_pull_holds_the_lock(cli_env):
    with StateStore.open(cli_env) as store:
        assert store.acquire_lock("pull", "other-host:123", stale_after_s=900)
    result = CliRunner().invoke(app, ["pull"])
    assert result.exit_code == 4
    assert "other-host:123" in result.output


def test_full_pull_reconciles_hard_deleted_records(sandbox_factory, plan, tmp_path):
    sb = sandbox_factory(seed=16, size=120, profile="unlimited")
    client, store = make_client(sb), make_store(tmp_path)
    pull(client, store, plan)
    portal = sb.portal
    gone = portal.stores["contacts"].live_ids[3]
    # A GDPR deletion: the record leaves both the live and the archived list, and every association.
    with portal.lock:
        portal.stores["contacts"].live_ids.remove(gone)
        del portal.stores["contacts"].records[gone]
        for (a, b), links in portal.assoc.items():
            if a == "contacts":
                links.pop(gone, None)
            elif b == "contacts":
                for targets in links.values():
                    targets.pop(gone, None)
    pull(client, store, plan)
    assert not store.load_records("contacts", [str(gone)])[str(gone)].archived  # incremental cannot know
    summary = pull(client, store, plan, full=True)
    assert summary.objects["contacts"].mode == "full"
    assert store.load_records("contacts", [str(gone)])[str(gone)].archived
    want_records, want_assocs = sandbox_view(portal, plan)
    got_records, got_assocs = store_view(store, portal, plan)
    assert got_records.pop(("contacts", str(gone)))[0] is True
    assert got_records == want_records and got_assocs == want_assocs


def test_pull_into_postgresql_matches_sqlite(sandbox, plan, tmp_path, request):
    from tests.unit.test_state import _pg_schema_url

    url = _pg_schema_url(request)
    reference = _uninterrupted(sandbox, plan, tmp_path)
    with StateStore.open(url) as pg:
        count = {"n": 0}

        def die(event):
            count["n"] += 1
            if count["n"] == 5:
                raise Killed

        with pytest.raises(Killed):
            pull(make_client(sandbox), pg, plan, progress=die)
        pull(make_client(sandbox), pg, plan)
        assert full_dump(pg, plan) == full_dump(reference, plan)


def test_progress_display_renders_events(capsys):
    from connector.extract import PullProgress
    from connector.pipeline import pull_progress_display

    with pull_progress_display(False) as none:
        assert none is None
    with pull_progress_display(True) as update:
        for i in range(1, 4):
            update(PullProgress("contacts", "records", "full", i * 100, i * 100, i, 0, 0.5, float(i)))
        update(PullProgress("companies", "associations", "incremental", 7, 307, 5, 0, None, 4.0))
    out = capsys.readouterr().out
    assert "contacts" in out and "companies" in out and "calls" in out


def test_incremental_pull_killed_mid_way_resumes(sandbox_factory, plan, tmp_path):
    sb = sandbox_factory(seed=17, size=300, profile="unlimited")
    client, store = make_client(sb), make_store(tmp_path)
    pull(client, store, plan)
    portal = sb.portal
    for cid in portal.stores["contacts"].live_ids[:250]:
        portal.update("contacts", str(cid), {"lastname": f"Changed{cid}"})
    # The sandbox stamps writes 1 ms apart, so a burst of writes runs ahead of the wall clock; the cursor caps
    # at "now" and would (rightly) stay put. Let the clock catch up so the cursor can follow the records.
    while time.time() * 1000 <= portal._last_write_ms + 5:
        time.sleep(0.01)

    def die(event):
        if event.object_type == "contacts" and event.phase == "records" and event.records >= 100:
            raise Killed

    # margin 0: the sandbox's search has no index lag, so the cursor may follow the records right up to now.
    with pytest.raises(Killed):
        pull(client, store, plan, progress=die, margin=timedelta(0))
    cursor = store.load_cursor("contacts")
    assert cursor["phase"] == "incremental" and cursor["id"]  # advanced to the last committed page, not beyond
    resumed = pull(client, store, plan, margin=timedelta(0))
    assert 0 < resumed.objects["contacts"].records < 250 + 100  # continued near the cursor, did not start over
    assert_same(store, portal, plan)


def test_a_property_newly_mapped_triggers_a_full_pass_of_its_type_only(sandbox_factory, plan, tmp_path):
    sb = sandbox_factory(seed=18, size=120, profile="unlimited")
    client, store = make_client(sb), make_store(tmp_path)
    pull(client, store, plan)
    assert all(r.properties.get("jobtitle") is None for r in store.iter_records("contacts"))

    summary = pull(client, store, plan, extra_properties={"contacts": ["jobtitle"]})
    contacts = summary.objects["contacts"]
    assert contacts.mode == "full" and contacts.full_reason == "new properties: jobtitle"
    assert {o.mode for name, o in summary.objects.items() if name != "contacts"} == {"incremental"}
    portal = sb.portal
    for rec in store.iter_records("contacts"):
        assert rec.properties["jobtitle"] == portal.stores["contacts"].records[int(rec.id)].props.get("jobtitle")
    assert any(r.properties["jobtitle"] for r in store.iter_records("contacts"))

    # Dropping it again needs no full pass: the stored records still hold every property still mapped.
    again = pull(client, store, plan)
    assert again.objects["contacts"].mode == "incremental"


def test_edits_during_a_paged_search_do_not_shift_records_out_of_it(sandbox_factory, plan, tmp_path):
    """Offset paging skips a record for every earlier one edited mid-search (it moves to the end); the pull pages
    by last-modified instead, so with no look-back at all nothing is lost."""
    sb = sandbox_factory(seed=19, size=600, profile="unlimited")
    portal = sb.portal
    client, store = make_client(sb), make_store(tmp_path)
    no_slack = {"lookback": timedelta(0), "margin": timedelta(0)}
    pull(client, store, plan, **no_slack)
    ids = portal.stores["contacts"].live_ids[:450]
    for cid in ids:
        portal.update("contacts", str(cid), {"lastname": f"First{cid}"})
    while time.time() * 1000 <= portal._last_write_ms + 5:  # see test_incremental_pull_killed_mid_way_resumes
        time.sleep(0.01)
    edited: list[int] = []

    def edit_first_page(event):
        if event.object_type == "contacts" and event.phase == "records" and not edited:
            for cid in ids[:50]:  # on the page just read: each edit moves one record from before the offset
                portal.update("contacts", str(cid), {"lastname": f"Second{cid}"})
                edited.append(cid)

    pull(client, store, plan, progress=edit_first_page, **no_slack)
    assert edited
    for cid in ids[50:]:
        assert store.load_records("contacts", [str(cid)])[str(cid)].properties["lastname"] == f"First{cid}"
    assert client.search_cap == 10_000  # the adapter's setting is restored after the pull
    while time.time() * 1000 <= portal._last_write_ms + 5:
        time.sleep(0.01)
    pull(client, store, plan, **no_slack)
    assert_same(store, portal, plan)


def test_sigterm_stops_a_pull_cleanly_releasing_its_lock(sandbox_factory, tmp_path):
    """systemd and Kubernetes stop jobs with SIGTERM: the run is recorded as failed and the lock released at once,
    so the next run (maybe on another host) starts without waiting for the lock to go stale."""
    import os
    import signal
    import subprocess
    import sys
    import time

    from connector.state import StateStore

    sandbox = sandbox_factory(seed=3, size=300, profile="unlimited", faults="slow:1.0@0.5s")
    state_url = f"sqlite:///{tmp_path / 'state.db'}"
    env = {**os.environ, "CONNECTOR_BASE_URL": sandbox.base_url, "CONNECTOR_TOKEN": sandbox.token,
           "CONNECTOR_STATE_URL": state_url,
           "CONNECTOR_MAPPINGS_DIR": str(Path(__file__).resolve().parents[2] / "mappings")}
    process = subprocess.Popen([sys.executable, "-m", "connector", "pull", "--output", "json"], env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:  # wait until the pull holds its lock (it is mid-run then)
            if (tmp_path / "state.db").exists():
                with StateStore.open(state_url) as store:
                    if store.lock_holder("pull"):
                        break
            time.sleep(0.2)
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 130
    finally:
        if process.poll() is None:
            process.kill()
    with StateStore.open(state_url) as store:
        assert store.lock_holder("pull") is None
        assert store.list_runs("pull")[0]["status"] == "failed"
