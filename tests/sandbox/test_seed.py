"""The sandbox's seeded portal generator: determinism, schema conformance, consistency and churn signal."""

from __future__ import annotations

import json
import re
import time
from collections import Counter, defaultdict
from datetime import date, datetime, timezone

import pytest

from connector.sandbox import schema
from connector.sandbox.seed import ID_BASE, MONTHS_PER_PERIOD, generate

NOW = 1_795_000_020_000  # 2026-11-18T11:07:00Z, a fixed "today" so every run sees the same portal
DAY = 86_400_000
ISO_MS = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")
DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
NUMBER = re.compile(r"^-?\d+(\.\d+)?$")
PROPS = {t: {p.name: p for p in props} for t, props in schema.PROPERTIES.items()}


def ms_of(iso: str) -> int:
    return int(datetime.strptime(iso, "%Y-%m-%dT%H:%M:%S.%f%z").timestamp() * 1000)


@pytest.fixture(scope="module")
def portal():
    return generate(seed=11, contacts=2_000, now_ms=NOW)


@pytest.fixture(scope="module")
def malformed(portal):
    return {(e["object_type"], e["id"], e["property"]) for e in portal.ground_truth if e["kind"] == "malformed"}


@pytest.fixture(scope="module")
def by_id(portal):
    return {t: {r.id: r for r in recs} for t, recs in portal.records.items()}


@pytest.fixture(scope="module")
def links(portal):
    """(from_type, to_type) -> from_id -> [to_id]."""
    out: dict = defaultdict(lambda: defaultdict(list))
    for ft, fid, tt, tid, _ in portal.associations:
        out[(ft, tt)][fid].append(tid)
    return out


def dump(p) -> str:
    recs = {t: [(r.id, r.created_ms, r.properties, r.history, r.archived, r.archived_ms) for r in rs]
            for t, rs in p.records.items()}
    return json.dumps([recs, p.associations, p.ground_truth, p.now_ms], sort_keys=True)


def test_generate_same_seed_gives_identical_portal():
    assert dump(generate(seed=5, contacts=300, now_ms=NOW)) == dump(generate(seed=5, contacts=300, now_ms=NOW))


def test_generate_other_seed_gives_other_portal():
    a, b = generate(seed=5, contacts=300, now_ms=NOW), generate(seed=6, contacts=300, now_ms=NOW)
    assert dump(a) != dump(b)
    emails = [[r.properties["email"] for r in p.records["contacts"]] for p in (a, b)]
    assert emails[0] != emails[1]


def test_generate_default_now_is_current_minute():
    before = int(time.time() * 1000)
    p = generate(contacts=3)
    assert p.now_ms % 60_000 == 0
    assert before - 60_000 < p.now_ms <= int(time.time() * 1000)


def test_generate_rejects_empty_portal():
    with pytest.raises(ValueError):
        generate(contacts=0, now_ms=NOW)


def test_contacts_count_emails_and_company_sizes(portal, links):
    contacts = portal.records["contacts"]
    assert len(contacts) == 2_000
    emails = [r.properties["email"] for r in contacts]
    assert len(set(emails)) == len(emails)
    assert all(e.count("@") == 1 for e in emails)
    sizes = Counter(tos[0] for tos in links[("contacts", "companies")].values())
    assert set(sizes.values()) <= set(range(1, 21))
    assert max(sizes.values()) > 10 and min(sizes.values()) == 1
    for company in portal.records["companies"]:
        assert company.properties["num_associated_contacts"] == str(sizes[company.id])
    with_dob = sum("date_of_birth" in r.properties for r in contacts)
    assert 0.7 * len(contacts) < with_dob < len(contacts)


def test_ids_ascending_from_base_and_matching_created_order(portal):
    for object_type, recs in portal.records.items():
        ids = [r.id for r in recs]
        assert ids == list(range(ID_BASE[object_type], ID_BASE[object_type] + len(recs))), object_type
        created = [r.created_ms for r in recs]
        assert created == sorted(created), object_type
        for r in recs:
            assert r.object_type == object_type
            assert r.properties["hs_object_id"] == str(r.id)
            assert ms_of(r.properties[schema.CREATED[object_type]]) == r.created_ms


