"""The model built in parts (PortfolioBuilder) and in forked worker processes (pipeline.build_portfolio_in_workers):
the same Portfolio, issues in the same order, as one build_portfolio over the records streamed type by type."""

from __future__ import annotations

import copy
import os
import time
from pathlib import Path

import pytest

from connector import pipeline
from connector.model import PartsDisagree, PortfolioBuilder, build_portfolio
from connector.state import StateStore
from tests.unit.test_model import Assoc, Rec, _portal, pack  # noqa: F401  (pack is a fixture)
from tests.unit.test_model_ids import _same
from tests.unit.test_state import store_url  # noqa: F401  (a fixture: a SQLite file, or a PostgreSQL schema)


def _by_type(records):
    """Records grouped per object type, in the order the types first appear (as the store streams them)."""
    groups: dict[str, list] = {}
    for r in records:
        groups.setdefault(r.object_type, []).append(r)
    return groups


def _exactly_same(a, b):
    _same(a, b)
    assert list(a.customers) == list(b.customers)
    assert [repr(i) for i in a.issues] == [repr(i) for i in b.issues]  # the same issues in the same order


class _Reader:
    """One type's records in pages of two; notes the process that read them in ``folder``."""

    def __init__(self, records, folder: Path):
        self.records, self.folder = records, folder

    def __call__(self):
        (self.folder / f"{os.getpid()}-{self.records[0].object_type}").touch()
        return [self.records[k:k + 2] for k in range(0, len(self.records), 2)]


def test_parts_read_apart_assemble_to_the_streamed_portfolio(pack):  # noqa: F811
    records, associations = _portal()
    groups = _by_type(records)
    expected = build_portfolio(iter([r for g in groups.values() for r in g]), iter(associations), pack)
    builder = PortfolioBuilder(iter(associations), pack)
    assert builder.reads("companies") and not builder.reads("tickets")
    parts = [builder.read(t, [g]) for t, g in groups.items() if builder.reads(t)]
    assert sum(len(p.issues) for p in parts) == len(expected.issues) > 0
    _exactly_same(builder.assemble(parts), expected)


