"""The store's tables and their migrations (SQLAlchemy Core): one metadata, one ordered list of steps."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Callable

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    select,
    update,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Connection
from sqlalchemy.types import JSON, TypeDecorator

from connector.errors import StateError
from connector.state.convert import CHUNK, UTC

class UTCDateTime(TypeDecorator):
    """Aware UTC datetimes in, aware UTC datetimes out, on SQLite (no time zones) as on PostgreSQL."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise StateError("naive datetime given to the state store; pass an aware UTC datetime")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _json() -> Any:
    # none_as_null: a Python None is SQL NULL (so COALESCE can keep the stored value), not the JSON text 'null'.
    return JSON(none_as_null=True).with_variant(postgresql.JSONB(none_as_null=True), "postgresql")


metadata = MetaData()

schema_version = Table("schema_version", metadata, Column("version", Integer, nullable=False))

records = Table(
    "records",
    metadata,
    Column("object_type", String(64), primary_key=True),
    Column("id", String(64), primary_key=True),
    Column("properties", _json(), nullable=False),
    # The JSON history of schema versions 1-2 ({name: [{value, timestamp, sourceType}]}): emptied by step 3, which
    # moved it to property_history; kept (always NULL) so the released steps still create the table they created.
    Column("history", _json(), nullable=True),
    Column("archived", Boolean, nullable=False, default=False),
    Column("created_at", UTCDateTime, nullable=True),
    Column("updated_at", UTCDateTime, nullable=True),
    Column("archived_at", UTCDateTime, nullable=True),
    # Set when a record is saved by a pull that also reads its associations; cleared once they are refreshed.
    # Kept in the store (not in memory) so a killed pull still refreshes them on the next run.
    Column("associations_stale", Boolean, nullable=False, default=False),
    Column("pulled_at", UTCDateTime, nullable=False),
)
Index("ix_records_stale", records.c.object_type, records.c.associations_stale)

associations = Table(
    "associations",
    metadata,
    Column("seq", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("from_type", String(64), nullable=False),
    Column("from_id", String(64), nullable=False),
    Column("to_type", String(64), nullable=False),
    Column("to_id", String(64), nullable=False),
    Column("type_id", Integer, nullable=True),
)
# One row per (record, property, change), as dlt's hubspot source keeps it: appended by each pull, read as columns.
# The key is the history's order (ordinal 0 = the oldest change, equal instants kept in HubSpot's order), so a
# type's history reads in (id, property, time) order straight off the key (SQLite: a clustered WITHOUT ROWID table).
property_history = Table(
    "property_history",
    metadata,
    Column("object_type", String(64), primary_key=True),
    Column("id", String(64), primary_key=True),
    Column("property", String(200), primary_key=True),
    Column("ordinal", Integer, primary_key=True, autoincrement=False),
    Column("value", Text, nullable=True),
    Column("timestamp", UTCDateTime, nullable=True),
    Column("source", String(64), nullable=True),
    sqlite_with_rowid=False,
)

Index("ix_associations_from", associations.c.from_type, associations.c.to_type, associations.c.from_id)

cursors = Table(
    "cursors",
    metadata,
    Column("object_type", String(64), primary_key=True),
    Column("name", String(64), primary_key=True),
    Column("value", _json(), nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)

runs = Table(
    "runs",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("kind", String(32), nullable=False),
    Column("status", String(16), nullable=False),
    Column("started_at", UTCDateTime, nullable=False),
    Column("finished_at", UTCDateTime, nullable=True),
    Column("summary", _json(), nullable=True),
)
Index("ix_runs_kind", runs.c.kind, runs.c.status, runs.c.id)

locks = Table(
    "locks",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("owner", String(200), nullable=False),
    Column("acquired_at", UTCDateTime, nullable=False),
    Column("heartbeat_at", UTCDateTime, nullable=False),
)

snapshots = Table(
    "snapshots",
    metadata,
    Column("run_id", String(40), primary_key=True),
    Column("kind", String(64), primary_key=True),
    Column("customer_id", String(64), primary_key=True),
    Column("as_of", UTCDateTime, nullable=False),
    Column("data", _json(), nullable=False),
)
Index("ix_snapshots_kind", snapshots.c.kind, snapshots.c.run_id)

metrics = Table(
    "metrics",
    metadata,
    Column("run_id", String(40), primary_key=True),
    Column("period_key", String(64), primary_key=True),
    Column("data", _json(), nullable=False),
    Column("saved_at", UTCDateTime, nullable=False),
)

ledger = Table(
    "ledger",
    metadata,
    Column("seq", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("run_id", String(40), nullable=False),
    Column("object_type", String(64), nullable=False),
    Column("record_id", String(64), nullable=False),
    Column("property", String(200), nullable=False),
    Column("before", Text, nullable=True),
    Column("after", Text, nullable=True),
    Column("status", String(16), nullable=False),
    Column("message", Text, nullable=True),
    Column("updated_at", UTCDateTime, nullable=False),
)
Index("ux_ledger_change", ledger.c.run_id, ledger.c.object_type, ledger.c.record_id, ledger.c.property, unique=True)
Index("ix_ledger_status", ledger.c.status, ledger.c.run_id)

enrollment_events = Table(
    "enrollment_events",
    metadata,
    Column("seq", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("run_id", String(40), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("target", String(200), nullable=False),
    Column("record_id", String(64), nullable=False),
    Column("action", String(16), nullable=False),
    Column("status", String(16), nullable=False),
    Column("message", Text, nullable=True),
    Column("at", UTCDateTime, nullable=False),
)

# Who is in which workflow or list now: maintained with each successful event, so reads are one indexed query.
enrollments_current = Table(
    "enrollments_current",
    metadata,
    Column("kind", String(16), primary_key=True),
    Column("target", String(200), primary_key=True),
    Column("record_id", String(64), primary_key=True),
    Column("since", UTCDateTime, nullable=False),
    Column("run_id", String(40), nullable=False),
)


# ---------------------------------------------------------------- migrations
# Ordered: MIGRATIONS[i] takes the schema from version i to i + 1, in one transaction with the version bump.
# Never edit a released step; append a new one.


def _create(conn: Connection, *names: str) -> None:
    for name in names:
        metadata.tables[name].create(conn, checkfirst=True)
        for index in metadata.tables[name].indexes:
            index.create(conn, checkfirst=True)


def _v1_pull(conn: Connection) -> None:
    _create(conn, "records", "associations", "cursors", "runs", "locks")


def _v2_history_and_writes(conn: Connection) -> None:
    _create(conn, "snapshots", "metrics", "ledger", "enrollment_events", "enrollments_current")


def _v3_property_history(conn: Connection) -> None:
    """Each record's JSON history into property_history (read back in keyset pages), then the JSON emptied."""
    from connector.state.history import replace_histories

    _create(conn, "property_history")
    types = list(conn.execute(select(records.c.object_type).distinct().order_by(records.c.object_type)).scalars())
    for object_type in types:
        last = ""
        while True:
            page = conn.execute(
                select(records.c.id, records.c.history)
                .where(records.c.object_type == object_type, records.c.history.is_not(None), records.c.id > last)
                .order_by(records.c.id)
                .limit(CHUNK)
            ).all()
            if not page:
                break
            replace_histories(conn, object_type, [(row.id, row.history) for row in page])
            last = page[-1].id
    conn.execute(update(records).where(records.c.history.is_not(None)).values(history=None))


MIGRATIONS: tuple[Callable[[Connection], None], ...] = (_v1_pull, _v2_history_and_writes, _v3_property_history)
SCHEMA_VERSION = len(MIGRATIONS)