def test_every_property_is_in_schema_and_every_option_valid(portal, malformed):
    for object_type, recs in portal.records.items():
        defs = PROPS[object_type]
        for r in recs:
            for name, value in r.properties.items():
                assert name in defs, f"{object_type}.{name} is not in schema.PROPERTIES"
                assert isinstance(value, str), (object_type, name)
                if (object_type, r.id, name) in malformed:
                    continue
                prop = defs[name]
                if prop.type in ("enumeration", "bool") and prop.options:
                    parts = value.split(";") if prop.field_type == "checkbox" else [value]
                    assert all(v in prop.options for v in parts), (object_type, r.id, name, value)
                elif prop.type == "number":
                    assert NUMBER.match(value), (object_type, r.id, name, value)
                elif prop.type == "datetime":
                    assert ISO_MS.match(value), (object_type, r.id, name, value)
                elif prop.type == "date":
                    assert DATE.match(value), (object_type, r.id, name, value)
                    date.fromisoformat(value)


def test_onboarding_milestones_are_ordered_subsets(portal):
    seen = 0
    for r in portal.records["companies"]:
        value = r.properties.get("onboarding_milestones")
        if value:
            parts = value.split(";")
            assert parts == [m for m in schema.MILESTONES if m in parts]
            seen += 1
    assert seen > 50


def test_timestamps_not_after_now(portal, malformed):
    today = datetime.fromtimestamp(NOW / 1000, tz=timezone.utc).date()
    future_dates = {"hs_next_payment_due_date", "hs_recurring_billing_start_date"}
    for object_type, recs in portal.records.items():
        defs = PROPS[object_type]
        for r in recs:
            assert r.created_ms <= NOW
            if r.archived:
                assert r.created_ms <= r.archived_ms <= NOW
            for name, hist in r.history.items():
                assert all(ts <= NOW for _, ts in hist)
            for name, value in r.properties.items():
                if (object_type, r.id, name) in malformed:
                    continue
                kind = defs[name].type
                if kind == "datetime" and not (name == "closedate" and r.properties["hs_is_closed"] == "false"):
                    assert ms_of(value) <= NOW, (object_type, r.id, name, value)
                elif kind == "date" and name not in future_dates:
                    assert date.fromisoformat(value) <= today, (object_type, r.id, name, value)


def test_histories_ascending_and_ending_at_current_value(portal):
    for object_type, recs in portal.records.items():
        historical = set(schema.HISTORICAL.get(object_type, ()))
        lm = schema.LAST_MODIFIED[object_type]
        for r in recs:
            assert set(r.history) <= historical, (object_type, set(r.history) - historical)
            latest = r.created_ms
            for name, hist in r.history.items():
                stamps = [ts for _, ts in hist]
                assert stamps == sorted(stamps), (object_type, r.id, name)
                assert hist[-1][0] == r.properties[name], (object_type, r.id, name)
                assert stamps[0] >= r.created_ms, (object_type, r.id, name)
                latest = max(latest, stamps[-1])
            for name in historical & set(r.properties):
                assert name in r.history, (object_type, r.id, name)
            assert ms_of(r.properties[lm]) >= latest, (object_type, r.id)


def test_usage_history_has_monthly_points(portal):
    company = max(portal.records["companies"], key=lambda r: len(r.history.get("product_active_days_30d", ())))
    stamps = [ts for _, ts in company.history["product_active_days_30d"]]
    assert len(stamps) >= 24
    gaps = [b - a for a, b in zip(stamps, stamps[1:])]
    assert max(gaps) <= 31 * DAY


def test_todays_sync_is_spread_over_the_last_day_one_millisecond_per_record(portal):
    contacts = portal.records["contacts"]
    # Before: two thirds of the contacts shared one lastmodifieddate (today's midnight) and incremental sync
    # could not page through them.
    shared = Counter(r.properties["lastmodifieddate"] for r in contacts).most_common(1)[0][1]
    assert shared <= len(contacts) // 100, shared
    synced = [ms_of(r.properties["lastmodifieddate"]) for r in contacts
              if ms_of(r.properties["lastmodifieddate"]) > NOW - DAY
              and ms_of(r.properties["lastmodifieddate"]) != r.history["lifecyclestage"][-1][1]]
    assert len(synced) > len(contacts) // 2  # most contacts belong to customers the sync writes
    assert len(set(synced)) == len(synced)
    assert max(synced) <= NOW and max(synced) - min(synced) > 20 * 3_600_000  # spread over the day
    # Companies: the last usage point is the company's own sync time, consistent with its lastmodifieddate.
    last_points = []
    for c in portal.records["companies"]:
        hist = c.history.get("product_logins_30d")
        if hist and hist[-1][1] > NOW - DAY:
            assert all(c.history[n][-1][1] == hist[-1][1] for n in ("product_active_days_30d", "seats_used"))
            assert ms_of(c.properties["hs_lastmodifieddate"]) >= hist[-1][1]
            last_points.append(hist[-1][1])
    assert len(last_points) > 50 and len(set(last_points)) == len(last_points)
    assert max(last_points) <= NOW


