"""The builder's joins on id numbers: HubSpot ids as their own numbers, any other id still joined exactly, and the
same portfolio whatever the order or batching of the input."""

from __future__ import annotations

import dataclasses
import random

import numpy as np
import pytest

from connector import model
from connector.model import build_portfolio
from tests.unit.test_model import _portal, pack  # noqa: F401  (pack is a fixture)


def test_hubspot_ids_are_their_own_numbers():
    numbers = model._Numbers()
    got = numbers(["0", "9", "10", "123456789012345678", "20000001"])
    assert got.tolist() == [0, 9, 10, 123456789012345678, 20000001]
    assert not numbers.odd


def test_other_ids_get_distinct_numbers_above_every_hubspot_id():
    numbers = model._Numbers()
    ids = ["007", "7", "abc", "é1", "1234567890123456789", "", "abc", "1 2", "-5", "12\x0034"]
    got = numbers(ids).tolist()
    assert got[1] == 7
    assert got[2] == got[6]  # the same id, the same number
    odd = [got[k] for k in (0, 2, 3, 4, 5, 7, 8, 9)]
    assert len(set(odd)) == len(odd) and min(odd) >= 1 << 62
    # numbered again in a later batch: the same numbers; given as an int: its own number
    assert numbers(["abc", "007", 42]).tolist() == [got[2], got[0], 42]


def _customers(p):
    return {cid: c for cid, c in p.customers.items()}


def _same(a, b):
    assert _customers(a) == _customers(b)
    for name in ("subscriptions", "deals", "line_items", "feedback"):
        assert sorted(getattr(a, name), key=lambda r: r.id) == sorted(getattr(b, name), key=lambda r: r.id), name
    assert dict(a.usage) == dict(b.usage)
    assert sorted(map(repr, a.issues)) == sorted(map(repr, b.issues))


def test_same_portfolio_whatever_the_order_and_batching(pack, monkeypatch):  # noqa: F811
    records, associations = _portal()
    expected = build_portfolio(iter(records), iter(associations), pack)
    shuffled, reordered = list(records), list(reversed(associations))
    random.Random(7).shuffle(shuffled)
    monkeypatch.setattr(model, "_BATCH", 2)  # many small batches per type, interleaved types
    monkeypatch.setattr(model._Links, "_CHUNK", 3)
    _same(build_portfolio(iter(shuffled), iter(reordered), pack), expected)


def test_ids_in_another_form_are_joined_the_same(pack):  # noqa: F811
    """Ids that are not HubSpot's decimal form (prefixed here) give the same links, customers and rows."""
    records, associations = _portal()

    def odd(value: str) -> str:
        return f"x-{value}"
    records = [dataclasses.replace(r, id=odd(r.id)) for r in records]
    associations = [dataclasses.replace(a, from_id=odd(a.from_id), to_id=odd(a.to_id)) for a in associations]
    got = build_portfolio(iter(records), iter(associations), pack)
    assert set(got.customers) == {"x-10", "x-12", "x-102", "x-103"}
    acme = got.customers["x-10"]
    assert set(acme.contact_ids) == {"x-100", "x-101"} and acme.primary_contact_id == "x-101"
    subs = {s.id: s.customer_id for s in got.subscriptions}
    assert subs == {"x-500": "x-10", "x-501": "x-102"}
    deals = {d.id: (d.customer_id, set(d.line_item_ids)) for d in got.deals}
    assert deals == {"x-700": ("x-10", {"x-900", "x-901"}), "x-701": ("x-10", set())}
    items = {i.id: (i.deal_id, i.subscription_id) for i in got.line_items}
    assert items == {"x-900": ("x-700", None), "x-901": ("x-700", None), "x-902": (None, "x-500")}
    answers = {f.id: (f.customer_id, f.contact_id) for f in got.feedback}
    assert answers == {"x-1200": ("x-10", "x-100"), "x-1201": ("x-103", "x-103")}


def test_line_items_and_contacts_in_id_order_not_text_order(pack):  # noqa: F811
    records, associations = _portal()
    extra = [model_rec for model_rec in records if model_rec.object_type == "line_items"][0]
    records = records + [dataclasses.replace(extra, id="99"), dataclasses.replace(extra, id="1000")]
    associations = associations + [type(associations[0])("deals", "700", "line_items", "99", 19),
                                   type(associations[0])("deals", "700", "line_items", "1000", 19)]
    got = build_portfolio(iter(records), iter(associations), pack)
    deal = next(d for d in got.deals if d.id == "700")
    assert deal.line_item_ids == ("99", "900", "901", "1000")


