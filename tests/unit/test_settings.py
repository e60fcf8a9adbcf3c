"""Settings from connector.toml beside env vars and .env: precedence, unknown keys, misspelt variables, paths."""

from __future__ import annotations

import logging
import os

import pytest

from connector.errors import ConfigError
from connector.settings import load_settings


@pytest.fixture
def folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for key in list(os.environ):
        if key.startswith("CONNECTOR_"):
            monkeypatch.delenv(key)
    return tmp_path


def test_connector_toml_is_read_below_env_vars(folder, monkeypatch):
    (folder / "connector.toml").write_text('base_url = "http://127.0.0.1:8765"\nrequest_timeout = 12\n')
    settings = load_settings()
    assert settings.base_url == "http://127.0.0.1:8765" and settings.request_timeout == 12
    monkeypatch.setenv("CONNECTOR_REQUEST_TIMEOUT", "7")
    assert load_settings().request_timeout == 7
    assert load_settings(request_timeout=3).request_timeout == 3


def test_an_unknown_key_in_connector_toml_is_refused_with_a_suggestion(folder):
    (folder / "connector.toml").write_text('tokn = "pat-x"\n')
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert "tokn" in str(caught.value) and "did you mean 'token'" in str(caught.value)
    assert "pat-x" not in str(caught.value)


def test_a_malformed_connector_toml_is_a_configuration_error(folder):
    (folder / "connector.toml").write_text('base_url = "http://x\n')
    with pytest.raises(ConfigError, match="connector.toml: not a readable TOML file"):
        load_settings()


def test_relative_paths_in_a_config_file_elsewhere_are_relative_to_it(folder, monkeypatch):
    home = folder / "opt" / "connector"
    home.mkdir(parents=True)
    (home / "settings.toml").write_text('state_url = "sqlite:///.connector/state.db"\nmappings_dir = "mappings"\n')
    monkeypatch.setenv("CONNECTOR_CONFIG", str(home / "settings.toml"))
    settings = load_settings()
    assert settings.state_url == f"sqlite:///{home / '.connector' / 'state.db'}"
    assert settings.mappings_dir == home / "mappings"


def test_a_missing_config_file_named_by_connector_config_is_an_error(folder, monkeypatch):
    monkeypatch.setenv("CONNECTOR_CONFIG", str(folder / "nowhere.toml"))
    with pytest.raises(ConfigError, match="CONNECTOR_CONFIG"):
        load_settings()


def test_a_misspelt_variable_is_warned_about(folder, monkeypatch, caplog):
    monkeypatch.setenv("CONNECTOR_TOKN", "pat-secret")
    with caplog.at_level(logging.WARNING, logger="connector.settings"):
        load_settings()
    assert "CONNECTOR_TOKN is not a setting: did you mean CONNECTOR_TOKEN?" in caplog.text
    assert "pat-secret" not in caplog.text
