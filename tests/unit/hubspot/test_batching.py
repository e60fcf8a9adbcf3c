"""Behaviours of real HubSpot the sandbox does not produce, over real HTTP from a tiny local server.

HubSpot refuses a whole batch update with one 400 for a single bad value, and pages v4 association batch reads
per input; the sandbox answers 207 and never pages associations, so these paths get their own small server.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from connector.errors import RejectedError
from connector.hubspot import HubSpotClient
from connector.settings import Settings


class _Handler(BaseHTTPRequestHandler):
    server: "_Server"

    def log_message(self, *args) -> None:  # keep test output quiet
        pass

    def _send(self, status: int, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json;charset=utf-8")
        self.send_header("x-hubspot-correlation-id", "c0ffee00-0000-0000-0000-000000000000")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        body = json.loads(self.rfile.read(int(self.headers["content-length"])))
        self.server.requests.append((self.path, body))
        if self.path.startswith("/crm/v3/objects/unknowntype/"):
            self._send(400, {"status": "error", "message": "Unable to infer object type from: unknowntype",
                             "correlationId": "c0ffee00"})
            return
        if self.path.endswith("/batch/update"):
            bad = [i["id"] for i in body["inputs"] if "BAD" in i["properties"].values()]
            if bad:
                # HubSpot's whole-batch refusal: no per-record attribution, every input refused.
                self._send(400, {"status": "error", "category": "VALIDATION_ERROR", "correlationId": "c0ffee00",
                                 "message": 'Property values were not valid: [{"isValid":false,"message":"BAD was not '
                                            'one of the allowed options","error":"INVALID_OPTION","name":"band"}]'})
                return
            self.server.written.extend(i["id"] for i in body["inputs"])
            self._send(200, {"status": "COMPLETE", "results": [{"id": i["id"], "properties": i["properties"]}
                                                               for i in body["inputs"]],
                             "startedAt": "2026-01-01T00:00:00.000Z", "completedAt": "2026-01-01T00:00:00.100Z"})
            return
        if self.path.endswith("/search"):
            flt = body["filterGroups"][0]["filters"][0]
            rows = sorted((r for r in self.server.search_rows if r[1] >= int(flt["value"])), key=lambda r: r[1])
            offset = int(body.get("after") or 0)
            if offset >= self.server.search_cap:  # a deep page refused below the documented 10,000
                self._send(400, {"status": "error", "category": "VALIDATION_ERROR", "correlationId": "c0ffee00",
                                 "message": "There was a problem with the request."})
                return
            chunk = rows[offset : offset + body["limit"]]
            answer: dict = {"total": len(rows), "results": [
                {"id": rid, "properties": {"hs_lastmodifieddate": str(ms)}, "createdAt": "2026-01-01T00:00:00.000Z",
                 "updatedAt": "2026-01-01T00:00:00.000Z", "archived": False} for rid, ms in chunk]}
            if offset + body["limit"] < len(rows):
                answer["paging"] = {"next": {"after": str(offset + body["limit"])}}
            self._send(200, answer)
            return
        if "/associations/" in self.path:
            results = []
            for item in body["inputs"]:
                pages = self.server.associations.get(item["id"], [])
                index = int(item.get("after") or 0)
                if index >= len(pages):
                    continue
                result = {"from": {"id": item["id"]},
                          "to": [{"toObjectId": to, "associationTypes": [{"category": "HUBSPOT_DEFINED", "typeId": 2,
                                                                          "label": None}]} for to in pages[index]]}
                if index + 1 < len(pages):
                    result["paging"] = {"next": {"after": str(index + 1), "link": "ignored"}}
                results.append(result)
            self._send(200, {"status": "COMPLETE", "results": results, "startedAt": "2026-01-01T00:00:00.000Z",
                             "completedAt": "2026-01-01T00:00:00.100Z"})
            return
        self._send(404, {"status": "error", "message": "no route", "category": "OBJECT_NOT_FOUND"})


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.requests: list[tuple[str, dict]] = []
        self.written: list[str] = []
        self.associations: dict[str, list[list[int]]] = {}
        self.search_rows: list[tuple[str, int]] = []
        self.search_cap = 10_000


@pytest.fixture
def server() -> Iterator[_Server]:
    srv = _Server()
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()


def _client(server: _Server) -> HubSpotClient:
    settings = Settings(_env_file=None, token="test-token", base_url=f"http://127.0.0.1:{server.server_port}")
    return HubSpotClient(settings, sleep=lambda s: None)


@pytest.mark.parametrize(
    ("size", "bad"),
    [
        pytest.param(10, {"r3"}, id="one-bad-in-ten"),
        pytest.param(100, {"r0", "r99"}, id="two-bad-at-the-edges"),
        pytest.param(2, {"r0", "r1"}, id="all-bad"),
        pytest.param(150, {"r120"}, id="bad-in-the-second-batch-of-100"),
    ],
)
def test_batch_update_whole_batch_400_is_bisected(server, size, bad):
    client = _client(server)
    updates = [(f"r{i}", {"band": "BAD" if f"r{i}" in bad else "green"}) for i in range(size)]
    result = client.batch_update("contacts", updates)
    assert {f.record_id for f in result.failed} == bad
    assert all(f.category == "VALIDATION_ERROR" and "INVALID_OPTION" in f.message for f in result.failed)
    assert sorted(result.ok) == sorted(server.written) == sorted(rid for rid, _ in updates if rid not in bad)
    # Bisecting costs about 2·log2(n) calls per bad record, not one call per record.
    assert client.stats.calls["batch_update"] <= 2 + len(bad) * 2 * max(1, (min(size, 100) - 1).bit_length())
    assert all(len(body["inputs"]) <= 100 for _, body in server.requests)


def test_batch_update_merges_duplicate_ids(server):
    client = _client(server)
    result = client.batch_update("contacts", [("r1", {"a": "1"}), ("r1", {"b": "2"}), ("r2", {"a": "3"})])
    assert result.ok == ["r1", "r2"]
    (_, body), = server.requests
    assert body["inputs"][0]["properties"] == {"a": "1", "b": "2"}


def test_fetch_associations_follows_each_inputs_paging(server):
    server.associations = {"1": [[11, 12], [13], [14]], "2": [[21]], "3": []}
    client = _client(server)
    links = client.fetch_associations("companies", "contacts", ["1", "2", "3"])
    assert links == {"1": [("11", 2), ("12", 2), ("13", 2), ("14", 2)], "2": [("21", 2)], "3": []}
    # The follow-up calls only carry the inputs that still have pages, with their own cursor.
    assert [body["inputs"] for _, body in server.requests] == [
        [{"id": "1"}, {"id": "2"}, {"id": "3"}],
        [{"id": "1", "after": "1"}],
        [{"id": "1", "after": "2"}],
    ]


def test_fetch_associations_at_most_1000_ids_per_call(server):
    client = _client(server)
    links = client.fetch_associations("companies", "contacts", [str(i) for i in range(2_500)])
    assert len(links) == 2_500
    assert [len(body["inputs"]) for _, body in server.requests] == [1_000, 1_000, 500]


def test_iter_modified_since_restarts_when_a_deep_page_is_refused(server):
    from datetime import UTC, datetime

    server.search_rows = [(str(i), 1_000 + i // 3) for i in range(1, 101)]
    server.search_cap = 30  # HubSpot refuses paging deeper than it documents: the client restarts, loses nothing
    client = _client(server)
    ids = [r["id"] for p in client.iter_modified_since("companies", datetime.fromtimestamp(0, UTC), [], page_size=10)
           for r in p.records]
    assert sorted(ids, key=int) == [str(i) for i in range(1, 101)]
    assert len(ids) == len(set(ids))
    assert client.stats.calls["search"] > 10  # the refused pages plus the restarted windows


def test_batch_update_400_about_the_request_is_raised_not_bisected(server):
    client = _client(server)
    with pytest.raises(RejectedError, match="Unable to infer object type"):
        client.batch_update("unknowntype", [(f"r{i}", {"a": "1"}) for i in range(50)])
    assert client.stats.calls["batch_update"] == 1