def test_owner_rows_handed_over_match_the_customer_index(pack):  # noqa: F811
    records, associations = _portal()
    got = build_portfolio(iter(records), iter(associations), pack)
    index = got.customer_index()
    for table in (got.tables.subscriptions, got.tables.deals, got.tables.feedback, got.tables.usage):
        rows = table.owners(index)
        expected = [index.get(cid, -1) for cid in table.columns["customer_id"]]
        assert rows.tolist() == expected
        with pytest.raises(ValueError):
            rows[0] = 5  # shared with every caller: read-only
    # another index (not the portfolio's): computed from it, not the rows handed over
    other = {cid: 100 + row for cid, row in index.items()}
    subs = got.tables.subscriptions
    assert subs.owners(other).tolist() == [other.get(cid, -1) for cid in subs.columns["customer_id"]]
    assert np.array_equal(subs.owners(index), subs.owners(index))


def test_pages_give_the_same_portfolio(pack):  # noqa: F811
    """Records and associations handed over a page at a time (as the store reads them) build the same portfolio."""
    records, associations = _portal()
    expected = build_portfolio(iter(records), iter(associations), pack)
    pages = [records[k:k + 3] for k in range(0, len(records), 3)]
    assoc_pages = [associations[k:k + 4] for k in range(0, len(associations), 4)]
    _same(build_portfolio(model.Pages(iter(pages)), model.Pages(assoc_pages), pack), expected)


def _sub_with_history(sub_id: str, points: list[tuple[str, str]], currency: str = "EUR"):
    from tests.unit.test_model import Rec
    return Rec("subscriptions", sub_id, {"hs_name": "Pro", "hs_status": "active", "hs_mrr": points[0][0],
                                         "hs_currency_code": currency},
               history={"hs_mrr": [{"value": v, "timestamp": t, "sourceType": "API"} for v, t in points]})


def test_histories_in_any_order_become_the_same_ascending_timeline(pack):  # noqa: F811
    """HubSpot's newest-first order (taken by reversing each record) and any other order (sorted) agree; equal
    instants keep reversed HubSpot order either way; money is converted with each record's own currency."""
    newest_first = [("300", "2024-03-01T00:00:00.000Z"), ("250", "2024-02-01T00:00:00.000Z"),
                    ("200", "2024-02-01T00:00:00.000Z"), ("100", "2024-01-01T00:00:00.000Z")]
    shuffled = [newest_first[k] for k in (2, 0, 3, 1)]
    usd = [("40", "2024-01-05T00:00:00.000Z")]
    records = [_sub_with_history("1", newest_first), _sub_with_history("2", usd, "USD"),
               _sub_with_history("3", shuffled)]
    got = {s.id: s.mrr_history for s in build_portfolio(iter(records), iter([]), pack).subscriptions}
    rate = pack.portal.currency.rates["EUR"] if pack.portal.currency.reporting != "EUR" else 1
    assert [str(v / rate) for _, v in got["1"]] == ["100", "200", "250", "300"]  # ties: reversed HubSpot order
    assert [t.month for t, _ in got["1"]] == [1, 2, 2, 3]
    assert got["2"][0][1] == model.parse_decimal("40") * (pack.portal.currency.rates.get("USD", 1)
                                                        if pack.portal.currency.reporting != "USD" else 1)
    # shuffled: sorted by time; of the two equal instants, reversed given order (200 was given before 250)
    assert [str(v / rate) for _, v in got["3"]] == ["100", "250", "200", "300"]


def test_ids_given_as_numbers_read_as_strings(pack):  # noqa: F811
    records, associations = _portal()
    as_ints = [dataclasses.replace(r, id=int(r.id)) for r in records]
    got = build_portfolio(iter(as_ints), iter(associations), pack)
    _same(got, build_portfolio(iter(records), iter(associations), pack))
    assert all(type(cid) is str for cid in got.customers)


@dataclasses.dataclass(frozen=True)
class _Columns:
    from_type: str
    to_type: str
    from_ids: list
    to_ids: list
    type_ids: list


