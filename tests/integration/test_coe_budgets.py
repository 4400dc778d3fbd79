"""A CoE job held to its installation's and its agent's LLM limits as well as its own budget
(agents/budgets.py), on the real store (SQLite and PostgreSQL), in-process (the store's client with
the operator's limits) and as a runner on Actions sees it (over the Context API, with a job token):
it parks, naming the limit, before it pays for a call the limit cannot cover."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from typing import Any

import pytest
from fastapi.testclient import TestClient

from agents.context.client import ContextClient, DbContextClient, HttpContextClient
from agents.domain.job import AGENT, Job, new_job
from agents.domain.runner import CoeRunner, JobResult
from agents.ledger import Entry, LedgerOwner, record_entries
from agents.llm import LLMClient
from agents.outputs import Comment, IssueReport
from agents.store.db import Store
from agents.tokens import Grant
from bot.wiring import open_context_client
from tests.context_api_support import api_app, bearer, issue, live_server
from tests.fakes.domain import DomainScript
from tests.helpers import make_settings
from tests.integration.test_coe_runner import Recorder

REPO = "octo-org/hello"
INSTALLATION = 1
JOB = "job-00000000f1"
MODEL = "claude-sonnet-5-5"
MONTHLY = "WAOOAW_LLM_INSTALLATION_MONTHLY_BUDGET_USD"
Open = Callable[..., ContextClient]


@pytest.fixture(params=["in-process", "api"])
def open_client(request: pytest.FixtureRequest, store: Store) -> Iterator[Open]:
    """open_client(**operator settings): the job's client as `waooaw coe run` opens it on the store, or as a
    runner on Actions holds it (the app, with those settings, behind the Context API; a token for the job)."""
    with ExitStack() as stack:

        def in_process(**settings: str) -> ContextClient:
            client = open_context_client(make_settings(**settings), installation_id=INSTALLATION, store=store)
            return stack.enter_context(client)

        def over_the_api(**settings: str) -> ContextClient:
            base = stack.enter_context(live_server(api_app(store, **settings)))
            return stack.enter_context(HttpContextClient(base, issue(store, INSTALLATION, job_id=JOB, repo=REPO)))

        yield in_process if request.param == "in-process" else over_the_api


def spent(store: Store, usd: float, *, agent: str = "wowvision", repo: str = "octo-org/web", **where: Any) -> None:
    """Earlier spend in the ledger, now: WowVision's on another repository of the installation by default."""
    owner = LedgerOwner(repo=repo, installation_id=where.pop("installation_id", INSTALLATION), **where)
    key = f"earlier-{usd}" if owner.job_id else None
    record_entries(store, owner, [Entry(agent, "earlier", "llm", "settled", key=key, cost_usd=usd, model_calls=1)])


def queue(store: Store, depth: str = "quick") -> None:
    job = new_job(
        job_id=JOB, domain="Digital Marketing", depth=depth, repo=REPO, installation_id=INSTALLATION, issue_number=5
    )
    DbContextClient(store, Grant(INSTALLATION)).put(REPO, AGENT, job.id, job.data(), expected_version=None)


def run(contexts: ContextClient, fake: Any, publish: Recorder) -> JobResult:
    async def go() -> JobResult:
        llm = LLMClient("test-key", MODEL, base_url=fake.url)
        try:
            return await CoeRunner(contexts, llm, JOB, REPO, publish=publish).run()
        finally:
            await llm.aclose()

    return asyncio.run(go())


def job_of(store: Store) -> Job:
    record = DbContextClient(store, Grant(INSTALLATION)).get(REPO, AGENT, JOB)
    assert record is not None
    return Job.model_validate(record.data)


def test_a_job_parks_when_wowvision_spent_its_installations_month(
    store: Store, open_client: Open, domain_script: DomainScript, anthropic_server
):
    queue(store)  # quick: $0.50 of its own, nothing spent
    spent(store, 0.99)
    spent(store, 50.0, installation_id=2)  # another installation's is its own
    publish = Recorder()
    result = run(open_client(**{MONTHLY: "1.00"}), anthropic_server, publish)

    limit = "the monthly LLM budget of installation 1 ($1.00)"
    assert result.status == "parked" and domain_script.total == 0, result.message  # no call it could not pay
    assert result.message.startswith(f"job {JOB} parked (budget): The monthly LLM budget of installation 1 ($1.00)")
    [question] = job_of(store).escalations
    assert (question.kind, question.limit, question.status) == ("budget", limit, "open")
    assert "this job: $0.0000 of its $0.50" in question.question and limit in question.evidence[0]
    [asked] = publish.of(IssueReport)
    assert "It is the operator's limit, not the job's budget" in asked.body and "/answer resume" in asked.body
    tracking = publish.of(Comment)[-1].body
    assert "(budget: the monthly LLM budget of installation 1 (&#36;1.00) is spent) in #41: open" in tracking


def test_a_limit_with_room_lets_the_job_run(
    store: Store, open_client: Open, domain_script: DomainScript, anthropic_server
):
    queue(store)
    spent(store, 0.99)
    result = run(open_client(**{MONTHLY: "5.00"}), anthropic_server, Recorder())
    assert result.status == "done", result.message


