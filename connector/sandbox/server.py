"""Start the sandbox in-process: uvicorn on 127.0.0.1 in a background thread, on a free port, failing fast."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import socket
import threading
import time
from dataclasses import dataclass, field
from typing import Iterator

import uvicorn

from pathlib import Path

from connector.sandbox.app import build_app
from connector.sandbox.platform import AppPlatform, RegisteredApp
from connector.sandbox.portal import Portal, now_ms
from connector.sandbox.registry import PortalRegistry
from connector.sandbox.simulation import Simulator

SIZES = {"small": 200, "medium": 10_000, "large": 100_000}
START_TIMEOUT_S = 15.0


class SandboxStartError(RuntimeError):
    """The sandbox could not start (port taken, server crashed): say why at once instead of hanging tests."""


def contacts_for(size: str | int) -> int:
    """small | medium | large | an integer -> the number of contacts to generate."""
    if isinstance(size, int):
        return size
    text = str(size).strip().lower()
    if text in SIZES:
        return SIZES[text]
    if text.isdigit():
        return int(text)
    raise ValueError(f"size must be small, medium, large or a number of contacts, got {size!r}")


def build_portal(seed: int = 0, size: str | int = "small", profile: str = "unlimited", faults: str | None = None,
                 now: int | None = None, **options) -> Portal:
    """A Portal filled by ``seed.generate`` (empty if the generator is not there yet)."""
    portal = Portal(seed=seed, profile=profile, faults=faults, **options)
    from connector.sandbox import seed as seed_module  # lazily: generating is the slow part and may be absent

    generate = getattr(seed_module, "generate", None)
    contacts = contacts_for(size)
    if generate is not None and contacts > 0:
        # The generator builds hundreds of thousands of small objects: the cyclic GC only slows it down.
        enabled = gc.isenabled()
        gc.disable()
        try:
            generated = generate(seed=seed, contacts=contacts, now_ms=now if now is not None else now_ms())
        finally:
            if enabled:
                gc.enable()
        portal.ingest(generated)
    return portal


def build_portals(count: int = 1, seed: int = 0, size: str | int = "small", profile: str = "unlimited",
                  faults: str | None = None, now: int | None = None, **options) -> PortalRegistry:
    """``count`` portals for one sandbox: portal k is ``build_portal(seed + k, ...)`` (its own hub id, data, tokens
    and budgets), so the first is the portal a one-portal sandbox of the same seed serves."""
    if count < 1:
        raise ValueError(f"portals must be at least 1, got {count}")
    if count > 1 and "portal_id" in options:
        raise ValueError("portal_id names one portal; several portals take their hub ids from their seeds")
    now = now if now is not None else now_ms()  # one "today" for all of them
    return PortalRegistry(build_portal(seed + k, size, profile, faults, now=now, **options) for k in range(count))


@dataclass
class Sandbox:
    base_url: str
    token: str  # the primary portal's
    portal: Portal  # the primary portal
    portals: PortalRegistry  # every portal served, by hub id and by token
    server: uvicorn.Server = field(repr=False)
    thread: threading.Thread = field(repr=False)
    platform: AppPlatform = field(repr=False)
    app: RegisteredApp | None = None  # the app registered from --app / app=, if any
    simulator: Simulator | None = None  # simulated activity (--activity / activity=), if any

    def stop(self) -> None:
        if self.simulator is not None:
            self.simulator.stop()
        self.server.should_exit = True
        self.thread.join(timeout=5)
        if self.thread.is_alive():  # still draining: stop now (a loaded machine must not hang Ctrl-C)
            self.server.force_exit = True
            self.thread.join(timeout=5)
        self.platform.close()


def start_sandbox(portal: Portal | PortalRegistry, host: str = "127.0.0.1", port: int = 0, *,
                  platform: AppPlatform | None = None, app: str | Path | None = None,
                  activity: float | None = None) -> Sandbox:
    """Serve ``portal`` (or several) in a daemon thread and return once it accepts connections.

    ``platform`` is HubSpot's app side (a fresh one serving every portal by default); ``app`` a developer-platform
    project folder to register on it (a ``ProjectError`` names the file and field HubSpot would refuse);
    ``activity`` a rate of simulated changes per minute on the primary portal (seeded by its seed).
    """
    portals = portal if isinstance(portal, PortalRegistry) else PortalRegistry([portal])
    primary = portals.primary
    if activity is not None and activity <= 0:
        raise ValueError(f"activity must be a number of changes per minute above 0, got {activity}")
    if platform is None:
        platform = AppPlatform(seed=primary.seed)
    for served in portals:
        if served.portal_id not in platform.portals:
            platform.attach(served)
    try:
        registered = platform.register(app) if app is not None else None
    except Exception:
        platform.close()
        raise
    # IPPROTO_TCP explicitly: asyncio sets TCP_NODELAY only on sockets whose proto says TCP, and without it
    # keep-alive clients wait out delayed ACKs (~40 ms a request).
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        platform.close()
        raise SandboxStartError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    sock.listen(2048)
    sock.setblocking(False)
    actual_port = sock.getsockname()[1]
    # http="auto" picks httptools (a dependency): it writes headers and body at once, where h11 makes two writes
    # and a keep-alive client waits on the scheduler between them.
    config = uvicorn.Config(build_app(portals, platform), log_level="warning", access_log=False, lifespan="off",
                            loop="asyncio", http="auto", timeout_keep_alive=30, backlog=2048,
                            timeout_graceful_shutdown=2)  # Ctrl-C never waits on a client's open connection
    server = uvicorn.Server(config)
    server.install_signal_handlers = lambda: None  # type: ignore[method-assign]  # not the main thread
    failure: list[BaseException] = []

    def run() -> None:
        try:
            asyncio.run(server.serve(sockets=[sock]))
        except BaseException as exc:  # reported to the starter below
            failure.append(exc)
        finally:
            sock.close()

    thread = threading.Thread(target=run, name=f"sandbox-{actual_port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + START_TIMEOUT_S
    while not server.started:
        if failure or not thread.is_alive():
            platform.close()
            raise SandboxStartError(f"the sandbox server stopped while starting: {failure[0] if failure else 'exit'}")
        if time.monotonic() > deadline:
            server.should_exit = True
            platform.close()
            raise SandboxStartError(f"the sandbox did not start within {START_TIMEOUT_S:.0f} s")
        time.sleep(0.01)
    simulator = Simulator(primary, activity, primary.seed).start() if activity else None
    return Sandbox(f"http://{host}:{actual_port}", primary.token, primary, portals, server, thread, platform,
                   registered, simulator)


@contextlib.contextmanager
def running_sandbox(seed: int = 0, size: str | int = "small", profile: str = "unlimited", faults: str | None = None,
                    portal: Portal | PortalRegistry | None = None, port: int = 0, host: str = "127.0.0.1",
                    portals: int = 1, *, app: str | Path | None = None, platform: AppPlatform | None = None,
                    activity: float | None = None, **options) -> Iterator[Sandbox]:
    """``with running_sandbox(seed=1, size=200) as sb: ...`` — ``sb.base_url``, ``sb.token``, ``sb.portal``.

    ``portals=3`` serves three portals (seeds ``seed``, ``seed + 1``, ``seed + 2``): ``sb.portals.by_hub_id(…)``,
    each portal's ``.token``; a request goes to the portal whose token it carries. ``app=DIR`` registers a
    developer-platform project (``sb.app``, ``sb.platform``); pass ``platform=`` to set its webhook time scale or
    installing portal; ``activity=RATE`` simulates changes per minute."""
    if portal is None:
        portal = (build_portal(seed, size, profile, faults, **options) if portals == 1 else
                  build_portals(portals, seed, size, profile, faults, **options))
    sandbox = start_sandbox(portal, host, port, platform=platform, app=app, activity=activity)
    try:
        yield sandbox
    finally:
        sandbox.stop()
