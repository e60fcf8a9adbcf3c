"""The default mapping pack loads; broken packs fail with the right file:line and what would be valid."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from connector.errors import MappingError
from connector.mapping import MappingPack, PullSpec, check_pack, load_pack
from connector.sandbox.schema import HISTORICAL, PROPERTIES

ROOT = Path(__file__).resolve().parents[3]
MAPPINGS = ROOT / "mappings"


@pytest.fixture(scope="module")
def pack() -> MappingPack:
    return load_pack(MAPPINGS)


def _copy(tmp_path: Path) -> Path:
    """portal.yaml and sources.yaml only: other stages' files are not under test here."""
    target = tmp_path / "pack"
    target.mkdir()
    for name in ("portal.yaml", "sources.yaml"):
        shutil.copy(MAPPINGS / name, target / name)
    return target


def _edit(folder: Path, file: str, old: str, new: str) -> None:
    path = folder / file
    text = path.read_text()
    assert text.count(old) == 1, f"fixture text not found once in {file}: {old!r}"
    path.write_text(text.replace(old, new))


def _line_of(folder: Path, file: str, marker: str) -> int:
    """Line of the first line containing ``marker`` ("^x": starting with x; "a >> b": the first b after a)."""
    def hit(text: str, line: str) -> bool:
        return line.startswith(text[1:]) if text.startswith("^") else text in line

    after, _, marker = marker.rpartition(" >> ")
    lines = (folder / file).read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if hit(after, line)) if after else 0
    for number, line in enumerate(lines[start:], start=start + 1):
        if hit(marker, line):
            return number
    raise AssertionError(f"{marker!r} not in {file}")


def test_load_pack_default_pack_loads(pack):
    assert pack.portal.customer.object == "companies"
    assert pack.portal.currency.reporting == "USD"
    assert {name for name, _ in pack.sources.entities()} == {
        "companies", "contacts", "usage", "subscriptions", "deals", "line_items", "feedback"}
    assert pack.sources.subscriptions.fields["mrr"].historical


def test_load_pack_default_pack_names_only_sandbox_properties(pack):
    """Every property the default pack reads exists in the sandbox portal (its object types and names)."""
    for object_type, spec in pack.pull_plan().items():
        known = {p.name for p in PROPERTIES[object_type]}
        assert set(spec.properties) <= known, set(spec.properties) - known


def test_pull_plan_lists_properties_history_and_associations(pack):
    plan = pack.pull_plan()
    assert set(plan) == {"companies", "contacts", "subscriptions", "deals", "line_items", "feedback_submissions"}
    subs = plan["subscriptions"]
    assert isinstance(subs, PullSpec)
    assert {"hs_object_id", "hs_createdate", "hs_lastmodifieddate", "hs_mrr", "hs_status", "hs_currency_code"} <= set(subs.properties)
    assert subs.historical == ("hs_mrr", "hs_status")
    assert set(subs.associations) == {"companies", "contacts", "line_items"}
    assert plan["contacts"].modified_property == "lastmodifieddate"
    assert plan["companies"].modified_property == "hs_lastmodifieddate"
    assert set(plan["companies"].historical) == {"product_active_days_30d", "product_logins_30d", "seats_used"}
    assert plan["feedback_submissions"].associations == ("contacts",)
    # what the sandbox keeps a history of covers what we ask history for
    for object_type, spec in plan.items():
        assert set(spec.historical) <= set(HISTORICAL.get(object_type, ()))


def test_pull_plan_adds_extra_output_properties(pack):
    plan = pack.pull_plan({"companies": ("health_score",), "tickets": ("ignored",)})
    assert "health_score" in plan["companies"].properties
    assert "tickets" not in plan


