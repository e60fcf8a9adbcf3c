"""A real state store filled with model_bench's customers through the store's own write path (shared by the
store benches)."""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from model_bench import TYPES, _records, iter_associations  # noqa: E402

from connector.state import StateStore  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
RECORDS_PER_CUSTOMER = sum(1 for t in TYPES for _ in _records(t, 1))  # 7: two contacts each


def _analyze(store: StateStore, table: str = "") -> None:
    """Fresh planner statistics on PostgreSQL, as autovacuum keeps them (it is off on the test server): with the
    statistics of an empty table, replace_associations' DELETE scans a whole (from, to) pair per page."""
    if store.dialect == "postgresql":
        with store.engine.begin() as conn:
            conn.exec_driver_sql(f"ANALYZE {table}")


def fill(store: StateStore, n: int) -> None:
    """model_bench's records and associations for n customers, saved as a pull would save them."""
    for object_type in TYPES:
        page: list[dict] = []
        for r in _records(object_type, n):
            page.append({"id": r.id, "properties": r.properties, "history": r.history or None,
                         "archived": r.archived, "created_at": r.created_at})
            if len(page) == 1000:
                store.save_page(object_type, page, None)
                page = []
        if page:
            store.save_page(object_type, page, None)
        _analyze(store)
    pairs: dict[tuple[str, str], dict[str, list[tuple[str, int | None]]]] = {}
    for a in iter_associations(n):
        mapping = pairs.setdefault((a.from_type, a.to_type), {})
        mapping.setdefault(a.from_id, []).append((a.to_id, a.type_id))
        if len(mapping) == 5000:
            store.replace_associations(a.from_type, a.to_type, mapping)
            mapping.clear()
            _analyze(store, "associations")
    for (from_type, to_type), mapping in pairs.items():
        if mapping:
            store.replace_associations(from_type, to_type, mapping)


def filled(store: StateStore, n: int) -> float | None:
    """Fill the store unless it already holds n customers' records (a kept file is reused); the seconds spent
    filling, or None when it was reused."""
    if store.count_records(include_archived=True) == RECORDS_PER_CUSTOMER * n:
        return None
    if store.count_records(include_archived=True):
        raise SystemExit(f"the store holds {store.count_records(include_archived=True):,} records, not "
                         f"{RECORDS_PER_CUSTOMER * n:,}: give an empty one (or the file of another --customers)")
    started = time.perf_counter()
    fill(store, n)
    return time.perf_counter() - started


def default_url(n: int, name: str = "store") -> str:
    return f"sqlite:///{ROOT / '.bench' / f'{name}-{n}.db'}"