def test_association_columns_give_the_same_portfolio(pack):  # noqa: F811
    """Associations handed over as columns per pair (as the store reads them) link exactly as single objects do."""
    records, associations = _portal()
    expected = build_portfolio(iter(records), iter(associations), pack)
    pairs: dict = {}
    for a in associations:
        pairs.setdefault((a.from_type, a.to_type), []).append(a)
    columns = [_Columns(f, t, [a.from_id for a in group[k:k + 2]], [a.to_id for a in group[k:k + 2]],
                        [a.type_id for a in group[k:k + 2]])
               for (f, t), group in pairs.items() for k in range(0, len(group), 2)]
    columns.append(_Columns("tickets", "contacts", ["1"], ["100"], [None]))  # a pair nothing reads
    _same(build_portfolio(iter(records), iter(columns), pack), expected)


def test_a_list_of_properties_reads_the_first_not_empty(pack):  # noqa: F811
    """submitted_at maps [hs_submission_timestamp, hs_createdate]: an empty first property falls back to the next;
    a malformed one does not (it is reported against the property it came from)."""
    from tests.unit.test_model import Rec
    records = [
        Rec("feedback_submissions", "1", {"hs_survey_type": "NPS", "hs_submission_timestamp": "2024-04-01T09:00:00.000Z",
                                          "hs_createdate": "2024-01-01T00:00:00.000Z"}),
        Rec("feedback_submissions", "2", {"hs_survey_type": "NPS", "hs_submission_timestamp": "",
                                          "hs_createdate": "2024-02-01T00:00:00.000Z"}),
        Rec("feedback_submissions", "3", {"hs_survey_type": "NPS", "hs_submission_timestamp": "nope",
                                          "hs_createdate": "2024-03-01T00:00:00.000Z"}),
        Rec("feedback_submissions", "4", {"hs_survey_type": "NPS", "hs_createdate": "bad"}, created_at=None),
    ]
    got = build_portfolio(iter(records), iter([]), pack)
    times = {f.id: f.submitted_at for f in got.feedback}
    assert times["1"].month == 4 and times["2"].month == 2 and times["4"] is None
    assert times["3"] == records[2].created_at  # unreadable: the record's own creation stands in, as before
    assert {(i.record_id, i.property, i.raw_value) for i in got.issues} == {
        ("3", "hs_submission_timestamp", "nope"), ("4", "hs_createdate", "bad")}


def test_empty_strings_are_no_value_in_every_kind_of_column(pack):  # noqa: F811
    """HubSpot's "" reads as None for text, numbers, money, enumerations and timestamps, and is no data issue."""
    from tests.unit.test_model import Rec
    records = [
        Rec("subscriptions", "1", {"hs_name": "", "hs_status": "", "hs_mrr": "", "hs_currency_code": "",
                                   "hs_createdate": "", "hs_recurring_billing_start_date": ""}, created_at=None),
        Rec("subscriptions", "2", {"hs_name": "Pro", "hs_status": "active", "hs_mrr": "10", "hs_currency_code": "USD",
                                   "hs_createdate": "2024-01-01T00:00:00.000Z",
                                   "hs_recurring_billing_start_date": "2024-01-01"}),
    ]
    got = build_portfolio(iter(records), iter([]), pack)
    empty = next(s for s in got.subscriptions if s.id == "1")
    assert (empty.name, empty.status, empty.mrr, empty.currency, empty.created_at, empty.start_date) == (None,) * 6
    assert not got.issues
    full = next(s for s in got.subscriptions if s.id == "2")
    assert full.name == "Pro" and full.status == "active" and full.created_at.year == 2024


def test_id_columns_read_as_strings():
    odd = {(1 << 62) + 0: "x-1"}
    ids = model.Ids(np.array([10, -1, (1 << 62), 7], dtype=np.int64), odd)
    assert list(ids) == ["10", None, "x-1", "7"] and ids[0] == "10" and ids[np.int64(2)] == "x-1"
    assert ids[1:3] == [None, "x-1"] and len(ids) == 4 and ids == ["10", None, "x-1", "7"] and ids != ["10"]
    tuples = model.IdTuples(np.array([0, 2, 2, 3]), np.array([5, 9, (1 << 62)]), odd)
    assert list(tuples) == [("5", "9"), (), ("x-1",)] and tuples[-1] == ("x-1",)
    more = tuples.plus_singles(np.array([12, 13]))
    assert list(more) == [("5", "9"), (), ("x-1",), ("12",), ("13",)]