BROKEN = [
    pytest.param("sources.yaml", "    industry: {property: industry, transform: enumeration}",
                 "    industry: {property: industry, tranform: enumeration}", "tranform",
                 ['unknown key "tranform"', 'did you mean "transform"'], id="unknown-key"),
    pytest.param("portal.yaml", "  fiscal_year_start_month: 1", "  fiscal_year_start_month: january",
                 "fiscal_year_start_month", ["periods.fiscal_year_start_month", "valid integer", "'january'"],
                 id="wrong-type"),
    pytest.param("sources.yaml", "    name: {property: dealname}", "    nmae: {property: dealname}", "nmae:",
                 ['unknown canonical field "nmae" for deals', 'did you mean "name"'], id="unknown-canonical-field"),
    pytest.param("sources.yaml", "mrr: {property: hs_mrr, transform: money,", "mrr: {property: hs_mrr, transform: mony,",
                 "transform: mony", ['"mony" is not valid', 'did you mean "money"'], id="unknown-transform"),
    pytest.param("sources.yaml", "  - {from: deals, to: contacts}", "  - {from: deal, to: contacts}", "from: deal,",
                 ['association from "deal" is not an object mapped', 'did you mean "deals"'], id="bad-association-reference"),
    pytest.param("sources.yaml", "  object: companies\n  created_property: createdate\n  modified_property: hs_lastmodifieddate\n  fields:\n    last_login_at",
                 "  object: contacts\n  created_property: createdate\n  modified_property: hs_lastmodifieddate\n  fields:\n    last_login_at",
                 "^usage: >> object: contacts", ['usage is read from the customer object "companies"'], id="bad-cross-file-reference"),
    pytest.param("portal.yaml", "  churn: chartmogul", "  churn: chartmogl", "churn: chartmogl",
                 ['conventions.churn: "chartmogl" is not valid', 'did you mean "chartmogul"'], id="near-miss-typo"),
    pytest.param("sources.yaml", "expired: expired,", "expired: expird,", "expird",
                 ['"expird" is not a canonical subscriptions.status value', 'did you mean "expired"'],
                 id="canonical-value-typo"),
    pytest.param("portal.yaml", "  time_zone: UTC", "  time_zone: Europe/Pariss", "Europe/Pariss",
                 ['unknown time zone "Europe/Pariss"', 'did you mean "Europe/Paris"'], id="time-zone"),
    pytest.param("sources.yaml", "    name: {property: hs_name}", "    name: {property: hs_name, historical: true}",
                 "hs_name, historical", ["subscriptions.name keeps no history", "subscriptions.mrr"],
                 id="history-without-timeline"),
    pytest.param("sources.yaml", "    amount: {property: amount, transform: money, currency_property: deal_currency_code,",
                 "    amount: {property: amount, transform: money, currency: JPY,", "currency: JPY",
                 ['no FX rate for "JPY"', "has: EUR, GBP, USD"], id="currency-without-rate"),
    pytest.param("sources.yaml", "  - {from: feedback_submissions, to: contacts}    # who answered the survey\n", "",
                 "^associations:", ["feedback cannot be tied to a customer", "{from: feedback_submissions, to: companies}"],
                 id="missing-association"),
    pytest.param("sources.yaml", "    seats_used: {property: seats_used, transform: integer, historical: true, range: [0, 1000000]}",
                 "    seats_used: {property: seats_used, transform: date, historical: true}", "seats_used: {",
                 ['transform "date" cannot feed usage.seats_used', "valid: integer, number"], id="incompatible-transform"),
    pytest.param("sources.yaml", "    name: {property: dealname}", "    name: {property: dealname, allow_empty: false}",
                 "dealname, allow_empty", ['"allow_empty: false" applies to historical fields'], id="allow-empty-without-history"),
    pytest.param("sources.yaml", "    country: {property: country}", "    country: {property: country}\n    country: {property: x}",
                 "property: x}", ['duplicate key "country"'], id="duplicate-key"),
    pytest.param("portal.yaml", "  rate_date: 2026-10-30\n", "", "currency:", ['currency: missing required key "rate_date"'],
                 id="missing-key"),
    pytest.param("sources.yaml", "    channel: {property: hs_survey_channel}", "    channel: {property: hs_survey_channel",
                 "associations:", ["YAML syntax"], id="yaml-syntax"),
    pytest.param("sources.yaml", "transform: integer, range: [0, 10]}", "transform: integer, range: [10, 0]}",
                 "range: [10, 0]", ["range minimum 10.0 is above its maximum 0.0"], id="range-inverted"),
    pytest.param("sources.yaml", "    name: {property: hs_name}", "    name: {constant: x, property: hs_name}",
                 "constant: x", ['exactly one of "property" or "constant"'], id="property-and-constant"),
]


