"""The record of one domain-onboarding job, kept as a context.

The job lives in the context store like everything else a CoE job knows: agent
`wowdomain`, scope = the job id, in the repository the command came from. So the
runner on GitHub Actions reaches it through the Context API with a token scoped to
the job, and the app reaches it in-process; each change is a new version (lineage).
Every agent step is a context at scope `<job>:<step>`, which a job token may also reach.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from agents import markdown as md
from agents.context.client import ContextClient

AGENT = "wowdomain"
WORKFLOW = "waooaw-coe.yml"

Depth = Literal["quick", "standard", "deep"]
JobStatus = Literal["queued", "running", "parked", "done", "failed", "cancelled"]
ACTIVE: frozenset[str] = frozenset({"queued", "running", "parked"})


@dataclass(frozen=True)
class DepthPreset:
    budget_usd: float  # per job; a maintainer may raise it when the job parks on it
    revision_rounds: int  # QA/Critique rounds before unresolved items go to a human
    confidence_threshold: float  # a skill below it goes to a human
    max_tokens: int  # per model answer


DEPTHS: dict[str, DepthPreset] = {
    "quick": DepthPreset(budget_usd=0.50, revision_rounds=1, confidence_threshold=0.5, max_tokens=2000),
    "standard": DepthPreset(budget_usd=2.00, revision_rounds=2, confidence_threshold=0.6, max_tokens=4000),
    "deep": DepthPreset(budget_usd=8.00, revision_rounds=3, confidence_threshold=0.7, max_tokens=8000),
}


def slugify(name: str) -> str:
    """`Digital Marketing` → `digital-marketing` (ASCII, at most 60 characters)."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_name.lower()).strip("-")[:60].strip("-")
    if not slug:
        raise ValueError(f"{md.code(name)} has no letters or digits to name a domain by")
    return slug


def job_id_for(seed: str) -> str:
    """A job id derived from what started it (a delivery id), so a retried command names the same job."""
    return "job-" + hashlib.sha256(seed.encode()).hexdigest()[:10]


def lock_scope(slug: str) -> str:
    """The context that says which job holds a domain: one running job per domain and repo."""
    return f"domain-{slug}"


class Escalation(BaseModel):
    """A question for a human: the job parks until it is answered or its issue is closed."""

    n: int
    kind: Literal["confidence", "critique", "budget"]
    step: str  # the step that asked
    question: str
    evidence: list[str] = Field(default_factory=list)
    items: list[str] = Field(default_factory=list)  # skill ids or review item ids
    status: Literal["open", "answered", "closed"] = "open"
    issue_number: int | None = None
    answer: str | None = None
    answered_by: str | None = None
    budget_usd: float | None = None  # a budget answer: the job's new budget
    # A budget question: the operator's limit that is spent (installation's or agent's, by day or month),
    # which no answer raises; None: the job's own budget, which `/answer budget <USD>` raises.
    limit: str | None = None

    @property
    def key(self) -> str:
        return f"esc-{self.n}"


class Totals(BaseModel):
    cost_usd: float = 0.0
    tokens_in: int = 0
    tokens_out: int = 0
    model_calls: int = 0
    steps: int = 0


class Job(BaseModel):
    id: str
    domain: str
    slug: str
    depth: Depth = "standard"
    repo: str
    # The repository's default branch when the app started the job: its CoE workflow there, and
    # nowhere else, may trade an OIDC token for the job's tokens (bot/api/coe_token.py).
    default_branch: str | None = None
    installation_id: int = 0
    issue_number: int | None = None  # where the command was typed; None for a local run
    requested_by: str | None = None
    status: JobStatus = "queued"
    budget_usd: float
    created_at: datetime = Field(default_factory=lambda: datetime.now(UTC))
    finished_at: datetime | None = None
    phases_done: list[str] = Field(default_factory=list)
    current_phase: str | None = None
    escalations: list[Escalation] = Field(default_factory=list)
    learnings: list[str] = Field(default_factory=list)  # from earlier jobs on this repo
    totals: Totals = Field(default_factory=Totals)
    wasted_usd: float = 0.0  # spent on answers that could not be used (they commit no step)
    batches: dict[str, str] = Field(default_factory=dict)  # group of steps → Message Batch id (never sent twice)
    pr_number: int | None = None
    pr_url: str | None = None
    error: str | None = None

    @property
    def preset(self) -> DepthPreset:
        return DEPTHS[self.depth]

    @property
    def spent_usd(self) -> float:
        return self.totals.cost_usd + self.wasted_usd

    def escalation(self, kind: str, step: str) -> Escalation | None:
        """The latest escalation this step raised of this kind."""
        found = [e for e in self.escalations if e.kind == kind and e.step == step]
        return found[-1] if found else None

    def open_escalation(self) -> Escalation | None:
        return next((e for e in self.escalations if e.status == "open"), None)

    def by_key(self, key: str) -> Escalation | None:
        return next((e for e in self.escalations if e.key == key), None)

    def data(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


def job_at(repo: str, data: Mapping[str, Any]) -> Job:
    """The job a record holds, in the repository the record is kept in now: a rename or a transfer
    moves the record (bot/tenancy.py), not the copy of the repository's full name in its data."""
    return Job.model_validate({**data, "repo": repo})


def new_job(
    *,
    job_id: str,
    domain: str,
    depth: Depth,
    repo: str,
    default_branch: str | None = None,
    installation_id: int = 0,
    issue_number: int | None = None,
    requested_by: str | None = None,
    learnings: list[str] | None = None,
) -> Job:
    return Job(
        id=job_id,
        domain=domain.strip(),
        slug=slugify(domain),
        depth=depth,
        repo=repo,
        default_branch=default_branch,
        installation_id=installation_id,
        issue_number=issue_number,
        requested_by=requested_by,
        budget_usd=DEPTHS[depth].budget_usd,
        learnings=learnings or [],
    )


def tags_for(job: Job) -> list[str]:
    return [f"domain:{job.slug}", f"status:{job.status}", f"depth:{job.depth}"] + (
        [f"issue:{job.issue_number}"] if job.issue_number is not None else []
    )


def put_job(contexts: ContextClient, repo: str, job: Job, *, expected_version: int | None) -> int:
    """Write the job record's next version (None creates it); StaleContext when another writer got there first."""
    return contexts.put(
        repo,
        AGENT,
        job.id,
        job.data(),
        expected_version=expected_version,
        summary=f"{job.domain}: {job.status}",
        tags=tags_for(job),
    )


def settled_note(escalation: Escalation) -> str:
    if escalation.status == "answered":
        return f"answered by @{escalation.answered_by or 'maintainer'}: {escalation.answer}"
    return "closed without an answer"


def merge_escalations(theirs: list[Escalation], ours: list[Escalation]) -> list[Escalation]:
    """Escalations by number: the app's answers win, our new questions are kept."""
    merged = {e.n: e for e in ours} | {e.n: e for e in theirs}
    return [merged[n] for n in sorted(merged)]