def test_associations_reference_existing_records_with_known_types(portal, by_id, links):
    for ft, fid, tt, tid, primary in portal.associations:
        assert (ft, tt) in schema.ASSOCIATION_TYPES, (ft, tt)
        assert fid in by_id[ft] and tid in by_id[tt], (ft, fid, tt, tid)
        if primary:
            assert schema.ASSOCIATION_TYPES[(ft, tt)][0][1] == "Primary"
    for contact in portal.records["contacts"]:
        companies = links[("contacts", "companies")].get(contact.id, [])
        assert len(companies) <= 1
        assert contact.properties.get("associatedcompanyid") == (str(companies[0]) if companies else None)
    for deal in portal.records["deals"]:
        assert len(links[("deals", "companies")][deal.id]) == 1
        assert links[("deals", "line_items")][deal.id]
    for sub in portal.records["subscriptions"]:
        assert len(links[("subscriptions", "companies")][sub.id]) == 1
        assert len(links[("subscriptions", "contacts")][sub.id]) == 1
        assert links[("subscriptions", "line_items")][sub.id]
        (deal_id,) = links[("subscriptions", "deals")][sub.id]  # the deal that sold it
        assert by_id["deals"][deal_id].properties["dealstage"] == "closedwon"
    for fb in portal.records["feedback_submissions"]:
        assert len(links[("feedback_submissions", "contacts")][fb.id]) == 1
    parents = Counter(tid for (ft, tt), m in links.items() if tt == "line_items" for tos in m.values() for tid in tos)
    assert set(parents) == set(by_id["line_items"]) and set(parents.values()) == {1}  # one parent per line item


def test_line_item_amount_is_net_of_discount(portal, malformed):
    for li in portal.records["line_items"]:
        p = li.properties
        if ("line_items", li.id, "price") in malformed:
            continue
        net = float(p["quantity"]) * float(p["price"]) * (100 - float(p["hs_discount_percentage"])) / 100
        assert float(p["amount"]) == pytest.approx(net, abs=0.006), li.id


def test_deal_amount_is_sum_of_its_line_items(portal, by_id, links, malformed):
    bad = {i for t, i, _ in malformed if t == "line_items"}
    for deal in portal.records["deals"]:
        items = links[("deals", "line_items")][deal.id]
        if bad & set(items):
            continue
        total = sum(float(by_id["line_items"][i].properties["amount"]) for i in items)
        assert float(deal.properties["amount"]) == pytest.approx(total, abs=0.01)


def test_mrr_normalised_from_line_items_and_frequency(portal, by_id, links, malformed):
    for sub in portal.records["subscriptions"]:
        p = sub.properties
        months = MONTHS_PER_PERIOD[p["hs_recurring_billing_frequency"]]
        items = [by_id["line_items"][i].properties for i in links[("subscriptions", "line_items")][sub.id]]
        assert all(i["recurringbillingfrequency"] == p["hs_recurring_billing_frequency"] for i in items)
        assert all(i["hs_line_item_currency_code"] == p["hs_currency_code"] for i in items)
        per_period = sum(float(i["amount"]) for i in items)
        assert float(p["hs_mrr"]) == pytest.approx(per_period / months, abs=0.006), sub.id
        if "hs_next_payment_amount" in p:
            assert float(p["hs_next_payment_amount"]) == pytest.approx(per_period, abs=0.006)
        assert all(float(v) > 0 for v, _ in sub.history["hs_mrr"])
        if ("subscriptions", sub.id, "hs_last_payment_amount") not in malformed and "hs_last_payment_amount" in p:
            # a payment is one billing period at the MRR of its day
            assert any(float(p["hs_last_payment_amount"]) == pytest.approx(float(v) * months, abs=0.01)
                       for v, _ in sub.history["hs_mrr"])


