"""Property history as a long table: a record's {name: [entries]} to one row per change and back."""

from __future__ import annotations

from collections import defaultdict
from typing import Any, Iterable, Mapping, Sequence

from sqlalchemy import and_, delete, func, insert, select
from sqlalchemy.engine import Connection

from connector.state.convert import as_datetime, chunks, dumps
from connector.state.schema import property_history

History = dict[str, list[dict[str, Any]]]  # name -> [{value, timestamp (ISO str), sourceType}], newest first


def _text(value: Any) -> str | None:
    """HubSpot sends strings; anything else is kept as its JSON text rather than lost."""
    return value if value is None or isinstance(value, str) else dumps(value)


def history_rows(object_type: str, record_id: str, history: Mapping[str, Any]) -> list[dict[str, Any]]:
    """One row per change; ordinal 0 is the oldest. Entries are ordered by instant (an entry without one is the
    oldest); equal instants keep the order given (HubSpot's: newest first)."""
    rows: list[dict[str, Any]] = []
    for name, entries in history.items():
        try:
            dated = [(as_datetime(e.get("timestamp")), e) for e in entries or ()]
        except ValueError as exc:  # the page is refused whole, as for a malformed created_at
            raise ValueError(f"history of {object_type}/{record_id} property {name!r}: {exc}") from None
        # newest first (stable, so equal instants keep the given order), then numbered from the oldest
        dated.sort(key=lambda d: (d[0] is not None, d[0]), reverse=True)
        last = len(dated) - 1
        rows.extend(
            {"object_type": object_type, "id": record_id, "property": str(name), "ordinal": last - k,
             "value": _text(entry.get("value")), "timestamp": ts, "source": _text(entry.get("sourceType"))}
            for k, (ts, entry) in enumerate(dated)
        )
    return rows


def replace_histories(conn: Connection, object_type: str, histories: Sequence[tuple[str, Mapping[str, Any]]]) -> None:
    """Replace the stored history of the properties each record names (HubSpot sends a property's whole history
    each time); properties a record does not name keep theirs."""
    rows: list[dict[str, Any]] = []
    by_names: dict[tuple[str, ...], list[str]] = defaultdict(list)  # records naming the same properties: one DELETE
    for record_id, history in histories:
        rows.extend(history_rows(object_type, record_id, history))
        by_names[tuple(sorted(map(str, history)))].append(record_id)
    h = property_history.c
    for names, ids in by_names.items():
        for id_chunk in chunks(ids):
            for name_chunk in chunks(names):
                conn.execute(delete(property_history).where(
                    h.object_type == object_type, h.id.in_(id_chunk), h.property.in_(name_chunk)))
    if rows:
        conn.execute(insert(property_history), rows)


def _entries(rows: Iterable[Any]) -> dict[str, History]:
    """Rows (id, property, value, ISO instant, source) in (id, property, ordinal) order → {id: History}, newest
    first."""
    out: dict[str, History] = {}
    for record_id, name, value, ts, source in rows:
        out.setdefault(record_id, {}).setdefault(name, []).append({"value": value, "timestamp": ts, "sourceType": source})
    for history in out.values():
        for entries in history.values():
            entries.reverse()
    return out


def _iso_instant(dialect: str) -> Any:
    """The instant as HubSpot writes it (``2026-11-04T12:00:00.000Z``), formatted by the database: a datetime
    object per entry, then its text, cost more than the rest of reading a history."""
    ts = property_history.c.timestamp
    if dialect == "sqlite":  # stored as naive UTC text; %f is seconds with milliseconds
        return func.strftime("%Y-%m-%dT%H:%M:%fZ", ts)
    return func.to_char(func.timezone("UTC", ts), 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')


def _query(conn: Connection, object_type: str, *conditions: Any) -> Any:
    h = property_history.c
    return (select(h.id, h.property, h.value, _iso_instant(conn.dialect.name), h.source)
            .where(h.object_type == object_type, *conditions)
            .order_by(h.id, h.property, h.ordinal))


def load_histories_between(conn: Connection, object_type: str, first: str, last: str) -> dict[str, History]:
    """The histories of the records with ids in [first, last] (a keyset page of records: one index range)."""
    h = property_history.c
    return _entries(conn.execute(_query(conn, object_type, and_(h.id >= first, h.id <= last))).all())


def load_histories(conn: Connection, object_type: str, ids: Sequence[str]) -> dict[str, History]:
    """The histories of the records among ``ids``."""
    out: dict[str, History] = {}
    for id_chunk in chunks(ids):
        out.update(_entries(conn.execute(_query(conn, object_type, property_history.c.id.in_(id_chunk))).all()))
    return out
