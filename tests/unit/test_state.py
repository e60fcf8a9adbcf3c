"""State store contract, run on SQLite and on PostgreSQL (skipped, saying why, when no server is reachable)."""

from __future__ import annotations

import os
import secrets
from datetime import datetime, timedelta, timezone
from urllib.parse import quote

import pytest
import sqlalchemy as sa

from connector.errors import StateError
from connector.state import SCHEMA_VERSION, StateStore, StoredRecord

UTC = timezone.utc
PG_URL = os.environ.get("CONNECTOR_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


def _pg_schema_url(request) -> str:
    """A fresh PostgreSQL schema for one test (dropped afterwards); skip with the reason if no server answers."""
    admin = sa.create_engine(PG_URL, connect_args={"connect_timeout": 3})
    try:
        with admin.begin() as conn:
            schema = f"t_{secrets.token_hex(6)}"
            conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    except Exception as exc:  # noqa: BLE001 - any failure to reach the server means: skip and say why
        admin.dispose()
        pytest.skip(f"PostgreSQL not reachable at {PG_URL}: {exc.__class__.__name__}: {str(exc).splitlines()[0]}")

    def drop() -> None:
        with admin.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()

    request.addfinalizer(drop)
    sep = "&" if "?" in PG_URL else "?"
    return f"{PG_URL}{sep}options={quote(f'-csearch_path={schema}')}"


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def store_url(request, tmp_path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/state/nested/state.db"
    return _pg_schema_url(request)


@pytest.fixture
def store(store_url):
    s = StateStore.open(store_url)
    yield s
    s.close()


def rec(i: int, **props) -> dict:
    return {
        "id": str(i),
        "properties": {"email": f"c{i}@example.com", **props},
        "history": None,
        "archived": False,
        "created_at": T0,
        "updated_at": T0 + timedelta(minutes=i),
        "archived_at": None,
    }


# ---------------------------------------------------------------- records and cursors


def test_open_creates_parent_dirs_and_schema(store, store_url):
    assert store.schema_version() == SCHEMA_VERSION
    if store_url.startswith("sqlite"):
        assert os.path.exists(store_url.removeprefix("sqlite:///"))


def test_save_page_upserts_idempotently(store):
    page = [rec(i) for i in range(1, 6)]
    store.save_page("contacts", page, {"after": "6"})
    store.save_page("contacts", page, {"after": "6"})
    assert store.count_records("contacts") == 5
    store.save_page("contacts", [rec(3, email="new@example.com")], {"after": "7"})
    got = {r.id: r for r in store.iter_records("contacts")}
    assert len(got) == 5
    assert got["3"].properties["email"] == "new@example.com"
    assert got["2"].properties["email"] == "c2@example.com"
    assert store.load_cursor("contacts") == {"after": "7"}


def test_stored_record_round_trips_types(store):
    history = {
        "lifecyclestage": [{"value": "customer", "timestamp": "2026-10-01T00:00:00.000Z", "sourceType": "CRM_UI"}]
    }
    r = rec(7, lifecyclestage="customer", empty=None)
    r["history"] = history
    store.save_page("contacts", [r], None)
    (got,) = list(store.iter_records("contacts"))
    assert isinstance(got, StoredRecord)
    assert got.properties == {"email": "c7@example.com", "lifecyclestage": "customer", "empty": None}
    assert got.history == history
    assert got.created_at == T0 and got.created_at.tzinfo is not None
    assert got.updated_at == T0 + timedelta(minutes=7)
    assert got.archived is False


def test_save_page_without_history_keeps_stored_history(store):
    r = rec(1)
    r["history"] = {"hs_status": [{"value": "active", "timestamp": "2026-01-01T00:00:00.000Z", "sourceType": "API"}]}
    store.save_page("subscriptions", [r], None)
    store.save_page("subscriptions", [rec(1, hs_status="active")], None)
    (got,) = list(store.iter_records("subscriptions"))
    assert got.history == r["history"]
    assert got.properties["hs_status"] == "active"


def test_page_and_cursor_are_atomic(store):
    store.save_page("contacts", [rec(1)], {"after": "2"})
    bad = [rec(2), {"id": "3", "properties": {}, "created_at": "not a date"}]
    with pytest.raises(ValueError):
        store.save_page("contacts", bad, {"after": "4"})
    assert store.count_records("contacts") == 1
    assert store.load_cursor("contacts") == {"after": "2"}


def test_cursor_failure_rolls_back_the_page(store):
    # A cursor that cannot be serialised fails after the records were sent: neither may stay.
    with pytest.raises((sa.exc.StatementError, TypeError)):  # SQLite wraps it, psycopg does not
        store.save_page("contacts", [rec(1), rec(2)], {"after": object()})
    assert store.count_records("contacts") == 0
    assert store.load_cursor("contacts") is None


def test_cursors_are_named_per_object_type(store):
    store.save_page("contacts", [], {"since": "a"})
    store.save_page("contacts", [], {"after": "9"}, cursor_name="archived")
    store.save_page("companies", [], {"since": "b"})
    assert store.load_cursor("contacts") == {"since": "a"}
    assert store.load_cursor("contacts", "archived") == {"after": "9"}
    assert store.load_cursor("companies") == {"since": "b"}
    assert store.load_cursor("deals") is None
    store.save_cursor("contacts", None, "archived")
    assert store.load_cursor("contacts", "archived") is None


def test_iter_records_streams_in_id_order_and_hides_archived(store):
    store.save_page("contacts", [rec(i) for i in range(1, 26)], None)
    assert store.mark_archived("contacts", ["5", "6", "999"], T0) == 2
    ids = [r.id for r in store.iter_records("contacts", batch_size=7)]
    assert ids == sorted(str(i) for i in range(1, 26) if i not in (5, 6))
    assert store.count_records("contacts") == 23
    assert store.count_records("contacts", include_archived=True) == 25
    archived = [r for r in store.iter_records("contacts", include_archived=True) if r.archived]
    assert [r.id for r in archived] == ["5", "6"]
    assert store.archived_among("contacts", ["4", "5", "6", "404"]) == {"5", "6"}


def test_archived_record_restored_by_a_later_page(store):
    store.save_page("deals", [rec(1)], None)
    store.mark_archived("deals", ["1"], T0)
    assert store.count_records("deals") == 0
    store.save_page("deals", [rec(1)], None)
    assert store.count_records("deals") == 1


def test_association_stale_flags_follow_saves_and_refreshes(store):
    store.save_page("companies", [rec(i) for i in range(1, 6)], None, associations_stale=True)
    store.save_page("companies", [rec(9)], None)
    assert store.count_stale("companies") == 5
    # A later save without the flag must not clear a pending refresh.
    store.save_page("companies", [rec(1)], None)
    assert [ids for ids in store.iter_stale_ids("companies", batch_size=2)] == [["1", "2"], ["3", "4"], ["5"]]
    store.replace_associations("companies", "contacts", {"1": [("10", 280)], "2": []}, clear_stale=True)
    assert store.count_stale("companies") == 3
    assert store.mark_associations_stale("companies") == 6
    store.clear_stale("companies", [str(i) for i in range(1, 10)])
    assert store.count_stale("companies") == 0


# ---------------------------------------------------------------- associations


def test_replace_associations_replaces_only_the_given_ids(store):
    store.replace_associations("contacts", "companies", {"1": [("100", 1), ("100", 279)], "2": [("200", 1)]})
    store.replace_associations("contacts", "deals", {"1": [("900", 4)]})
    store.replace_associations("contacts", "companies", {"1": [("101", 279), ("101", 279)]})
    got = {(a.from_id, a.to_type, a.to_id, a.type_id) for a in store.iter_associations("contacts")}
    assert got == {("1", "companies", "101", 279), ("2", "companies", "200", 1), ("1", "deals", "900", 4)}
    assert store.count_associations("contacts", "companies") == 2
    only = list(store.iter_associations(to_type="deals", batch_size=1))
    assert [(a.from_type, a.from_id, a.to_id) for a in only] == [("contacts", "1", "900")]


def test_replace_associations_with_unlabelled_type(store):
    store.replace_associations("deals", "line_items", {"5": [("6", None), ("7", 20)]})
    got = sorted(((a.to_id, a.type_id) for a in store.iter_associations("deals", "line_items")), key=str)
    assert got == [("6", None), ("7", 20)]


def test_association_columns_page_each_pair_whole(store):
    """Columns per (from type, to type) pair, in pages along the index: every association once, none of another
    pair, the same rows as iter_associations (a from id with several targets split across pages included)."""
    store.replace_associations("contacts", "companies", {str(i): [(str(100 + i % 3), 1), ("999", 279)]
                                                          for i in range(1, 8)})
    store.replace_associations("contacts", "deals", {"1": [("900", 4)]})
    store.replace_associations("deals", "line_items", {"5": [("6", None)]})
    assert store.association_pairs("contacts") == [("contacts", "companies"), ("contacts", "deals")]
    assert ("deals", "line_items") in store.association_pairs()
    pages = list(store.iter_association_columns("contacts", "companies", batch_size=3))
    assert [len(p.from_ids) for p in pages] == [3, 3, 3, 3, 2]
    assert all(p.from_type == "contacts" and p.to_type == "companies" for p in pages)
    got = sorted((f, t, k) for p in pages for f, t, k in zip(p.from_ids, p.to_ids, p.type_ids))
    expected = sorted((a.from_id, a.to_id, a.type_id) for a in store.iter_associations("contacts", "companies"))
    assert got == expected and len(got) == 14
    unlabelled = list(store.iter_association_columns("deals", "line_items"))
    assert [(p.from_ids, p.to_ids, p.type_ids) for p in unlabelled] == [(["5"], ["6"], [None])]


# ---------------------------------------------------------------- runs and locks


def test_runs_are_sortable_and_round_trip(store):
    first = store.start_run("pull")
    second = store.start_run("pull")
    assert first < second
    assert len(first) == len("20261123T041500Z-ab12")
    assert store.get_run(first)["status"] == "running"
    store.finish_run(first, "ok", {"records": 3})
    store.finish_run(second, "failed", {"error": "boom"})
    assert store.last_run("pull")["id"] == first
    assert store.last_run("pull")["summary"] == {"records": 3}
    assert store.last_run("pull", status="failed")["id"] == second
    assert store.last_run("sync") is None
    assert store.get_run("nope") is None
    with pytest.raises(StateError):
        store.finish_run("nope", "ok", {})


def test_lock_is_exclusive_until_released(store):
    assert store.acquire_lock("pull", "a", stale_after_s=600)
    assert not store.acquire_lock("pull", "b", stale_after_s=600)
    assert store.acquire_lock("pull", "a", stale_after_s=600)  # re-entrant for its owner
    store.heartbeat("pull", "a")
    store.release_lock("pull", "b")  # not the owner: no effect
    assert not store.acquire_lock("pull", "b", stale_after_s=600)
    store.release_lock("pull", "a")
    assert store.acquire_lock("pull", "b", stale_after_s=600)


def test_stale_lock_is_recovered_and_old_owner_loses_it(store):
    assert store.acquire_lock("pull", "dead", stale_after_s=600)
    with store.engine.begin() as conn:
        conn.execute(
            sa.text("UPDATE locks SET heartbeat_at = :t WHERE name = 'pull'"),
            {"t": (datetime.now(UTC) - timedelta(hours=1)).replace(tzinfo=None)},
        )
    assert not store.acquire_lock("pull", "alive", stale_after_s=7200)
    assert store.acquire_lock("pull", "alive", stale_after_s=60)
    assert store.lock_holder("pull")["owner"] == "alive"
    with pytest.raises(StateError):
        store.heartbeat("pull", "dead")


# ---------------------------------------------------------------- snapshots and metrics


def test_snapshots_latest_and_before(store):
    r1, r2, r3 = store.start_run("sync"), store.start_run("sync"), store.start_run("sync")
    store.save_snapshots(r1, "health", T0, {"c1": {"score": 50}, "c2": {"score": 70}})
    store.save_snapshots(r2, "health", T0 + timedelta(days=1), {"c1": {"score": 55}})
    store.save_snapshots(r2, "segments", T0, {"c1": {"tags": ["a"]}})
    assert store.load_snapshots("health") == {"c1": {"score": 55}}
    assert store.load_snapshots("health", before_run_id=r2) == {"c1": {"score": 50}, "c2": {"score": 70}}
    assert store.load_snapshots("health", before_run_id=r3) == {"c1": {"score": 55}}
    assert store.load_snapshots("health", before_run_id=r1) == {}
    assert store.load_snapshots("nps") == {}
    store.save_snapshots(r2, "health", T0, {"c9": {"score": 1}})  # a re-save replaces, never mixes
    assert store.load_snapshots("health") == {"c9": {"score": 1}}
    assert [run for run, _ in store.snapshot_runs("health")] == [r1, r2]
    assert store.snapshot_runs("health")[0][1] == T0


def test_metrics_round_trip(store):
    store.save_metrics("r1", "2026-10", {"nrr": "1.02", "grr": 0.97})
    store.save_metrics("r2", "2026-10", {"nrr": "1.05"})
    store.save_metrics("r2", "2026-11", {"nrr": "1.10"})
    store.save_metrics("r2", "2026-11", {"nrr": "1.11"})  # same key: replaced
    rows = store.load_metrics("2026-10")
    assert [(r["run_id"], r["data"]) for r in rows] == [("r1", {"nrr": "1.02", "grr": 0.97}), ("r2", {"nrr": "1.05"})]
    assert [r["data"]["nrr"] for r in store.load_metrics()] == ["1.02", "1.05", "1.11"]


# ---------------------------------------------------------------- ledger and enrollments


def test_ledger_plan_outcomes_and_unfinished(store):
    plan = [
        {"object_type": "companies", "record_id": "1", "property": "health_score", "before": None, "after": "71"},
        {"object_type": "companies", "record_id": "2", "property": "health_score", "before": "40", "after": "45"},
        {"object_type": "companies", "record_id": "1", "property": "churn_risk", "before": "low", "after": "high"},
    ]
    store.save_plan("run-a", plan)
    assert [(p["record_id"], p["property"]) for p in store.pending_changes("run-a")] == [
        ("1", "health_score"),
        ("2", "health_score"),
        ("1", "churn_risk"),
    ]
    assert store.unfinished_apply_runs() == ["run-a"]
    store.record_outcomes(
        "run-a",
        [
            {
                "object_type": "companies",
                "record_id": "1",
                "property": "health_score",
                "status": "written",
                "message": None,
            },
            {
                "object_type": "companies",
                "record_id": "2",
                "property": "health_score",
                "status": "failed",
                "message": "INVALID",
            },
        ],
    )
    assert [p["property"] for p in store.pending_changes("run-a")] == ["churn_risk"]
    rows = store.ledger("run-a")
    assert [(r["status"], r["message"], r["before"], r["after"]) for r in rows] == [
        ("written", None, None, "71"),
        ("failed", "INVALID", "40", "45"),
        ("planned", None, "low", "high"),
    ]
    assert rows[0]["updated_at"].tzinfo is not None
    store.record_outcomes(
        "run-a",
        [
            {
                "object_type": "companies",
                "record_id": "1",
                "property": "churn_risk",
                "status": "skipped",
                "message": "unchanged",
            }
        ],
    )
    assert store.unfinished_apply_runs() == []


def test_record_outcomes_is_one_transaction(store):
    store.save_plan(
        "run-b", [{"object_type": "deals", "record_id": "1", "property": "p", "before": None, "after": "x"}]
    )
    with pytest.raises(StateError):
        store.record_outcomes(
            "run-b",
            [
                {"object_type": "deals", "record_id": "1", "property": "p", "status": "written", "message": None},
                {"object_type": "deals", "record_id": "404", "property": "p", "status": "written", "message": None},
            ],
        )
    assert store.ledger("run-b")[0]["status"] == "planned"


def test_enrollments_follow_done_events(store):
    store.record_enrollment("r1", "workflow", "wf-1", "10", "enroll", "done", None)
    store.record_enrollment("r1", "workflow", "wf-1", "11", "enroll", "failed", "not eligible")
    store.record_enrollment("r1", "workflow", "wf-1", "12", "enroll", "done", None)
    store.record_enrollment("r1", "list", "77", "10", "enroll", "done", None)
    store.record_enrollment("r1", "workflow", "wf-1", "12", "enroll", "done", None)  # twice: still once
    assert store.enrollments("workflow", "wf-1") == {"10", "12"}
    store.record_enrollment("r2", "workflow", "wf-1", "10", "unenroll", "done", None)
    store.record_enrollment("r2", "workflow", "wf-1", "12", "unenroll", "failed", "HTTP 500")
    assert store.enrollments("workflow", "wf-1") == {"12"}
    assert store.enrollments("list", "77") == {"10"}
    assert len(store.enrollment_log("r1")) == 5
    with pytest.raises(StateError):
        store.record_enrollment("r2", "workflow", "wf-1", "12", "subscribe", "done", None)


# ---------------------------------------------------------------- migrations


def test_old_schema_is_upgraded_keeping_data(store_url):
    old = StateStore.open(store_url, upgrade_to=1)
    assert old.schema_version() == 1
    old.save_page("contacts", [rec(1)], {"since": "x"})
    with old.engine.connect() as conn:
        assert not old.engine.dialect.has_table(conn, "ledger")
    old.close()
    new = StateStore.open(store_url)
    assert new.schema_version() == SCHEMA_VERSION
    assert [r.id for r in new.iter_records("contacts")] == ["1"]
    new.save_plan("r", [{"object_type": "contacts", "record_id": "1", "property": "p", "before": None, "after": "1"}])
    assert len(new.ledger("r")) == 1
    new.close()


def test_newer_schema_is_refused(store_url):
    s = StateStore.open(store_url)
    with s.engine.begin() as conn:
        conn.execute(sa.text("UPDATE schema_version SET version = :v"), {"v": SCHEMA_VERSION + 1})
    s.close()
    with pytest.raises(StateError, match="newer than this connector"):
        StateStore.open(store_url)


def test_unreachable_store_is_a_state_error_without_password(tmp_path):
    with pytest.raises(StateError) as info:
        StateStore.open("postgresql+psycopg://u:s3cret@127.0.0.1:1/none?connect_timeout=2")
    assert "s3cret" not in str(info.value)


def test_naive_datetime_is_refused(store):
    with pytest.raises(StateError):
        store.save_snapshots("r", "health", datetime(2026, 1, 1), {"c": {}})


def test_history_timestamps_become_iso_newest_first(store):
    r = rec(1)
    r["history"] = {
        "hs_status": [
            {"value": "active", "timestamp": T0, "sourceType": "API"},
            {"value": "canceled", "timestamp": T0 + timedelta(days=3), "sourceType": "CRM_UI"},
        ]
    }
    store.save_page("subscriptions", [r], None)
    (got,) = list(store.iter_records("subscriptions"))
    assert got.history == {
        "hs_status": [
            {"value": "canceled", "timestamp": "2026-11-04T12:00:00.000Z", "sourceType": "CRM_UI"},
            {"value": "active", "timestamp": "2026-11-01T12:00:00.000Z", "sourceType": "API"},
        ]
    }


def test_archiving_drops_the_records_associations(store):
    store.save_page("deals", [rec(1), rec(2), rec(3)], None)
    store.replace_associations("deals", "companies", {"1": [("10", 5)], "2": [("20", 5)], "3": [("30", 5)]})
    store.mark_archived("deals", ["1"], T0)
    gone = rec(2)
    gone["archived"] = True
    store.save_page("deals", [gone], None)
    assert [(a.from_id, a.to_id) for a in store.iter_associations("deals")] == [("3", "30")]


def test_last_page_of_a_full_pass_archives_unseen_records(store):
    store.save_page("contacts", [rec(1), rec(2), rec(3)], None)
    store.replace_associations("contacts", "companies", {"2": [("9", 1)]})
    cut = datetime.now(UTC)
    store.save_page("contacts", [rec(1)], {"phase": "full", "after": "3"})
    store.save_page("contacts", [rec(3)], {"phase": "incremental"}, archive_unseen_before=cut)
    assert [r.id for r in store.iter_records("contacts")] == ["1", "3"]
    assert store.load_records("contacts", ["2"])["2"].archived
    assert store.count_associations("contacts") == 0
    assert store.archive_unseen("contacts", cut) == 0  # idempotent


def test_corrupt_sqlite_file_is_a_state_error(tmp_path):
    path = tmp_path / "state.db"
    path.write_bytes(b"this is not a database" * 200)
    with pytest.raises(StateError, match="not a database"):
        StateStore.open(f"sqlite:///{path}")


def test_database_failure_mid_run_is_a_state_error(store):
    with store.engine.begin() as conn:
        conn.execute(sa.text("DROP TABLE cursors"))
    with pytest.raises(StateError, match="state store failure"):
        store.save_page("contacts", [rec(1)], {"after": "2"})
    assert store.count_records("contacts") == 0  # the page went with the failed cursor


def test_concurrent_opens_of_a_fresh_store_all_succeed(store_url):
    from concurrent.futures import ThreadPoolExecutor

    def open_one(_):
        s = StateStore.open(store_url)
        try:
            return s.schema_version()
        finally:
            s.close()

    with ThreadPoolExecutor(4) as pool:
        assert list(pool.map(open_one, range(4))) == [SCHEMA_VERSION] * 4