def test_subscription_lifecycle_is_consistent(portal):
    statuses = Counter(v for r in portal.records["subscriptions"] for v, _ in r.history["hs_status"])
    assert {"active", "canceled", "past_due"} <= set(statuses)
    for sub in portal.records["subscriptions"]:
        p, hist = sub.properties, sub.history["hs_status"]
        values = [v for v, _ in hist]
        if "canceled" in values:
            assert values[-1] == "canceled" and values.count("canceled") == 1  # a win-back is a new subscription
            assert "hs_next_payment_due_date" not in p
        if "cancellation_requested_date" in p:
            requested = ms_of(p["cancellation_requested_date"])
            assert values[-1] in ("active", "canceled", "past_due")
            if values[-1] == "canceled":
                assert hist[-1][1] >= requested
        if p["hs_status"] == "active" and "cancellation_requested_date" not in p:
            assert date.fromisoformat(p["hs_next_payment_due_date"]) >= datetime.fromtimestamp(
                NOW / 1000, tz=timezone.utc).date()
        if p["hs_status"] == "past_due":
            assert p["hs_last_payment_status"] == "failed"
        if "canceled" not in values and p["hs_status"] != "scheduled":
            assert "hs_last_payment_amount" in p


def test_portal_covers_the_commercial_cases(portal, links):
    subs = portal.records["subscriptions"]
    assert {r.properties["hs_recurring_billing_frequency"] for r in subs} == {"monthly", "quarterly", "annually"}
    currencies = Counter(r.properties["hs_currency_code"] for r in subs)
    assert currencies["USD"] > currencies["EUR"] > 0 and currencies["GBP"] > 0
    assert currencies["USD"] > len(subs) / 2
    ups = downs = 0
    for r in subs:
        values = [float(v) for v, _ in r.history["hs_mrr"]]
        ups += any(b > a for a, b in zip(values, values[1:]))
        downs += any(b < a for a, b in zip(values, values[1:]))
    assert ups > 5 and downs > 5
    assert any("failed" in [v for v, _ in r.history["hs_last_payment_status"]] for r in subs)
    deals = portal.records["deals"]
    stages = Counter(d.properties["dealstage"] for d in deals)
    assert stages["closedwon"] and stages["closedlost"] and len(stages) > 3
    assert Counter(d.properties["dealtype"] for d in deals)["existingbusiness"] > 5
    kinds = Counter(e["kind"] for e in portal.ground_truth)
    assert kinds["reactivation"] > 0 and kinds["churn"] > 20
    customers = {tos[0] for tos in links[("subscriptions", "companies")].values()}
    never = [c for c in portal.records["companies"] if c.id not in customers]
    assert len(never) > 0.1 * len(portal.records["companies"])
    assert all("hs_lifecyclestage_customer_date" not in c.properties for c in never)
    assert sum(r.archived for rs in portal.records.values() for r in rs) >= 3


def test_feedback_groups_follow_hubspot_scales(portal, malformed):
    seen = Counter()
    for fb in portal.records["feedback_submissions"]:
        p = fb.properties
        if ("feedback_submissions", fb.id, "hs_value") in malformed:
            continue
        v, kind, group = int(p["hs_value"]), p["hs_survey_type"], p["hs_response_group"]
        seen[kind] += 1
        if kind == "NPS":
            assert 0 <= v <= 10 and group == ("PROMOTER" if v >= 9 else "PASSIVE" if v >= 7 else "DETRACTOR")
        elif kind == "CSAT":  # HubSpot's 0/1/2: 0 detractor, 1 passive, 2 promoter (METRICS.md §5)
            assert group == ("DETRACTOR", "PASSIVE", "PROMOTER")[v]
        else:
            assert 1 <= v <= 7 and group == ("PROMOTER" if v >= 6 else "PASSIVE" if v >= 4 else "DETRACTOR")
        assert p["hs_submission_timestamp"] == p["hs_createdate"]
    assert seen["NPS"] > 200 and seen["CSAT"] > 50 and seen["CES"] > 20
    assert sum("hs_content" in f.properties for f in portal.records["feedback_submissions"]) > 50


