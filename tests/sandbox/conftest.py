"""Fixtures for the sandbox's conformance tests: a portal with exact data and a thin HTTP helper."""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests

from connector.sandbox.portal import Portal
from connector.sandbox.server import Sandbox, running_sandbox
from tests.sandbox.receiver import Receiver
from tests.sandbox.tiny import tiny_portal


class Api:
    """requests against one sandbox with its token; ``token=None`` sends none, ``token="x"`` a wrong one."""

    def __init__(self, sandbox: Sandbox, token: str | None = ""):
        self.sandbox = sandbox
        self.session = requests.Session()
        self.token = sandbox.token if token == "" else token

    def __call__(self, method: str, path: str, *, token: str | None = "", **kw: Any) -> requests.Response:
        headers = dict(kw.pop("headers", {}) or {})
        use = self.token if token == "" else token
        if use is not None:
            headers["Authorization"] = f"Bearer {use}"
        return self.session.request(method, self.sandbox.base_url + path, headers=headers, timeout=30, **kw)

    def get(self, path: str, **kw: Any) -> requests.Response:
        return self("GET", path, **kw)

    def post(self, path: str, **kw: Any) -> requests.Response:
        return self("POST", path, **kw)


def make_tiny_portal(**options: Any) -> Portal:
    portal = Portal(seed=11, **options)
    portal.ingest(tiny_portal())
    return portal


@pytest.fixture(scope="module")
def tiny() -> Iterator[Sandbox]:
    """The hand-written portal of tiny.py, fresh per test module (tests may write to it)."""
    with running_sandbox(portal=make_tiny_portal()) as sb:
        yield sb


@pytest.fixture(scope="module")
def api(tiny: Sandbox) -> Api:
    return Api(tiny)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A real app backend on 127.0.0.1 that checks HubSpot's v3 signature and records requests (receiver.py)."""
    r = Receiver().start()
    yield r
    r.stop()


@pytest.fixture
def serve() -> Iterator[Callable[..., tuple[subprocess.Popen, list[str]]]]:
    """``serve(*args)``: `connector sandbox serve --port 0 ARGS` in a subprocess and its output lines up to "Press
    Ctrl-C" (it is then serving); each one still running is stopped with Ctrl-C after the test."""
    started: list[subprocess.Popen] = []

    def start(*args: str) -> tuple[subprocess.Popen, list[str]]:
        process = subprocess.Popen([sys.executable, "-m", "connector", "sandbox", "serve", "--port", "0", *args],
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        started.append(process)
        lines = []
        for line in process.stdout:
            lines.append(line.strip())
            if line.startswith("Press Ctrl-C"):
                break
        return process, lines

    yield start
    for process in started:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            process.wait(timeout=30)
