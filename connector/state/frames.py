"""Columnar reads of the store into polars frames, without a Python object per row.

connectorx reads a SQLite file or PostgreSQL straight into Arrow columns (Rust drivers; PostgreSQL through binary
COPY), typing each column from its declared type. bench/store_bench.py measured it against ADBC (adbc-driver-sqlite
and -postgresql) and a DBAPI cursor: ADBC was as fast, but its SQLite driver types a column from the first rows it
sees and fails on the first later row of another type (a column null in its first 1,024 rows, then text), and a
cursor builds a tuple per row. An in-memory SQLite store (tests) is visible only through the engine's own
connection: it is read through that cursor, which is fine at a test's size.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any, Sequence
from urllib.parse import quote

import polars as pl
from sqlalchemy.engine import Engine

from connector.errors import StateError

TIMESTAMP = pl.Datetime("us", "UTC")
RECORD_COLUMNS = {"id": pl.Utf8, "created_at": TIMESTAMP, "updated_at": TIMESTAMP, "archived": pl.Boolean}
HISTORY_COLUMNS = {"id": pl.Utf8, "property": pl.Utf8, "value": pl.Utf8, "timestamp": TIMESTAMP, "source": pl.Utf8}
ASSOCIATION_COLUMNS = {"from_id": pl.Utf8, "to_id": pl.Utf8, "type_id": pl.Int64}
# How SQLAlchemy stores a datetime in SQLite (text, naive UTC here): what the cursor fallback reads back.
_SQLITE_DATETIME = "%Y-%m-%d %H:%M:%S%.f"


def _literal(value: str) -> str:
    """A SQL string literal (connectorx takes no bound parameters): quotes doubled, as SQLite and PostgreSQL (with
    standard_conforming_strings, its default since 9.1) read them."""
    if "\x00" in value:
        raise StateError(f"a NUL character in {value!r} cannot be sent to the database")
    return "'" + value.replace("'", "''") + "'"


def _json_path(name: str) -> str:
    return "$['" + name.replace("\\", "\\\\").replace("'", "\\'") + "']"


def _connectorx_url(engine: Engine) -> str | None:
    """The store's URL as connectorx takes it; None for an in-memory SQLite store (not reachable from outside)."""
    url = engine.url
    if url.get_backend_name() == "sqlite":
        if url.database in (None, "", ":memory:"):
            return None
        return "sqlite://" + quote(str(Path(url.database).resolve()))
    # postgresql+psycopg://… → postgresql://…, query (search_path in ``options``, timeouts) kept as given
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


class FrameReader:
    """SQL text → a polars frame of the given column types."""

    def __init__(self, engine: Engine):
        self.engine = engine
        self.url = _connectorx_url(engine)

    def read(self, sql: str, columns: dict[str, pl.DataType]) -> pl.DataFrame:
        try:
            frame = self._read_connectorx(sql) if self.url is not None else self._read_cursor(sql, list(columns))
        except StateError:
            raise
        except Exception as exc:  # noqa: BLE001 - any driver failure becomes a StateError without the URL's password
            reason = str(exc).splitlines()[0] if str(exc) else exc.__class__.__name__
            if self.engine.url.password:
                reason = reason.replace(str(self.engine.url.password), "***")
            raise StateError(f"state store read failed: {exc.__class__.__name__}: {reason}") from None
        return frame.select(_typed(frame, name, dtype) for name, dtype in columns.items())

    def _read_connectorx(self, sql: str) -> pl.DataFrame:
        import connectorx

        return connectorx.read_sql(self.url, sql, return_type="polars")

    def _read_cursor(self, sql: str, names: list[str]) -> pl.DataFrame:
        with self.engine.connect() as conn:
            rows = conn.exec_driver_sql(sql).fetchall()
        return pl.DataFrame([tuple(r) for r in rows], schema=names, orient="row", infer_schema_length=None)


