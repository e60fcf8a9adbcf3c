"""Write-back end to end: the real HubSpotClient against the sandbox portal, the real StateStore as ledger."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any, Callable

import pytest
import yaml

from connector.errors import ConfigError, WritebackError
from connector.hubspot import HubSpotClient
from connector.mapping.writeback import WritebackConfig
from connector.model import Customer, Deal
from connector.settings import Settings
from connector.state import StateStore
from connector.writeback import (
    Plan,
    apply_enrollments,
    apply_plan,
    apply_provisioning,
    apply_rollback,
    apply_writeback,
    fetch_enrollment_targets,
    load_enrolled,
    plan_enrollments,
    plan_provisioning,
    plan_rollback,
    plan_writeback,
    resume_apply,
    resume_unfinished,
)

ROOT = Path(__file__).resolve().parents[2]
SIZE = 200  # contacts (~40 companies): enough for several batches at a small batch_size
BIG = 600  # ~116 companies, so company writes need two batches of 100


def default_config(**changes: Any) -> WritebackConfig:
    data = yaml.safe_load((ROOT / "mappings" / "writeback.yaml").read_text())
    data.update(changes)
    return WritebackConfig.model_validate(data)


def score_of(customer_id: str, shift: int = 0) -> int:
    return (int(customer_id) * 37 + shift) % 101  # spread over 0-100 whatever the ids


def outputs_for(customer_ids: list[str], *, shift: int = 0) -> dict[str, dict[str, Any]]:
    """Deterministic computed values standing in for the metrics/health/segments stages."""
    out = {}
    for cid in customer_ids:
        score = score_of(cid, shift)
        band = "red" if score <= 50 else "yellow" if score <= 75 else "green"
        tags = (["at_risk"] if score < 30 else []) + (["referral_candidate"] if score > 85 else [])
        out[cid] = {
            "health_score": score, "health_band": band, "health_trend": "flat",
            "health_explanation": f"usage {score}/100", "lifecycle": "at_risk" if score < 30 else "active",
            "nps_group": None, "rfm_segment": "champions", "tags": tags,
            "mrr": Decimal(int(cid) % 997) + Decimal("0.505"), "clv": float(score * 12),
        }
    return out


@dataclass
class World:
    sandbox: Any
    client: HubSpotClient
    store: StateStore
    config: WritebackConfig
    customers: list[Customer]
    deals: list[Deal]

    @property
    def portal(self):
        return self.sandbox.portal

    def current(self, config: WritebackConfig | None = None) -> dict[tuple[str, str], dict[str, str | None]]:
        """The CRM's current values of every output property, read through the adapter (what a pull stores)."""
        config = config or self.config
        ids = {"companies": [c.id for c in self.customers],
               "contacts": sorted({i for c in self.customers for i in c.contact_ids}),
               "deals": [d.id for d in self.deals]}
        wanted: dict[str, set[str]] = {}
        for output in config.outputs:
            wanted.setdefault(output.object, set()).add(output.property.name)
        if config.enrollments:
            wanted.setdefault("contacts", set()).add("email")
        current = {}
        for object_type, names in wanted.items():
            for record in self.client.fetch_records(object_type, ids[object_type], sorted(names)):
                current[(object_type, record["id"])] = record["properties"]
        return current

    def crm_value(self, object_type: str, record_id: str, name: str) -> str | None:
        record = self.portal.get(object_type, int(record_id))
        return record.props.get(name)


