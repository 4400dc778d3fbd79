"""One ledger for every model call (agents/ledger.py) on the real store, SQLite and PostgreSQL: a CoE job's
steps recorded through its ContextClient (over `POST /api/v1/decisions` with a job token, or on the store),
each once however often a resumed job writes them; the job's budget and the daily report read the ledger;
the migration carries the spend jobs kept in their contexts before."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import delete, insert, select, text

from agents.context.client import ContextClient, DbContextClient, HttpContextClient
from agents.context.errors import Forbidden, InvalidRequest, NotFound
from agents.context.models import ContextVersion
from agents.domain.job import AGENT, Job, new_job
from agents.domain.runner import CoeRunner, JobResult
from agents.ledger import Entry
from agents.llm import LLMClient
from agents.reports import build_daily_report
from agents.store.db import Store
from agents.store.tables import Decision, Installation
from agents.tokens import Grant
from bot.tenancy import prune
from tests.context_api_support import api_app, bearer, issue, live_server
from tests.integration.test_migrations import migrate, unmigrated  # noqa: F401 - the fixture, for the migration test

REPO = "octo/hello"
JOB = "job-00000000c1"
MODEL = "claude-sonnet-5-5"
STEPS_OF_A_CLEAN_RUN = 14
MakeClient = Callable[..., ContextClient]


def step(key: str, cost: float = 0.01, *, tokens_in: int = 0, tokens_out: int = 0, model_calls: int = 1) -> Entry:
    """A committed step's entry, as the runner writes it (keyed by the step)."""
    return Entry(
        key.rsplit(".", 1)[-1],
        key,
        "llm",
        "settled",
        key=key,
        cost_usd=cost,
        tokens_in=tokens_in,
        tokens_out=tokens_out,
        model_calls=model_calls,
    )


def rows(store: Store, job: str = JOB) -> list[Decision]:
    with store.reading() as session:
        return list(session.scalars(select(Decision).where(Decision.job_id == job).order_by(Decision.id)))


@pytest.fixture(params=["http", "db"])
def make_client(request: pytest.FixtureRequest, store: Store) -> Iterator[MakeClient]:
    """make_client(installation=1, job=None, read_only=False): a job's client over the API or on the store."""
    opened: list[ContextClient] = []

    def kept(client: ContextClient) -> ContextClient:
        opened.append(client)
        return client

    if request.param == "db":
        yield lambda installation=1, job=None, read_only=False: kept(
            DbContextClient(store, Grant(installation, job, read_only, repo=REPO if job else None))
        )
    else:
        with live_server(api_app(store)) as base:
            yield lambda installation=1, job=None, read_only=False: kept(
                HttpContextClient(
                    base, issue(store, installation, job_id=job, repo=REPO if job else None, read_only=read_only)
                )
            )
    for client in opened:
        client.close()


# ----------------------------------------------------------------------------- the endpoint and the clients


def test_a_job_records_its_decisions_once_each_and_reads_what_it_spent(make_client, store):
    client = make_client(job=JOB)
    assert client.job_spend(REPO, JOB) == 0.0
    assert client.record_decisions(REPO, JOB, [step("intake.orchestrator", 0.10), step("research.research", 0.20)]) == 2
    # Sent again (a retried request, a resumed job): nothing new; a new key is.
    again = [step("research.research", 0.20), step("research.market-analysis", 0.05)]
    assert client.record_decisions(REPO, JOB, again) == 1
    assert client.job_spend(REPO, JOB) == pytest.approx(0.35)
    recorded = rows(store)
    assert [(r.idempotency_key, r.status, r.repo, r.installation_id) for r in recorded] == [
        ("intake.orchestrator", "settled", REPO, 1),
        ("research.research", "settled", REPO, 1),
        ("research.market-analysis", "settled", REPO, 1),
    ]


