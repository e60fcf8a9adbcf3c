"""HubSpotClient against recorded sandbox traffic: one cassette per behaviour (replay-only in CI).

Every test runs the real client (SDK, requests, pacing, retries, translation) over the recorded answers. When
recording (``--record-mode=once|rewrite``) the same tests run against a live sandbox and also check its state.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from connector.errors import MissingScopesError, NotFoundError
from connector.hubspot import HubSpotClient

CONTACT_PROPS = ["email", "firstname", "lifecyclestage"]


def _live_contact_ids(portal, archived: bool = False) -> set[str]:
    return {str(i) for i in portal.stores["contacts"].ids(archived)}


def _first_ids(client: HubSpotClient, object_type: str, n: int) -> list[str]:
    page = next(iter(client.iter_pages(object_type, ["hs_object_id"])))
    return [r["id"] for r in page.records[:n]]


@pytest.mark.vcr
def test_iter_pages_follows_after_to_the_last_page(target_factory):
    target = target_factory(seed=1, size=200)
    client = target.client()
    pages = list(client.iter_pages("contacts", CONTACT_PROPS))
    ids = [r["id"] for p in pages for r in p.records]
    assert len(pages) == 2 and [len(p.records) for p in pages] == [100, 100]
    assert pages[0].next_after is not None and pages[-1].next_after is None
    assert ids == sorted(ids, key=int) and len(set(ids)) == len(ids)
    assert all(p.calls == 1 for p in pages)
    record = pages[0].records[0]
    assert set(record["properties"]) >= set(CONTACT_PROPS)
    assert all(v is None or isinstance(v, str) for v in record["properties"].values())
    assert record["created_at"].tzinfo == UTC and record["updated_at"] >= record["created_at"]
    assert record["archived"] is False and record["archived_at"] is None
    assert client.stats.calls["list"] == 2
    assert client.stats.burst_max is not None  # learnt from the headers
    if target.portal is not None:
        assert set(ids) == _live_contact_ids(target.portal)


@pytest.mark.vcr
def test_iter_pages_archived_records(target_factory):
    target = target_factory(seed=1, size=200)
    client = target.client()
    if target.portal is not None:
        # Archive a few deals (as a user deleting them would), whatever the seed generated.
        for deal_id in sorted(target.portal.stores["deals"].ids(False))[:3]:
            target.portal.archive("deals", str(deal_id))
    records = [r for p in client.iter_pages("deals", ["dealname"], archived=True) for r in p.records]
    assert len(records) >= 3
    assert all(r["archived"] and r["archived_at"] is not None for r in records)
    if target.portal is not None:
        assert {r["id"] for r in records} == {str(i) for i in target.portal.stores["deals"].ids(True)}


@pytest.mark.vcr
def test_iter_pages_long_property_list_split_merges_per_id(target_factory):
    target = target_factory(seed=1, size=200)
    client = target.client()
    client.url_budget = 60  # as if the portal had hundreds of properties: most go in a batch read body
    props = ["name", "domain", "industry", "numberofemployees", "seats_used", "seats_purchased", "country"]
    pages = list(client.iter_pages("companies", props))
    assert all(p.calls == 2 for p in pages if p.records)  # one list call + one batch read, never one per chunk
    for record in (r for p in pages for r in p.records):
        assert set(record["properties"]) >= set(props)
        assert record["properties"]["name"]  # merged on the right id: every company has a name
    assert client.stats.calls["batch_read"] == len([p for p in pages if p.records])


@pytest.mark.vcr
def test_iter_modified_since_restarts_before_the_10k_cap(target_factory):
    target = target_factory(seed=1, size=10_300)
    client = target.client()
    since = datetime(2000, 1, 1, tzinfo=UTC)
    ids: list[str] = []
    last = since
    for page in client.iter_modified_since("contacts", since, ["email"]):
        for record in page.records:
            modified = datetime.fromisoformat(record["properties"]["lastmodifieddate"].replace("Z", "+00:00"))
            assert modified >= since
            ids.append(record["id"])
            last = max(last, modified)
    # More than 10,000 results came back through one cursor, none twice, none lost.
    assert len(ids) > 10_000
    assert len(set(ids)) == len(ids)
    # 50 pages of 200 reach the cap; the restart re-reads from the last timestamp seen.
    assert client.stats.calls["search"] > 50
    if target.portal is not None:
        assert set(ids) == _live_contact_ids(target.portal)


@pytest.mark.vcr
def test_batch_update_207_splits_ok_and_failed(target_factory):
    target = target_factory(seed=1, size=200)
    client = target.client()
    good, bad_value = _first_ids(client, "contacts", 2)
    result = client.batch_update("contacts", [
        (good, {"lifecyclestage": "customer", "jobtitle": "Head of Ops"}),
        ("999999999", {"jobtitle": "ghost"}),
        (bad_value, {"lifecyclestage": "not-a-stage"}),
    ])
    assert result.ok == [good]
    failed = {f.record_id: f for f in result.failed}
    assert set(failed) == {"999999999", bad_value}
    assert failed["999999999"].category == "OBJECT_NOT_FOUND"
    assert "not-a-stage" in failed[bad_value].message
    assert client.stats.calls["batch_update"] == 1  # a 207 needs no bisecting
    if target.portal is not None:
        assert target.portal.get("contacts", int(good)).props["jobtitle"] == "Head of Ops"


@pytest.mark.vcr
def test_429_then_success(target_factory):
    target = target_factory(seed=1, size=200, faults="seq:429,200")
    client = target.client()
    page = next(iter(client.iter_pages("contacts", ["email"])))
    assert len(page.records) == 100
    stats = client.stats
    assert (stats.rate_limited, stats.retries, stats.calls["list"]) == (1, 1, 2)


@pytest.mark.vcr
def test_5xx_and_423_retried_then_success(target_factory):
    target = target_factory(seed=1, size=200)
    client = target.client()
    ids = _first_ids(client, "contacts", 3)
    if target.portal is not None:
        target.portal.set_faults("seq:503,423,502,200")
    records = client.fetch_records("contacts", ids, ["email"])
    assert sorted(r["id"] for r in records) == sorted(ids)
    assert client.stats.retries == 3
    assert client.stats.rate_limited == 0


@pytest.mark.vcr
def test_401_refresh(target_factory, record_mode):
    target = target_factory(seed=1, size=200, profile="oauth")
    if target.portal is not None:
        oauth = target.portal.oauth_client
        creds = {"client_id": oauth.client_id, "client_secret": oauth.client_secret, "refresh_token": oauth.refresh_token}
    else:
        creds = {"client_id": "replay-id", "client_secret": "replay-secret", "refresh_token": "replay-refresh"}
    now = [1_000.0]
    client = HubSpotClient(target.settings(token=None, **creds), sleep=lambda s: None, clock=lambda: now[0])
    ids = _first_ids(client, "contacts", 2)  # the first call fetches an access token
    assert client.stats.token_refreshes == 1
    now[0] += 1_600  # past expires_in (1,800 s) minus the margin: refreshed before HubSpot refuses it
    assert len(client.fetch_records("contacts", ids, ["email"])) == 2
    assert client.stats.token_refreshes == 2
    if target.portal is not None:
        target.portal.expire_token(client._auth._access)  # revoked early: the next call meets a 401
    assert len(client.fetch_records("contacts", ids, ["email"])) == 2
    stats = client.stats
    assert stats.token_refreshes == 3
    assert stats.calls["batch_read"] == 3  # the refused attempt, then the same call with the new token
    assert stats.retries == 0  # a refresh is not a retry


@pytest.mark.vcr
def test_403_missing_scopes(target_factory):
    target = target_factory(seed=1, size=200)
    token = target.token
    if target.portal is not None:
        token = target.portal.create_token(scopes=["crm.objects.contacts.read"])
    client = target.client(token=token)
    required = {"crm.objects.contacts.read", "crm.objects.deals.read", "crm.lists.write", "automation",
                "crm.schemas.contacts.write"}
    assert client.check_scopes(required) == required - {"crm.objects.contacts.read"}
    with pytest.raises(MissingScopesError) as info:
        client.require_scopes(required)
    assert set(info.value.scopes) == required - {"crm.objects.contacts.read"}
    with pytest.raises(MissingScopesError) as direct:
        client.fetch_records("deals", ["1"], ["dealname"])
    assert "crm.objects.deals.read" in direct.value.scopes
    assert direct.value.status == 403 and direct.value.correlation_id
    assert client.stats.retries == 0


@pytest.mark.vcr
def test_fetch_with_history_50_per_call(target_factory):
    target = target_factory(seed=1, size=200)
    client = target.client()
    ids = _first_ids(client, "contacts", 60)
    records = client.fetch_with_history("contacts", ids, ["email", "lifecyclestage"], ["lifecyclestage"])
    assert sorted(r["id"] for r in records) == sorted(ids)
    assert client.stats.calls["batch_read"] == 2  # 50 + 10
    for record in records:
        history = record["history"]["lifecyclestage"]
        assert history and all(h["timestamp"].tzinfo == UTC for h in history)
        # The newest entry is the current value.
        newest = max(history, key=lambda h: h["timestamp"])
        assert newest["value"] == record["properties"]["lifecyclestage"]


@pytest.mark.vcr
def test_fetch_associations_every_id_a_key(target_factory):
    target = target_factory(seed=1, size=200)
    client = target.client()
    ids = _first_ids(client, "companies", 20) + ["999999999"]
    links = client.fetch_associations("companies", "contacts", ids)
    assert set(links) == set(ids)
    assert links["999999999"] == []
    linked = [pair for pairs in links.values() for pair in pairs]
    assert linked and all(isinstance(to_id, str) and to_id.isdigit() for to_id, _ in linked)
    assert {type_id for _, type_id in linked} <= {2, 280}
    assert client.stats.calls["associations"] == 1


@pytest.mark.vcr
def test_properties_provisioning(target_factory):
    target = target_factory(seed=1, size=200)
    client = target.client()
    assert client.ensure_property_group("companies", "retention_connector", "Retention connector") is True
    assert client.ensure_property_group("companies", "retention_connector", "Retention connector") is False
    band = {"name": "rc_health_band", "label": "Health band", "type": "enumeration", "fieldType": "select",
            "groupName": "retention_connector",
            "options": [{"label": "Green", "value": "green"}, {"label": "Yellow", "value": "yellow"}]}
    score = {"name": "rc_health_score", "label": "Health score", "type": "number", "fieldType": "number",
             "groupName": "retention_connector"}
    first = client.ensure_properties("companies", [band, score])
    assert sorted(first["created"]) == ["rc_health_band", "rc_health_score"]
    band_v2 = {**band, "options": [{"label": "Red", "value": "red"}, {"label": "Yellow!", "value": "yellow"}]}
    second = client.ensure_properties("companies", [band_v2, score])
    assert second == {"created": [], "updated": ["rc_health_band"], "unchanged": ["rc_health_score"]}
    defined = {p["name"]: p for p in client.fetch_properties("companies")}
    options = [(o["value"], o["label"]) for o in defined["rc_health_band"]["options"]]
    # Added, never removed or relabelled.
    assert options == [("green", "Green"), ("yellow", "Yellow"), ("red", "Red")]


@pytest.mark.vcr
def test_lists_membership(target_factory):
    target = target_factory(seed=1, size=200)
    client = target.client()
    ids = _first_ids(client, "contacts", 3)
    assert client.find_list("At risk (connector)", "0-1") is None
    created = client.create_list("At risk (connector)", "0-1")
    list_id = str(created["listId"])
    again = client.create_list("At risk (connector)", "0-1")  # a retried create finds the list instead
    assert str(again["listId"]) == list_id
    assert str(client.find_list("At risk (connector)", "0-1")["listId"]) == list_id
    assert sorted(client.add_to_list(list_id, ids)) == sorted(ids)
    assert client.add_to_list(list_id, ids[:1]) == []  # already a member
    assert sorted(client.iter_list_members(list_id)) == sorted(ids)
    assert client.remove_from_list(list_id, ids[:2]) == ids[:2]
    assert list(client.iter_list_members(list_id)) == ids[2:]


@pytest.mark.vcr
def test_workflow_enrollment(target_factory):
    target = target_factory(seed=1, size=200)
    client = target.client()
    flows = {f["name"]: str(f["id"]) for f in client.fetch_workflows()}
    assert "At-risk save play" in flows
    contact = next(iter(client.iter_pages("contacts", ["email"]))).records[0]
    email = contact["properties"]["email"]
    workflow = flows["At-risk save play"]
    client.enroll_contact(workflow, email)
    if target.portal is not None:
        assert int(contact["id"]) in target.portal.enrollments[int(workflow)]
    client.unenroll_contact(workflow, email)
    if target.portal is not None:
        assert int(contact["id"]) not in target.portal.enrollments[int(workflow)]
    with pytest.raises(NotFoundError) as info:
        client.enroll_contact(workflow, "nobody@example.invalid")
    assert "nobody@" not in str(info.value)  # e-mails never in messages


@pytest.mark.vcr
def test_iter_modified_since_long_property_list_stays_under_the_body_limit(target_factory):
    target = target_factory(seed=1, size=200)
    client = target.client()
    props = ["email", "firstname", "lastname", "jobtitle", "lifecyclestage"] + [f"custom_property_{i:03d}" for i in range(150)]
    pages = list(client.iter_modified_since("contacts", datetime(2000, 1, 1, tzinfo=UTC), props))
    records = [r for p in pages for r in p.records]
    assert len(records) == 200 and len({r["id"] for r in records}) == 200
    # Search carried only the timestamp; everything else came by batch read (2 per page of 200), merged per id.
    assert client.stats.calls["search"] == 1 and client.stats.calls["batch_read"] == 2
    assert all(r["properties"]["email"] and "lastmodifieddate" in r["properties"] for r in records)
    assert all("jobtitle" in r["properties"] and "lifecyclestage" in r["properties"] for r in records)