def build_world(make_sandbox: Callable[..., Any], tmp_path: Path, *, seed: int = 11, size: int = SIZE,
                config: WritebackConfig | None = None) -> World:
    sandbox = make_sandbox(seed=seed, size=size, profile="unlimited")
    client = HubSpotClient(Settings(_env_file=None, token=sandbox.token, base_url=sandbox.base_url))
    store = StateStore.open(f"sqlite:///{tmp_path / f'state-{seed}.db'}")
    portal = sandbox.portal
    live = {t: {str(i) for i in portal.stores[t].ids(False)} for t in ("companies", "contacts", "deals")}
    company_ids = sorted(live["companies"], key=int)
    contacts = client.fetch_associations("companies", "contacts", company_ids)
    customers = []
    for cid in company_ids:
        links = [(to, type_id) for to, type_id in contacts.get(cid, []) if to in live["contacts"]]  # as the model does
        ids = tuple(sorted({to for to, _ in links}, key=int))
        primary = next((to for to, type_id in links if type_id == 2), None)  # HUBSPOT_DEFINED Primary
        customers.append(Customer(id=cid, object_type="companies", name=None, created_at=None, customer_since=None,
                                  acquisition_source=None, industry=None, contact_ids=ids, primary_contact_id=primary))
    deal_ids = sorted(live["deals"], key=int)
    owners = client.fetch_associations("deals", "companies", deal_ids)
    closed = {r["id"]: r["properties"].get("hs_is_closed") == "true"
              for r in client.fetch_records("deals", deal_ids, ["hs_is_closed"])}
    deals = [Deal(id=d, customer_id=(owners.get(d) or [(None, None)])[0][0], name=None, amount=None, currency=None,
                  close_date=None, stage=None, is_won=False, is_closed=closed.get(d, False), created_at=None)
             for d in deal_ids]
    return World(sandbox, client, store, config or default_config(), customers, deals)


@pytest.fixture
def world(sandbox_factory, tmp_path) -> World:
    w = build_world(sandbox_factory, tmp_path)
    yield w
    w.store.close()
    w.client.close()


def provision_and_plan(w: World, outputs: dict[str, dict[str, Any]], *, provision_outputs=None) -> Plan:
    objects = sorted({o.object for o in w.config.outputs})
    portal = {obj: w.client.fetch_properties(obj) for obj in objects}
    apply_provisioning(plan_provisioning(w.config, portal, provision_outputs or outputs), w.client)
    return plan_writeback(w.config, outputs, w.customers, w.current(), deals=w.deals)


def crm_state(w: World, plan: Plan) -> dict[tuple[str, str, str], str | None]:
    return {(c.object_type, c.record_id, c.property): w.crm_value(c.object_type, c.record_id, c.property)
            for c in plan.changes}


# ---------------------------------------------------------------- apply