def test_contact_nps_rollups_match_latest_submission(portal, links, by_id, malformed):
    latest: dict[int, tuple[str, str, int]] = {}
    for fb in portal.records["feedback_submissions"]:
        if fb.properties["hs_survey_type"] != "NPS":
            continue
        (cid,) = links[("feedback_submissions", "contacts")][fb.id]
        ts = fb.properties["hs_submission_timestamp"]
        if cid not in latest or ts >= latest[cid][1]:
            latest[cid] = (fb.properties["hs_value"], ts, fb.id)
    assert len(latest) > 100
    for contact in portal.records["contacts"]:
        p = contact.properties
        if contact.id in latest and ("feedback_submissions", latest[contact.id][2], "hs_value") in malformed:
            continue  # an out-of-range rating does not roll up
        if contact.id in latest:
            assert (p["hs_feedback_last_nps_rating"], p["hs_feedback_last_survey_date"]) == latest[contact.id][:2]
        else:
            assert "hs_feedback_last_nps_rating" not in p and "hs_feedback_last_survey_date" not in p


def test_company_usage_is_bounded(portal):
    for c in portal.records["companies"]:
        p = c.properties
        if "product_active_days_30d" not in p:
            continue
        assert 0 <= int(p["product_active_days_30d"]) <= 30
        assert float(p["product_avg_dau_30d"]) <= int(p["product_active_users_30d"]) <= int(p["seats_used"])
        assert int(p["seats_used"]) <= int(p["seats_purchased"]) or p["seats_purchased"] == "0"
        assert int(p["support_open_tickets"]) <= int(p["support_tickets_90d"]) or p["support_tickets_90d"] == "0"


def _churn_events(portal) -> dict[int, list[int]]:
    """company id -> times it decided to leave (cancellation request, or the failed payment for dunning churn)."""
    out = defaultdict(list)
    for e in portal.ground_truth:
        if e["kind"] == "churn":
            t = e["cancel_requested_at"] or e["churned_at"]
            out[e["company_id"]].append(ms_of(t))
    return out


def test_churn_hazard_depends_on_usage(portal):
    events = _churn_events(portal)
    low, high = [0, 0], [0, 0]  # [customer-months, churn decisions in the following month]
    for c in portal.records["companies"]:
        for value, ts in c.history.get("product_active_days_30d", ()):
            days = int(value)
            churned = any(ts < t <= ts + 31 * DAY for t in events.get(c.id, ()))
            if days == 0:
                continue  # after churn
            bucket = low if days <= 10 else high if days >= 20 else None
            if bucket is not None:
                bucket[0] += 1
                bucket[1] += churned
    assert low[0] > 100 and high[0] > 1000
    low_rate, high_rate = low[1] / low[0], high[1] / high[0]
    assert low_rate > 3 * high_rate, (low, high)


def test_customers_look_worse_before_they_churn(portal, links):
    events = _churn_events(portal)

    def means(prop: str) -> tuple[float, float]:
        """Mean of the monthly syncs in the 3 months before the first churn decision, and of never-churned accounts."""
        before, others = [], []
        for c in portal.records["companies"]:
            hist = c.history.get(prop, ())
            if c.id in events:
                first = min(events[c.id])
                before += [int(v) for v, ts in hist if first - 95 * DAY < ts <= first]
            else:
                others += [int(v) for v, _ in hist]
        assert len(before) > 50
        return sum(before) / len(before), sum(others) / len(others)

    days_before, days_others = means("product_active_days_30d")
    assert days_before < days_others - 5
    tickets_before, tickets_others = means("support_open_tickets")
    assert tickets_before > 2 * tickets_others
    # satisfaction too: NPS answered by the account's contacts in the half year before the decision
    company_of = {cid: tos[0] for cid, tos in links[("contacts", "companies")].items()}
    nps_before, nps_others = [], []
    for fb in portal.records["feedback_submissions"]:
        p = fb.properties
        if p["hs_survey_type"] != "NPS" or int(p["hs_value"]) > 10:
            continue
        company = company_of.get(links[("feedback_submissions", "contacts")][fb.id][0])
        if company in events:
            if any(t - 180 * DAY < fb.created_ms <= t for t in events[company]):
                nps_before.append(int(p["hs_value"]))
        else:
            nps_others.append(int(p["hs_value"]))
    assert len(nps_before) > 20
    assert sum(nps_before) / len(nps_before) < sum(nps_others) / len(nps_others) - 1


