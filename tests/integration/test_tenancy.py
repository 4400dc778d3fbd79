"""Installations: uninstall or suspend stops all work at once; prune deletes after retention."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from agents import tokens
from agents.context.client import DbContextClient
from agents.context.models import ContextSnapshot, ContextSnapshotItem, ContextVersion
from agents.decisions import DbDecisionCache
from agents.store.tables import (
    AgentRun,
    ApiToken,
    Decision,
    DecisionCacheEntry,
    InboxRecord,
    Installation,
    PublishedOutput,
)
from agents.tokens import Grant
from bot.inbox import Inbox, InboxStatus
from bot.tenancy import prune
from bot.webhooks import parse_delivery
from tests.conftest import fixture_path, load_payload
from tests.helpers import body_of, drain, make_platform


def record(platform, delivery_id, event, payload):
    delivery = parse_delivery(
        body_of(payload) if isinstance(payload, dict) else payload, event=event, delivery_id=delivery_id
    )
    assert Inbox(platform.store).record(delivery, InboxStatus.QUEUED)


def installation(store, installation_id):
    with store.session() as session:
        return session.get(Installation, installation_id)


def test_installation_lifecycle_from_real_payloads(store):
    platform = make_platform(store)
    record(platform, "i1", "installation", fixture_path("installation/created.payload.json").read_bytes())
    record(
        platform,
        "i2",
        "installation_repositories",
        load_payload("installation_repositories/added.payload.json", installation__id=957387),
    )
    asyncio.run(drain(make_platform(store)))
    row = installation(store, 957387)
    assert row.status == "active" and row.account == "Codertocat"
    assert row.repos == ["Codertocat/Hello-World", "Codertocat/Space"]

    record(platform, "i3", "installation", load_payload("installation/suspend.payload.json", installation__id=957387))
    asyncio.run(drain(make_platform(store)))
    assert installation(store, 957387).status == "suspended"


def test_a_suspended_installation_gets_no_agent_work(store):
    platform = make_platform(store)
    comment = load_payload("issue_comment/created.with-installation.payload.json", comment__body="/waooaw help")
    installation_id = comment["installation"]["id"]
    record(
        platform,
        "s1",
        "installation",
        load_payload("installation/suspend.payload.json", installation__id=installation_id),
    )
    asyncio.run(drain(make_platform(store)))
    record(platform, "s2", "issue_comment", comment)
    asyncio.run(drain(make_platform(store)))
    with store.session() as session:
        assert session.scalars(select(AgentRun).where(AgentRun.delivery_id == "s2")).all() == []
        assert session.get(InboxRecord, "s2").status == "done"
    record(
        platform,
        "s3",
        "installation",
        load_payload("installation/unsuspend.payload.json", installation__id=installation_id),
    )
    asyncio.run(drain(make_platform(store)))
    record(platform, "s4", "issue_comment", comment)
    asyncio.run(drain(make_platform(store)))
    with store.session() as session:
        assert [run.agent for run in session.scalars(select(AgentRun).where(AgentRun.delivery_id == "s4"))] == [
            "concierge"
        ]


def test_prune_deletes_only_installations_gone_longer_than_the_retention(store):
    platform = make_platform(store)
    record(platform, "p1", "installation", load_payload("installation/deleted.payload.json"))
    asyncio.run(drain(make_platform(store)))
    gone_id = load_payload("installation/deleted.payload.json")["installation"]["id"]
    contexts = DbContextClient(store, Grant(gone_id))
    contexts.put("octo/kept", "agent", "job-1", {"secret": "plans"}, expected_version=None)
    restored = contexts.restore(contexts.snapshot("octo/kept").id)
    assert restored
    with store.session() as session:
        tokens.issue(session, installation_id=gone_id)
        session.get(Installation, gone_id).repos = ["octocat/Hello-World"]
        for owner in (gone_id, gone_id + 1):  # the repository moved to another installation since
            session.add(
                PublishedOutput(
                    installation_id=owner, repo="octo/kept", marker="<!-- waooaw:a:issue:k -->", agent="a", kind="issue"
                )
            )
            # A repository the gone installation held, now another's: its ledger rows stay that one's.
            session.add(Decision(installation_id=owner, repo="octocat/Hello-World", agent="a", rule="r", rung="llm"))
    cache = DbDecisionCache(store)
    for key, owner in (("theirs", gone_id), ("another's", gone_id + 1), ("public", None)):
        asyncio.run(cache.put(key, "rule", {"verdict": {}}, owner))
    assert prune(store, timedelta(days=30)) == []
    with store.session() as session:
        session.get(Installation, gone_id).updated_at = datetime.now(UTC) - timedelta(days=31)
    assert prune(store, timedelta(days=30)) == [gone_id]
    assert installation(store, gone_id) is None
    with store.session() as session:
        assert session.get(InboxRecord, "p1") is None
        for table in (ContextVersion, ContextSnapshot, ApiToken):  # nothing of theirs is left, not even a copy
            assert session.scalars(select(table).where(table.installation_id == gone_id)).all() == []
        assert session.scalars(select(ContextSnapshotItem)).all() == []
        assert sorted(session.scalars(select(DecisionCacheEntry.key))) == ["another's", "public"]
        assert session.scalars(select(PublishedOutput.installation_id)).all() == [gone_id + 1]
        assert session.scalars(select(Decision.installation_id)).all() == [gone_id + 1]


def test_installations_keep_their_account_and_repository_ids_from_real_payloads(store):
    """What the OIDC exchange compares a runner's repository_id and repository_owner_id with."""
    platform = make_platform(store)
    record(platform, "k1", "installation", fixture_path("installation/created.payload.json").read_bytes())
    record(platform, "k2", "installation_repositories", load_payload("installation_repositories/added.payload.json"))
    asyncio.run(drain(make_platform(store)))
    row = installation(store, 957387)
    assert row.account_id == 21031067
    assert row.repo_ids == {"Codertocat/Hello-World": 186853002, "Codertocat/Space": 186853007}
    removed = load_payload("installation_repositories/removed.payload.json", installation__id=957387)
    removed["repositories_removed"] = [
        load_payload("installation_repositories/added.payload.json")["repositories_added"][0]
    ]
    record(platform, "k3", "installation_repositories", removed)
    asyncio.run(drain(make_platform(store)))
    row = installation(store, 957387)
    assert row.repos == ["Codertocat/Hello-World"] and row.repo_ids == {"Codertocat/Hello-World": 186853002}
