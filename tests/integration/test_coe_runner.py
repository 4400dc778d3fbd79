"""The WowDomain CoE runner on the real store (SQLite and PostgreSQL) and the real anthropic SDK
against the fake Messages API, scripted per agent. GitHub side effects are recorded by a
small publish port here; tests/e2e drives the same runner through the app and fake GitHub."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pytest

from agents.context.client import DbContextClient
from agents.domain.agent import change_job
from agents.domain.job import AGENT, Job, new_job
from agents.domain.runner import BatchPolicy, CoeRunner, JobResult
from agents.domain.spec import load_yaml
from agents.llm import LLMClient
from agents.outputs import Comment, IssueReport, Output, PullRequest
from agents.store.db import Store
from agents.tokens import Grant
from tests.fakes.anthropic import FakeAnthropic
from tests.fakes.domain import DomainScript, item

REPO = "octo-org/hello"
MODEL = "claude-sonnet-5-5"
STEPS_OF_A_CLEAN_RUN = 14  # 13 agents, the Orchestrator twice (plan and spec), QA and Critique once


@dataclass
class Sent:
    """What a publish port answers: GitHub's id and address of the object."""

    github_id: int | None
    url: str | None


class Recorder:
    """The publish port: remembers every output; `fail_on(n)` raises on the n-th call (a crash)."""

    def __init__(self) -> None:
        self.outputs: list[Output] = []
        self.crash_at: int | None = None
        self.calls = 0

    async def __call__(self, outputs: Sequence[Output]) -> list[Sent]:
        self.calls += 1
        if self.crash_at is not None and self.calls == self.crash_at:
            raise RuntimeError("simulated crash while publishing")
        self.outputs.extend(outputs)
        return [
            Sent(7, "https://github.com/octo-org/hello/pull/7")
            if isinstance(o, PullRequest)
            else Sent(40 + int(o.key.rsplit("-", 1)[1]), None)
            if isinstance(o, IssueReport)
            else Sent(None, None)
            for o in outputs
        ]

    def of(self, kind: type) -> list[Any]:
        return [o for o in self.outputs if isinstance(o, kind)]


class Harness:
    def __init__(
        self,
        store: Store,
        fake: FakeAnthropic,
        depth: str = "standard",
        budget: float | None = None,
        job_id: str = "job-0123456789",
    ) -> None:
        self.contexts = DbContextClient(store, Grant(1))
        self.fake = fake
        self.publish = Recorder()
        job = new_job(
            job_id=job_id,
            domain="Digital Marketing",
            depth=depth,
            repo=REPO,
            installation_id=1,
            issue_number=5,
            requested_by="octocat",
        )
        if budget is not None:
            job.budget_usd = budget
        self.contexts.put(REPO, AGENT, job.id, job.data(), expected_version=None)
        self.job_id = job.id

    def run(self, batch: BatchPolicy | None = None) -> JobResult:
        async def go() -> JobResult:
            llm = LLMClient("test-key", MODEL, base_url=self.fake.url)
            try:
                return await CoeRunner(self.contexts, llm, self.job_id, REPO, publish=self.publish, batch=batch).run()
            finally:
                await llm.aclose()

        return asyncio.run(go())

    def job(self) -> Job:
        record = self.contexts.get(REPO, AGENT, self.job_id)
        assert record is not None
        return Job.model_validate(record.data)

    def answer(self, n: int, text: str, budget: float | None = None) -> None:
        """What the app does on `/answer` (agents.domain.agent): record it, queue the job."""

        def change(job: Job) -> Job:
            escalations = [
                e.model_copy(update={"status": "answered", "answer": text, "answered_by": "maint"}) if e.n == n else e
                for e in job.escalations
            ]
            return job.model_copy(
                update={"escalations": escalations, "status": "queued", "budget_usd": budget or job.budget_usd}
            )

        change_job(self.contexts, REPO, self.job_id, change)