def test_a_token_reaches_its_own_jobs_ledger_only(make_client, store):
    make_client(job=JOB).record_decisions(REPO, JOB, [step("intake.orchestrator", 0.10)])
    with pytest.raises(Forbidden):
        make_client(job="job-00000000c2").record_decisions(REPO, JOB, [step("intake.orchestrator", 5.0)])
    with pytest.raises(Forbidden):
        make_client(job="job-00000000c2").job_spend(REPO, JOB)
    with pytest.raises(NotFound):  # another repository than the token's
        make_client(job=JOB).job_spend("octo/other", JOB)
    with pytest.raises(Forbidden):
        make_client(job=JOB, read_only=True).record_decisions(REPO, JOB, [step("qa.qa", 1.0)])
    with pytest.raises(InvalidRequest):  # a job's rows need their key: sent twice, counted once
        make_client(job=JOB).record_decisions(REPO, JOB, [Entry("qa", "qa.qa", "llm", "settled", cost_usd=1.0)])
    # Another installation's token: its own rows, never ours (and ours are not its).
    other = make_client(installation=2)
    assert other.job_spend(REPO, JOB) == 0.0
    other.record_decisions(REPO, JOB, [step("intake.orchestrator", 7.0)])
    assert make_client(job=JOB).job_spend(REPO, JOB) == pytest.approx(0.10)


def test_bad_entries_get_a_4xx_naming_the_field(store):
    client = TestClient(api_app(store))
    token = issue(store, 1, job_id=JOB, repo=REPO)
    entry = step("intake.orchestrator").document()
    for bad in (
        {**entry, "cost_usd": -1},
        {**entry, "rung": "guess"},
        {**entry, "key": "k" * 129},
        {**entry, "tokens_in": 2**31},
        {**entry, "agent": "a\x00b"},
    ):
        answer = client.post(
            "/api/v1/decisions",
            json={"owner": "octo", "repo": "hello", "job": JOB, "entries": [bad]},
            headers=bearer(token),
        )
        assert answer.status_code == 422, answer.text
    empty = client.post(
        "/api/v1/decisions", json={"owner": "octo", "repo": "hello", "job": JOB, "entries": []}, headers=bearer(token)
    )
    assert empty.status_code == 422 and rows(store) == []


# ----------------------------------------------------------------------------- the runner


def run(contexts: ContextClient, fake, job_id: str = JOB) -> JobResult:
    async def go() -> JobResult:
        llm = LLMClient("test-key", MODEL, base_url=fake.url)
        try:
            return await CoeRunner(contexts, llm, job_id, REPO).run()
        finally:
            await llm.aclose()

    return asyncio.run(go())


def queue(contexts: ContextClient, depth: str = "standard", job_id: str = JOB) -> Job:
    job = new_job(job_id=job_id, domain="Digital Marketing", depth=depth, repo=REPO, installation_id=1)
    contexts.put(REPO, AGENT, job.id, job.data(), expected_version=None)
    return job


def job_of(contexts: ContextClient, job_id: str = JOB) -> Job:
    record = contexts.get(REPO, AGENT, job_id)
    assert record is not None
    return Job.model_validate(record.data)


def test_a_runner_over_the_api_records_every_step_in_the_ledger_once(pg_store, domain_script, anthropic_server):
    queue(DbContextClient(pg_store, Grant(1)))
    with live_server(api_app(pg_store)) as base:
        with HttpContextClient(base, issue(pg_store, 1, job_id=JOB, repo=REPO)) as contexts:
            assert run(contexts, anthropic_server).status == "done"
            again = run(contexts, anthropic_server)
    assert again.status == "done" and domain_script.total == STEPS_OF_A_CLEAN_RUN  # the second run paid nothing
    recorded = rows(pg_store)
    assert len(recorded) == STEPS_OF_A_CLEAN_RUN and {r.status for r in recorded} == {"settled"}
    assert len({r.idempotency_key for r in recorded}) == STEPS_OF_A_CLEAN_RUN
    totals = again.job.totals
    assert sum(r.cost_usd for r in recorded) == pytest.approx(totals.cost_usd) and totals.cost_usd > 0
    assert sum(r.model_calls for r in recorded) == totals.model_calls == STEPS_OF_A_CLEAN_RUN
    research = next(r for r in recorded if r.idempotency_key == "research.research")
    assert (research.agent, research.rule, research.rung, research.installation_id) == (
        "research",
        "research.research",
        "llm",
        1,
    )
    assert research.tokens_in > 0 and research.outcome["model"] == MODEL and len(research.input_hash) == 64


def test_steps_missing_from_the_ledger_are_recorded_when_the_job_resumes(store, domain_script, anthropic_server):
    contexts = DbContextClient(store, Grant(1))
    queue(contexts)
    assert run(contexts, anthropic_server).status == "done"
    paid = sum(r.cost_usd for r in rows(store))
    with store.session() as session:  # as if every run had been killed between committing a step and recording it
        session.execute(delete(Decision).where(Decision.job_id == JOB))
    assert run(contexts, anthropic_server).status == "done"
    assert domain_script.total == STEPS_OF_A_CLEAN_RUN
    assert len(rows(store)) == STEPS_OF_A_CLEAN_RUN and sum(r.cost_usd for r in rows(store)) == pytest.approx(paid)