@pytest.mark.parametrize("file, old, new, marker, expected", BROKEN)
def test_load_pack_broken_pack_names_file_line_and_valid_choices(tmp_path, file, old, new, marker, expected):
    folder = _copy(tmp_path)
    _edit(folder, file, old, new)
    with pytest.raises(MappingError) as caught:
        load_pack(folder)
    problems = caught.value.problems
    matching = [p for p in problems if all(text in p.reason for text in expected)]
    assert matching, "\n".join(f"{p.file}:{p.line}: {p.reason}" for p in problems)
    problem = matching[0]
    assert Path(problem.file).name == file
    if "YAML syntax" not in expected:
        assert problem.line == _line_of(folder, file, marker)
    else:
        assert problem.line is not None and problem.line >= _line_of(folder, file, "channel:")
    assert f"{file}:{problem.line}" in str(caught.value)


def test_load_pack_reports_several_problems_across_files_at_once(tmp_path):
    folder = _copy(tmp_path)
    _edit(folder, "sources.yaml", "    industry: {property: industry, transform: enumeration}",
          "    industry: {property: industry, tranform: enumeration}")
    _edit(folder, "sources.yaml", "    name: {property: dealname}", "    nmae: {property: dealname}")
    _edit(folder, "sources.yaml", "  - {from: deals, to: contacts}", "  - {from: deal, to: contacts}")
    _edit(folder, "portal.yaml", "  churn: chartmogul", "  churn: chartmogl")
    pack, problems = check_pack(folder)
    assert pack is None
    where = {(Path(p.file).name, p.line) for p in problems}
    assert where == {
        ("sources.yaml", _line_of(folder, "sources.yaml", "tranform")),
        ("sources.yaml", _line_of(folder, "sources.yaml", "nmae")),
        ("sources.yaml", _line_of(folder, "sources.yaml", "from: deal,")),
        ("portal.yaml", _line_of(folder, "portal.yaml", "chartmogl")),
    }
    with pytest.raises(MappingError) as caught:
        load_pack(folder)
    assert len(caught.value.problems) == 4
    assert str(caught.value).count("\n") == 3  # one line per problem


def test_load_pack_missing_directory_and_file(tmp_path):
    with pytest.raises(MappingError, match="mapping directory not found"):
        load_pack(tmp_path / "nope")
    folder = _copy(tmp_path)
    (folder / "portal.yaml").unlink()
    with pytest.raises(MappingError) as caught:
        load_pack(folder)
    assert Path(caught.value.file).name == "portal.yaml" and "cannot read" in caught.value.reason


def test_load_pack_loads_other_stages_files_when_present(tmp_path, pack):
    # the default pack carries the other stages' files: each is loaded into its schema class by name
    for name in ("health", "segments", "writeback"):
        if (MAPPINGS / f"{name}.yaml").exists():
            assert type(getattr(pack, name)).__name__ == f"{name.capitalize()}Config"
    folder = _copy(tmp_path)
    if (MAPPINGS / "writeback.yaml").exists():
        (folder / "writeback.yaml").write_text("unknown_top_level_key: 1\n")
        with pytest.raises(MappingError) as caught:
            load_pack(folder)
        assert any(Path(p.file).name == "writeback.yaml" and p.line == 1 for p in caught.value.problems)


@pytest.mark.parametrize(
    "file, old, new, marker, expected",
    [
        pytest.param("writeback.yaml", "  - tag: referral_candidate", "  - tag: referal_candidate", "tag: referal_candidate",
                     ['unknown tag "referal_candidate"', 'did you mean "referral_candidate"'], id="enrollment-tag-typo"),
        pytest.param("segments.yaml", "    when: \"nps_group == 'promoter' and health_band == 'green'\"",
                     "    when: \"nps_group == 'promoter' and health_band == 'gren'\"", "health_band == 'gren'",
                     ['"gren"', 'did you mean "green"'], id="segment-rule-health-band-typo"),
    ],
)
def test_load_pack_cross_file_names_are_checked(tmp_path, file, old, new, marker, expected):
    """A tag or band one file uses must be defined by the file that owns it, with file:line and did-you-mean."""
    folder = tmp_path / "pack"
    shutil.copytree(MAPPINGS, folder, ignore=shutil.ignore_patterns("*.md"))
    _edit(folder, file, old, new)
    with pytest.raises(MappingError) as caught:
        load_pack(folder)
    matching = [p for p in caught.value.problems if all(text in p.reason for text in expected)]
    assert matching, "\n".join(f"{p.file}:{p.line}: {p.reason}" for p in caught.value.problems)
    assert Path(matching[0].file).name == file and matching[0].line == _line_of(folder, file, marker)