def test_a_full_run_writes_a_valid_spec_with_provenance_and_opens_one_pr(
    store: Store, domain_script: DomainScript, anthropic_server
):
    h = Harness(store, anthropic_server)
    result = h.run()

    assert result.status == "done", result.message
    assert domain_script.total == STEPS_OF_A_CLEAN_RUN
    assert set(domain_script.calls) == {*DomainScript().answers} - {"orchestrator"} | {"orchestrator"}
    spec = load_yaml(result.files["domains/digital-marketing/spec.yaml"])
    assert spec.domain == "Digital Marketing" and [s.id for s in spec.skills] == ["campaign-planning", "seo-audit"]
    assert spec.skills[0].confidence == 0.9 and spec.figures.model_calls == STEPS_OF_A_CLEAN_RUN
    assert spec.open_questions == ["Which markets come first?"]
    assert {p.agent for p in spec.provenance} >= {"research", "regulatory-intelligence", "confidence-analyzer"}
    assert all(p.context_version == 1 and p.model == MODEL for p in spec.provenance)
    markdown = result.files["domains/digital-marketing/spec.md"]
    assert (
        "# Digital Marketing — domain specification" in markdown
        and "| GDPR" not in markdown
        and "### GDPR (EU)" in markdown
    )

    [pr, drafts] = h.publish.of(PullRequest)
    assert pr.branch == "waooaw/domain/digital-marketing" and set(pr.files) == set(result.files)
    # The roles as draft agent specs, offered in a pull request of their own, once per job.
    assert (drafts.branch, drafts.key) == ("waooaw/agents/digital-marketing", f"{h.job_id}:agents")
    assert drafts.files and all(path.startswith(".github/waooaw/agents/digital-marketing/") for path in drafts.files)
    assert f"${spec.figures.cost_usd:.4f}" in pr.body and "mean skill confidence" in pr.body
    job = h.job()
    assert job.status == "done" and job.pr_url.endswith("/pull/7") and len(job.phases_done) == 7
    final = h.publish.of(Comment)[-1]
    assert final.key == job.id and "- [x] 7. Publication and learning" in final.body and "/pull/7" in final.body
    assert job.totals.model_calls == STEPS_OF_A_CLEAN_RUN and job.totals.cost_usd > 0


def test_every_step_is_a_context_version_with_its_handoff_package(
    store: Store, domain_script: DomainScript, anthropic_server
):
    h = Harness(store, anthropic_server)
    h.run()
    research = h.contexts.get(REPO, "research", f"{h.job_id}:research.research")
    assert research is not None
    package = research.data["package"]
    assert package["deliverable"]["summary"].startswith("Marketing")
    assert (
        package["provenance"] | {"model": MODEL} == package["provenance"]
        and package["provenance"]["phase"] == "research"
    )
    assert "tool-discovery" in package["to_agents"] and research.data["reads"] == {"orchestrator": 1}
    assert research.data["spend"]["model_calls"] == 1 and research.data["spend"]["cost_usd"] > 0
    assert '"Digital Marketing"' in research.data["prompt"] and "<untrusted_input>" in research.data["prompt"]


def test_a_second_run_reuses_every_step_and_produces_the_same_spec(
    store: Store, domain_script: DomainScript, anthropic_server
):
    h = Harness(store, anthropic_server)
    first = h.run()
    calls = domain_script.total
    again = h.run()
    assert again.status == "done" and domain_script.total == calls
    assert again.files == first.files
    domain = [pull for pull in h.publish.of(PullRequest) if pull.branch.startswith("waooaw/domain/")]
    assert len(domain) == 2 and domain[0] == domain[1]


def test_a_crash_while_publishing_resumes_from_the_last_step_without_paying_again(
    store: Store, domain_script, anthropic_server
):
    clean = Harness(store, anthropic_server)
    reference = clean.run().files
    anthropic_server.reset()
    anthropic_server.responder = domain_script = DomainScript()

    h = Harness(store, anthropic_server, job_id="job-00000000aa")  # a second job, same domain, same answers
    h.publish.crash_at = 9  # the tracking-comment update after some steps
    with pytest.raises(RuntimeError, match="simulated crash"):
        h.run()
    paid = domain_script.total
    assert 0 < paid < STEPS_OF_A_CLEAN_RUN
    h.publish.crash_at = None
    result = h.run()
    assert result.status == "done"
    assert domain_script.total == STEPS_OF_A_CLEAN_RUN  # nothing paid twice
    assert result.files.keys() == reference.keys()
    assert (
        load_yaml(result.files["domains/digital-marketing/spec.yaml"]).skills
        == load_yaml(reference["domains/digital-marketing/spec.yaml"]).skills
    )


