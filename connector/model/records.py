"""Record objects (as tests write them, or as the store once streamed them) read as the builder's ``Source``."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import polars as pl

from connector.model.frames import TIME
from connector.model.rows import parse_datetime


def _text(value: Any) -> str | None:
    return None if value is None else value if isinstance(value, str) else str(value)


def _instant(stamp: Any) -> Any:
    try:
        return parse_datetime(stamp) if isinstance(stamp, (str, int)) else stamp
    except ValueError:
        return None


class RecordSource:
    """Records (``object_type``, ``id``, ``properties``, ``history``, ``archived``, ``created_at``) and associations
    (``from_type``, ``from_id``, ``to_type``, ``to_id``, ``type_id``) in memory, as frames. Records keep the order
    given; archived ones are left out."""

    def __init__(self, records: Iterable[Any], associations: Iterable[Any] = ()):
        self.by_type: dict[str, list[Any]] = {}
        for record in records:
            if not record.archived:
                self.by_type.setdefault(record.object_type, []).append(record)
        self.associations = list(associations)

    def records_frame(self, object_type: str, properties: Sequence[str]) -> pl.DataFrame:
        rows = self.by_type.get(object_type, [])
        data: dict[str, list[Any]] = {
            "id": [str(r.id) for r in rows],
            "created_at": [r.created_at for r in rows],
            "updated_at": [getattr(r, "updated_at", None) for r in rows],
            "archived": [False] * len(rows),
        }
        for name in properties:
            data[name] = [_text((r.properties or {}).get(name)) for r in rows]
        schema = {"id": pl.String, "created_at": TIME, "updated_at": TIME, "archived": pl.Boolean,
                  **{name: pl.String for name in properties}}
        return pl.DataFrame(data, schema=schema)

    def history_frame(self, object_type: str, properties: Sequence[str]) -> pl.DataFrame:
        ids, names, values, stamps, sources = [], [], [], [], []
        for record in self.by_type.get(object_type, []):
            history = record.history or {}
            for name in properties:
                for entry in history.get(name) or ():
                    ids.append(str(record.id))
                    names.append(name)
                    values.append(_text(entry.get("value")))
                    stamps.append(_instant(entry.get("timestamp")))
                    sources.append(entry.get("sourceType"))
        return pl.DataFrame({"id": ids, "property": names, "value": values, "timestamp": stamps, "source": sources},
                            schema={"id": pl.String, "property": pl.String, "value": pl.String, "timestamp": TIME,
                                    "source": pl.String})

    def associations_frame(self, from_type: str, to_type: str) -> pl.DataFrame:
        found = [a for a in self.associations if a.from_type == from_type and a.to_type == to_type]
        return pl.DataFrame({"from_id": [str(a.from_id) for a in found], "to_id": [str(a.to_id) for a in found],
                             "type_id": [a.type_id for a in found]},
                            schema={"from_id": pl.String, "to_id": pl.String, "type_id": pl.Int64})