def _typed(frame: pl.DataFrame, name: str, dtype: pl.DataType) -> pl.Expr:
    """A column as the frame's contract types it: SQLite's naive UTC and text datetimes made aware UTC, its 0/1
    booleans made booleans, anything else cast."""
    col, have = pl.col(name), frame.schema[name]
    if dtype == TIMESTAMP:
        if have == pl.Utf8:
            return col.str.to_datetime(_SQLITE_DATETIME, time_unit="us", time_zone="UTC")
        if isinstance(have, pl.Datetime):
            col = col.dt.cast_time_unit("us")
            return col.dt.replace_time_zone("UTC") if have.time_zone is None else col.dt.convert_time_zone("UTC")
    return col.cast(dtype)


def records_sql(object_type: str, include_archived: bool, extract: Sequence[str] = (), *, after: str | None = None,
                limit: int | None = None) -> str:
    """The type's records by id, with the properties JSON, or (``extract``, PostgreSQL) the text of each named
    property as columns ``p0``, ``p1``, … (``->>`` takes any key as a literal and gives any JSON value's text);
    ``after``/``limit``: one keyset slice."""
    live = "" if include_archived else " AND NOT archived"
    start = "" if after is None else f" AND id > {_literal(after)}"
    props = ", ".join(f"properties ->> {_literal(n)} AS p{k}" for k, n in enumerate(extract)) or "properties"
    return (f"SELECT id, created_at, updated_at, archived, {props} FROM records "
            f"WHERE object_type = {_literal(object_type)}{live}{start} ORDER BY id"
            + ("" if limit is None else f" LIMIT {int(limit)}"))


# Records read and decoded at a time where polars decodes their JSON: the JSON text of a slice (tens of MB) is
# all there is of it in memory at once.
SLICE = 100_000


def decode_properties(frame: pl.DataFrame, names: Sequence[str]) -> pl.DataFrame:
    """The ``properties`` JSON column → one Utf8 column per name (null when absent), decoded by polars (SQLite:
    its JSON paths cannot name every key, and connectorx cannot type an expression's column there): the rows as
    newline-delimited JSON (a JSON text holds no raw newline), 2-3 times faster than ``str.json_decode`` with 22
    names. HubSpot's values are strings; a number or boolean keeps its text, and an object or array (which the
    typed decoders refuse) its JSON text, through a path per name."""
    if not names:
        return frame.drop("properties")
    schema = {n: pl.Utf8 for n in names}
    try:
        text = frame.select(pl.col("properties").str.join("\n")).item()
        decoded = pl.read_ndjson(io.BytesIO(text.encode()), schema=schema) if frame.height else pl.DataFrame(
            schema=schema)
        if decoded.height != frame.height:
            raise pl.exceptions.ComputeError("a stored JSON text spans lines")
    except pl.exceptions.PolarsError:
        decoded = frame.select(pl.col("properties").str.json_path_match(_json_path(n)).alias(n) for n in names)
    return pl.concat([frame.drop("properties"), decoded], how="horizontal")


def history_sql(object_type: str, properties: Sequence[str]) -> str:
    wanted = ", ".join(map(_literal, properties))
    # The key's order: id, property, then the change's place in time (oldest first).
    return (f'SELECT id, property, value, "timestamp", source FROM property_history '
            f"WHERE object_type = {_literal(object_type)} AND property IN ({wanted}) ORDER BY id, property, ordinal")


def archived_sql(object_type: str) -> str:
    return f"SELECT id FROM records WHERE object_type = {_literal(object_type)} AND archived"


def associations_sql(from_type: str, to_type: str) -> str:
    return (f"SELECT from_id, to_id, type_id FROM associations "
            f"WHERE from_type = {_literal(from_type)} AND to_type = {_literal(to_type)} ORDER BY seq")


def empty(columns: dict[str, Any]) -> pl.DataFrame:
    return pl.DataFrame(schema=columns)
