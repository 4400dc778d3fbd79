"""Installations: uninstall or suspend stops all work at once; prune deletes after retention; a renamed or
transferred repository keeps its state under its new name."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from structlog.testing import capture_logs

from agents import hires, tokens
from agents.catalog import default_registry
from agents.context import repository
from agents.context.client import DbContextClient
from agents.context.models import ContextSnapshot, ContextSnapshotItem, ContextVersion, Handoff
from agents.context.repository import ContextKey
from agents.coordination import assignments
from agents.coordination.assignments import Task
from agents.decisions import DbDecisionCache
from agents.domain.job import AGENT as JOB_AGENT
from agents.domain.job import new_job
from agents.events import Event
from agents.ledger import Entry
from agents.store.tables import (
    AgentHire,
    AgentMessage,
    AgentOutcome,
    AgentRun,
    ApiToken,
    Decision,
    DecisionCacheEntry,
    InboxRecord,
    Installation,
    PublishedOutput,
    TaskAssignment,
)
from agents.tokens import Grant
from bot import tenancy
from bot.inbox import Inbox, InboxStatus
from bot.tenancy import prune
from bot.webhooks import parse_delivery
from tests.conftest import fixture_path, load_payload
from tests.fakes.github import FakeGitHub
from tests.helpers import body_of, drain, github_platform, make_platform


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


# ---------------------------------------------------------------------- renamed and transferred repositories

OLD, NEW = "Codertocat/Hello-World", "Codertocat/Hola-Mundo"
REPO_ID = 186853002  # Codertocat/Hello-World's, as installation/created.payload.json lists it
ANOTHER = 957387 + 1  # an installation of another account that also holds a repository named OLD


def renamed(*, installation_id=957387, repository_id=REPO_ID):
    """GitHub's `repository.renamed` of OLD to NEW in `installation_id`."""
    payload = load_payload("repository/renamed.payload.json", installation__id=installation_id)
    payload["changes"]["repository"]["name"]["from"] = OLD.partition("/")[2]
    payload["repository"].update(name=NEW.partition("/")[2], full_name=NEW, id=repository_id)
    payload["repository"]["owner"]["login"] = "Codertocat"
    return payload


def transferred(*, installation_id):
    """GitHub's `repository.transferred` of OLD to the account Octocoders, sent to `installation_id`."""
    payload = load_payload("repository/transferred.with-installation.payload.json", installation__id=installation_id)
    payload["changes"]["owner"]["from"]["user"]["login"] = "Codertocat"
    payload["repository"].update(name="Hello-World", full_name="Octocoders/Hello-World", id=REPO_ID)
    return payload


def installed(store, platform, installation_id=957387):
    """The App installed on Codertocat's OLD (with its id) in `installation_id`."""
    created = load_payload("installation/created.payload.json", installation__id=installation_id)
    record(platform, f"install-{installation_id}", "installation", created)
    asyncio.run(drain(make_platform(store)))


def keep_state(store, installation_id, repo):
    """A repository's current state, one row of each kind: what a rename must carry along."""
    registry = default_registry(store)
    spec_agent = next(agent.name for agent in registry.agents() if agent.hire_required)
    contexts = DbContextClient(store, Grant(installation_id))
    contexts.put(repo, "wowvision", "pr-2", {"reviewed": "abc123"}, expected_version=None)
    contexts.put(repo, "wowdomain", "job-1", {"status": "parked"}, expected_version=None)
    contexts.handoff(repo=repo, scope="job-1", from_agent="wowdomain", to_agent="tech-writer", deliverable="spec")
    contexts.snapshot(repo, "job-1")
    contexts.record_decisions(repo, "job-1", [Entry("wowdomain", "step", "llm", "settled", key="s1", cost_usd=0.5)])
    with store.session() as session:
        hires.apply_config(session, installation_id, repo, [spec_agent], [], {})
        session.add(
            PublishedOutput(
                installation_id=installation_id,
                repo=repo,
                marker="<!-- waooaw:concierge:comment:help:1 -->",
                agent="concierge",
                kind="comment",
                github_id=7,
            )
        )
        where = {"installation_id": installation_id, "repo": repo}
        session.add(AgentOutcome(**where, agent="a", kind="k", subject="s", positive=True))
        assignments.claim(session, Task(installation_id, repo, "support", "issue:1", "triage", "c", "d"), "a", "b")
        session.add(
            AgentMessage(
                **where,
                key=f"m-{installation_id}",
                kind="inform",
                sender="a",
                addressee="b",
                correlation_id="c",
                causation="d",
                delivery_id=f"message-{installation_id}",
                body={},
            )
        )
        session.add(Decision(**where, agent="a", rule="r", rung="llm"))
        tokens.issue(session, installation_id=installation_id, repo=repo)
    return spec_agent