def test_the_jobs_budget_is_what_the_ledger_says_it_spent(store, domain_script, anthropic_server):
    contexts = DbContextClient(store, Grant(1))
    queue(contexts, depth="quick")  # $0.50
    contexts.record_decisions(
        REPO, JOB, [Entry("research", "research.research", "llm", "error", key="earlier", cost_usd=0.4999)]
    )
    parked = run(contexts, anthropic_server)
    assert parked.status == "parked" and domain_script.total == 0
    escalation = job_of(contexts).escalations[0]
    assert escalation.kind == "budget" and "$0.4999 so far" in escalation.question


def test_an_unusable_answer_is_an_error_row_of_its_job(store, domain_script, anthropic_server):
    domain_script.answers["research"] = {"summary": ""}  # fails the schema, on the retry too
    contexts = DbContextClient(store, Grant(1))
    queue(contexts)
    failed = run(contexts, anthropic_server)
    assert failed.status == "failed" and "did not fit" in failed.message
    [wasted] = [r for r in rows(store) if r.status == "error"]
    assert (wasted.agent, wasted.rule, wasted.rung, wasted.model_calls) == ("research", "research.research", "llm", 2)
    assert wasted.cost_usd == pytest.approx(job_of(contexts).wasted_usd) and wasted.cost_usd > 0
    assert wasted.outcome["reason"] == "malformed" and wasted.tokens_out > 0


# ----------------------------------------------------------------------------- the report, pruning


def test_the_reports_coe_spend_is_the_ledgers_whatever_the_steps_look_like(store):
    """Steps whose contexts say nothing of spend, or that no context holds: the report counts the ledger."""
    at = datetime(2026, 3, 10, 12, tzinfo=UTC)
    contexts = DbContextClient(store, Grant(1))
    job = queue(contexts)
    contexts.put(REPO, "research", f"{JOB}:research.research", {"layout": "of another day"}, expected_version=None)
    contexts.record_decisions(
        REPO,
        JOB,
        [
            step("intake.orchestrator", 0.25, tokens_in=100, tokens_out=10),
            step("research.research", 0.5, tokens_in=200, tokens_out=20, model_calls=2),
        ],
    )
    with store.session() as session:
        session.execute(insert(Installation), [dict(id=1, account="octo", status="active", repos=[REPO])])
        for table in (Decision, ContextVersion):
            session.execute(table.__table__.update().values(created_at=at))
    report = build_daily_report(store, date(2026, 3, 10), "UTC", installation_id=1, now=at + timedelta(days=1))
    spend = report.coe.spend
    assert (spend.steps, spend.model_calls, spend.tokens_in, spend.tokens_out) == (2, 3, 300, 30)
    assert spend.cost_usd == pytest.approx(0.75) and report.headline.coe_cost_usd == pytest.approx(0.75)
    assert report.headline.cost_usd == 0 and report.headline.decisions == {}  # a job's steps are not agents' decisions
    [row] = report.coe.jobs
    assert (row.job, row.spent_usd, row.model_calls) == (job.id, pytest.approx(0.75), 3)


def test_pruning_an_installation_deletes_its_jobs_ledger_rows(store):
    DbContextClient(store, Grant(7)).record_decisions("octo/moved", JOB, [step("intake.orchestrator", 1.0)])
    with store.session() as session:  # the repository left the installation before it was uninstalled
        session.execute(
            insert(Installation),
            [dict(id=7, account="octo", status="deleted", repos=[], updated_at=datetime.now(UTC) - timedelta(days=31))],
        )
    assert prune(store, timedelta(days=30)) == [7]
    assert rows(store) == []


# ----------------------------------------------------------------------------- the migration


