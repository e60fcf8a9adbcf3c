"""What RevOps meet running the command day to day: versions, help, connection errors that name the setting, run
history, clear refusals of unknown runs and customers (the command through a subprocess or Typer's CliRunner)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from connector.cli import app

ROOT = Path(__file__).resolve().parents[2]
runner = CliRunner()


def _connector(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if not k.startswith("CONNECTOR_")}
    return subprocess.run([sys.executable, "-m", "connector.cli", *args], capture_output=True, text=True,
                          env={**base, **env}, cwd=cwd, timeout=120)


@pytest.fixture
def clean_env(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no stray .env is read
    for key in list(os.environ):
        if key.startswith("CONNECTOR_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("CONNECTOR_MAPPINGS_DIR", str(ROOT / "mappings"))
    monkeypatch.setenv("CONNECTOR_STATE_URL", f"sqlite:///{tmp_path}/state.db")
    return tmp_path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_version_and_short_help():
    version = runner.invoke(app, ["--version"])
    assert version.exit_code == 0 and version.stdout.startswith("connector ")
    helped = runner.invoke(app, ["sync", "-h"])
    assert helped.exit_code == 0 and "--dry-run" in helped.stdout and "<bool>" not in helped.stdout
    metrics = runner.invoke(app, ["metrics", "-h"])
    assert "<table|json>" in metrics.stdout and "<month|quarter|year>" in metrics.stdout


def test_a_refused_connection_names_the_url_and_the_setting_and_fails_at_once(tmp_path):
    url = f"http://127.0.0.1:{_free_port()}"
    done = _connector("pull", env={"CONNECTOR_BASE_URL": url, "CONNECTOR_TOKEN": "pat-na1-secret",
                                   "CONNECTOR_STATE_URL": f"sqlite:///{tmp_path}/s.db",
                                   "CONNECTOR_MAPPINGS_DIR": str(ROOT / "mappings")}, cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    assert url in done.stderr and "CONNECTOR_BASE_URL" in done.stderr and "connection refused" in done.stderr
    assert "pat-na1-secret" not in done.stderr + done.stdout
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize(("url", "says"), [
    pytest.param("htp://api.hubapi.com", "http(s) URL", id="scheme-typo"),
    pytest.param("https://api.hubapi.com/crm/v3", "use https://api.hubapi.com", id="endpoint-not-root"),
])
def test_a_wrong_base_url_is_a_configuration_error(clean_env, monkeypatch, url, says):
    monkeypatch.setenv("CONNECTOR_BASE_URL", url)
    monkeypatch.setenv("CONNECTOR_TOKEN", "pat-na1-x")
    done = runner.invoke(app, ["pull"])
    assert done.exit_code == 2
    assert "CONNECTOR_BASE_URL" in done.stderr and says in done.stderr


def test_a_bad_number_setting_is_one_line_not_a_traceback(tmp_path):
    done = _connector("pull", env={"CONNECTOR_REQUEST_TIMEOUT": "abc", "CONNECTOR_TOKEN": "pat-na1-x"}, cwd=tmp_path)
    assert done.returncode == 2
    assert "CONNECTOR_REQUEST_TIMEOUT" in done.stderr and "Traceback" not in done.stderr


def test_a_rejected_token_says_which_setting_to_fix(sandbox, clean_env, monkeypatch):
    monkeypatch.setenv("CONNECTOR_BASE_URL", sandbox.base_url)
    monkeypatch.setenv("CONNECTOR_TOKEN", "pat-na1-00000000-not-a-token")
    done = runner.invoke(app, ["pull"])
    assert done.exit_code == 3, done.output
    assert "CONNECTOR_TOKEN" in done.stderr and "pat-na1-00000000" not in done.stderr


def test_runs_lists_syncs_and_unknown_ids_are_refused(sandbox_factory, clean_env, monkeypatch):
    sb = sandbox_factory(seed=3, size=60, profile="unlimited")
    monkeypatch.setenv("CONNECTOR_BASE_URL", sb.base_url)
    monkeypatch.setenv("CONNECTOR_TOKEN", sb.token)
    synced = runner.invoke(app, ["sync", "--output", "json"])
    assert synced.exit_code == 0, synced.output
    summary = json.loads(synced.stdout)
    assert summary["store"].endswith("state.db") and summary["mappings"] == str(ROOT / "mappings")

    listed = runner.invoke(app, ["runs", "--output", "json"])
    assert listed.exit_code == 0, listed.output
    runs = json.loads(listed.stdout)["runs"]
    assert summary["run_id"] in [r["id"] for r in runs]
    table = runner.invoke(app, ["runs"])
    assert summary["run_id"] in table.stdout and "sync lease free" in table.stdout

    bogus = runner.invoke(app, ["writeback", "ledger", "BOGUS"])
    assert bogus.exit_code == 2 and "no run 'BOGUS'" in bogus.stderr and summary["run_id"] in bogus.stderr
    unknown = runner.invoke(app, ["health", "--customer", "999999999"])
    assert unknown.exit_code == 2 and "999999999" in unknown.stderr
    some = next(iter(json.loads(runner.invoke(app, ["health", "--output", "json"]).stdout)["distribution"]["bands"]))
    assert some  # a distribution was recorded


def test_json_logs_on_stderr_carry_no_token(sandbox_factory, clean_env, monkeypatch):
    sb = sandbox_factory(seed=3, size=60, profile="unlimited", faults="seq:503,200")
    monkeypatch.setenv("CONNECTOR_BASE_URL", sb.base_url)
    monkeypatch.setenv("CONNECTOR_TOKEN", sb.token)
    done = _connector("--log-format", "json", "-v", "pull", env={
        "CONNECTOR_BASE_URL": sb.base_url, "CONNECTOR_TOKEN": sb.token,
        "CONNECTOR_STATE_URL": f"sqlite:///{clean_env}/logs.db", "CONNECTOR_MAPPINGS_DIR": str(ROOT / "mappings")},
        cwd=clean_env)
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in done.stderr.splitlines() if line.startswith("{")]
    assert any(entry["level"] == "warning" and "retrying" in entry["message"] for entry in lines), done.stderr
    assert sb.token not in done.stderr