def test_critique_items_go_back_to_their_owner_and_resolve(store: Store, domain_script: DomainScript, anthropic_server):
    domain_script.reviews[("critique", 1)] = [item("vague-market", "market-analysis", "the market summary is vague")]
    domain_script.revisions[("market-analysis", 1)] = {
        **domain_script.answers["market-analysis"],
        "summary": "EU SMB market, 40bn.",
    }
    h = Harness(store, anthropic_server)
    result = h.run()

    assert result.status == "done"
    spec = load_yaml(result.files["domains/digital-marketing/spec.yaml"])
    assert spec.market.summary == "EU SMB market, 40bn."  # the revision replaced the deliverable
    assert [(q.id, q.status) for q in spec.quality] == [("vague-market", "resolved in round 2")]
    assert domain_script.calls["market-analysis"] == 2 and domain_script.calls["critique"] == 2
    assert any(p.step == "quality.r1.revise.market-analysis" for p in spec.provenance)


def test_broken_references_are_found_without_a_model_and_revised(
    store: Store, domain_script: DomainScript, anthropic_server
):
    domain_script.answers["role-definition"]["roles"][0]["skills"].append("copywriting")  # no such skill
    domain_script.revisions[("role-definition", 1)] = {
        "roles": [{"name": "Campaign agent", "responsibilities": ["run"], "skills": ["campaign-planning"]}]
    }
    h = Harness(store, anthropic_server)
    spec = load_yaml(h.run().files["domains/digital-marketing/spec.yaml"])
    assert [(q.owner, q.status) for q in spec.quality] == [("role-definition", "resolved in round 2")]
    assert spec.roles[0].skills == ["campaign-planning"]


def test_unresolved_critique_escalates_parks_and_an_answer_resumes(
    store: Store, domain_script: DomainScript, anthropic_server
):
    stuck = [item("no-sources", "research", "no primary sources")]
    for round_no in (1, 2, 3):
        domain_script.reviews[("qa", round_no)] = stuck
    h = Harness(store, anthropic_server)  # standard: 2 revision rounds, then a human
    parked = h.run()

    assert parked.status == "parked"
    job = h.job()
    assert job.status == "parked" and job.escalations[0].kind == "critique" and job.escalations[0].issue_number == 41
    [issue] = h.publish.of(IssueReport)
    assert issue.labels == ("needs-human",) and "no primary sources" in issue.body and issue.state == "open"
    assert "waits" in h.run().message and len(h.publish.of(PullRequest)) == 0  # parked stays parked
    calls = domain_script.total

    h.answer(1, "Use the IAB standards as the primary source.")
    done = h.run()
    assert done.status == "done" and domain_script.total == calls + 4  # only the validation and publication steps
    spec = load_yaml(done.files["domains/digital-marketing/spec.yaml"])
    assert spec.quality[0].status == "answered by @maint: Use the IAB standards as the primary source."
    assert "IAB standards" in str(anthropic_server.messages[-1].json["messages"])  # the answer reaches the agents


def test_low_confidence_escalates_and_the_answer_is_recorded_on_the_skill(
    store: Store, domain_script: DomainScript, anthropic_server
):
    domain_script.confidence["seo-audit"] = 0.3
    h = Harness(store, anthropic_server)
    assert h.run().status == "parked"
    escalation = h.job().escalations[0]
    assert escalation.kind == "confidence" and escalation.items == ["seo-audit"]
    assert "seo-audit" in h.publish.of(IssueReport)[0].body
    h.answer(1, "Keep it; agents use Lighthouse for it.")
    spec = load_yaml(h.run().files["domains/digital-marketing/spec.yaml"])
    seo = next(s for s in spec.skills if s.id == "seo-audit")
    assert seo.confidence == 0.3 and seo.confirmed_by == "maint" and "Lighthouse" in seo.human_note
    assert next(s for s in spec.skills if s.id == "campaign-planning").confirmed_by is None
    assert spec.figures.escalations == 1


