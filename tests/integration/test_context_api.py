"""The Context API over HTTP on both stores (SQLite, PostgreSQL), without Redis (in-process limiter).

Redis-backed parts (shared rate limits, the latest-version cache, revocation markers)
and the concurrency tests against a live server are in test_context_api_redis.py.
"""

from __future__ import annotations

import inspect
import json

import orjson
import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from sqlalchemy import delete, select, text

from agents import tokens
from agents.context.models import ContextVersion
from agents.store.tables import AuditEntry
from bot.api.json_body import API_BODY_MAX_BYTES
from bot.app import create_app
from tests.conftest import TEST_SECRET
from tests.context_api_support import Clock, api_app, bearer, expired_token, issue
from tests.helpers import make_platform

URL = "/api/v1/contexts/octo/hello/wowvision/job-1"


@pytest.fixture
def client(store):
    with TestClient(api_app(store)) as client:
        yield client


@pytest.fixture
def token(store):
    return issue(store, installation_id=1)


def put(client, token, url=URL, data=None, if_match=None, **body):
    headers = bearer(token)
    if if_match is not None:
        headers["If-Match"] = if_match
    return client.put(url, json={"data": data if data is not None else {}, **body}, headers=headers)


# --------------------------------------------------------------------------- store and retrieve


def test_put_creates_version_1_then_if_match_writes_the_next(client, token):
    created = put(client, token, data={"step": 1}, summary="first", tags=["draft"])
    assert created.status_code == 201 and created.json() == {"version": 1}
    assert created.headers["etag"] == '"1"'
    assert created.headers["location"] == URL + "?version=1"
    second = put(client, token, data={"step": 2}, if_match='"1"')
    assert second.status_code == 201 and second.json() == {"version": 2} and second.headers["etag"] == '"2"'

    latest = client.get(URL, headers=bearer(token))
    assert latest.status_code == 200 and latest.headers["etag"] == '"2"'
    assert latest.json()["data"] == {"step": 2} and latest.json()["version"] == 2
    first = client.get(URL, params={"version": 1}, headers=bearer(token))
    assert first.headers["etag"] == '"1"'
    assert {key: first.json()[key] for key in ("owner", "repo", "agent", "scope", "data", "summary", "tags")} == {
        "owner": "octo",
        "repo": "hello",
        "agent": "wowvision",
        "scope": "job-1",
        "data": {"step": 1},
        "summary": "first",
        "tags": ["draft"],
    }


def test_missing_stale_or_pointless_if_match_is_409_never_an_overwrite(client, token, store):
    assert put(client, token, data={"v": 1}).status_code == 201
    assert put(client, token, data={"v": 2}, if_match='"1"').status_code == 201
    missing = put(client, token, data={"lost": True})
    stale = put(client, token, data={"lost": True}, if_match='"1"')
    assert missing.status_code == stale.status_code == 409
    assert "If-Match" in missing.json()["error"] and "changed since version 1" in stale.json()["error"]
    on_nothing = put(client, token, url=URL.replace("job-1", "job-2"), data={}, if_match='"1"')
    zero = put(client, token, url=URL.replace("job-1", "job-3"), data={}, if_match='"0"')
    assert on_nothing.status_code == zero.status_code == 409
    with store.reading() as session:
        versions = session.scalars(select(ContextVersion.data).order_by(ContextVersion.version)).all()
    assert versions == [{"v": 1}, {"v": 2}]


def test_two_writers_on_the_same_version_one_wins_one_gets_409(client, store):
    alice, bob = issue(store), issue(store)
    put(client, alice, data={"n": 0})
    read_by_both = client.get(URL, headers=bearer(alice)).headers["etag"]
    first = put(client, alice, data={"by": "alice"}, if_match=read_by_both)
    second = put(client, bob, data={"by": "bob"}, if_match=read_by_both)
    assert (first.status_code, second.status_code) == (201, 409)
    assert client.get(URL, headers=bearer(bob)).json()["data"] == {"by": "alice"}


def test_malformed_if_match_is_422(client, token):
    put(client, token)
    for value in ("*", "abc", '"1", "2"', 'W/"1"'):
        assert put(client, token, if_match=value).status_code == 422, value


def test_if_none_match_answers_304_with_the_etag(client, token):
    put(client, token, data={"a": 1})
    same = client.get(URL, headers={**bearer(token), "If-None-Match": '"1"'})
    assert same.status_code == 304 and same.headers["etag"] == '"1"' and same.content == b""
    assert client.get(URL, headers={**bearer(token), "If-None-Match": 'W/"1"'}).status_code == 304
    assert client.get(URL, headers={**bearer(token), "If-None-Match": '"7", "1"'}).status_code == 304
    put(client, token, data={"a": 2}, if_match='"1"')
    changed = client.get(URL, headers={**bearer(token), "If-None-Match": '"1"'})
    assert changed.status_code == 200 and changed.headers["etag"] == '"2"'
    old = client.get(URL, params={"version": 1}, headers={**bearer(token), "If-None-Match": '"1"'})
    assert old.status_code == 304


