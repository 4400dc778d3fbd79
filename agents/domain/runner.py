"""Run a domain-onboarding job through the phase table, durably.

Every agent step is committed as its own context version (`<job>:<step>`) before the
next step starts, with its handoff package (deliverable, open questions, provenance)
and what it cost. A run reads what was committed first and walks the table again:
committed steps are reused as they are (their model call is never paid twice), the
first missing step is where work resumes. GitHub side effects (the tracking comment,
escalation issues, the pull request) are published through idempotent Outputs, so a
run killed anywhere and started again repeats none of them.

Spend goes to the decision ledger (agents/ledger.py), which the job's budget reads: the
steps a phase committed are recorded, each under its key, in one request when the phase
ends (or the run stops), and each answer that could not be used when it fails. A run
starts by recording every committed step again — a run killed before its phase ended left
them out; the ledger counts a step once — and takes its budget, again after each phase.

The runner talks to the store through its Checkpoints (agents/domain/checkpoints.py: the
job record, the steps, the ledger) and to GitHub through a `publish` port: agents never
import the edge.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from agents.context.client import ContextClient
from agents.context.client_values import JobBudget
from agents.domain import deliverables as d
from agents.domain import tracking
from agents.domain.assembly import build_spec, lessons_input, prompt_for, reference_items
from agents.domain.checkpoints import Checkpoints
from agents.domain.job import Escalation, Job, settled_note
from agents.domain.phases import PHASES, Phase, review_step, revision_step
from agents.domain.review_rounds import merge_items, review_extra, revision_extra
from agents.domain.roster import AGENTS_BY_ID, WRITER, DomainAgent
from agents.domain.spec import DomainSpec, QualityItem, files
from agents.domain.steps import Step, step_data
from agents.factory.propose import proposal_pull_request
from agents.llm import BatchAsk, Budget, BudgetExceeded, LLMAnswer, LLMClient, LLMError, LLMNotConfigured
from agents.outputs import Comment, Output, PullRequest

Publish = Callable[[Sequence[Output]], Awaitable[Sequence[Any]]]


async def publish_nothing(outputs: Sequence[Output]) -> Sequence[Any]:
    return [None for _ in outputs]


@dataclass(frozen=True)
class JobResult:
    status: Literal["done", "parked", "failed"]
    job: Job
    message: str
    spec: DomainSpec | None = None
    files: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class BatchPolicy:
    """Send the batchable phases through the Message Batches API; check every `poll` s, give up after `wait` s
    (the run then stops, resumable, and the next run collects the same batch)."""

    poll: float = 30.0
    wait: float = 3600.0


class _Park(Exception):
    """The job needs a human (an escalation is open): stop here, keep everything."""

    def __init__(self, escalation: Escalation) -> None:
        super().__init__(escalation.question)
        self.escalation = escalation


class CoeRunner:
    """One run of one job. `run()` returns done, parked (a human is asked) or failed."""

    def __init__(
        self,
        contexts: ContextClient,
        llm: LLMClient | None,
        job_id: str,
        repo: str,
        *,
        publish: Publish = publish_nothing,
        batch: BatchPolicy | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.batch = batch
        self.checkpoints = Checkpoints(contexts, repo, job_id, clock)
        self.llm = llm
        self.job_id = job_id
        self.repo = repo
        self.publish = publish
        self.clock = clock
        self.steps: dict[str, Step] = {}
        self.current: dict[str, Step] = {}  # agent id → its latest deliverable (revisions replace)
        self.job: Job
        self.budget = Budget()
        self.allowance = JobBudget(0.0, 0.0, "no budget taken yet", "job")  # what the ledger left, when taken
        self.quality: list[QualityItem] = []

    # ------------------------------------------------------------ the run

    async def run(self) -> JobResult:
        await self._load()
        job = self.job
        if job.status == "cancelled":
            return JobResult("failed", job, f"job {job.id} was cancelled")
        if (open_question := job.open_escalation()) is not None:
            await self._park(open_question)  # again: a run killed while parking may not have asked yet
            return JobResult("parked", self.job, f"job {job.id} waits for an answer: {open_question.question}")
        if self.llm is None or not self.llm.configured:
            raise LLMNotConfigured("ANTHROPIC_API_KEY is not set: the WowDomain CoE needs Claude")
        await self._take_budget()
        await self._save_job(status="running", error=None)
        await self._track()
        try:
            spec, written = await self._walk()
        except _Park as parked:
            await self._park(parked.escalation)
            question = parked.escalation
            return JobResult("parked", self.job, f"job {job.id} parked ({question.kind}): {question.question}")
        except LLMError as exc:
            # Transient (unavailable, malformed twice): the job stays resumable from its last step.
            await self._save_job(status="queued", error=str(exc)[:1000])
            await self._track()
            return JobResult("failed", self.job, f"job {job.id} stopped at a model error: {exc}")
        await self._save_job(
            status="done", finished_at=self.job.finished_at or self.clock(), current_phase=None, error=None
        )
        await self._track()
        return JobResult("done", self.job, f"job {job.id} done: {self.job.pr_url or 'spec written'}", spec, written)

    async def _walk(self) -> tuple[DomainSpec, dict[str, str]]:
        """Every phase, then the pull request; every step committed is in the ledger when it returns or raises."""
        try:
            for phase, following in zip(PHASES, (*PHASES[1:], None), strict=True):
                await self._run_phase(phase, following)
            spec = build_spec(self.job, self.steps, self.current, self.quality)
            written = files(spec)
            await self._open_pull_request(spec, written)
            return spec, written
        finally:
            await self.checkpoints.record_steps()

    async def _run_phase(self, phase: Phase, following: Phase | None) -> None:
        if self.job.current_phase != phase.id and phase.id not in self.job.phases_done:
            await self._save_job(current_phase=phase.id)
            await self._track()
        if phase.rule == "review-loop":
            await self._review_loop(phase)
        elif phase.rule == "publish":
            await self._step(phase, WRITER, phase.step("orchestrator"), replaces=False)
            await self._step(
                phase,
                AGENTS_BY_ID["learning-curator"],
                phase.step("learning-curator"),
                lessons_input(self.job, self.quality),
                replaces=False,
            )
        else:
            for group in phase.groups:
                if phase.batchable and self.batch is not None:
                    await self._batched(phase, group)
                else:
                    await self._parallel([(phase, AGENTS_BY_ID[agent], phase.step(agent), "") for agent in group])
            if phase.rule == "confidence-gate":
                self._confidence_gate(phase)
        await self._take_budget()  # the phase's steps into the ledger, in one request; what is left now
        if phase.id not in self.job.phases_done:
            # One write and one comment edit end this phase and start the next.
            await self._save_job(
                phases_done=[*self.job.phases_done, phase.id], current_phase=following.id if following else None
            )
            await self._track()

    # ------------------------------------------------------------ one step

    async def _parallel(self, steps: list[tuple[Phase, DomainAgent, str, str]]) -> list[Step]:
        """Run independent steps together; each commits on its own, so one failure loses none of the others."""
        results = await asyncio.gather(*(self._step(*step) for step in steps), return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException):
                raise result
        return [r for r in results if isinstance(r, Step)]

    async def _step(
        self, phase: Phase, agent: DomainAgent, key: str, extra: str = "", *, replaces: bool = True
    ) -> Step:
        done = self.steps.get(key)
        if done is None:
            done = await self._call_and_commit(phase, agent, key, extra)
        if replaces:
            self.current[agent.id] = done
        return done

    async def _call_and_commit(self, phase: Phase, agent: DomainAgent, key: str, extra: str) -> Step:
        prompt = prompt_for(self.job, agent, self.current, extra)
        started = time.perf_counter()
        try:
            assert self.llm is not None
            answer = await self.llm.ask(
                agent.system, prompt, agent.schema, max_tokens=self.job.preset.max_tokens, budget=self.budget
            )
        except BudgetExceeded as exc:
            await self._waste(agent, key, exc)
            raise _Park(self._budget_escalation(key, agent.title, exc)) from exc
        except LLMError as exc:
            await self._waste(agent, key, exc)
            raise
        return await self._commit(phase, agent, key, prompt, answer, (time.perf_counter() - started) * 1000)

    def _budget_escalation(self, key: str, who: str, exc: Exception) -> Escalation:
        escalation = self.job.escalation("budget", key)
        if escalation is not None and escalation.status == "open":
            return escalation
        spent = self.allowance.spent_usd + self.budget.spent_usd
        question = tracking.budget_question(self.job, self.allowance, spent, who, key)
        limit = None if self.allowance.own else self.allowance.limit
        return self._escalate("budget", key, question, [str(exc)], limit=limit)

    async def _batched(self, phase: Phase, group: tuple[str, ...]) -> None:
        """A group's missing steps as one Message Batch (half price); its id is saved before anything waits
        on it, so a run killed meanwhile picks up the same batch and never pays for it twice."""
        todo = [AGENTS_BY_ID[agent] for agent in group if phase.step(agent) not in self.steps]
        if todo:
            assert self.llm is not None and self.batch is not None
            name = phase.step("+".join(group))
            prompts = {phase.step(agent.id): prompt_for(self.job, agent, self.current, "") for agent in todo}
            started = time.perf_counter()
            batch_id = self.job.batches.get(name)
            if batch_id is None:
                asks = [
                    BatchAsk(
                        phase.step(a.id), a.system, prompts[phase.step(a.id)], a.schema, self.job.preset.max_tokens
                    )
                    for a in todo
                ]
                try:
                    batch_id = await self.llm.submit_batch(asks, self.budget)
                except BudgetExceeded as exc:
                    raise _Park(
                        self._budget_escalation(name, f"the batch of {', '.join(a.title for a in todo)}", exc)
                    ) from exc
                await self._save_job(batches={**self.job.batches, name: batch_id})
            answers = await self.llm.batch_answers(
                batch_id,
                {phase.step(a.id): a.schema for a in todo},
                self.budget,
                poll=self.batch.poll,
                wait=self.batch.wait,
            )
            latency = (time.perf_counter() - started) * 1000
            for agent in todo:
                key = phase.step(agent.id)
                answer = answers.get(key)
                if isinstance(answer, LLMAnswer):
                    await self._commit(phase, agent, key, prompts[key], answer, latency, batched=True)
                elif answer is not None:
                    await self._waste(agent, key, answer)  # unusable: the step is asked again directly, below
        await self._parallel([(phase, AGENTS_BY_ID[agent], phase.step(agent), "") for agent in group])

    async def _commit(
        self,
        phase: Phase,
        agent: DomainAgent,
        key: str,
        prompt: str,
        answer: LLMAnswer[Any],
        latency_ms: float,
        *,
        batched: bool = False,
    ) -> Step:
        """Write the step (its answer, handoff package and cost) as a new context: the checkpoint."""
        data = step_data(
            self.job_id, phase.id, key, agent, prompt, answer, self.current, latency_ms=latency_ms, batched=batched
        )
        step = await self.checkpoints.commit(agent.id, data, f"{self.job.domain}: {agent.title}, {key}")
        self._remember(step)
        await self._track()
        return step

    def _remember(self, step: Step) -> None:
        self.steps[step.key] = step
        totals = self.job.totals
        totals.cost_usd += step.cost_usd
        totals.tokens_in += step.tokens_in
        totals.tokens_out += step.tokens_out
        totals.model_calls += step.model_calls
        totals.steps += 1

    # ------------------------------------------------------------ the rules after a phase

    async def _review_loop(self, phase: Phase) -> None:
        rounds = self.job.preset.revision_rounds
        raised: dict[str, d.ReviewItem] = {}
        status: dict[str, str] = {}
        previous: list[d.ReviewItem] = []
        for round_no in range(1, rounds + 2):
            extra = review_extra(round_no, previous)
            reviews = await self._parallel(
                [(phase, AGENTS_BY_ID[a], review_step(round_no, a), extra) for a in phase.groups[0]]
            )
            items = merge_items(reference_items(self.current), *(r.deliverable.get("items", []) for r in reviews))
            for item in previous:
                if item.id not in {i.id for i in items}:
                    status[item.id] = f"resolved in round {round_no}"
            for item in items:
                raised[item.id] = item
                status[item.id] = "open"
            if not items:
                break
            if round_no == rounds + 1:
                escalation = self._answered_or_park(
                    "critique",
                    phase.step("escalation"),
                    f"QA and Critique still disagree with {len(items)} item(s) after {rounds} revision round(s). "
                    "How should they be settled?",
                    [f"`{i.id}` ({i.owner}): {i.problem}" for i in items],
                    [i.id for i in items],
                )
                for item in items:
                    status[item.id] = settled_note(escalation)
                break
            for owner in sorted({i.owner for i in items}):
                mine = [i for i in items if i.owner == owner]
                await self._step(
                    phase,
                    AGENTS_BY_ID[owner],
                    revision_step(round_no, owner),
                    revision_extra(round_no, owner, self.current, mine),
                )
            previous = items
        self.quality = [
            QualityItem(id=i.id, owner=i.owner, problem=i.problem, status=status[i.id]) for i in raised.values()
        ]

    def _confidence_gate(self, phase: Phase) -> None:
        ratings = {s["skill_id"]: s for s in self.current["confidence-analyzer"].deliverable.get("skills", [])}
        threshold = self.job.preset.confidence_threshold
        low = [
            s
            for s in self.current["skills-discovery"].deliverable["skills"]
            if ratings.get(s["id"], {}).get("confidence", 0.0) < threshold
        ]
        if low:
            self._answered_or_park(
                "confidence",
                phase.step("gate"),
                f"{len(low)} skill(s) are below the confidence threshold of {threshold:.2f}. Are they right "
                "for this domain, and what should an agent know to perform them?",
                [
                    f"`{s['id']}` {s['name']}: confidence {ratings.get(s['id'], {}).get('confidence', 0.0):.2f} — "
                    f"{ratings.get(s['id'], {}).get('rationale', 'not rated')}"
                    for s in low
                ],
                [s["id"] for s in low],
            )

    def _answered_or_park(
        self, kind: str, step: str, question: str, evidence: list[str], items: list[str]
    ) -> Escalation:
        """Go on with a human's answer, or park the job with one question (asked once)."""
        escalation = self.job.escalation(kind, step)
        if escalation is not None and escalation.status != "open":
            return escalation
        raise _Park(escalation or self._escalate(kind, step, question, evidence, items))

    def _escalate(
        self, kind: str, step: str, question: str, evidence: list[str], items: list[str] | None = None, **extra: Any
    ) -> Escalation:
        escalation = Escalation(
            n=len(self.job.escalations) + 1,
            kind=kind,
            step=step,
            question=question,
            evidence=evidence,
            items=items or [],
            **extra,
        )
        self.job.escalations.append(escalation)
        return escalation

    # ------------------------------------------------------------ the spec and the PR

    async def _open_pull_request(self, spec: DomainSpec, written: dict[str, str]) -> None:
        published = await self.publish(
            [
                PullRequest(
                    repo=self.repo,
                    branch=f"waooaw/domain/{spec.slug}",
                    title=f"Domain specification: {spec.domain}",
                    body=tracking.pull_request_body(self.job, spec),
                    key=self.job.id,
                    files=written,
                    commit_message=f"Add the {spec.domain} domain specification (WowDomain job {self.job.id})",
                ),
                proposal_pull_request(self.repo, self.job.id, spec),  # the roles as draft agent specs
            ]
        )
        if published and getattr(result := published[0], "github_id", None):
            await self._save_job(pr_number=result.github_id, pr_url=getattr(result, "url", None))

    # ------------------------------------------------------------ the job record and GitHub

    async def _load(self) -> None:
        self.job, found = await self.checkpoints.load()
        self.job.totals = type(self.job.totals)()  # recounted from the steps: they are the truth
        for step in found:
            self._remember(step)

    async def _save_job(self, **changes: Any) -> None:
        self.job = await self.checkpoints.save(self.job, **changes)

    async def _take_budget(self) -> None:
        """Record the committed steps, then take the budget the ledger leaves: one for the phase, parallel
        steps draw on it together (overshoot ≤ one call each)."""
        self.allowance = await self.checkpoints.take_budget(self.job.budget_usd)
        self.budget = Budget(self.allowance.remaining_usd, self.allowance.limit)

    async def _waste(self, agent: DomainAgent, key: str, failed: LLMError) -> None:
        """An answer no step can use: what it cost goes to the ledger and the job record."""
        if failed.cost_usd <= 0:
            return
        await self.checkpoints.record_waste(agent.id, key, failed)
        await self._save_job(wasted_usd=self.job.wasted_usd + failed.cost_usd)

    async def _park(self, escalation: Escalation) -> None:
        await self._save_job(status="parked", escalations=self.job.escalations)
        published = await self.publish([tracking.escalation_issue(self.job, escalation)])
        number = getattr(published[0], "github_id", None) if published else None
        if number and escalation.issue_number != number:
            escalations = [
                e.model_copy(update={"issue_number": number}) if e.n == escalation.n else e
                for e in self.job.escalations
            ]
            await self._save_job(escalations=escalations)
        await self._track()

    async def _track(self) -> None:
        if self.job.issue_number is None:
            return
        await self.publish(
            [
                Comment(
                    repo=self.repo,
                    issue_number=self.job.issue_number,
                    body=tracking.comment_body(self.job, set(self.steps)),
                    key=self.job.id,
                )
            ]
        )