def test_forked_workers_give_the_portfolio_of_one_process(pack, tmp_path):  # noqa: F811
    records, associations = _portal()
    groups = _by_type(records)
    expected = build_portfolio(iter([r for g in groups.values() for r in g]), iter(associations), pack)
    # each type in two shards (id ranges), as load_portfolio shares a large type out
    shards = [(t, _Reader(half, tmp_path)) for t, g in groups.items()
              for half in (g[:(len(g) + 1) // 2], g[(len(g) + 1) // 2:]) if half]
    got = pipeline.build_portfolio_in_workers(shards, iter(associations), pack, workers=2)
    _exactly_same(got, expected)
    read_by: dict[str, set[int]] = {}
    for mark in tmp_path.iterdir():
        pid, _, object_type = mark.name.partition("-")
        read_by.setdefault(object_type, set()).add(int(pid))
    # contacts look at the associations: read here once they are collected; the rest in two other processes
    assert read_by.pop("contacts") == {os.getpid()}
    workers = set().union(*read_by.values())
    assert os.getpid() not in workers and len(workers) == 2


def _odd_portal():
    """Two object types whose prefixed ids no association names: each worker numbers them on its own."""
    records, associations = _portal()
    records = records + [
        Rec("contacts", "c-lead", {"firstname": "Odd", "lastname": "Lead"}),
        Rec("deals", "d-open", {"dealname": "Odd deal", "amount": "10", "deal_currency_code": "EUR"}),
    ]
    return records, associations + [Assoc("deals", "d-open", "companies", "10", 5)]


def test_parts_that_numbered_odd_ids_apart_disagree(pack):  # noqa: F811
    records, associations = _odd_portal()
    lead_only = [[r for r in records if r.id == "c-lead"]]
    builder = PortfolioBuilder(iter(associations), pack)
    assert "d-open" in builder.numbers.odd  # named by an association: numbered before any worker starts
    # two copies stand for two forked workers: each starts from the builder as it was
    lead = copy.deepcopy(builder).read("contacts", lead_only)
    other = copy.deepcopy(builder)
    other.read("contacts", [[Rec("contacts", "c-other", {"firstname": "X"})]])
    clash = other.read("contacts", lead_only)
    assert lead.odd["c-lead"] != clash.odd["c-lead"]
    before = dict(builder.numbers.odd)
    with pytest.raises(PartsDisagree, match="c-lead"):
        builder.assemble([lead, clash])
    assert builder.numbers.odd == before  # left as it was: the caller can read the types again here


class _Together(_Reader):
    """A reader that starts only once the reader of ``other`` has started: the two run in different processes."""

    def __init__(self, records, folder: Path, other: str):
        super().__init__(records, folder)
        self.other = other

    def __call__(self):
        (self.folder / f"started-{self.records[0].object_type}").touch()
        for _ in range(2000):
            if (self.folder / f"started-{self.other}").exists():
                break
            time.sleep(0.005)
        return super().__call__()


def test_workers_that_number_odd_ids_apart_fall_back_to_one_process(pack, tmp_path):  # noqa: F811
    records, associations = _odd_portal()
    records.append(Rec("subscriptions", "s-solo", {"hs_name": "Odd", "hs_status": "active", "hs_mrr": "5"}))
    groups = _by_type(records)
    expected = build_portfolio(iter([r for g in groups.values() for r in g]), iter(associations), pack)
    readers = {t: _Reader(g, tmp_path) for t, g in groups.items()}
    # contacts (c-lead, read here) and subscriptions (s-solo, in a worker) read at once: each process numbers an
    # odd id of its own first
    readers["contacts"] = _Together(groups["contacts"], tmp_path, "subscriptions")
    readers["subscriptions"] = _Together(groups["subscriptions"], tmp_path, "contacts")
    got = pipeline.build_portfolio_in_workers(list(readers.items()), iter(associations), pack, workers=2)
    _exactly_same(got, expected)
    read_by = {int(p.name.split("-")[0]) for p in tmp_path.iterdir() if p.name[0].isdigit()}
    assert os.getpid() in read_by and len(read_by) == 3  # here and in two workers, then everything again here


def _save(store: StateStore, records, associations) -> None:
    for t, group in _by_type(records).items():
        store.save_page(t, [{"id": r.id, "properties": r.properties, "history": r.history, "archived": r.archived,
                             "created_at": r.created_at} for r in group], None)
    pairs: dict[tuple[str, str], dict[str, list]] = {}
    for a in associations:
        pairs.setdefault((a.from_type, a.to_type), {}).setdefault(a.from_id, []).append((a.to_id, a.type_id))
    for (from_type, to_type), mapping in pairs.items():
        store.replace_associations(from_type, to_type, mapping)


def test_load_portfolio_reads_a_store_in_workers_the_same(pack, store_url):  # noqa: F811
    """On SQLite (a file) and PostgreSQL: each worker opens its own connections, the parent's keep working."""
    records, associations = _portal()
    with StateStore.open(store_url) as store:
        _save(store, records, associations)
        assert store.reopenable
        splits = store.id_splits("contacts", 2)
        assert len(splits) == 1 and [r.id for p in store.iter_record_pages("contacts", through=splits[0]) for r in p] \
            == ["100", "101"] and [r.id for p in store.iter_record_pages("contacts", after=splits[0]) for r in p] \
            == ["102", "103"]
        assert store.id_splits("contacts", 9) == [] and store.id_splits("companies", 1) == []
        alone = pipeline.load_portfolio(store, pack, workers=1)
        apart = pipeline.load_portfolio(store, pack, workers=2)
        _exactly_same(apart, alone)
        assert len(alone.customers) >= 2 and alone.issues
        assert store.count_records() > 0  # the parent's connections still work after the workers


def test_an_in_memory_store_is_read_in_this_process(pack):  # noqa: F811
    records, associations = _portal()
    with StateStore.open("sqlite://") as store:
        _save(store, records, associations)
        assert not store.reopenable
        _exactly_same(pipeline.load_portfolio(store, pack, workers=2), pipeline.load_portfolio(store, pack, workers=1))