def test_unknown_context_or_version_is_404(client, token):
    assert client.get(URL, headers=bearer(token)).status_code == 404
    put(client, token)
    assert client.get(URL, params={"version": 9}, headers=bearer(token)).status_code == 404
    assert client.get(URL + "/lineage", params={"version": 9}, headers=bearer(token)).status_code == 404


def test_invalid_names_are_422(client, token):
    assert client.get("/api/v1/contexts/oc%20to/hello/a/s", headers=bearer(token)).status_code == 422
    assert client.get("/api/v1/contexts/octo/hello/a/" + "s" * 257, headers=bearer(token)).status_code == 422


# --------------------------------------------------------------------------- bodies


def test_body_that_is_not_json_is_415(client, token):
    response = client.put(URL, content=b"data=1", headers={**bearer(token), "Content-Type": "text/plain"})
    assert response.status_code == 415 and "application/json" in response.json()["error"]
    untyped = client.put(URL, content=b'{"data": {}}', headers={**bearer(token), "Content-Type": ""})
    assert untyped.status_code == 415


@pytest.mark.parametrize(
    "body",
    [
        b"{bad",
        b'{"data": {"x": NaN}}',
        b'{"data": [1, 2]}',
        b'{"data": {}, "sumary": "typo"}',
        b'{"data": {}, "tags": [""]}',
        b'{"data": {}, "tags": "one"}',
        b"[]",
        b'{"data": {"x": 1}}\xff',
        b'{"data": ' + b'{"a": ' * 70 + b"1" + b"}" * 70 + b"}",
    ],
    ids=[
        "truncated",
        "nan",
        "data-not-object",
        "unknown-field",
        "empty-tag",
        "tags-not-list",
        "array",
        "not-utf8",
        "too-deep",
    ],
)
def test_malformed_bodies_are_422_and_write_nothing(client, token, store, body):
    response = client.put(URL, content=body, headers={**bearer(token), "Content-Type": "application/json"})
    assert response.status_code == 422, response.text
    with store.reading() as session:
        assert session.scalar(select(ContextVersion.id)) is None