def test_the_job_agents_limits_count_every_jobs_rows_and_not_other_agents(
    store: Store, open_client: Open, domain_script: DomainScript, anthropic_server
):
    queue(store)
    spent(store, 0.50, agent="research", repo="octo-org/web", job_id="job-00000000e1")  # an earlier job of today
    spent(store, 5.00)  # WowVision's: another agent's
    result = run(open_client(WAOOAW_LLM_AGENT_DAILY_BUDGET_USD="0.51"), anthropic_server, Recorder())
    assert result.status == "parked" and domain_script.total == 0
    assert job_of(store).escalations[0].limit == "the daily LLM budget of wowdomain in installation 1 ($0.51)"


def test_the_repositorys_daily_limit_is_the_events_not_the_jobs(
    store: Store, open_client: Open, domain_script: DomainScript, anthropic_server
):
    queue(store)
    spent(store, 5.0, repo=REPO)  # WowVision spent the repository's day
    result = run(open_client(WAOOAW_LLM_REPO_DAILY_BUDGET_USD="1.00"), anthropic_server, Recorder())
    assert result.status == "done", result.message


def test_the_jobs_own_budget_still_binds_first_and_is_raised_by_a_maintainer(
    store: Store, open_client: Open, domain_script: DomainScript, anthropic_server
):
    queue(store)
    spent(store, 0.4999, agent="research", repo=REPO, job_id=JOB)  # its own: $0.50
    result = run(open_client(**{MONTHLY: "100"}), anthropic_server, Recorder())
    [question] = job_of(store).escalations
    assert result.status == "parked" and question.limit is None  # the job's: `/answer budget` raises it
    assert "The job's budget of $0.50 is spent ($0.4999 so far)" in question.question


def test_a_limit_spent_during_a_run_parks_the_job_at_its_next_phase(
    store: Store, open_client: Open, domain_script: DomainScript, anthropic_server
):
    """Another process (WowVision on a pull request) spends the installation's day while the job researches."""
    queue(store, depth="standard")

    def answer(request: dict[str, Any]) -> dict[str, Any]:
        if DomainScript.agent_of(request) == "research":
            spent(store, 1.99)
        return domain_script(request)

    anthropic_server.responder = answer
    result = run(
        open_client(WAOOAW_LLM_INSTALLATION_DAILY_BUDGET_USD="2.00"),
        anthropic_server,
        Recorder(),
    )
    job = job_of(store)
    assert result.status == "parked" and job.phases_done == ["intake", "research"], result.message
    assert job.escalations[0].limit == "the daily LLM budget of installation 1 ($2.00)"
    assert domain_script.calls["research"] == 1 and domain_script.calls["tool-discovery"] == 0


# ------------------------------------------------------------------ the endpoint: the token's own installation only


def test_a_job_token_reads_its_own_installations_budget_and_nothing_of_another(pg_store: Store):
    queue(pg_store)
    spent(pg_store, 0.75)
    spent(pg_store, 40.0, repo="other-org/app", installation_id=2)  # installation 2 and its own job
    client = TestClient(api_app(pg_store, **{MONTHLY: "1.00"}))
    token = issue(pg_store, INSTALLATION, job_id=JOB, repo=REPO)

    def ask(owner: str, repo: str, job: str = JOB, with_token: str = token) -> Any:
        query = {"owner": owner, "repo": repo, "job": job, "agent": AGENT, "budget_usd": "0.5"}
        return client.get("/api/v1/decisions/budget", params=query, headers=bearer(with_token))

    own = ask("octo-org", "hello")
    assert own.status_code == 200, own.text
    assert own.json() == {
        "owner": "octo-org",
        "repo": "hello",
        "job": JOB,
        "agent": AGENT,
        "spent_usd": 0.0,
        "remaining_usd": pytest.approx(0.25),
        "limit": "the monthly LLM budget of installation 1 ($1.00)",
        "scope": "installation_monthly",
    }
    assert ask("other-org", "app", "job-00000000b2").status_code == 404  # installation 2's: as if it did not exist
    assert ask("octo-org", "hello", "job-00000000b2").status_code == 403  # another job of its repository
    # A token of installation 2 naming installation 1's repository learns installation 2's spend alone.
    theirs = ask("octo-org", "hello", with_token=issue(pg_store, 2))
    assert theirs.status_code == 200 and theirs.json()["remaining_usd"] == pytest.approx(-39.0)
    bad = client.get(
        "/api/v1/decisions/budget",
        params={"owner": "octo-org", "repo": "hello", "job": JOB, "agent": AGENT, "budget_usd": "-1"},
        headers=bearer(token),
    )
    assert bad.status_code == 422
    assert client.get("/api/v1/decisions/budget", params={"owner": "octo-org"}).status_code in (401, 422)


def test_the_in_process_client_without_the_operators_limits_holds_the_job_to_its_own_budget(store: Store):
    queue(store)
    spent(store, 9.0)
    left = DbContextClient(store, Grant(INSTALLATION)).job_budget(REPO, JOB, agent=AGENT, budget_usd=0.5)
    assert (left.spent_usd, left.remaining_usd, left.scope) == (0.0, 0.5, "job") and left.own
    assert left.limit == f"the LLM budget of job {JOB} ($0.50)"