STATE_TABLES = (
    AgentHire,
    PublishedOutput,
    AgentOutcome,
    TaskAssignment,
    AgentMessage,
    ContextVersion,
    Handoff,
    ContextSnapshot,
    ApiToken,
)


def rows_of(store, installation_id, repo):
    """How many rows of each table of current state (and of the job's ledger) are kept under `repo`."""
    with store.session() as session:
        counts = {
            table.__tablename__: len(
                session.scalars(select(table).where(table.installation_id == installation_id, table.repo == repo)).all()
            )
            for table in STATE_TABLES
        }
        counts["job ledger"] = len(
            session.scalars(
                select(Decision).where(
                    Decision.installation_id == installation_id, Decision.repo == repo, Decision.job_id.is_not(None)
                )
            ).all()
        )
    return counts


def test_a_renamed_repository_keeps_its_hires_contexts_and_records_under_its_new_name(store):
    platform = make_platform(store)
    installed(store, platform)
    spec_agent = keep_state(store, 957387, OLD)
    before = rows_of(store, 957387, OLD)
    assert all(before.values())

    record(platform, "rename-1", "repository", renamed())
    asyncio.run(drain(make_platform(store)))

    assert rows_of(store, 957387, NEW) == before
    assert not any(rows_of(store, 957387, OLD).values())
    with store.session() as session:
        assert hires.standings(session, 957387, NEW, [default_registry(store).get(spec_agent)])[spec_agent].wakes
        context = repository.latest(session, ContextKey(957387, NEW, "wowvision", "pr-2"))
        assert context is not None and context.data == {"reviewed": "abc123"}
        # History keeps the name it had then: the ledger outside jobs.
        assert session.scalars(select(Decision.repo).where(Decision.job_id.is_(None))).all() == [OLD]
    assert DbContextClient(store, Grant(957387)).job_spend(NEW, "job-1") == 0.5
    row = installation(store, 957387)
    assert row.repos == [NEW] and row.repo_ids == {NEW: REPO_ID}


def test_a_rename_applied_twice_changes_nothing_the_second_time_and_never_overwrites(store):
    platform = make_platform(store)
    installed(store, platform)
    keep_state(store, 957387, OLD)
    with store.session() as session:  # handled under the new name before the rename was
        session.add(
            PublishedOutput(
                installation_id=957387,
                repo=NEW,
                marker="<!-- waooaw:concierge:comment:help:1 -->",
                agent="concierge",
                kind="comment",
                github_id=8,
            )
        )
    event = Event.from_payload("rename-1", "repository", renamed())
    with store.session() as session:
        tenancy.apply(session, event)
    once = (rows_of(store, 957387, OLD), rows_of(store, 957387, NEW), installation(store, 957387).repo_ids)
    assert once[0]["published_outputs"] == 1 and once[1]["agent_hires"] == 1
    with store.session() as session:
        tenancy.apply(session, event)
    assert (rows_of(store, 957387, OLD), rows_of(store, 957387, NEW), installation(store, 957387).repo_ids) == once
    with store.session() as session:
        kept = dict(session.execute(select(PublishedOutput.repo, PublishedOutput.github_id)).all())
    assert kept == {OLD: 7, NEW: 8}


