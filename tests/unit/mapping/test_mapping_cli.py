"""`connector mappings validate` and `connector mappings init` through Typer's CliRunner."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from connector.cli import app
from connector.mapping import load_pack
from connector.sandbox.schema import PROPERTIES

ROOT = Path(__file__).resolve().parents[3]
MAPPINGS = ROOT / "mappings"
runner = CliRunner()


@pytest.fixture(autouse=True)
def _no_ambient_settings(monkeypatch, tmp_path):
    # Settings read CONNECTOR_* and ./.env: run from an empty folder so the developer's own set-up cannot leak in.
    monkeypatch.chdir(tmp_path)
    for name in ("CONNECTOR_TOKEN", "CONNECTOR_BASE_URL", "CONNECTOR_MAPPINGS_DIR"):
        monkeypatch.delenv(name, raising=False)


def _copy(tmp_path: Path) -> Path:
    target = tmp_path / "pack"
    target.mkdir()
    for name in ("portal.yaml", "sources.yaml"):
        shutil.copy(MAPPINGS / name, target / name)
    return target


def _line_of(path: Path, marker: str) -> int:
    return next(n for n, line in enumerate(path.read_text().splitlines(), start=1) if marker in line)


def _properties_json(path: Path) -> Path:
    data = {t: {"results": [{"name": p.name, "label": p.label, "type": p.type, "fieldType": p.field_type,
                             "options": [{"value": o, "label": o} for o in p.options]} for p in props]}
            for t, props in PROPERTIES.items()}
    path.write_text(json.dumps(data))
    return path


def test_mappings_validate_default_pack_exits_0():
    result = runner.invoke(app, ["mappings", "validate", "--dir", str(MAPPINGS)])
    assert result.exit_code == 0, result.output
    assert "mappings OK" in result.output and "sources.yaml" in result.output


def test_mappings_validate_uses_settings_dir(monkeypatch, tmp_path):
    folder = _copy(tmp_path)
    monkeypatch.setenv("CONNECTOR_MAPPINGS_DIR", str(folder))
    result = runner.invoke(app, ["mappings", "validate"])
    assert result.exit_code == 0, result.output
    assert str(folder) in result.output


def test_mappings_validate_broken_copy_exits_2_with_file_line(tmp_path):
    folder = _copy(tmp_path)
    sources = folder / "sources.yaml"
    sources.write_text(sources.read_text().replace("transform: money, currency_property: hs_currency_code",
                                                   "transform: mony, currency_property: hs_currency_code"))
    portal = folder / "portal.yaml"
    portal.write_text(portal.read_text().replace("  churn: chartmogul", "  churn: stripey"))
    result = runner.invoke(app, ["mappings", "validate", "--dir", str(folder)])
    assert result.exit_code == 2
    out = result.output
    assert f"{sources}:{_line_of(sources, 'transform: mony')}: subscriptions.fields.mrr.transform" in out
    assert 'did you mean "money"' in out
    assert f"{portal}:{_line_of(portal, 'stripey')}: conventions.churn" in out
    assert "mappings OK" not in out


def test_mappings_init_from_file_writes_a_pack_that_validates(tmp_path):
    props = _properties_json(tmp_path / "properties.json")
    out = tmp_path / "new"
    result = runner.invoke(app, ["mappings", "init", "--from-file", str(props), "--out", str(out)])
    assert result.exit_code == 0, result.output
    sources = (out / "sources.yaml").read_text()
    assert "mrr: {property: hs_mrr, transform: money, currency_property: hs_currency_code, historical: true}" in sources
    assert "active_days_30d: {property: product_active_days_30d, transform: integer, historical: true}" in sources
    # every guessed field line carries a REVIEW marker
    field_lines = [line for line in sources.splitlines() if line.startswith("    ") and "property:" in line]
    assert field_lines and all("# REVIEW:" in line for line in field_lines)
    assert "# REVIEW:" in (out / "portal.yaml").read_text()
    pack = load_pack(out)  # the scaffold is a valid pack as written
    assert pack.portal.customer.object == "companies"
    assert runner.invoke(app, ["mappings", "validate", "--dir", str(out)]).exit_code == 0


def test_mappings_init_refuses_to_overwrite_without_force(tmp_path):
    props = _properties_json(tmp_path / "properties.json")
    out = _copy(tmp_path)
    before = (out / "sources.yaml").read_text()
    result = runner.invoke(app, ["mappings", "init", "--from-file", str(props), "--out", str(out)])
    assert result.exit_code == 2 and "--force" in result.output
    assert (out / "sources.yaml").read_text() == before
    result = runner.invoke(app, ["mappings", "init", "--from-file", str(props), "--out", str(out), "--force"])
    assert result.exit_code == 0 and (out / "sources.yaml").read_text() != before


@pytest.mark.parametrize("args", [
    pytest.param([], id="no-source"),
    pytest.param(["--from-file", "x.json", "--online"], id="two-sources"),
    pytest.param(["--from-file", "missing.json"], id="unreadable-file"),
])
def test_mappings_init_bad_arguments_exit_2(tmp_path, args):
    result = runner.invoke(app, ["mappings", "init", *args, "--out", str(tmp_path / "o")])
    assert result.exit_code == 2
    assert not (tmp_path / "o").exists()


def test_mappings_init_contacts_only_portal(tmp_path):
    props = {"contacts": [{"name": "firstname", "label": "First Name", "type": "string"},
                          {"name": "lastname", "label": "Last Name", "type": "string"},
                          {"name": "createdate", "label": "Create Date", "type": "datetime"},
                          {"name": "lastmodifieddate", "label": "Last Modified Date", "type": "datetime"},
                          {"name": "last_login", "label": "Last login", "type": "datetime"}]}
    path = tmp_path / "p.json"
    path.write_text(json.dumps(props))
    out = tmp_path / "b2c"
    result = runner.invoke(app, ["mappings", "init", "--from-file", str(path), "--out", str(out)])
    assert result.exit_code == 0, result.output
    pack = load_pack(out)
    assert pack.portal.customer.object == "contacts"
    assert pack.sources.usage.fields["last_login_at"].property == "last_login"


def test_mappings_validate_online_against_sandbox(sandbox, monkeypatch, tmp_path):
    monkeypatch.setenv("CONNECTOR_BASE_URL", sandbox.base_url)
    monkeypatch.setenv("CONNECTOR_TOKEN", sandbox.token)
    result = runner.invoke(app, ["mappings", "validate", "--online", "--dir", str(MAPPINGS)])
    assert result.exit_code == 0, result.output
    assert "against the portal" in result.output
    folder = _copy(tmp_path)
    sources = folder / "sources.yaml"
    sources.write_text(sources.read_text().replace("{property: seats_purchased,", "{property: seats_bought,"))
    result = runner.invoke(app, ["mappings", "validate", "--online", "--dir", str(folder)])
    assert result.exit_code == 2
    assert f"{sources}:{_line_of(sources, 'seats_bought')}:" in result.output
    assert 'companies has no property "seats_bought"' in result.output
    assert sandbox.token not in result.output


def test_mappings_init_online_against_sandbox(sandbox, monkeypatch, tmp_path):
    monkeypatch.setenv("CONNECTOR_BASE_URL", sandbox.base_url)
    monkeypatch.setenv("CONNECTOR_TOKEN", sandbox.token)
    out = tmp_path / "online"
    result = runner.invoke(app, ["mappings", "init", "--online", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert runner.invoke(app, ["mappings", "validate", "--online", "--dir", str(out)]).exit_code == 0


def test_sync_configured_mappings_dir_missing_exits_2_and_names_it(monkeypatch, tmp_path):
    # a typo in CONNECTOR_MAPPINGS_DIR must never fall back to the bundled pack (it would write its values)
    missing = tmp_path / "mapings"
    monkeypatch.setenv("CONNECTOR_MAPPINGS_DIR", str(missing))
    result = runner.invoke(app, ["sync", "--dry-run"])
    assert result.exit_code == 2, result.output
    assert "CONNECTOR_MAPPINGS_DIR" in result.output and str(missing) in result.output


def test_mappings_validate_unconfigured_dir_uses_bundled_pack():
    # nothing configured and no ./mappings here: the bundled pack, and the output says which folder it checked
    result = runner.invoke(app, ["mappings", "validate"])
    assert result.exit_code == 0, result.output
    assert str(MAPPINGS) in result.output


@pytest.mark.parametrize("token", [pytest.param("pat-na1-abc\n", id="newline"),
                                   pytest.param("pat-na1-a\rbc", id="carriage-return"),
                                   pytest.param("pat-na1-\tabc", id="tab")])
def test_token_with_control_character_exits_2_naming_the_setting(monkeypatch, token):
    monkeypatch.setenv("CONNECTOR_TOKEN", token)
    result = runner.invoke(app, ["mappings", "validate"])
    assert result.exit_code == 2, result.output
    assert "CONNECTOR_TOKEN" in result.output and "control character" in result.output
    assert "abc" not in result.output  # the secret is never repeated


def test_malformed_setting_exits_2_naming_the_variable(monkeypatch):
    monkeypatch.setenv("CONNECTOR_REQUEST_TIMEOUT", "abc")
    result = runner.invoke(app, ["mappings", "validate"])
    assert result.exit_code == 2, result.output
    assert "CONNECTOR_REQUEST_TIMEOUT" in result.output and "'abc'" in result.output
    assert "Traceback" not in result.output


def test_mappings_validate_online_refuses_hubspot_owned_output(sandbox, monkeypatch, tmp_path):
    # a sync refuses to provision over HubSpot's own property: validate --online must refuse it too, with file:line
    monkeypatch.setenv("CONNECTOR_BASE_URL", sandbox.base_url)
    monkeypatch.setenv("CONNECTOR_TOKEN", sandbox.token)
    folder = tmp_path / "pack"
    shutil.copytree(MAPPINGS, folder)
    writeback = folder / "writeback.yaml"
    writeback.write_text(writeback.read_text().replace("name: retention_mrr", "name: annualrevenue"))

    result = runner.invoke(app, ["mappings", "validate", "--online", "--dir", str(folder)])

    assert result.exit_code == 2, result.output
    assert f"{writeback}:{_line_of(writeback, 'name: annualrevenue')}:" in result.output
    assert "companies.annualrevenue already exists in group 'companyinformation' (HubSpot's own property)" in result.output
    marked = writeback.read_text().replace("    property:\n      name: annualrevenue",
                                           "    existing: true\n    property:\n      name: annualrevenue")
    writeback.write_text(marked)
    assert runner.invoke(app, ["mappings", "validate", "--online", "--dir", str(folder)]).exit_code == 0