def test_built_portfolio_keeps_other_ids_as_numbers(pack):  # noqa: F811
    """Subscriptions', deals', line items' and answers' ids, a customer's contacts and a deal's line items are number
    columns read as strings; the rows built from them are the plain dataclasses with string ids."""
    records, associations = _portal()
    got = build_portfolio(iter(records), iter(associations), pack)
    t = got.tables
    assert isinstance(t.subscriptions.columns["id"], model.Ids)
    assert isinstance(t.customers.columns["contact_ids"], model.IdTuples)
    assert isinstance(t.deals.columns["line_item_ids"], model.IdTuples)
    assert isinstance(t.feedback.columns["contact_id"], model.Ids)
    acme = got.customers["10"]
    assert acme.contact_ids == ("100", "101") and acme.primary_contact_id == "101"
    assert got.customers["102"].contact_ids == ("102",) and got.customers["102"].primary_contact_id == "102"
    assert all(type(s.id) is str for s in got.subscriptions)


def test_money_in_several_currencies_converted_per_currency_with_issues_in_place(pack):  # noqa: F811
    """Amounts are converted at their own record's currency; a malformed one (in either currency) is reported at
    its own record, in record order, and the rest are read."""
    from tests.unit.test_model import Rec
    rates = pack.portal.currency.rates
    foreign = next(code for code in rates if code != pack.portal.currency.reporting)
    specs = [("1", "100", foreign), ("2", "abc", pack.portal.currency.reporting), ("3", "100", pack.portal.currency.reporting),
             ("4", "x1", foreign), ("5", "7", foreign)]
    records = [Rec("deals", i, {"dealname": "D", "amount": a, "deal_currency_code": c}) for i, a, c in specs]
    got = build_portfolio(iter(records), iter([]), pack)
    amounts = {d.id: d.amount for d in got.deals}
    assert amounts["1"] == model.parse_decimal("100") * rates[foreign] and amounts["3"] == model.parse_decimal("100")
    assert amounts["5"] == model.parse_decimal("7") * rates[foreign] and amounts["2"] is None and amounts["4"] is None
    assert [(i.record_id, i.raw_value) for i in got.issues] == [("2", "abc"), ("4", "x1")]


@pytest.mark.parametrize("stamps", [
    ["2024-01-02T03:04:05.678Z", "2025-12-31T23:59:59.999Z"],  # one form: read in place
    ["2024-01-02T03:04:05Z", "2024-01-02T03:04:06Z"],
    ["2024-01-02T03:04:05Z", "2024-01-02T03:04:05.678Z"],  # mixed forms
])
def test_fast_timestamps_agree_with_parse_datetime(stamps):
    assert model._fast_epochs(stamps).tolist() == [model.parse_datetime(s).timestamp() for s in stamps]


@pytest.mark.parametrize("stamps", [["2024-13-02T03:04:05.678Z"], ["2024-02-30T03:04:05Z"], ["2024-01-02 03:04:05.678Z"],
                                    ["1704164645678"], ["2024-01-02T03:04:05.678+"]])
def test_fast_timestamps_leave_other_forms_to_parse_datetime(stamps):
    assert model._fast_epochs(stamps) is None


def test_picked_column_reads_another_tables_ids():
    picked = model.Picked(["a", "b"], np.array([1, -1, 0]))
    assert list(picked) == ["b", None, "a"] and picked[0] == "b" and picked[1] is None and picked[-1] == "a"
    assert picked[:2] == ["b", None] and picked == ["b", None, "a"] and len(picked) == 3


def test_a_history_with_bad_entries_reports_hubspots_first_and_keeps_the_rest(pack):  # noqa: F811
    newest_first = [("300", "2024-03-01T00:00:00.000Z"), ("bad-new", "2024-02-15T00:00:00.000Z"),
                    ("200", "2024-02-01T00:00:00.000Z"), ("bad-old", "2024-01-15T00:00:00.000Z"),
                    ("100", "2024-01-01T00:00:00.000Z")]
    got = build_portfolio(iter([_sub_with_history("1", newest_first, "USD")]), iter([]), pack)
    issues = [(i.property, i.raw_value) for i in got.issues if i.property == "hs_mrr"]
    assert issues == [("hs_mrr", "bad-new")]  # once per record: HubSpot's first (newest) bad entry
    history = got.subscriptions[0].mrr_history
    assert [t.month for t, _ in history] == [1, 2, 3] and len(history) == 3


def test_customer_index_is_built_on_its_first_lookup(pack):  # noqa: F811
    records, associations = _portal()
    got = build_portfolio(iter(records), iter(associations), pack)
    index = got.customer_index()
    got.tables.subscriptions.owners(index)
    assert index.rows is None  # the handed-over rows needed no dictionary
    assert index["10"] == list(got.customers).index("10") and index.get("nope") is None and "12" in index
    assert len(index) == len(got.customers) and set(index) == set(got.customers)
