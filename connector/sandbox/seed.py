"""Seeded generator of a realistic B2B SaaS portal with 24 months of history.

CONTRACT (generator -> portal): ``generate(...)`` returns a ``GeneratedPortal``; ``portal.Portal`` ingests it.
Property values are HubSpot-formatted strings (numbers as "120.5", datetimes as ISO-8601 UTC with ms and Z,
dates as "YYYY-MM-DD", booleans "true"/"false", multi-select ";"-joined); ``properties`` holds the current
values and includes the id, created and last-modified properties of ``schema``; ``history`` holds, for the
properties in ``schema.HISTORICAL``, every (value, timestamp_ms) in ascending order, the last one equal to
the current value.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(slots=True)
class SeedRecord:
    object_type: str  # plural name from schema.OBJECT_TYPES
    id: int
    created_ms: int
    properties: dict[str, str]
    history: dict[str, list[tuple[str, int]]] = field(default_factory=dict)
    archived: bool = False
    archived_ms: int | None = None


@dataclass(slots=True)
class GeneratedPortal:
    records: dict[str, list[SeedRecord]]  # object type -> records, ascending id
    # (from_type, from_id, to_type, to_id, primary); the portal stores both directions with schema.ASSOCIATION_TYPES
    associations: list[tuple[str, int, str, int, bool]]
    now_ms: int  # the generator's "today": every timestamp is at or before it
    ground_truth: list[dict] = field(default_factory=list)  # churn events: customer id, churned_at, drivers …