def test_a_rename_moves_nothing_of_another_installation_or_of_another_repository_id(store):
    platform = make_platform(store)
    installed(store, platform)
    installed(store, platform, ANOTHER)
    keep_state(store, 957387, OLD)
    keep_state(store, ANOTHER, OLD)
    theirs = rows_of(store, ANOTHER, OLD)

    # A stale delivery: the installation holds OLD as another repository now.
    record(platform, "rename-stale", "repository", renamed(repository_id=REPO_ID + 1))
    asyncio.run(drain(make_platform(store)))
    assert not any(rows_of(store, 957387, NEW).values())

    record(platform, "rename-1", "repository", renamed())
    asyncio.run(drain(make_platform(store)))
    assert all(rows_of(store, 957387, NEW).values())
    assert rows_of(store, ANOTHER, OLD) == theirs and not any(rows_of(store, ANOTHER, NEW).values())
    assert installation(store, ANOTHER).repos == [OLD]


def test_a_transfer_moves_within_its_installation_and_nothing_into_another(store):
    platform = make_platform(store)
    installed(store, platform)
    keep_state(store, 957387, OLD)
    with store.session() as session:
        session.add(Installation(id=ANOTHER, account="Octocoders", repos=[], repo_ids={}))
    kept = rows_of(store, 957387, OLD)

    with capture_logs() as logs:
        record(platform, "transfer-away", "repository", transferred(installation_id=ANOTHER))
        asyncio.run(drain(make_platform(store)))
    assert rows_of(store, 957387, OLD) == kept
    assert not any(rows_of(store, ANOTHER, "Octocoders/Hello-World").values())
    assert installation(store, ANOTHER).repos == []
    (said,) = [line for line in logs if line["event"] == "tenancy.transferred_from_another_installation"]
    assert said["kept_by"] == [957387]

    # An installation holding both accounts' repositories (an enterprise's) keeps the repository.
    record(platform, "transfer-within", "repository", transferred(installation_id=957387))
    asyncio.run(drain(make_platform(store)))
    assert rows_of(store, 957387, "Octocoders/Hello-World") == kept
    assert installation(store, 957387).repos == ["Octocoders/Hello-World"]


def test_after_a_rename_the_comment_posted_under_the_old_name_is_found_by_its_record(store):
    with FakeGitHub() as fake:
        platform = github_platform(store, fake.url)
        installed(store, platform, 1)  # the installation of issue_comment/created.with-installation
        help_comment = load_payload(
            "issue_comment/created.with-installation.payload.json", comment__body="/waooaw help"
        )
        record(platform, "help-1", "issue_comment", help_comment)
        asyncio.run(drain(github_platform(store, fake.url)))
        (answer,) = [c for c in fake.comments.values() if c["user"]["login"] == "waooaw[bot]"]

        record(platform, "rename-1", "repository", renamed(installation_id=1))
        asyncio.run(drain(github_platform(store, fake.url)))
        fake.rename_repo(OLD, NEW)
        fake.requests.clear()
        help_comment["repository"]["full_name"] = NEW
        help_comment["comment"]["id"] += 1
        record(platform, "help-2", "issue_comment", help_comment)
        asyncio.run(drain(github_platform(store, fake.url)))

    assert [c["id"] for c in fake.comments.values() if c["user"]["login"] == "waooaw[bot]"] == [answer["id"]]
    assert fake.calls("GET", r"/issues/\d+/comments") == []  # its record named it: no search on GitHub
    assert fake.calls("POST", r"/issues/\d+/comments$") == []


def test_a_coe_job_started_before_a_rename_resumes_under_the_new_name_with_its_spend(store):
    """What `waooaw coe run --job ID --resume` hands the runner on the renamed repository's Actions."""
    from bot.coe_cli import _job

    platform = make_platform(store)
    installed(store, platform)
    contexts = DbContextClient(store, Grant(957387))
    started = new_job(job_id="job-0000000001", domain="Digital Marketing", depth="quick", repo=OLD)
    contexts.put(OLD, JOB_AGENT, started.id, started.data(), expected_version=None)
    contexts.record_decisions(OLD, started.id, [Entry(JOB_AGENT, "step", "llm", "settled", key="s1", cost_usd=0.25)])

    record(platform, "rename-1", "repository", renamed())
    asyncio.run(drain(make_platform(store)))

    resumed = _job(contexts, NEW, 957387, started.id, None, "quick", True)
    assert resumed.repo == NEW
    assert contexts.job_spend(resumed.repo, resumed.id) == 0.25
