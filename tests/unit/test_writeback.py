"""Write-back's pure half: config, HubSpot value formats, diff minimality, batching, rollback, enrollments."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

from connector.errors import ConfigError
from connector.mapping.writeback import PropertyDef, WritebackConfig
from connector.model import Customer, Deal
from connector.sandbox.schema import PROPERTIES
from connector.writeback import (
    Change,
    Plan,
    format_plan,
    format_value,
    observed_options,
    output_properties,
    plan_batches,
    plan_enrollments,
    plan_provisioning,
    plan_rollback,
    plan_writeback,
    same_value,
)

ROOT = Path(__file__).resolve().parents[2]
UTC = timezone.utc


def prop(type_: str, field_type: str | None = None) -> PropertyDef:
    return PropertyDef(name="p", label="P", type=type_, fieldType=field_type)


def config(outputs: list[dict], enrollments: list[dict] | None = None) -> WritebackConfig:
    return WritebackConfig.model_validate({"outputs": outputs, "enrollments": enrollments or []})


SCORE = {"field": "health_score", "object": "companies",
         "property": {"name": "rc_score", "label": "Score", "type": "number"}}
TAGS = {"field": "tags", "object": "companies",
        "property": {"name": "rc_tags", "label": "Tags", "type": "enumeration", "fieldType": "checkbox",
                     "options": ["at_risk", "welcome"]}}
BAND_CONTACTS = {"field": "health_band", "object": "contacts", "contacts": "all",
                 "property": {"name": "rc_band", "label": "Band", "type": "enumeration", "options": ["red", "green"]}}
BAND_DEALS = {"field": "health_band", "object": "deals",
              "property": {"name": "rc_band", "label": "Band", "type": "string"}}
MRR = {"field": "mrr", "object": "companies", "decimals": 2,
       "property": {"name": "rc_mrr", "label": "MRR", "type": "number"}}


def company(cid: str, contacts: tuple[str, ...] = (), primary: str | None = None) -> Customer:
    return Customer(id=cid, object_type="companies", name=cid, created_at=None, customer_since=None,
                    acquisition_source=None, industry=None, contact_ids=contacts, primary_contact_id=primary)


# ---------------------------------------------------------------- HubSpot formats


@pytest.mark.parametrize(
    ("value", "type_", "field_type", "decimals", "expected"),
    [
        pytest.param(68, "number", None, None, "68", id="int"),
        pytest.param(68.0, "number", None, None, "68", id="float-no-trailing-dot-zero"),
        pytest.param(0.1, "number", None, None, "0.1", id="float-shortest-repr"),
        pytest.param(Decimal("1250.50"), "number", None, None, "1250.5", id="decimal-trailing-zero"),
        pytest.param(Decimal("1E+3"), "number", None, None, "1000", id="decimal-no-exponent"),
        pytest.param(Decimal("-0.00"), "number", None, None, "0", id="negative-zero"),
        pytest.param(Decimal("99.995"), "number", None, 2, "100", id="round-half-up-to-cents"),
        pytest.param(Decimal("12.345"), "number", None, 2, "12.35", id="half-up-not-banker"),
        pytest.param(float("nan"), "number", None, None, None, id="nan-is-no-value"),
        pytest.param(date(2026, 11, 23), "date", None, None, "2026-11-23", id="date"),
        pytest.param(datetime(2026, 11, 23, 22, 18, tzinfo=UTC), "date", None, None, "2026-11-23",
                     id="datetime-to-date-midnight-utc"),
        pytest.param(datetime(2026, 11, 23, 23, 30, tzinfo=timezone(timedelta(hours=-5))), "date", None, None,
                     "2026-11-24", id="date-in-utc-not-local"),
        pytest.param(datetime(2026, 11, 23, 4, 15, 0, 123456, tzinfo=UTC), "datetime", None, None,
                     "2026-11-23T04:15:00.123Z", id="datetime-iso-ms-z"),
        pytest.param(date(2026, 11, 23), "datetime", None, None, "2026-11-23T00:00:00.000Z", id="date-as-datetime"),
        pytest.param(True, "bool", None, None, "true", id="bool-true"),
        pytest.param(False, "bool", None, None, "false", id="bool-false"),
        pytest.param(["welcome", "at_risk", "welcome"], "enumeration", "checkbox", None, "at_risk;welcome",
                     id="multi-select-sorted-unique"),
        pytest.param([], "enumeration", "checkbox", None, None, id="empty-multi-select-is-no-value"),
        pytest.param("green", "enumeration", "select", None, "green", id="select"),
        pytest.param("", "string", None, None, None, id="empty-string-is-no-value"),
        pytest.param(None, "string", None, None, None, id="none"),
        pytest.param(42.0, "string", None, None, "42", id="number-into-text"),
        pytest.param("x" * 70_000, "string", None, None, "x" * 65_536, id="text-capped-at-hubspot-limit"),
    ],
)
def test_format_value_hubspot_formats(value, type_, field_type, decimals, expected):
    assert format_value(value, prop(type_, field_type), decimals=decimals) == expected


@pytest.mark.parametrize(
    ("type_", "field_type", "current", "desired", "same"),
    [
        pytest.param("number", None, "68.0", "68", True, id="number-by-value"),
        pytest.param("number", None, "1.00", "1", True, id="number-hubspot-decimals"),
        pytest.param("number", None, "68", "69", False, id="number-differs"),
        pytest.param("number", None, "abc", "1", False, id="number-unparseable-is-rewritten"),
        pytest.param("string", None, None, "", True, id="none-equals-empty"),
        pytest.param("string", None, "", None, True, id="empty-equals-none"),
        pytest.param("string", None, "x", "", False, id="clearing-is-a-change"),
        pytest.param("string", None, None, "x", False, id="setting-is-a-change"),
        pytest.param("string", None, "Green", "green", False, id="text-is-case-sensitive"),
        pytest.param("enumeration", "checkbox", "welcome;at_risk", "at_risk;welcome", True, id="multi-order"),
        pytest.param("enumeration", "checkbox", "at_risk", "at_risk;welcome", False, id="multi-added"),
        pytest.param("date", None, "1763856000000", "2025-11-23", True, id="date-epoch-ms"),
        pytest.param("date", None, "2025-11-23T00:00:00Z", "2025-11-23", True, id="date-iso-midnight"),
        pytest.param("datetime", None, "2026-11-23T04:15:00Z", "2026-11-23T04:15:00.000Z", True, id="datetime-ms"),
        pytest.param("bool", None, "True", "true", True, id="bool-case"),
    ],
)
def test_same_value_compares_in_hubspot_format(type_, field_type, current, desired, same):
    assert same_value(prop(type_, field_type), current, desired) is same


# ---------------------------------------------------------------- config


def test_default_writeback_yaml_is_valid_and_avoids_sandbox_names():
    cfg = WritebackConfig.model_validate(yaml.safe_load((ROOT / "mappings" / "writeback.yaml").read_text()))
    assert cfg.outputs and cfg.enrollments
    for obj, name in {(o.object, o.property.name) for o in cfg.provisioned()}:
        sandbox_names = {p.name for p in PROPERTIES[obj]}
        assert name not in sandbox_names, f"{obj}.{name} collides with the sandbox's own property"
        assert not name.startswith("hs_")


@pytest.mark.parametrize(
    ("output", "message"),
    [
        pytest.param({**SCORE, "field": "health_scor"}, 'did you mean "health_score"', id="unknown-field"),
        pytest.param({**SCORE, "property": {"name": "rc", "label": "x", "type": "number", "fieldType": "numbr"}},
                     'did you mean "number"', id="bad-field-type"),
        pytest.param({**SCORE, "property": {"name": "hs_score", "label": "x", "type": "number"}},
                     "hs_ prefix", id="hubspot-prefix"),
        pytest.param({**SCORE, "property": {"name": "rc", "type": "number"}}, "needs a label", id="label-required"),
        pytest.param({**TAGS, "property": {"name": "rc", "label": "x", "type": "enumeration"}},
                     "checkbox", id="list-needs-multi-select"),
        pytest.param({**SCORE, "property": {"name": "rc", "label": "x", "type": "bool"}},
                     "cannot go to a property of type", id="kind-mismatch"),
        pytest.param({**SCORE, "property": {"name": "Score", "label": "x", "type": "number"}},
                     "lower case", id="name-shape"),
        pytest.param({**TAGS, "decimals": 2}, "decimals only applies", id="decimals-on-list"),
    ],
)
def test_config_rejects_bad_output(output, message):
    with pytest.raises(ValidationError) as info:
        config([output])
    assert message in str(info.value)


def test_config_existing_property_may_use_any_name():
    cfg = config([{**SCORE, "existing": True, "property": {"name": "hs_lead_status", "type": "string"}}])
    assert cfg.owned_properties() == {("companies", "hs_lead_status")}
    assert cfg.provisioned() == ()


def test_config_rejects_two_fields_into_one_property():
    with pytest.raises(ValidationError, match="receives both"):
        config([SCORE, {**MRR, "property": {"name": "rc_score", "label": "x", "type": "number"}}])


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        pytest.param({"tag": "at_risk"}, "exactly one of", id="no-target"),
        pytest.param({"tag": "at_risk", "workflow_id": "1", "list": "x"}, "exactly one of", id="two-targets"),
        pytest.param({"tag": "at_risk", "workflow_id": 1, "object": "companies"}, "contacts only", id="workflow-company"),
    ],
)
def test_config_rejects_bad_enrollment_rule(rule, message):
    with pytest.raises(ValidationError, match=message):
        config([], [rule])


def test_config_enrollment_tags_checked_against_segments():
    cfg = config([], [{"tag": "at_rsk", "list": "x"}, {"tag": "welcome", "list": "y"}])
    assert cfg.check_tags(["at_risk", "welcome"]) == [
        (("enrollments", 0, "tag"), 'enrollments[0].tag: unknown tag "at_rsk" (did you mean "at_risk"?)')]


def test_default_enrollment_tags_exist_in_default_segments():
    from connector.mapping import load_pack

    pack = load_pack(ROOT / "mappings")
    assert pack.writeback.check_tags(t.name for t in pack.segments.tags()) == []


def test_config_errors_point_at_file_and_line():
    from connector.mapping.loader import validate_text

    text = "outputs:\n  - field: health_score\n    object: companies\n    property:\n      name: rc\n" \
           "      label: x\n      type: number\n      fieldType: numbr\n"
    result = validate_text(text, WritebackConfig, file="mappings/writeback.yaml")
    assert result.model is None
    problem = result.problems[0]
    assert problem.file == "mappings/writeback.yaml" and problem.line in (4, 5, 8)
    assert "number" in problem.reason


# ---------------------------------------------------------------- plan


def test_plan_writes_only_what_changed():
    cfg = config([SCORE, TAGS, MRR])
    outputs = {"1": {"health_score": 68, "tags": ["welcome", "at_risk"], "mrr": Decimal("100.004")},
               "2": {"health_score": 40.0, "tags": [], "mrr": Decimal("50")}}
    current = {("companies", "1"): {"rc_score": "68", "rc_tags": "welcome;at_risk", "rc_mrr": "100.00"},
               ("companies", "2"): {"rc_score": "41", "rc_tags": "", "rc_mrr": None}}
    plan = plan_writeback(cfg, outputs, [company("1"), company("2")], current)
    assert plan.changes == (
        Change("companies", "2", "rc_mrr", None, "50"),
        Change("companies", "2", "rc_score", "41", "40"),
    )
    assert plan.counts() == {"companies": {"rc_mrr": 1, "rc_score": 1}}


def test_plan_is_empty_when_crm_already_holds_the_values():
    cfg = config([SCORE, TAGS])
    outputs = {"1": {"health_score": 68.0, "tags": ["b_tag", "a_tag"]}}
    first = plan_writeback(cfg, outputs, [company("1")], {})
    # The CRM now holds what we wrote, possibly formatted its own way.
    current = {("companies", "1"): {"rc_score": "68.0", "rc_tags": "b_tag;a_tag"}}
    assert len(first) == 2
    assert plan_writeback(cfg, outputs, [company("1")], current).changes == ()


def test_plan_clears_with_empty_string_and_skips_unknown_fields():
    cfg = config([SCORE, MRR])
    outputs = {"1": {"health_score": None}}  # mrr not computed: left alone
    current = {("companies", "1"): {"rc_score": "55", "rc_mrr": "10"}}
    plan = plan_writeback(cfg, outputs, [company("1")], current)
    assert plan.changes == (Change("companies", "1", "rc_score", "55", ""),)


def test_plan_none_and_missing_and_empty_are_all_unchanged():
    cfg = config([SCORE])
    outputs = {"1": {"health_score": None}, "2": {"health_score": None}, "3": {"health_score": None}}
    current = {("companies", "1"): {"rc_score": None}, ("companies", "2"): {"rc_score": ""}}  # 3: missing
    assert plan_writeback(cfg, outputs, [company("1"), company("2"), company("3")], current).changes == ()


def test_plan_targets_contacts_and_open_deals():
    cfg = config([BAND_CONTACTS, BAND_DEALS])
    customers = [company("1", contacts=("c1", "c2"), primary="c1")]
    deals = [Deal("d1", "1", None, None, None, None, None, False, False, None),
             Deal("d2", "1", None, None, None, None, None, True, True, None)]  # closed: not written
    plan = plan_writeback(cfg, {"1": {"health_band": "red"}}, customers, {}, deals=deals)
    assert [(c.object_type, c.record_id) for c in plan.changes] == [("contacts", "c1"), ("contacts", "c2"), ("deals", "d1")]


def test_plan_shared_contact_takes_its_primary_company_value():
    cfg = config([BAND_CONTACTS])
    customers = [company("1", contacts=("shared",), primary=None), company("2", contacts=("shared",), primary="shared")]
    plan = plan_writeback(cfg, {"1": {"health_band": "red"}, "2": {"health_band": "green"}}, customers, {})
    assert plan.changes == (Change("contacts", "shared", "rc_band", None, "green"),)
    assert plan.conflicts == 1


def test_plan_json_round_trip_and_terminal_form():
    cfg = config([SCORE])
    plan = plan_writeback(cfg, {str(i): {"health_score": i} for i in range(1, 8)},
                          [company(str(i)) for i in range(1, 8)], {})
    assert Plan.from_dict(plan.to_dict()) == plan
    text = format_plan(plan, sample=2)
    assert "7 changes to 7 records" in text and "rc_score" in text
    assert text.count("->") == 2
    assert "Nothing to write" in format_plan(Plan())


def test_output_properties_for_the_pull():
    cfg = config([SCORE, BAND_CONTACTS], [{"tag": "at_risk", "workflow_id": "7"}])
    assert output_properties(cfg) == {"companies": ["rc_score"], "contacts": ["email", "rc_band"]}


# ---------------------------------------------------------------- batching


def test_batches_group_a_record_into_one_input_and_cap_at_100():
    changes = [Change("companies", str(i), name, None, "v") for i in range(250) for name in ("a", "b")]
    changes += [Change("contacts", "c1", "a", None, "")]
    batches = plan_batches(changes)
    assert [(b.object_type, len(b.updates)) for b in batches] == [("companies", 100), ("companies", 100),
                                                                   ("companies", 50), ("contacts", 1)]
    assert batches[0].updates[0] == ("0", {"a": "v", "b": "v"})
    assert batches[-1].updates[0] == ("c1", {"a": ""})


def test_batches_accept_ledger_rows_and_reject_oversize():
    rows = [{"object_type": "deals", "record_id": "9", "property": "p", "before": None, "after": None}]
    assert plan_batches(rows)[0].updates == (("9", {"p": ""}),)
    with pytest.raises(ValueError):
        plan_batches(rows, size=101)


# ---------------------------------------------------------------- rollback


def test_rollback_restores_untouched_values_and_keeps_human_edits():
    rows = [
        {"object_type": "companies", "record_id": "1", "property": "rc_score", "before": "50", "after": "68", "status": "written"},
        {"object_type": "companies", "record_id": "2", "property": "rc_score", "before": "70", "after": "40", "status": "written"},
        {"object_type": "companies", "record_id": "3", "property": "rc_score", "before": None, "after": "12", "status": "written"},
        {"object_type": "companies", "record_id": "4", "property": "rc_score", "before": "1", "after": "2", "status": "failed"},
    ]
    current = {("companies", "1"): {"rc_score": "68.0"},  # still ours (HubSpot's format)
               ("companies", "2"): {"rc_score": "45"},  # a human edited it since
               ("companies", "3"): {"rc_score": "12"},
               ("companies", "4"): {"rc_score": "1"}}
    plan = plan_rollback(rows, current)
    assert plan.changes == (Change("companies", "1", "rc_score", "68.0", "50"),
                            Change("companies", "3", "rc_score", "12", ""))
    assert [(k.record_id, k.written, k.current) for k in plan.kept] == [("2", "40", "45")]
    assert "kept" in format_plan(plan)


def test_rollback_includes_planned_rows_the_crm_already_holds():
    rows = [{"object_type": "contacts", "record_id": "5", "property": "p", "before": "a", "after": "b", "status": "planned"},
            {"object_type": "contacts", "record_id": "6", "property": "p", "before": "a", "after": "b", "status": "planned"}]
    current = {("contacts", "5"): {"p": "b"}, ("contacts", "6"): {"p": "a"}}  # 6 was never sent
    plan = plan_rollback(rows, current)
    assert plan.changes == (Change("contacts", "5", "p", "b", "a"),) and plan.kept == ()


# ---------------------------------------------------------------- provisioning


def test_provisioning_defs_and_new_tag_options():
    cfg = config([SCORE, TAGS])
    plan = plan_provisioning(cfg, {"companies": []}, {"1": {"tags": ["crisis_affected", "welcome"]}})
    defs = {d["name"]: d for d in plan.defs["companies"]}
    assert defs["rc_score"]["groupName"] == "retention_connector" and defs["rc_score"]["fieldType"] == "number"
    assert [o["value"] for o in defs["rc_tags"]["options"]] == ["at_risk", "welcome", "crisis_affected"]
    assert defs["rc_tags"]["options"][2]["label"] == "Crisis affected"
    assert observed_options(cfg, {"1": {"tags": ["x"]}}) == {("companies", "rc_tags"): {"x"}}


def test_provisioning_refuses_a_foreign_property_with_our_name():
    cfg = config([SCORE])
    portal = {"companies": [{"name": "rc_score", "type": "number", "groupName": "companyinformation"}]}
    with pytest.raises(ConfigError, match="already exists in group 'companyinformation'"):
        plan_provisioning(cfg, portal)


def test_provisioning_accepts_our_own_existing_property():
    cfg = config([SCORE])
    portal = {"companies": [{"name": "rc_score", "type": "number", "groupName": "retention_connector"}]}
    assert [d["name"] for d in plan_provisioning(cfg, portal).defs["companies"]] == ["rc_score"]


def test_provisioning_checks_existing_outputs_against_the_portal():
    cfg = config([{**SCORE, "existing": True, "property": {"name": "annualrevenu", "type": "number"}}])
    portal = {"companies": [{"name": "annualrevenue", "type": "number", "groupName": "companyinformation"}]}
    with pytest.raises(ConfigError, match='did you mean "annualrevenue"'):
        plan_provisioning(cfg, portal)
    cfg = config([{**SCORE, "existing": True, "property": {"name": "annualrevenue", "type": "number"}}])
    assert plan_provisioning(cfg, portal).defs == {}


# ---------------------------------------------------------------- enrollments


WORKFLOW_RULE = {"tag": "at_risk", "workflow_id": "77", "on_exit": "unenroll"}
LIST_RULE = {"tag": "referral_candidate", "list": "Referrals", "object": "companies"}


def test_enrollment_enrolls_once_and_unenrolls_on_leave():
    cfg = config([], [WORKFLOW_RULE, LIST_RULE])
    customers = [company("1", ("c1",), "c1"), company("2", ("c2",), "c2"), company("3", ("c3",), "c3")]
    current = {("contacts", c): {"email": f"{c}@example.com"} for c in ("c1", "c2", "c3")}
    tags = {"1": ["at_risk", "referral_candidate"], "2": ["welcome"], "3": ["at_risk"]}
    first = plan_enrollments(cfg, tags, customers, {}, current=current)
    assert [(a.kind, a.target, a.record_id, a.action) for a in first.actions] == [
        ("workflow", "77", "c1", "enroll"), ("workflow", "77", "c3", "enroll"), ("list", "Referrals", "1", "enroll")]
    # Next run: the ledger says c1, c3 and company 1 are in; c3 left at_risk, nobody new entered.
    enrolled = {("workflow", "77"): {"c1", "c3"}, ("list", "Referrals"): {"1"}}
    tags = {"1": ["at_risk"], "2": [], "3": []}
    second = plan_enrollments(cfg, tags, customers, enrolled, current=current)
    # Company 1 left referral_candidate but that rule keeps members (on_exit: keep).
    assert [(a.record_id, a.action) for a in second.actions] == [("c3", "unenroll")]


def test_enrollment_leaves_customers_missing_from_this_run_alone():
    cfg = config([], [WORKFLOW_RULE])
    customers = [company("1", ("c1",), "c1")]
    current = {("contacts", "c1"): {"email": "c1@example.com"}}
    plan = plan_enrollments(cfg, {}, customers, {("workflow", "77"): {"c1"}}, current=current)
    assert plan.actions == ()


def test_enrollment_skips_contacts_without_email():
    cfg = config([], [WORKFLOW_RULE])
    plan = plan_enrollments(cfg, {"1": ["at_risk"]}, [company("1", ("c1",), "c1")], {}, current={})
    assert plan.actions == () and plan.skipped[0][:2] == ("contacts", "c1")




# ---------------------------------------------------------------- the protocols match the real parts


@pytest.mark.parametrize(
    ("protocol", "real"),
    [
        pytest.param("CrmWriter", "connector.hubspot.HubSpotClient", id="client-is-a-CrmWriter"),
        pytest.param("LedgerStore", "connector.state.StateStore", id="store-is-a-LedgerStore"),
    ],
)
def test_real_parts_satisfy_the_protocols(protocol, real):
    import importlib
    import inspect

    import connector.writeback as writeback

    module_name, _, class_name = real.rpartition(".")
    cls = getattr(importlib.import_module(module_name), class_name)
    proto = getattr(writeback, protocol)
    methods = [n for n, v in vars(proto).items() if callable(v) and not n.startswith("_")]
    assert methods
    for name in methods:
        wanted = [p for p in inspect.signature(getattr(proto, name)).parameters if p != "self"]
        have = list(inspect.signature(getattr(cls, name)).parameters)[1:]
        assert have[: len(wanted)] == wanted, f"{class_name}.{name}{have} vs protocol {wanted}"
