"""The connector's whole exception tree; each class says how to recover (see STYLE.md)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


class ConnectorError(Exception):
    """Base class. ``str()`` never holds tokens or e-mail addresses."""

    exit_code = 1


class ConfigError(ConnectorError):
    """Bad settings: the run cannot start."""

    exit_code = 2


class UnreachableError(ConfigError):
    """HubSpot (or the sandbox) cannot be reached at the configured base URL at all: the setting is wrong, not the
    network flaky, so the run stops at once (a refused connection or an unknown host before any answer)."""


class MappingError(ConfigError):
    """A wrong mapping in ``mappings/*.yaml``: file, line and what would be valid."""

    def __init__(self, file: str, line: int | None, reason: str, problems: list["MappingError"] | None = None):
        self.file = file
        self.line = line
        self.reason = reason
        # Several problems can be reported at once; the first is also the error itself.
        self.problems = problems or [self]
        where = f"{file}:{line}" if line else file
        text = f"{where}: {reason}"
        if len(self.problems) > 1:
            text = "\n".join(f"{p.file}:{p.line}: {p.reason}" if p.line else f"{p.file}: {p.reason}" for p in self.problems)
        super().__init__(text)


class HubSpotError(ConnectorError):
    """An error answer (or no answer) from HubSpot, translated once in the adapter."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        category: str | None = None,
        correlation_id: str | None = None,
        path: str | None = None,
    ):
        self.status = status
        self.category = category
        self.correlation_id = correlation_id
        self.path = path
        self.message = message
        parts = [message]
        if status is not None:
            parts.append(f"status {status}")
        if category:
            parts.append(category)
        if path:
            parts.append(path)
        if correlation_id:
            parts.append(f"correlation id {correlation_id}")
        super().__init__(" | ".join(parts))


class RetryableError(HubSpotError):
    """429, 5xx, 423, timeouts and resets: the only class the retry policy retries."""


class RateLimitedError(RetryableError):
    """A 429 or a budget the client-side limiter refuses to spend (policy DAILY stops the run)."""

    def __init__(self, message: str, *, policy: str, retry_after: float | None = None, **kw: Any):
        self.policy = policy
        self.retry_after = retry_after
        super().__init__(message, **kw)


class AuthError(HubSpotError):
    """401: the token is wrong or expired and could not be refreshed."""

    exit_code = 3


class MissingScopesError(AuthError):
    """403: the token lacks scopes; ``scopes`` names them."""

    def __init__(self, message: str, *, scopes: list[str] | tuple[str, ...] = (), **kw: Any):
        self.scopes = tuple(scopes)
        if self.scopes and "scope" not in message.lower():
            message = f"{message} (missing scopes: {', '.join(self.scopes)})"
        elif self.scopes:
            message = f"{message} Missing: {', '.join(self.scopes)}"
        super().__init__(message, **kw)


class NotFoundError(HubSpotError):
    """404."""


@dataclass(frozen=True)
class RecordFailure:
    """One record HubSpot refused: which, and HubSpot's own words."""

    record_id: str | None
    message: str
    category: str | None = None
    context: dict[str, Any] = field(default_factory=dict)


class RejectedError(HubSpotError):
    """400/409 or the failed part of a 207: per record; the run goes on with the rest."""

    def __init__(self, message: str, *, failures: list[RecordFailure] | tuple[RecordFailure, ...] = (), **kw: Any):
        self.failures = tuple(failures)
        super().__init__(message, **kw)


class StateError(ConnectorError):
    """The state store is locked, corrupt or of an old schema."""

    exit_code = 4


class WritebackError(ConnectorError):
    """Apply finished with some records refused; all are recorded in the ledger."""

    exit_code = 5

    def __init__(self, message: str, *, failures: list[RecordFailure] | tuple[RecordFailure, ...] = ()):
        self.failures = tuple(failures)
        super().__init__(message)