def test_oversized_body_is_413_by_length_and_by_stream(client, token):
    big = b'{"data": {"x": "' + b"a" * API_BODY_MAX_BYTES + b'"}}'
    declared = client.put(URL, content=big, headers={**bearer(token), "Content-Type": "application/json"})
    assert declared.status_code == 413

    def chunks():  # no Content-Length: the cap applies while reading
        yield b'{"data": {"x": "'
        for _ in range(API_BODY_MAX_BYTES // 65536 + 1):
            yield b"a" * 65536
        yield b'"}}'

    streamed = client.put(URL, content=chunks(), headers={**bearer(token), "Content-Type": "application/json"})
    assert streamed.status_code == 413
    just_under = {"data": {"x": "a" * (API_BODY_MAX_BYTES - 100)}}
    assert client.put(URL, json=just_under, headers=bearer(token)).status_code == 201


# --------------------------------------------------------------------------- tokens


def test_no_token_or_a_bad_one_is_401(client, store, token):
    put(client, token)
    real_id, _ = tokens.parse(token)
    for headers in (
        {},
        {"Authorization": "Basic dXNlcjpwYXNz"},
        {"Authorization": "Bearer"},
        {"Authorization": "Bearer not-a-token"},
        bearer("wao_0123456789abcdef_" + "A" * 43),  # unknown id
        bearer(f"wao_{real_id}_" + "A" * 43),  # known id, wrong secret
    ):
        response = client.get(URL, headers=headers)
        assert response.status_code == 401, headers
        assert response.headers["www-authenticate"].startswith("Bearer")


def test_expired_token_is_401(client, store):
    response = client.get(URL, headers=bearer(expired_token(store)))
    assert response.status_code == 401 and "expired" in response.json()["error"]


def test_token_expires_by_the_api_clock(store):
    token = issue(store)
    clock = Clock()  # started after the token was issued
    with TestClient(api_app(store, clock=clock)) as client:
        assert put(client, token).status_code == 201
        clock.advance(3600)  # the default lifetime, 1 hour
        assert client.get(URL, headers=bearer(token)).status_code == 401


def test_revoked_token_is_401_at_once(client, store, token):
    assert put(client, token).status_code == 201
    with store.session() as session:
        tokens.revoke(session, tokens.token_id(token))
    response = client.get(URL, headers=bearer(token))
    assert response.status_code == 401 and "revoked" in response.json()["error"]


def test_token_of_a_suspended_installation_is_401(client, store, token):
    from agents.store.tables import Installation

    assert put(client, token).status_code == 201
    with store.session() as session:
        session.add(Installation(id=1, status="suspended", repos=[]))
    assert client.get(URL, headers=bearer(token)).status_code == 401


def test_tokens_are_stored_only_as_hashes(store, token):
    _, secret = tokens.parse(token)
    with store.reading() as session:
        stored = session.execute(text("SELECT * FROM api_tokens")).mappings().one()
    assert secret not in json.dumps({key: str(value) for key, value in stored.items()})
    assert stored["secret_hash"] == tokens.hash_secret(secret)


# --------------------------------------------------------------------------- tenancy and scopes


def test_another_installations_context_is_404_exactly_like_a_missing_one(client, store, token):
    put(client, token, data={"secret": "of installation 1"}, summary="private plans")
    stranger = issue(store, installation_id=2)
    theirs = client.get(URL, headers=bearer(stranger))
    nothing = client.get(URL.replace("job-1", "never-written"), headers=bearer(stranger))
    assert theirs.status_code == nothing.status_code == 404
    assert theirs.json()["error"] == nothing.json()["error"].replace("never-written", "job-1")
    assert client.get(URL + "/lineage", headers=bearer(stranger)).status_code == 404
    assert client.get(URL, params={"version": 1}, headers=bearer(stranger)).status_code == 404
    assert client.get("/api/v1/contexts", params={"q": "private"}, headers=bearer(stranger)).json()["items"] == []
    assert client.get("/api/v1/contexts", headers=bearer(stranger)).json() == {"items": [], "next": None}
    # Writing the same name makes the stranger's own context; installation 1's is untouched.
    assert put(client, stranger, data={"mine": True}).json() == {"version": 1}
    assert client.get(URL, headers=bearer(token)).json()["data"] == {"secret": "of installation 1"}


def test_another_installations_snapshots_and_handoffs_are_404(client, store, token):
    put(client, token)
    snapshot = client.post("/api/v1/snapshots", json={"owner": "octo", "repo": "hello"}, headers=bearer(token)).json()
    handoff = client.post("/api/v1/handoffs", json=handoff_body(), headers=bearer(token)).json()
    stranger = issue(store, installation_id=2)
    assert client.post(f"/api/v1/snapshots/{snapshot['id']}/restore", headers=bearer(stranger)).status_code == 404
    assert client.post(f"/api/v1/handoffs/{handoff['id']}/claim", headers=bearer(stranger)).status_code == 404
    assert client.get(f"/api/v1/handoffs/{handoff['id']}", headers=bearer(stranger)).status_code == 404
    assert client.get("/api/v1/handoffs", headers=bearer(stranger)).json() == {"items": []}
    theirs = client.post("/api/v1/snapshots", json={"owner": "octo", "repo": "hello"}, headers=bearer(stranger))
    assert theirs.status_code == 201 and theirs.json()["contexts"] == 0


def test_read_only_token_reads_but_every_write_is_403(client, store, token):
    put(client, token, data={"a": 1})
    snapshot = client.post("/api/v1/snapshots", json={"owner": "octo", "repo": "hello"}, headers=bearer(token)).json()
    handoff = client.post("/api/v1/handoffs", json=handoff_body(), headers=bearer(token)).json()
    reader = issue(store, read_only=True)
    assert client.get(URL, headers=bearer(reader)).status_code == 200
    assert client.get(URL + "/lineage", headers=bearer(reader)).status_code == 200
    assert put(client, reader, data={"a": 2}, if_match='"1"').status_code == 403
    assert put(client, reader, url=URL.replace("job-1", "new"), data={}).status_code == 403
    assert (
        client.post("/api/v1/snapshots", json={"owner": "octo", "repo": "hello"}, headers=bearer(reader)).status_code
        == 403
    )
    assert client.post(f"/api/v1/snapshots/{snapshot['id']}/restore", headers=bearer(reader)).status_code == 403
    assert client.post("/api/v1/handoffs", json=handoff_body(), headers=bearer(reader)).status_code == 403
    assert client.post(f"/api/v1/handoffs/{handoff['id']}/claim", headers=bearer(reader)).status_code == 403
    assert client.get(URL, headers=bearer(reader)).json()["version"] == 1


def test_job_token_reaches_its_job_scopes_only_and_stamps_its_job(client, store):
    job = issue(store, job_id="job-1", repo="octo/hello")
    assert put(client, job, data={"phase": 1}).status_code == 201
    assert put(client, job, url=URL.replace("job-1", "job-1:research"), data={}).status_code == 201
    assert put(client, job, url=URL.replace("job-1", "job-10"), data={}).status_code == 403
    assert put(client, job, url=URL.replace("job-1", "repo"), data={}).status_code == 403
    assert client.get(URL.replace("job-1", "repo"), headers=bearer(job)).status_code == 403
    installation_wide = issue(store)
    put(client, installation_wide, url=URL.replace("job-1", "job-10"), data={})
    found = client.get("/api/v1/contexts", headers=bearer(job)).json()["items"]
    assert sorted(item["scope"] for item in found) == ["job-1", "job-1:research"]
    assert client.get(URL, headers=bearer(job)).json()["job"] == "job-1"
    assert client.get(URL + "/lineage", headers=bearer(job)).json()["versions"][0]["job"] == "job-1"
    refused = client.post(
        "/api/v1/snapshots", json={"owner": "octo", "repo": "hello", "scope_prefix": "job"}, headers=bearer(job)
    )
    assert refused.status_code == 403
    taken = client.post(
        "/api/v1/snapshots", json={"owner": "octo", "repo": "hello", "scope_prefix": "job-1"}, headers=bearer(job)
    )
    assert taken.status_code == 201 and taken.json()["contexts"] == 2


# --------------------------------------------------------------------------- lineage


def test_lineage_lists_versions_oldest_first_with_parent_agent_time_job_or_event(client, store):
    job = issue(store, job_id="job-1", repo="octo/hello")
    put(client, job, data={"n": 1}, summary="one")
    put(client, job, data={"n": 2}, summary="two", if_match='"1"')
    with store.session() as session:  # an agent's save in the worker: an event, not a job
        from agents.context import repository

        key = repository.ContextKey(1, "octo/hello", "wowvision", "job-1")
        repository.save(session, key, {"n": 3}, expected_version=2, created_by="wowvision", delivery_id="delivery-42")
    handoff = client.post("/api/v1/handoffs", json=handoff_body(), headers=bearer(job)).json()
    versions = client.get(URL + "/lineage", headers=bearer(job)).json()["versions"]
    assert [(v["version"], v["parent"]) for v in versions] == [(1, None), (2, 1), (3, 2)]
    assert [v["job"] for v in versions] == ["job-1", "job-1", None]
    assert versions[2]["event"] == "delivery-42" and versions[2]["created_by"] == "wowvision"
    assert all(v["agent"] == "wowvision" and v["created_at"] for v in versions)
    assert [h["id"] for h in versions[2]["handoffs"]] == [handoff["id"]]
    assert versions[2]["handoffs"][0]["to_agent"] == "wowdomain"
    middle = client.get(URL + "/lineage", params={"version": 2}, headers=bearer(job)).json()["versions"]
    assert [v["version"] for v in middle] == [1, 2]


# --------------------------------------------------------------------------- search


def test_search_filters_by_agent_scope_tag_text_and_time(client, store, token):
    def write(agent, scope, summary, tags):
        url = f"/api/v1/contexts/octo/hello/{agent}/{scope}"
        assert put(client, token, url=url, data={}, summary=summary, tags=tags).status_code == 201

    write("wowvision", "pr-1", "Reviewed the payment service migration", ["review", "payments"])
    write("wowvision", "pr-2", "Reviewing documentation only", ["review"])
    write("wowdomain", "job-7", "Domain onboarding: insurance claims", ["onboarding"])
    write("wowdomain", "job-7:research", "Research notes on claims adjusters", ["onboarding", "research"])

    def scopes(**params):
        response = client.get("/api/v1/contexts", params=params, headers=bearer(token))
        assert response.status_code == 200, response.text
        return sorted(item["scope"] for item in response.json()["items"])

    assert scopes(agent="wowvision") == ["pr-1", "pr-2"]
    assert scopes(tag="review") == ["pr-1", "pr-2"]
    assert scopes(tag=["review", "payments"]) == ["pr-1"]
    assert scopes(scope="job-7") == ["job-7"]
    assert scopes(scope_prefix="job-7") == ["job-7", "job-7:research"]
    assert scopes(q="payment migration") == ["pr-1"]
    assert scopes(q="claims") == ["job-7", "job-7:research"]
    assert scopes(owner="octo", repo="hello", agent="wowdomain") == ["job-7", "job-7:research"]
    assert scopes(repo="octo/hello", tag="research") == ["job-7:research"]
    assert scopes(repo="elsewhere/hello") == []
    assert scopes(since="2000-01-01T00:00:00Z") == ["job-7", "job-7:research", "pr-1", "pr-2"]
    assert scopes(until="2000-01-01T00:00:00Z") == []
    items = client.get("/api/v1/contexts", headers=bearer(token)).json()["items"]
    assert "data" not in items[0] and items[0]["scope"] == "job-7:research"  # newest first


def test_search_returns_latest_versions_unless_all_versions(client, token):
    put(client, token, data={}, summary="draft")
    put(client, token, data={}, summary="final", if_match='"1"')
    latest = client.get("/api/v1/contexts", headers=bearer(token)).json()["items"]
    assert [(item["version"], item["summary"]) for item in latest] == [(2, "final")]
    assert client.get("/api/v1/contexts", params={"q": "draft"}, headers=bearer(token)).json()["items"] == []
    every = client.get("/api/v1/contexts", params={"all_versions": True}, headers=bearer(token)).json()["items"]
    assert [item["version"] for item in every] == [2, 1]


def test_search_pages_with_cursors(client, token):
    for n in range(7):
        put(client, token, url=URL.replace("job-1", f"job-{n}"), data={})
    seen, cursor, pages = [], None, 0
    while True:
        params = {"limit": 3, **({"cursor": cursor} if cursor else {})}
        page = client.get("/api/v1/contexts", params=params, headers=bearer(token)).json()
        seen += [item["scope"] for item in page["items"]]
        pages += 1
        cursor = page["next"]
        if cursor is None:
            break
    assert pages == 3 and seen == [f"job-{n}" for n in reversed(range(7))]
    assert client.get("/api/v1/contexts", params={"cursor": "garbage!"}, headers=bearer(token)).status_code == 422
    assert client.get("/api/v1/contexts", params={"limit": 201}, headers=bearer(token)).status_code == 422
    assert client.get("/api/v1/contexts", params={"since": "yesterday"}, headers=bearer(token)).status_code == 422


# --------------------------------------------------------------------------- snapshots


TRICKY = {
    # control characters (not U+0000: refused, PostgreSQL cannot read a document holding it) and its escape as text
    "text": 'naïve café — 漢字 🚀 \u0001 \t \\u0000 "quoted" \\ back',
    "floats": [0.1, 1e-300, 1.7976931348623157e308, -0.0, 3.0, 123456789.123456789],
    "ints": [0, -1, 9007199254740993, -9223372036854775808, 18446744073709551615],
    "nested": {"z": {"y": [True, False, None, [], {}]}, "a": 1},
    "order": {"b": 1, "a": 2, "c": 3},
    "empty": "",
}


def test_restore_after_the_live_rows_are_deleted_equals_the_snapshot_byte_for_byte(client, store, token):
    put(client, token, data=TRICKY, summary="the original", tags=["keep"])
    put(client, token, data={**TRICKY, "step": 2}, summary="step two", tags=["keep"], if_match='"1"')
    other = URL.replace("wowvision", "wowdomain").replace("job-1", "job-1:notes")
    put(client, token, url=other, data={"notes": ["a", "b"]})
    snapshotted = {url: client.get(url, headers=bearer(token)).content for url in (URL, other)}
    snapshot = client.post(
        "/api/v1/snapshots", json={"owner": "octo", "repo": "hello", "scope_prefix": "job-1"}, headers=bearer(token)
    )
    assert snapshot.status_code == 201 and snapshot.json()["contexts"] == 2
    put(client, token, data={"after": "the snapshot"}, if_match='"2"')
    raw_before = raw_data(store, "wowvision", 2)

    with store.session() as session:  # the disaster: every live row of the job is gone
        session.execute(delete(ContextVersion).where(ContextVersion.scope.startswith("job-1")))
    assert client.get(URL, headers=bearer(token)).status_code == 404

    restored = client.post(f"/api/v1/snapshots/{snapshot.json()['id']}/restore", headers=bearer(token))
    assert restored.status_code == 200
    assert sorted((r["agent"], r["scope"], r["version"], r["restores"]) for r in restored.json()["restored"]) == [
        ("wowdomain", "job-1:notes", 2, 1),
        ("wowvision", "job-1", 3, 2),
    ]
    for url, before in snapshotted.items():
        after = client.get(url, headers=bearer(token)).json()
        original = orjson.loads(before)
        assert orjson.dumps(after["data"]) == orjson.dumps(original["data"])
        assert (after["summary"], after["tags"]) == (original["summary"], original["tags"])
    assert raw_data(store, "wowvision", 3) == raw_before
    assert client.get(URL, headers=bearer(token)).json()["data"] == TRICKY | {"step": 2}

    lineage = client.get(URL + "/lineage", headers=bearer(token)).json()["versions"]
    assert [(v["version"], v["parent"], v["kept_by_snapshot"]) for v in lineage] == [
        (1, None, snapshot.json()["id"]),
        (2, 1, snapshot.json()["id"]),
        (3, 2, None),
    ]
    assert lineage[2]["restores"] == {"snapshot": snapshot.json()["id"], "version": 2}
    assert [v["summary"] for v in lineage] == ["the original", "step two", "step two"]


def test_restore_keeps_history_and_links_to_the_restored_version(client, store, token):
    put(client, token, data={"good": True})
    snapshot_id = client.post(
        "/api/v1/snapshots", json={"owner": "octo", "repo": "hello"}, headers=bearer(token)
    ).json()["id"]
    put(client, token, data={"good": False}, if_match='"1"')
    put(client, token, data={"worse": True}, if_match='"2"')
    restored = client.post(f"/api/v1/snapshots/{snapshot_id}/restore", headers=bearer(token)).json()["restored"]
    assert [(r["version"], r["restores"]) for r in restored] == [(4, 1)]
    assert client.get(URL, headers=bearer(token)).json()["data"] == {"good": True}
    assert [client.get(URL, params={"version": n}, headers=bearer(token)).json()["data"] for n in (1, 2, 3)] == [
        {"good": True},
        {"good": False},
        {"worse": True},
    ]
    lineage = client.get(URL + "/lineage", headers=bearer(token)).json()["versions"]
    assert [(v["version"], v["parent"]) for v in lineage] == [(1, None), (4, 1)]  # restored → snapshotted
    # A second snapshot of a restored context, then a second disaster: the lineage survives again.
    second = client.post("/api/v1/snapshots", json={"owner": "octo", "repo": "hello"}, headers=bearer(token)).json()[
        "id"
    ]
    with store.session() as session:
        session.execute(delete(ContextVersion))
    client.post(f"/api/v1/snapshots/{second}/restore", headers=bearer(token))
    lineage = client.get(URL + "/lineage", headers=bearer(token)).json()["versions"]
    assert [(v["version"], v["parent"], v["kept_by_snapshot"]) for v in lineage] == [
        (1, None, second),
        (4, 1, second),
        (5, 4, None),
    ]
    assert client.get(URL, headers=bearer(token)).json()["data"] == {"good": True}


def test_a_restored_job_snapshots_again_and_that_snapshot_restores_the_same(client, store, token):
    """Snapshot, lose the job's rows, restore, snapshot again: on SQLite the restored rows used to
    take the deleted rows' ids, and the second snapshot copied one id twice (an IntegrityError)."""
    put(client, token, data=TRICKY, summary="the original", tags=["keep"])
    put(client, token, data={**TRICKY, "step": 2}, summary="step two", tags=["keep"], if_match='"1"')
    other = URL.replace("wowvision", "wowdomain").replace("job-1", "job-1:notes")
    put(client, token, url=other, data={"notes": ["a", "b"]})

    def snapshot() -> int:
        taken = client.post(
            "/api/v1/snapshots", json={"owner": "octo", "repo": "hello", "scope_prefix": "job-1"}, headers=bearer(token)
        )
        assert taken.status_code == 201, taken.text
        return taken.json()["id"]

    def lose_the_job_then_restore(snapshot_id: int) -> dict[str, dict]:
        with store.session() as session:
            session.execute(delete(ContextVersion).where(ContextVersion.scope.startswith("job-1")))
        assert client.post(f"/api/v1/snapshots/{snapshot_id}/restore", headers=bearer(token)).status_code == 200
        return {
            url: {
                k: v
                for k, v in client.get(url, headers=bearer(token)).json().items()
                if k in ("data", "summary", "tags")
            }
            for url in (URL, other)
        }

    first = snapshot()
    restored_once = lose_the_job_then_restore(first)
    second = snapshot()
    assert lose_the_job_then_restore(second) == restored_once
    assert restored_once[URL] == {"data": TRICKY | {"step": 2}, "summary": "step two", "tags": ["keep"]}
    lineage = client.get(URL + "/lineage", headers=bearer(token)).json()["versions"]
    assert [(v["version"], v["parent"], v["kept_by_snapshot"]) for v in lineage] == [
        (1, None, second),
        (2, 1, second),
        (3, 2, second),
        (4, 3, None),
    ]


def test_unknown_snapshot_is_404(client, token):
    assert client.post("/api/v1/snapshots/999/restore", headers=bearer(token)).status_code == 404


# --------------------------------------------------------------------------- handoffs


def handoff_body(**overrides):
    body = {
        "owner": "octo",
        "repo": "hello",
        "scope": "job-1",
        "from_agent": "wowvision",
        "to_agent": "wowdomain",
        "package": {"deliverable": {"spec": "v1"}, "open_questions": ["scope?"], "provenance": {"pr": 12}},
    }
    return {**body, **overrides}


def test_handoff_is_created_then_claimed_once(client, store, token):
    put(client, token, data={"spec": "draft"})
    created = client.post("/api/v1/handoffs", json=handoff_body(), headers=bearer(token))
    assert created.status_code == 201 and set(created.json()) == {"id"}
    handoff_id = created.json()["id"]
    waiting = client.get("/api/v1/handoffs", params={"to_agent": "wowdomain"}, headers=bearer(token)).json()["items"]
    assert [h["id"] for h in waiting] == [handoff_id] and waiting[0]["claimed_at"] is None

    claimer = issue(store)
    claimed = client.post(f"/api/v1/handoffs/{handoff_id}/claim", headers=bearer(claimer))
    assert claimed.status_code == 200
    document = claimed.json()
    assert document["package"] == handoff_body()["package"] and document["context_version"] == 1
    assert document["claimed_by"] == f"token:{tokens.token_id(claimer)}"
    again = client.post(f"/api/v1/handoffs/{handoff_id}/claim", headers=bearer(token))
    assert again.status_code == 409 and "claimed" in again.json()["error"]
    assert client.get("/api/v1/handoffs", params={"to_agent": "wowdomain"}, headers=bearer(token)).json()["items"] == []
    assert client.post("/api/v1/handoffs/999/claim", headers=bearer(token)).status_code == 404


def test_handoff_of_a_job_is_claimed_by_that_job_or_the_installation(client, store):
    job_1, job_2 = issue(store, job_id="job-1", repo="octo/hello"), issue(store, job_id="job-2", repo="octo/hello")
    first = client.post("/api/v1/handoffs", json=handoff_body(), headers=bearer(job_1)).json()["id"]
    second = client.post("/api/v1/handoffs", json=handoff_body(), headers=bearer(job_1)).json()["id"]
    assert client.post(f"/api/v1/handoffs/{first}/claim", headers=bearer(job_2)).status_code == 403
    assert client.post(f"/api/v1/handoffs/{first}/claim", headers=bearer(job_1)).status_code == 200
    assert client.post(f"/api/v1/handoffs/{second}/claim", headers=bearer(issue(store))).status_code == 200
    assert client.post("/api/v1/handoffs", json=handoff_body(scope="job-2"), headers=bearer(job_1)).status_code == 403


def test_invalid_handoff_bodies_are_422(client, token):
    for body in (handoff_body(package={"open_questions": "one"}), handoff_body(to_agent="a/b"), {"owner": "octo"}):
        assert client.post("/api/v1/handoffs", json=body, headers=bearer(token)).status_code == 422, body


# --------------------------------------------------------------------------- audit, limits, schema


def test_every_write_is_in_the_audit_log(client, store):
    job = issue(store, job_id="job-1", repo="octo/hello")
    put(client, job, data={})
    snapshot_id = client.post(
        "/api/v1/snapshots", json={"owner": "octo", "repo": "hello", "scope_prefix": "job-1"}, headers=bearer(job)
    ).json()["id"]
    client.post(f"/api/v1/snapshots/{snapshot_id}/restore", headers=bearer(job))
    handoff_id = client.post("/api/v1/handoffs", json=handoff_body(), headers=bearer(job)).json()["id"]
    client.post(f"/api/v1/handoffs/{handoff_id}/claim", headers=bearer(job))
    put(client, job, data={"refused": True})  # a 409 writes nothing, and is not audited as a write
    with store.reading() as session:
        entries = session.scalars(select(AuditEntry).order_by(AuditEntry.id)).all()
    api_entries = [e for e in entries if e.action != "token.create"]
    assert [e.action for e in api_entries] == [
        "context.put",
        "snapshot.create",
        "snapshot.restore",
        "handoff.create",
        "handoff.claim",
    ]
    actor = f"token:{tokens.token_id(job)}"
    assert all((e.actor, e.installation_id, e.job_id) == (actor, 1, "job-1") and e.at for e in api_entries)
    assert api_entries[0].target == "octo/hello/wowvision/job-1@1"


def test_rate_limit_per_token_in_process_answers_429_with_retry_after(store):
    clock = Clock()
    limited, other = issue(store), issue(store)
    app = api_app(store, clock=clock, WAOOAW_API_RATE_LIMIT=2, WAOOAW_API_RATE_BURST=3)
    with TestClient(app) as client:
        assert [client.get(URL, headers=bearer(limited)).status_code for _ in range(3)] == [404, 404, 404]
        refused = client.get(URL, headers=bearer(limited))
        assert refused.status_code == 429 and refused.headers["retry-after"] == "1"
        assert client.get(URL, headers=bearer(other)).status_code == 404  # per token
        clock.advance(0.5)  # 2/s: one request's worth
        assert client.get(URL, headers=bearer(limited)).status_code == 404
        assert client.get(URL, headers=bearer(limited)).status_code == 429
        clock.advance(10)  # refills to the burst, no further
        assert [client.get(URL, headers=bearer(limited)).status_code for _ in range(4)] == [404, 404, 404, 429]


def test_every_kind_of_refused_write_counts_against_the_rate_limit(store):
    """PUT takes its limit in its own round trip (with the cache writer's mark); what is refused
    before it runs (a bad body, a bad name, FastAPI's validation) must count all the same."""
    clock = Clock()
    token = issue(store)
    app = api_app(store, clock=clock, WAOOAW_API_RATE_LIMIT=1, WAOOAW_API_RATE_BURST=6)
    json_headers = bearer(token) | {"Content-Type": "application/json"}
    with TestClient(app) as client:
        statuses = [
            client.put(URL, content=b'{"data": ', headers=json_headers).status_code,  # not JSON
            client.put(URL, content=b"data", headers=bearer(token) | {"Content-Type": "text/plain"}).status_code,
            client.put(URL, json={"data": [1]}, headers=bearer(token)).status_code,  # FastAPI: data must be an object
            put(client, token, url="/api/v1/contexts/bad_owner!/hello/wowvision/job-1").status_code,  # a bad name
            put(client, token, if_match='"7"').status_code,  # stale: the endpoint's own refusal
            put(client, token).status_code,
            put(client, token, if_match='"1"').status_code,
        ]
    assert statuses == [422, 415, 422, 422, 409, 201, 429]


def test_default_rate_limit_is_50_per_second_burst_100(store):
    clock = Clock()
    token = issue(store)
    with TestClient(api_app(store, clock=clock)) as client:
        statuses = [client.get(URL, headers=bearer(token)).status_code for _ in range(101)]
        assert statuses.count(404) == 100 and statuses[-1] == 429
        clock.advance(1.0)
        statuses = [client.get(URL, headers=bearer(token)).status_code for _ in range(51)]
        assert statuses.count(404) == 50 and statuses[-1] == 429


def test_openapi_documents_the_context_api(store):
    with TestClient(create_app(make_platform(store), secret=TEST_SECRET, run_worker=False)) as client:
        schema = client.get("/openapi.json").json()
    paths = schema["paths"]
    context = paths["/api/v1/contexts/{owner}/{repo}/{agent}/{scope}"]
    assert set(context) >= {"get", "put"}
    assert context["put"]["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith("/ContextWrite")
    assert {"201", "401", "403", "404", "409", "413", "415", "422", "429"} <= set(context["put"]["responses"])
    assert {"200", "304", "401", "404"} <= set(context["get"]["responses"])
    assert {p["name"] for p in context["put"]["parameters"]} >= {"owner", "repo", "agent", "scope", "if-match"}
    assert "get" in paths["/api/v1/contexts/{owner}/{repo}/{agent}/{scope}/lineage"]
    search = {p["name"] for p in paths["/api/v1/contexts"]["get"]["parameters"]}
    assert search >= {"owner", "repo", "agent", "scope", "tag", "q", "since", "until", "cursor", "limit"}
    assert "post" in paths["/api/v1/snapshots"] and "post" in paths["/api/v1/snapshots/{snapshot_id}/restore"]
    assert "post" in paths["/api/v1/handoffs"] and "post" in paths["/api/v1/handoffs/{handoff_id}/claim"]
    assert "409" in paths["/api/v1/handoffs/{handoff_id}/claim"]["post"]["responses"]
    assert schema["components"]["securitySchemes"]["token"] == {
        "type": "http",
        "scheme": "bearer",
        "description": "A Context API token, `wao_<id>_<secret>` (`waooaw tokens create`).",
    }
    assert context["put"]["security"] == [{"token": []}]


def test_no_request_waits_for_a_thread_to_resolve_its_dependencies(sqlite_store):
    """FastAPI runs a plain `def` dependency in its thread pool: a thread hand-off on every request
    (about 0.3 ms here, more under load). Every dependency of the app's routes must be `async`."""
    app = create_app(make_platform(sqlite_store), secret=TEST_SECRET, run_worker=False)

    def routes(router) -> list[APIRoute]:
        found = []
        for route in router.routes:
            if isinstance(route, APIRoute):
                found.append(route)
            elif hasattr(route, "original_router"):  # an included router (FastAPI ≥ 0.16x keeps them whole)
                found += routes(route.original_router)
        return found

    def sync_calls(dependant) -> list[str]:
        found = []
        for dependency in dependant.dependencies:
            call = dependency.call
            if not (inspect.iscoroutinefunction(call) or inspect.iscoroutinefunction(getattr(call, "__call__", None))):  # noqa: B004 - whether its __call__ is async
                found.append(getattr(call, "__qualname__", repr(call)))
            found += sync_calls(dependency)
        return found

    every = routes(app)
    assert {"/webhooks/github", "/contexts/{owner}/{repo}/{agent}/{scope}"} <= {route.path for route in every}
    assert {route.path: sync_calls(route.dependant) for route in every if sync_calls(route.dependant)} == {}


def raw_data(store, agent: str, version: int) -> str:
    """The data column as the database holds it (text on both)."""
    column = "data::text" if store.engine.dialect.name == "postgresql" else "data"
    with store.reading() as session:
        return session.execute(
            text(f"SELECT {column} FROM context_versions WHERE agent = :agent AND version = :version"),
            {"agent": agent, "version": version},
        ).scalar_one()
