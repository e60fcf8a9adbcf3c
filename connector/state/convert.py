"""Small conversions the store's modules share: aware UTC datetimes, JSON text, statement-sized chunks."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Iterator, Sequence

import orjson

from connector.errors import StateError

UTC = timezone.utc
# Rows per statement for IN lists and keyset pages: well under SQLite's 32,766 bound-parameter limit.
CHUNK = 1000


def now() -> datetime:
    return datetime.now(UTC)


def dumps(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()


def chunks(items: Sequence[Any], size: int = CHUNK) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def as_datetime(value: Any) -> datetime | None:
    """The adapter gives datetimes; accept ISO strings too (tests, older callers)."""
    if value is None:
        return None
    if not isinstance(value, datetime):
        value = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    if value.tzinfo is None:
        raise StateError("naive datetime given to the state store; pass an aware UTC datetime")
    return value

