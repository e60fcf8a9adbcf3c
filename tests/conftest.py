"""Shared fixtures: the sandbox portal on 127.0.0.1 (real HTTP), started once per session or per test."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from typing import Any, Callable

import pytest

from connector.sandbox.server import Sandbox, SandboxStartError, running_sandbox

SANDBOX_SEED = 7


@pytest.fixture(scope="session")
def sandbox() -> Iterator[Sandbox]:
    """A small seeded portal (200 contacts, profile ``unlimited``) shared by the session: read from it freely,
    write only records you create yourself. Fails the tests at once (never hangs) when it cannot start."""
    try:
        with running_sandbox(seed=SANDBOX_SEED, size="small", profile="unlimited") as sb:
            yield sb
    except SandboxStartError as exc:
        pytest.fail(f"the sandbox could not start: {exc}")


@pytest.fixture
def sandbox_factory() -> Iterator[Callable[..., Sandbox]]:
    """``make(seed=..., size=..., profile=..., faults=..., portal=..., **portal_options)`` → a fresh running
    Sandbox, stopped at the end of the test (for tests that need their own data, budgets or faults)."""
    with ExitStack() as stack:

        def make(**kw: Any) -> Sandbox:
            return stack.enter_context(running_sandbox(**kw))

        yield make