def test_a_spent_budget_parks_the_job_and_a_raised_budget_resumes_it(
    store: Store, domain_script: DomainScript, anthropic_server
):
    h = Harness(store, anthropic_server, budget=0.0001)
    parked = h.run()
    assert parked.status == "parked" and domain_script.total == 0  # estimated before the call, never truncated
    escalation = h.job().escalations[0]
    assert escalation.kind == "budget" and escalation.step == "intake.orchestrator"
    assert "/answer budget" in h.publish.of(IssueReport)[0].body
    h.answer(1, "budget 5", budget=5.0)
    assert h.run().status == "done" and domain_script.total == STEPS_OF_A_CLEAN_RUN


BATCHED_STEPS = 7  # research (3), discovery (2) and capability design (2): one batch per group of the table
INSTANT = BatchPolicy(poll=0.01, wait=5)


def test_batchable_phases_go_through_message_batches_at_half_price(
    store: Store, domain_script: DomainScript, anthropic_server
):
    direct = Harness(store, anthropic_server, job_id="job-00000000d1")
    reference = direct.run().files
    direct_costs = {s.key: s.cost_usd for s in _steps(direct)}
    anthropic_server.reset()
    anthropic_server.responder = DomainScript()

    h = Harness(store, anthropic_server, job_id="job-00000000d2")
    anthropic_server.batch_polls = 2  # in progress twice, then ended
    result = h.run(batch=INSTANT)
    assert result.status == "done"
    assert len(anthropic_server.batches) == 5  # research; tool discovery; component mapper; skills; roles
    assert len(anthropic_server.messages) == STEPS_OF_A_CLEAN_RUN - BATCHED_STEPS
    steps = {s.key: s for s in _steps(h)}
    research = h.contexts.get(REPO, "research", "job-00000000d2:research.research")
    assert research.data["spend"]["batch"] is True and steps["research.research"].model_calls == 1
    # Half price, against the same step asked directly (the prompt cache was as warm for both).
    assert steps["discovery.component-mapper"].cost_usd == pytest.approx(direct_costs["discovery.component-mapper"] / 2)
    assert _without_job(result.files) == _without_job(reference)
    assert h.job().batches.keys() == {
        "research.research+regulatory-intelligence+market-analysis",
        "discovery.tool-discovery",
        "discovery.component-mapper",
        "capability.skills-discovery",
        "capability.role-definition",
    }


def test_a_batch_still_running_stops_the_run_and_the_next_run_collects_it(
    store: Store, domain_script: DomainScript, anthropic_server
):
    h = Harness(store, anthropic_server)
    anthropic_server.batch_polls = 1000
    stopped = h.run(batch=BatchPolicy(poll=0.01, wait=0.05))
    assert stopped.status == "failed" and "still in_progress" in stopped.message
    assert h.job().status == "queued" and len(anthropic_server.batches) == 1
    anthropic_server.batch_polls = 0
    for batch in anthropic_server.batches.values():
        batch["polls_left"] = 0
    assert h.run(batch=INSTANT).status == "done"
    assert len(anthropic_server.batches) == 5  # the first batch collected, not sent again


def test_an_unusable_batch_answer_is_asked_again_directly(store: Store, domain_script: DomainScript, anthropic_server):
    domain_script.answers["market-analysis"] = {"summary": ""}  # fails the schema (empty summary)
    h = Harness(store, anthropic_server, budget=5.0)
    calls = []
    original = domain_script.__call__

    def fixed_after_batch(request):
        calls.append(DomainScript.agent_of(request))
        if DomainScript.agent_of(request) == "market-analysis" and calls.count("market-analysis") > 1:
            domain_script.answers["market-analysis"] = DomainScript().answers["market-analysis"]
        return original(request)

    anthropic_server.responder = fixed_after_batch
    assert h.run(batch=INSTANT).status == "done"
    market = h.contexts.get(REPO, "market-analysis", f"{h.job_id}:research.market-analysis")
    assert market.data["spend"]["batch"] is False and h.job().wasted_usd > 0


def _steps(h: Harness) -> list[Any]:
    from agents.domain.steps import Step

    return [
        Step.from_context(h.contexts.get(REPO, c.agent, c.scope))
        for c in h.contexts.search_all(repo=REPO, scope_prefix=h.job_id + ":")
    ]


def _without_job(files: dict[str, str]) -> dict[str, Any]:
    spec = load_yaml(files["domains/digital-marketing/spec.yaml"]).model_dump(mode="json")
    for key in ("job", "figures", "provenance"):
        spec.pop(key)
    return spec