def test_apply_writes_exactly_the_planned_values_and_a_second_plan_is_empty(sandbox_factory, tmp_path):
    w = build_world(sandbox_factory, tmp_path, size=BIG)
    outputs = outputs_for([c.id for c in w.customers])
    plan = provision_and_plan(w, outputs)
    assert plan.record_count() > 100  # companies alone need two batches
    run_id = w.store.start_run("writeback")
    before_calls = w.client.stats.calls["batch_update"]
    result = apply_plan(run_id, plan, w.client, w.store, owned=w.config.owned_properties())
    assert result.ok and result.changes_written == len(plan.changes)
    # Every planned value is in the portal, in exactly the planned string form.
    for change in plan.changes:
        assert w.crm_value(change.object_type, change.record_id, change.property) == (change.after or None), change
    company = next(c for c in plan.changes if c.object_type == "companies" and c.property == "retention_mrr")
    assert "." in company.after and not company.after.endswith("0")  # 2 decimals, half-up, normalised
    # One input per record, at most 100 records per call.
    records_per_type = {}
    for change in plan.changes:
        records_per_type.setdefault(change.object_type, set()).add(change.record_id)
    expected_calls = sum(-(-len(ids) // 100) for ids in records_per_type.values())
    assert w.client.stats.calls["batch_update"] - before_calls == expected_calls
    ledger = w.store.ledger(run_id)
    assert len(ledger) == len(plan.changes) and {r["status"] for r in ledger} == {"written"}
    assert ledger[0]["before"] is None and ledger[0]["after"] == plan.changes[0].after

    # Nothing changed since: the next plan is empty and applying it costs no call.
    again = plan_writeback(w.config, outputs, w.customers, w.current(), deals=w.deals)
    calls = w.client.stats.calls["batch_update"]
    assert again.changes == ()
    assert apply_plan(w.store.start_run("writeback"), again, w.client, w.store).changes_written == 0
    assert w.client.stats.calls["batch_update"] == calls
    w.store.close()
    w.client.close()


def test_a_rejected_record_is_isolated_and_recorded(world):
    w = world
    ids = [c.id for c in w.customers]
    outputs = outputs_for(ids)
    bad_id = ids[5]
    # "purple" is not an option of retention_health_band (provisioning did not see it): HubSpot refuses it.
    plan = provision_and_plan(w, {**outputs, bad_id: {**outputs[bad_id], "health_band": "purple"}},
                              provision_outputs=outputs)
    run_id = w.store.start_run("writeback")
    result = apply_plan(run_id, plan, w.client, w.store)
    # The band goes to the company, its contacts and its open deals: exactly those records are refused.
    purple = {(c.object_type, c.record_id) for c in plan.changes if c.after == "purple"}
    assert ("companies", bad_id) in purple and len(purple) > 1
    assert sorted(f.record_id for f in result.failures) == sorted(rid for _, rid in purple)
    assert all("purple" in f.message for f in result.failures)
    rows = {(r["object_type"], r["record_id"], r["property"]): r for r in w.store.ledger(run_id)}
    bad_rows = [r for k, r in rows.items() if k[:2] in purple]
    assert {r["status"] for r in bad_rows} == {"failed"} and all("purple" in r["message"] for r in bad_rows)
    assert w.crm_value("companies", bad_id, "retention_health_score") is None  # the whole record was refused
    others = [r for k, r in rows.items() if k[:2] not in purple]
    assert len(others) > 50 and {r["status"] for r in others} == {"written"}
    assert w.crm_value("companies", ids[6], "retention_health_score") == str(score_of(ids[6]))
    with pytest.raises(WritebackError) as info:
        result.raise_for_failures()
    assert info.value.exit_code == 5 and len(info.value.failures) == len(purple)


class Killed(Exception):
    pass


class DiesAfter:
    """The real client, killed (an exception) when it is asked for batch number ``n + 1``."""

    def __init__(self, client: HubSpotClient, n: int):
        self.client, self.n, self.sent = client, n, []

    def __getattr__(self, name: str) -> Any:
        return getattr(self.client, name)

    def batch_update(self, object_type, updates):
        if len(self.sent) >= self.n:
            raise Killed(f"killed before batch {len(self.sent) + 1}")
        self.sent.append([rid for rid, _ in updates])
        return self.client.batch_update(object_type, updates)


def test_a_killed_apply_resumed_ends_like_an_uninterrupted_one(sandbox_factory, tmp_path):
    config = default_config(batch_size=10)
    straight = build_world(sandbox_factory, tmp_path, seed=21, config=config)
    (tmp_path / "k").mkdir()
    killed = build_world(sandbox_factory, tmp_path / "k", seed=21, config=config)
    outputs = outputs_for([c.id for c in straight.customers])
    assert [c.id for c in killed.customers] == [c.id for c in straight.customers]

    plan_a = provision_and_plan(straight, outputs)
    assert apply_plan(straight.store.start_run("writeback"), plan_a, straight.client, straight.store).ok

    plan_b = provision_and_plan(killed, outputs)
    assert plan_b.changes == plan_a.changes
    run_id = killed.store.start_run("writeback")
    dying = DiesAfter(killed.client, 3)
    with pytest.raises(Killed):
        apply_plan(run_id, plan_b, dying, killed.store)
    assert killed.store.unfinished_apply_runs() == [run_id]
    written_before = {r["record_id"] for r in killed.store.ledger(run_id) if r["status"] == "written"}
    resumer = DiesAfter(killed.client, 10_000)
    results = resume_unfinished(resumer, killed.store, batch_size=25)
    assert [r.run_id for r in results] == [run_id] and results[0].ok
    # Nothing recorded as written was sent again.
    assert not written_before & {rid for batch in resumer.sent for rid in batch}
    assert killed.store.unfinished_apply_runs() == []
    assert crm_state(killed, plan_b) == crm_state(straight, plan_a)
    assert resume_apply(run_id, resumer, killed.store).planned == 0  # a second resume has nothing left
    for w in (straight, killed):
        w.store.close()
        w.client.close()


# ---------------------------------------------------------------- rollback


def test_rollback_restores_before_values_but_keeps_a_later_human_edit(world):
    w = world
    ids = [c.id for c in w.customers]
    first = outputs_for(ids)
    plan = provision_and_plan(w, first)
    assert apply_plan(w.store.start_run("writeback"), plan, w.client, w.store).ok
    # A second run changes the scores; it is the one we will undo.
    second = outputs_for(ids, shift=7)
    plan2 = plan_writeback(w.config, second, w.customers, w.current(), deals=w.deals)
    run2 = w.store.start_run("writeback")
    assert apply_plan(run2, plan2, w.client, w.store).ok
    edited, untouched = ids[3], ids[4]
    w.client.batch_update("companies", [(edited, {"retention_health_score": "99"})])  # a human, in between

    rollback = plan_rollback(w.store.ledger(run2), w.current(), properties={
        (o.object, o.property.name): o.property for o in w.config.outputs})
    assert [(k.record_id, k.property, k.current) for k in rollback.kept] == [(edited, "retention_health_score", "99")]
    run3 = w.store.start_run("rollback")
    result = apply_rollback(run3, run2, rollback, w.client, w.store)
    assert result.ok and result.changes_written == len(rollback.changes)
    assert w.crm_value("companies", edited, "retention_health_score") == "99"
    assert w.crm_value("companies", untouched, "retention_health_score") == str(score_of(untouched))
    # The CRM is back to the first run's values everywhere nobody edited.
    back = plan_writeback(w.config, first, w.customers, w.current(), deals=w.deals)
    assert {(c.object_type, c.record_id, c.property) for c in back.changes} == {("companies", edited, "retention_health_score")}
    statuses = {r["status"] for r in w.store.ledger(run2)}
    assert statuses == {"written", "rolled_back"}
    # Rolling back again finds nothing to do and does not mistake our own restore for a human edit.
    again = plan_rollback(w.store.ledger(run2), w.current())
    assert again.changes == () and [k.record_id for k in again.kept] == [edited]


# ---------------------------------------------------------------- enrollments and the whole pass


def enrollment_config(workflow_id: str = "1001") -> WritebackConfig:
    data = yaml.safe_load((ROOT / "mappings" / "writeback.yaml").read_text())
    data["enrollments"].append({"tag": "at_risk", "workflow_id": workflow_id, "contacts": "primary", "on_exit": "unenroll"})
    return WritebackConfig.model_validate(data)


def test_enrollments_happen_once_and_follow_tag_exits(world):
    w = world
    w.config = enrollment_config()
    ids = [c.id for c in w.customers]
    outputs = outputs_for(ids)
    at_risk = {cid for cid, v in outputs.items() if "at_risk" in v["tags"]}
    referral = {cid for cid, v in outputs.items() if "referral_candidate" in v["tags"]}
    assert at_risk and referral

    summary = apply_writeback(w.store.start_run("sync"), w.config, outputs, w.customers, w.current(), w.client,
                              w.store, deals=w.deals)
    summary.raise_for_failures()
    by_id = {c.id: c for c in w.customers}
    primaries = {int(by_id[c].primary_contact_id) for c in at_risk if by_id[c].primary_contact_id}
    assert w.portal.enrolled(1001) == primaries
    lists = {lst.name: lst for lst in w.portal.lists.values()}
    assert set(lists["Retention: at risk"].members) == {int(c) for c in at_risk}
    assert set(lists["Retention: referral candidates"].members) == {
        int(by_id[c].primary_contact_id) for c in referral if by_id[c].primary_contact_id}
    log_size = len(w.portal.enrollment_log)

    # Same tags again: nothing is enrolled twice, no list is created twice.
    again = apply_writeback(w.store.start_run("sync"), w.config, outputs, w.customers, w.current(), w.client,
                            w.store, deals=w.deals)
    assert again.enrollment_plan.actions == () and again.plan.changes == ()
    assert len(w.portal.enrollment_log) == log_size and len(w.portal.lists) == 2

    # One customer leaves at_risk: unenrolled from the workflow and removed from the list (on_exit: unenroll).
    leaver = sorted(at_risk)[0]
    changed = {**outputs, leaver: {**outputs[leaver], "tags": []}}
    third = apply_writeback(w.store.start_run("sync"), w.config, changed, w.customers, w.current(), w.client,
                            w.store, deals=w.deals)
    assert {(a.kind, a.record_id, a.action) for a in third.enrollment_plan.actions} == (
        {("list", leaver, "unenroll")} | ({("workflow", by_id[leaver].primary_contact_id, "unenroll")}
                                          if by_id[leaver].primary_contact_id else set()))
    assert int(leaver) not in lists["Retention: at risk"].members
    assert w.store.enrollments("workflow", "1001") == {str(p) for p in primaries} - {by_id[leaver].primary_contact_id}


def test_unknown_workflow_fails_before_any_write(world):
    w = world
    w.config = enrollment_config("424242")
    outputs = outputs_for([c.id for c in w.customers])
    w.portal.calls.clear()  # this test's own portal: keep only the calls made from here on
    with pytest.raises(ConfigError, match="workflow 424242 does not exist.*At-risk save play") as info:
        apply_writeback(w.store.start_run("sync"), w.config, outputs, w.customers, w.current(), w.client, w.store)
    assert info.value.exit_code == 2
    writes = [(m, p) for m, p in list(w.portal.calls) if m != "GET" and "batch/read" not in p]
    assert writes == []
    assert "retention_connector" not in w.portal.groups.get("companies", {})


def test_dry_run_plans_without_writing_anything(world):
    w = world
    outputs = outputs_for([c.id for c in w.customers])
    w.portal.calls.clear()  # this test's own portal: keep only the calls made from here on
    summary = apply_writeback(w.store.start_run("sync"), w.config, outputs, w.customers, w.current(), w.client,
                              w.store, deals=w.deals, dry_run=True)
    assert summary.plan.changes and summary.enrollment_plan.actions
    assert summary.applied is None and summary.enrolled is None
    assert [(m, p) for m, p in list(w.portal.calls) if m != "GET" and "batch/read" not in p] == []
    assert w.store.ledger(summary.run_id) == []


def test_a_property_of_ours_in_someone_elses_group_stops_the_run(world):
    w = world
    w.client.ensure_properties("companies", [{"name": "retention_health_score", "label": "Theirs", "type": "number",
                                              "fieldType": "number", "groupName": "companyinformation"}])
    outputs = outputs_for([c.id for c in w.customers])
    run_id = w.store.start_run("sync")
    batch_calls = w.client.stats.calls["batch_update"]
    with pytest.raises(ConfigError, match="retention_health_score already exists in group 'companyinformation'"):
        apply_writeback(run_id, w.config, outputs, w.customers, w.current(), w.client, w.store)
    assert w.store.ledger(run_id) == [] and w.client.stats.calls["batch_update"] == batch_calls
    assert "retention_connector" not in w.portal.groups.get("companies", {})


def test_a_new_tag_becomes_an_option_and_a_users_option_is_kept(world):
    w = world
    ids = [c.id for c in w.customers]
    outputs = outputs_for(ids)
    first = apply_writeback(w.store.start_run("sync"), w.config, outputs, w.customers, w.current(), w.client,
                            w.store, deals=w.deals)
    first.raise_for_failures()
    # An admin adds their own option to our multi-select.
    w.client.ensure_properties("companies", [{"name": "retention_tags", "options": [
        {"label": "VIP (admin)", "value": "vip", "hidden": False}]}])
    # A new segment rule starts producing a tag nobody declared in writeback.yaml.
    tagged = {**outputs, ids[0]: {**outputs[ids[0]], "tags": ["winback", "vip"]}}
    second = apply_writeback(w.store.start_run("sync"), w.config, tagged, w.customers, w.current(), w.client,
                             w.store, deals=w.deals)
    second.raise_for_failures()
    definition = next(p for p in w.client.fetch_properties("companies") if p["name"] == "retention_tags")
    options = {o["value"]: o["label"] for o in definition["options"]}
    assert options["vip"] == "VIP (admin)" and options["winback"] == "Winback" and "at_risk" in options
    assert definition["groupName"] == "retention_connector"
    assert w.crm_value("companies", ids[0], "retention_tags") == "vip;winback"
