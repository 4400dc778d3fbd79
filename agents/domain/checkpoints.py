"""What a CoE run keeps in the context store: the job record, each committed step, and the steps' spend.

The job record is the context `wowdomain/<job>`, written with If-Match so that the app
recording an answer meanwhile is never overwritten; each step is the context `<job>:<step>`,
written once. Spend goes to the decision ledger, which the job's budget reads: every step
committed or loaded is recorded when the runner asks (at the end of a phase, or when the run
stops), and the ledger counts a step once however often it is recorded.

All of it goes through a ContextClient (the Context API from an Actions runner, the DB inside
the app), off the event loop.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any

from agents.context.client import ContextClient
from agents.context.client_values import Context, JobBudget
from agents.context.repository import StaleContext
from agents.domain.job import AGENT, Job, job_at, merge_escalations, put_job
from agents.domain.steps import Step, step_scope
from agents.ledger import ENTRIES_MAX, Entry
from agents.llm import LLMError


class JobNotFound(LookupError):
    pass


class Checkpoints:
    """One job's record and steps in the store, for one run of it."""

    def __init__(self, contexts: ContextClient, repo: str, job_id: str, clock: Callable[[], datetime]) -> None:
        self.contexts = contexts
        self.repo = repo
        self.job_id = job_id
        self.clock = clock
        self.version = 0  # of the job record, as this run last read or wrote it
        self._unrecorded: list[Step] = []  # committed steps the ledger may not have yet

    async def load(self) -> tuple[Job, list[Step]]:
        """The job and every step committed for it, in the order they were committed."""
        record = await asyncio.to_thread(self.contexts.get, self.repo, AGENT, self.job_id)
        if record is None:
            raise JobNotFound(f"no job {self.job_id} in {self.repo}")
        self.version = record.version
        found = await asyncio.to_thread(self._committed_steps)
        steps = [Step.from_context(context) for context in found if "step" in context.data]
        self._unrecorded.extend(steps)
        return job_at(record.repo, record.data), steps

    def _committed_steps(self) -> list[Context]:
        found = self.contexts.search_contents(repo=self.repo, scope_prefix=self.job_id + ":", limit=200)
        return sorted(found, key=lambda ctx: (ctx.created_at or self.clock(), ctx.scope))

    async def save(self, job: Job, **changes: Any) -> Job:
        """Write the job record with `changes`; another writer (the app recording an answer) wins and we re-apply."""
        for _ in range(5):
            updated = job.model_copy(update=changes)
            try:
                self.version = await asyncio.to_thread(
                    put_job, self.contexts, self.repo, updated, expected_version=self.version
                )
                return updated
            except StaleContext:
                record = await asyncio.to_thread(self.contexts.get, self.repo, AGENT, self.job_id)
                assert record is not None
                fresh = job_at(record.repo, record.data)
                # Ours: progress and figures. Theirs: answers, budget and status set by the app.
                job = fresh.model_copy(
                    update={
                        "totals": job.totals,
                        "wasted_usd": job.wasted_usd,
                        "phases_done": job.phases_done,
                        "escalations": merge_escalations(fresh.escalations, job.escalations),
                    }
                )
                self.version = record.version
                if fresh.status == "cancelled":
                    changes.pop("status", None)
        raise StaleContext(f"job {self.job_id}: the record kept changing under the runner")

    async def commit(self, agent: str, data: dict[str, Any], summary: str) -> Step:
        """Write a step (`data` as `steps.step_data` makes it) as a new context: the checkpoint."""
        scope = step_scope(self.job_id, data["step"])
        try:
            version = await asyncio.to_thread(
                self.contexts.put,
                self.repo,
                agent,
                scope,
                data,
                expected_version=None,
                summary=summary,
                tags=[f"job:{self.job_id}", f"phase:{data['phase']}"],
            )
        except StaleContext:
            # Another run of the same job committed this step first: its answer is the one that counts.
            existing = await asyncio.to_thread(self.contexts.get, self.repo, agent, scope)
            assert existing is not None
            step = Step.from_context(existing)
        else:
            step = Step.from_data(agent, version, data)
        self._unrecorded.append(step)
        return step

    async def take_budget(self, budget_usd: float) -> JobBudget:
        """Record the committed steps the ledger may not have (each is counted once), then take the budget
        it leaves: the tightest of the job's own and its installation's and agent's limits."""
        await self.record_steps()
        return await asyncio.to_thread(
            self.contexts.job_budget, self.repo, self.job_id, agent=AGENT, budget_usd=budget_usd
        )

    async def record_steps(self) -> None:
        """The steps committed or loaded since the last call, into the ledger in one request."""
        entries, self._unrecorded = [step.entry() for step in self._unrecorded], []
        for start in range(0, len(entries), ENTRIES_MAX):
            await asyncio.to_thread(
                self.contexts.record_decisions, self.repo, self.job_id, entries[start : start + ENTRIES_MAX]
            )

    async def record_waste(self, agent: str, key: str, failed: LLMError) -> None:
        """An answer no step can use, into the ledger under a key of its own: each one is paid for."""
        entry = Entry(
            agent,
            key,
            "llm",
            "error",
            key=f"{key}:{failed.reason}:{uuid.uuid4().hex[:12]}",
            outcome={"status": "error", "reason": failed.reason, "detail": str(failed)[:1000]},
            tokens_in=failed.usage.prompt_tokens,
            tokens_out=failed.usage.output_tokens,
            cost_usd=failed.cost_usd,
            model_calls=failed.calls,
        )
        await asyncio.to_thread(self.contexts.record_decisions, self.repo, self.job_id, [entry])
