"""The state store: pulled records (with their property history as a long table), associations, cursors, runs and
locks, snapshots, the write ledger and enrollments, in one SQL database (SQLite by default, PostgreSQL by URL)."""

from connector.state.schema import MIGRATIONS, SCHEMA_VERSION, UTCDateTime, metadata
from connector.state.store import (
    DEFAULT_URL,
    StateStore,
    StoredAssociation,
    StoredAssociationColumns,
    StoredRecord,
    shown_url,
)

__all__ = [
    "DEFAULT_URL", "MIGRATIONS", "SCHEMA_VERSION", "StateStore", "StoredAssociation", "StoredAssociationColumns",
    "StoredRecord", "UTCDateTime", "metadata", "shown_url",
]