def test_the_spend_jobs_kept_in_their_contexts_moves_into_the_ledger(unmigrated):  # noqa: F811 - the fixture imported above
    migrate(unmigrated, "0008")
    day = datetime(2026, 3, 10, 9, tzinfo=UTC)
    job = new_job(job_id=JOB, domain="Tax Law", depth="quick", repo=REPO, installation_id=3).data()
    versions = [
        # The job record: its wasted spend rises to 0.03 at v2, stays, then to 0.05 at v4.
        *[
            dict(agent=AGENT, scope=JOB, version=v, data=job | {"wasted_usd": w}, at=day + timedelta(minutes=v))
            for v, w in ((1, 0.0), (2, 0.03), (3, 0.03), (4, 0.05))
        ],
        # Two committed steps, one restored later (a version 2 that spent nothing new), and the domain lock.
        dict(
            agent="orchestrator",
            scope=f"{JOB}:intake.orchestrator",
            version=1,
            at=day,
            data={
                "step": "intake.orchestrator",
                "input_hash": "a" * 64,
                "spend": {
                    "model": MODEL,
                    "cost_usd": 0.08,
                    "tokens_in": 800,
                    "tokens_out": 80,
                    "model_calls": 1,
                    "latency_ms": 12.5,
                    "batch": False,
                },
            },
        ),
        dict(
            agent="research",
            scope=f"{JOB}:research.research",
            version=1,
            at=day + timedelta(hours=1),
            data={
                "step": "research.research",
                "spend": {
                    "model": MODEL,
                    "cost_usd": 0.12,
                    "tokens_in": 1200,
                    "tokens_out": 150,
                    "model_calls": 2,
                    "batch": True,
                },
            },
        ),
        dict(
            agent="orchestrator",
            scope=f"{JOB}:intake.orchestrator",
            version=2,
            at=day + timedelta(hours=2),
            data={"step": "intake.orchestrator", "spend": {"cost_usd": 0.08}},
        ),
        dict(agent=AGENT, scope="domain-tax-law", version=1, at=day, data={"job": JOB}),
    ]
    with unmigrated.engine.begin() as connection:
        for v in versions:
            connection.execute(
                insert(ContextVersion.__table__).values(
                    installation_id=3,
                    repo=REPO,
                    agent=v["agent"],
                    scope=v["scope"],
                    version=v["version"],
                    data=v["data"],
                    summary="",
                    tags=[],
                    created_at=v["at"],
                )
            )
        connection.execute(
            text(
                "INSERT INTO decisions (agent, rule, rung, input_hash, outcome, latency_ms, tokens_in, "
                "tokens_out, cost_usd, repo, created_at) VALUES ('wowvision', 'r', 'llm', NULL, "
                "'{\"status\": \"error\"}', 1.0, 10, 1, 0.5, 'octo/hello', :at)"
            ),
            {"at": day},
        )
    migrate(unmigrated, "head")

    carried = rows(unmigrated)
    assert [
        (r.agent, r.rule, r.status, r.idempotency_key, r.cost_usd, r.model_calls, r.installation_id) for r in carried
    ] == [
        ("orchestrator", "intake.orchestrator", "settled", "intake.orchestrator", 0.08, 1, 3),
        ("research", "research.research", "settled", "research.research", 0.12, 2, 3),
        ("wowdomain", "wasted", "error", "wasted@v2", pytest.approx(0.03), 0, 3),
        ("wowdomain", "wasted", "error", "wasted@v4", pytest.approx(0.02), 0, 3),
    ]
    first = carried[0]
    assert (first.tokens_in, first.tokens_out, first.latency_ms, first.input_hash, first.repo) == (
        800,
        80,
        12.5,
        "a" * 64,
        REPO,
    )
    assert first.created_at.replace(tzinfo=UTC) == day and carried[1].outcome["batch"] is True
    with unmigrated.reading() as session:
        earlier = session.scalar(select(Decision).where(Decision.agent == "wowvision"))
    assert (earlier.status, earlier.model_calls) == ("error", 1)  # from its outcome; it cost something: one call

    # A resumed job writes its committed steps again: none counts twice.
    contexts = DbContextClient(unmigrated, Grant(3))
    committed = [step("intake.orchestrator", 0.08), step("research.research", 0.12)]
    assert contexts.record_decisions(REPO, JOB, committed) == 0
    assert contexts.job_spend(REPO, JOB) == pytest.approx(0.25)

    migrate_down(unmigrated, "0008")  # the code before reads the jobs' spend from their contexts again
    with unmigrated.engine.connect() as connection:
        assert connection.execute(text("SELECT agent FROM decisions")).scalars().all() == ["wowvision"]


def migrate_down(store: Store, revision: str) -> None:
    from alembic import command
    from alembic.config import Config

    from agents.store.db import MIGRATIONS_DIR

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    with store.engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, revision)
