"""Plausibility rules of the default mapping pack, through the sandbox: an implausible value in the CRM is listed as a
data issue and changes nothing the connector writes (every written value equals a sync of the same portal without
the bad value)."""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from pydantic import SecretStr

from connector import pipeline
from connector.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
SEED, SIZE = 23, 300
NOW_MS = int(time.time() // 60 * 60_000)  # the generator's today: the bad value is written a moment after it
AS_OF = datetime.fromtimestamp(NOW_MS / 1000, timezone.utc) + timedelta(hours=1)


def _owned(portal) -> dict:
    return {(t, rid, name): value
            for t in ("companies", "contacts", "deals")
            for rid, rec in portal.stores[t].records.items()
            for name, value in rec.props.items() if name.startswith("retention_")}


def _sync(sandbox, tmp_path: Path, name: str):
    settings = Settings(_env_file=None, token=SecretStr(sandbox.token), base_url=sandbox.base_url,
                        state_url=f"sqlite:///{tmp_path / name}.db", mappings_dir=ROOT / "mappings")
    summary, computed, _ = pipeline.run_sync(settings, as_of=AS_OF)
    assert summary.failures == 0
    return computed


def _paying_subscription(portal) -> int:
    links = portal.assoc[("subscriptions", "companies")]
    return next(rid for rid, rec in sorted(portal.stores["subscriptions"].records.items())
                if rec.props.get("hs_status") == "active" and float(rec.props.get("hs_mrr") or 0) > 0 and links.get(rid))


def _paying_company(portal) -> int:
    return next(iter(portal.assoc[("subscriptions", "companies")][_paying_subscription(portal)]))


def _line_item(portal) -> int:
    return min(rid for rid, rec in portal.stores["line_items"].records.items() if rec.props.get("hs_discount_percentage"))


RULES = [
    pytest.param("subscriptions", _paying_subscription, "hs_mrr", "-635", "out of range", id="negative-mrr"),
    pytest.param("subscriptions", _paying_subscription, "hs_mrr", "", "empty value", id="empty-mrr"),
    pytest.param("line_items", _line_item, "hs_discount_percentage", "150", "out of range", id="discount-over-100"),
    pytest.param("companies", _paying_company, "seats_used", "-3", "out of range", id="negative-seats"),
    pytest.param("companies", _paying_company, "product_logins_30d", "9" * 40, "out of range", id="40-digit-logins"),
]


@pytest.fixture(scope="module")
def clean_values(tmp_path_factory):
    from connector.sandbox.server import running_sandbox

    with running_sandbox(seed=SEED, size=SIZE, profile="unlimited", now=NOW_MS) as sandbox:
        _sync(sandbox, tmp_path_factory.mktemp("clean"), "clean")
        return _owned(sandbox.portal)


@pytest.mark.parametrize(("object_type", "pick", "prop", "bad", "reason"), RULES)
def test_implausible_value_is_a_data_issue_and_changes_no_written_value(
        sandbox_factory, tmp_path, clean_values, object_type, pick, prop, bad, reason):
    sandbox = sandbox_factory(seed=SEED, size=SIZE, profile="unlimited", now=NOW_MS)
    record_id = pick(sandbox.portal)
    sandbox.portal.update(object_type, str(record_id), {prop: bad})

    computed = _sync(sandbox, tmp_path, "bad")

    listed = [i for i in computed.portfolio.issues
              if (i.object_type, i.record_id, i.property) == (object_type, str(record_id), prop)]
    assert listed, f"{object_type} {record_id} {prop}={bad!r} is not listed as a data issue"
    assert listed[0].raw_value in (bad, None) and reason in listed[0].reason
    written = _owned(sandbox.portal)
    differing = {k: (written.get(k), clean_values.get(k)) for k in written.keys() | clean_values.keys()
                 if written.get(k) != clean_values.get(k)}
    assert not differing, f"{len(differing)} written values differ, e.g. {sorted(differing.items())[:3]}"
