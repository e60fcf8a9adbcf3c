"""A real app backend for the platform tests: Starlette on uvicorn (127.0.0.1, free port) that checks HubSpot's v3
signature like a receiver must, records every request, and answers from a script."""

from __future__ import annotations

import asyncio
import shutil
import socket
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import orjson
import uvicorn
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route, Router

from connector.sandbox.platform import SignatureError, check_v3

EXAMPLE_APP = Path(__file__).parent / "apps" / "retention-app"
EXAMPLE_BASE = "https://retention-app.example.com"


@dataclass
class Received:
    method: str
    url: str
    body: bytes
    headers: dict[str, str]
    verified: bool
    refusal: str | None

    def json(self) -> Any:
        return orjson.loads(self.body)


@dataclass
class Receiver:
    """``script``: status codes to answer in turn (then 200); ``answer(request) -> (status, json)`` overrides."""

    secret: str = ""
    script: deque[int] = field(default_factory=deque)
    answer: Callable[[Received], tuple[int, Any]] | None = None
    received: list[Received] = field(default_factory=list)
    base_url: str = ""
    _server: uvicorn.Server | None = None
    _thread: threading.Thread | None = None

    async def _handle(self, request: Request) -> Response:
        body = await request.body()
        refusal = None
        try:
            check_v3(self.secret, request.method, str(request.url), body,
                     request.headers.get("x-hubspot-signature-v3"), request.headers.get("x-hubspot-request-timestamp"))
        except SignatureError as exc:
            refusal = str(exc)
        got = Received(request.method, str(request.url), body, dict(request.headers), refusal is None, refusal)
        self.received.append(got)
        if refusal is not None:
            return Response(orjson.dumps({"error": refusal}), status_code=401)
        if self.answer is not None:
            status, payload = self.answer(got)
            return Response(b"" if payload is None else orjson.dumps(payload), status_code=status,
                            media_type="application/json")
        status = self.script.popleft() if self.script else 200
        return Response(b"", status_code=status)

    def start(self) -> "Receiver":
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.bind(("127.0.0.1", 0))
        sock.listen(64)
        sock.setblocking(False)
        self.base_url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        router = Router(routes=[Route("/{path:path}", self._handle, methods=["GET", "POST", "PUT", "PATCH",
                                                                            "DELETE"])])
        server = uvicorn.Server(uvicorn.Config(router, log_level="warning", access_log=False, lifespan="off"))
        server.install_signal_handlers = lambda: None  # type: ignore[method-assign]
        self._server = server
        self._thread = threading.Thread(target=lambda: asyncio.run(server.serve(sockets=[sock])), daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 10
        while not server.started:
            assert time.monotonic() < deadline, "the receiver did not start"
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
            self._thread.join(timeout=5)

    def wait_for(self, count: int, timeout_s: float = 10.0) -> list[Received]:
        deadline = time.monotonic() + timeout_s
        while len(self.received) < count and time.monotonic() < deadline:
            time.sleep(0.01)
        return list(self.received)


def project_pointing_at(tmp_path: Path, base_url: str, edit: Callable[[Path], None] | None = None) -> Path:
    """A copy of the example project whose backend URLs point at ``base_url`` (a local receiver)."""
    target = tmp_path / "retention-app"
    shutil.copytree(EXAMPLE_APP, target)
    for path in target.rglob("*-hsmeta.json"):
        path.write_text(path.read_text().replace(EXAMPLE_BASE, base_url))
    if edit is not None:
        edit(target)
    return target
