"""Shared vocabulary of the sandbox portal: time helpers, error bodies, limits and small parsers."""

from __future__ import annotations

import time
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any

import orjson

from connector.sandbox import schema


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
DAY_MS = 86_400_000
MAX_BATCH = 100
MAX_BATCH_WITH_HISTORY = 50
MAX_ASSOCIATION_BATCH = 1_000
MAX_ASSOCIATIONS_PER_INPUT = 500  # v4 batch read: per input and response, then that input's paging.next.after
# Words HubSpot uses in messages ("Could not get some CONTACT objects").
TYPE_WORD = {
    "contacts": "CONTACT", "companies": "COMPANY", "deals": "DEAL", "line_items": "LINE_ITEM",
    "subscriptions": "SUBSCRIPTION", "feedback_submissions": "FEEDBACK_SUBMISSION", "tickets": "TICKET",
    "products": "PRODUCT", "quotes": "QUOTE", "calls": "CALL", "emails": "EMAIL", "meetings": "MEETING",
    "notes": "NOTE", "tasks": "TASK",
}
SINGULAR_OF = {plural: singular for singular, plural in schema.SINGULAR.items()}


@lru_cache(maxsize=4096)
def _iso_second(seconds: int) -> str:
    return (_EPOCH + timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%S.")


def iso(ms: int) -> str:
    """Epoch ms -> ISO-8601 UTC with milliseconds and Z, HubSpot's datetime form (writes share seconds: cached)."""
    return f"{_iso_second(ms // 1000)}{ms % 1000:03d}Z"


@lru_cache(maxsize=1 << 18)  # search parses the same stored values page after page
def parse_ms(text: str) -> int | None:
    """Epoch ms (string of digits) or ISO-8601 / YYYY-MM-DD -> epoch ms; None if neither."""
    text = text.strip()
    if text.lstrip("-").isdigit():
        return int(text)
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return int(round((parsed - _EPOCH).total_seconds() * 1000))


def now_ms() -> int:
    return int(time.time() * 1000)


class ApiError(Exception):
    """An error answer: status and HubSpot's JSON body without correlationId (the app adds it and the header)."""

    def __init__(self, status: int, body: dict[str, Any]):
        super().__init__(body.get("message", ""))
        self.status = status
        self.body = body


def error_body(message: str, category: str | None = "VALIDATION_ERROR", **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"status": "error", "message": message}
    if category:
        body["category"] = category
    body.update({k: v for k, v in extra.items() if v is not None})
    return body


def bad_request(message: str, category: str | None = "VALIDATION_ERROR", **extra: Any) -> ApiError:
    return ApiError(400, error_body(message, category, **extra))


def not_found(object_id: str) -> ApiError:
    # Two spaces after the full stop, as HubSpot sends it (API-NOTES §5).
    return ApiError(404, error_body("Object not found.  objectId are usually numeric.", "OBJECT_NOT_FOUND",
                                    context={"id": [str(object_id)]}))


def unknown_type(name: str) -> ApiError:
    return bad_request(f"Unable to infer object type from: {name}", None)


# Who is changing records in this context (HubSpot's webhook changeSource and sourceId): the app layer sets it per
# request from the token, the activity simulator for its own thread.
CHANGE_SOURCE: ContextVar[tuple[str, str | None]] = ContextVar("sandbox_change_source",
                                                               default=("INTEGRATION", None))


@dataclass(frozen=True)
class Change:
    """One change of a record, handed to the portal's observers (the app platform's webhooks) as it happens."""

    kind: str  # creation | propertyChange | deletion | associationChange
    object_type: str  # plural API name
    object_id: int
    ms: int
    property_name: str | None = None
    property_value: str | None = None
    to_type: str | None = None  # associationChange: the other side, its id and the type id from this side
    to_id: int | None = None
    association_type_id: int | None = None
    removed: bool = False
    primary: bool = False
    source: tuple[str, str | None] = ("INTEGRATION", None)


@dataclass(frozen=True)
class PropertyProblem:
    name: str
    code: str
    message: str


def property_error(problems: list[PropertyProblem], portal_id: int) -> dict[str, Any]:
    """HubSpot's property-validation body: a JSON array inside ``message`` plus ``errors[]`` (§11)."""
    inner = [{"isValid": False, "message": p.message, "error": p.code, "name": p.name,
              "localizedErrorMessage": p.message, "portalId": portal_id} for p in problems]
    return error_body(
        "Property values were not valid: " + orjson.dumps(inner).decode(),
        errors=[{"message": p.message, "code": p.code, "context": {"propertyName": [p.name]}} for p in problems],
    )


INT32_MAX = 2**31 - 1  # the specs type counts, limits and offsets as int32: Java refuses what does not fit


def int_param(raw: Any, default: int, name: str) -> int:
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except (TypeError, ValueError):
        raise bad_request(f"{name} must be an integer, got {raw!r}", context={name: [str(raw)]}) from None
    if not -INT32_MAX - 1 <= value <= INT32_MAX:
        raise bad_request(f"{name} must be a 32-bit integer, got {raw!r}", context={name: [str(raw)]})
    return value