def test_ground_truth_churn_entries_are_complete(portal, by_id):
    churns = [e for e in portal.ground_truth if e["kind"] == "churn"]
    for e in churns:
        assert e["company_id"] in by_id["companies"] and e["subscription_id"] in by_id["subscriptions"]
        assert e["reason"] in ("voluntary", "involuntary")
        sub = by_id["subscriptions"][e["subscription_id"]].properties
        if e["churned_at"] is not None:
            assert sub["hs_status"] == "canceled"
            assert ms_of(e["churned_at"]) == by_id["subscriptions"][e["subscription_id"]].history["hs_status"][-1][1]
        else:
            assert sub["hs_status"] != "canceled" and "cancellation_requested_date" in sub
            if sub["hs_status"] == "active":  # the paid period has not run out yet
                today = datetime.fromtimestamp(NOW / 1000, timezone.utc).date()
                assert date.fromisoformat(e["cancel_effective_on"]) > today
        assert {"nps_avg_180d", "payment_trouble", "mrr"} <= set(e["drivers"])
        if e["reason"] == "voluntary":
            assert {"at", "active_days_30d", "tickets_90d", "open_tickets", "logins_30d"} <= set(e["drivers"])
            assert 0 < e["hazard"] < 1
        else:
            assert e["drivers"]["payment_trouble"] is True and e["cancel_requested_at"] is None


def test_malformed_values_are_listed_and_present(portal, by_id):
    bad = [e for e in portal.ground_truth if e["kind"] == "malformed"]
    assert {(e["object_type"], e["property"]) for e in bad} >= {
        ("contacts", "date_of_birth"), ("line_items", "price")}
    values = {(e["object_type"], e["property"]): e["value"] for e in bad}
    assert values[("contacts", "date_of_birth")] == "1985-02-30" and values[("line_items", "price")] == "12,50"
    for e in bad:
        assert by_id[e["object_type"]][e["id"]].properties[e["property"]] == e["value"]


def test_ground_truth_file_is_json_lines(tmp_path):
    path = tmp_path / "truth.jsonl"
    p = generate(seed=3, contacts=400, now_ms=NOW, ground_truth_path=path)
    lines = path.read_text(encoding="utf-8").splitlines()
    assert [json.loads(line) for line in lines] == p.ground_truth
    assert any(json.loads(line)["kind"] == "malformed" for line in lines)


@pytest.mark.parametrize("contacts", [pytest.param(1, id="one-contact"), pytest.param(7, id="tiny")])
def test_generate_small_portals(contacts):
    p = generate(seed=2, contacts=contacts, now_ms=NOW)
    assert [r.id for r in p.records["contacts"]] == list(range(101, 101 + contacts))
    assert all(r.created_ms <= NOW for rs in p.records.values() for r in rs)
    ids = {(t, r.id) for t, rs in p.records.items() for r in rs}
    assert all((ft, fid) in ids and (tt, tid) in ids for ft, fid, tt, tid, _ in p.associations)


def test_naive_health_score_ranks_churners(portal):
    """A score anyone could build from the portal (usage and open tickets at a sync) ranks next-month churners."""
    events = _churn_events(portal)
    scored = []  # (risk, churned within 31 days)
    for c in portal.records["companies"]:
        days, tickets = c.history.get("product_active_days_30d", ()), c.history.get("support_open_tickets", ())
        for (d, ts), (t, _) in zip(days, tickets):
            if d != "0":
                scored.append((3 * int(t) - int(d), any(ts < e <= ts + 31 * DAY for e in events.get(c.id, ()))))
    positives = sum(y for _, y in scored)
    assert positives > 30
    # AUC by ranks: the chance that a churner outranks a stayer (ties count half)
    scored.sort()
    rank_sum, i = 0.0, 0
    while i < len(scored):
        j = i
        while j < len(scored) and scored[j][0] == scored[i][0]:
            j += 1
        rank_sum += (i + j + 1) / 2 * sum(y for _, y in scored[i:j])
        i = j
    auc = (rank_sum - positives * (positives + 1) / 2) / (positives * (len(scored) - positives))
    assert auc > 0.7
