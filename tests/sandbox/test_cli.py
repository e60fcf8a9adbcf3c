"""`connector sandbox serve`: prints a base URL and token a person can paste, serves until Ctrl-C."""

from __future__ import annotations

import json
import signal
import subprocess
import sys

import pytest
import requests


def test_serve_prints_paste_ready_lines_and_serves(tmp_path):
    truth = tmp_path / "truth.json"
    process = subprocess.Popen(
        [sys.executable, "-m", "connector", "sandbox", "serve", "--port", "0", "--size", "30", "--seed", "3",
         "--profile", "free", "--ground-truth", str(truth)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        lines = []
        for line in process.stdout:  # the server prints its lines, then waits
            lines.append(line.strip())
            if line.startswith("Press Ctrl-C"):
                break
        exports = dict(line[len("export "):].split("=", 1) for line in lines if line.startswith("export "))
        base_url, token = exports["CONNECTOR_BASE_URL"], exports["CONNECTOR_TOKEN"]
        assert base_url.startswith("http://127.0.0.1:") and token.startswith("pat-na1-")
        response = requests.get(base_url + "/crm/v3/objects/contacts", params={"limit": 100},
                                headers={"Authorization": f"Bearer {token}"}, timeout=10)
        assert response.status_code == 200 and len(response.json()["results"]) == 30
        assert response.headers["x-hubspot-ratelimit-max"] == "100"
        assert isinstance(json.loads(truth.read_text()), list)
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=30)  # stop() is bounded (~10 s worst case); margin for a loaded CI machine
    assert process.returncode == 130


@pytest.mark.parametrize("ignored", [pytest.param(False, id="plain"), pytest.param(True, id="sigint-inherited-ignored")])
def test_serve_stops_on_sigterm_and_on_sigint_even_if_inherited_ignored(ignored):
    """Started in the background (SIGINT ignored, as bash does for `&` jobs) it still stops on SIGINT and SIGTERM."""
    preexec = (lambda: signal.signal(signal.SIGINT, signal.SIG_IGN)) if ignored else None
    for sent in (signal.SIGINT, signal.SIGTERM):
        process = subprocess.Popen(
            [sys.executable, "-m", "connector", "sandbox", "serve", "--port", "0", "--size", "0"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=preexec)
        try:
            for line in process.stdout:
                if line.startswith("Press Ctrl-C"):
                    break
            process.send_signal(sent)
            assert process.wait(timeout=30) == 130
        finally:
            if process.poll() is None:
                process.kill()


def test_serve_rejects_a_bad_fault_spec():
    result = subprocess.run([sys.executable, "-m", "connector", "sandbox", "serve", "--port", "0", "--size", "0",
                             "--faults", "418:0.5"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "bad fault item '418:0.5'" in result.stderr
