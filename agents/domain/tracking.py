"""What a domain-onboarding job shows on GitHub: the tracking comment, its questions, its PR.

Rendered from the job record alone (plus the committed step keys), so the app and the
runner draw the same comment and whichever writes last leaves it right. The domain name
(typed by a user), the questions, evidence and summary (model answers) and errors go
through agents.markdown.
"""

from __future__ import annotations

from typing import Literal

from agents import markdown as md
from agents.context.client_values import JobBudget
from agents.domain.job import WORKFLOW, Escalation, Job
from agents.domain.phases import PHASES
from agents.domain.spec import DomainSpec
from agents.outputs import IssueReport

NEEDS_HUMAN = "needs-human"

_STATUS = {
    "queued": "⏳ queued — waiting for a runner",
    "running": "🏃 running",
    "parked": "⏸️ parked — waiting for a maintainer",
    "done": "✅ done",
    "failed": "❌ failed",
    "cancelled": "🚫 cancelled",
}


def comment_body(job: Job, steps: set[str]) -> str:
    t = job.totals
    lines = [
        f"### WowDomain: onboarding **{md.text(job.domain)}**",
        "",
        f"Job `{job.id}` · depth `{job.depth}` · {_STATUS[job.status]}"
        + (f" · requested by @{job.requested_by}" if job.requested_by else ""),
        "",
    ]
    for n, phase in enumerate(PHASES, 1):
        done = phase.id in job.phases_done
        count = sum(1 for key in steps if key.startswith(phase.id + "."))
        note = ""
        if not done and job.current_phase == phase.id:
            note = f" — in progress, {count} step(s) committed" if count else " — in progress"
        elif done:
            note = f" — {count} step(s)"
        lines.append(f"- [{'x' if done else ' '}] {n}. {phase.title}{note}")
    lines += [
        "",
        f"**Cost so far:** ${job.spent_usd:.4f} of ${job.budget_usd:.2f} · {t.model_calls} model call(s) · "
        f"{t.tokens_in + t.tokens_out} tokens",
    ]
    for escalation in job.escalations:
        where = f" in #{escalation.issue_number}" if escalation.issue_number else ""
        kind = f"{escalation.kind}: {md.text(escalation.limit)} is spent" if escalation.limit else escalation.kind
        lines.append(f"- Question {escalation.n} ({kind}){where}: {escalation.status}")
    if job.pr_url:
        lines += ["", f"**Specification:** {job.pr_url}"]
    if job.error:
        lines += ["", f"**Last error:** {md.text(job.error)}"]
    if job.status == "queued" and not job.phases_done:
        lines += [
            "",
            f"A run of `.github/workflows/{WORKFLOW}` should start within a minute; if none does, "
            "check that the workflow is installed on the default branch (see WAOOAW's README).",
        ]
    if job.status == "parked":
        lines += [
            "",
            "Answer the open question with `/answer …` in its issue (or close the issue) and the job resumes.",
        ]
    return "\n".join(lines)


def escalation_issue(job: Job, escalation: Escalation) -> IssueReport:
    if escalation.kind == "budget" and escalation.limit:
        how = (
            "It is the operator's limit, not the job's budget: when it has room again (the next UTC day or month, "
            "or the operator raises it), reply `/answer resume` and the job goes on; closing this issue cancels "
            "the job."
        )
    elif escalation.kind == "budget":
        how = (
            "Reply `/answer budget <USD>` to raise the job's budget to that amount and resume it; "
            "closing this issue cancels the job."
        )
    else:
        how = (
            "Reply `/answer <your answer>` and the job resumes with it; closing this issue resumes it "
            "with the items recorded as open."
        )
    body = "\n".join(
        [
            f"The WowDomain CoE onboarding **{md.text(job.domain)}** (job `{job.id}`"
            + (f", started in #{job.issue_number}" if job.issue_number else "")
            + ") needs a maintainer.",
            "",
            f"**Question:** {md.text(escalation.question)}",
            "",
            "**Evidence**",
            "",
            *[f"- {md.text(line)}" for line in escalation.evidence],
            "",
            how,
            "",
            f"Asked at step `{escalation.step}`. Only people with write access can answer.",
        ]
    )
    state: Literal["open", "closed"] = "open" if escalation.status == "open" else "closed"
    return IssueReport(
        repo=job.repo,
        title=f"WowDomain needs a human: {job.domain} ({escalation.kind})",
        body=body,
        key=f"{job.id}:{escalation.key}",
        labels=(NEEDS_HUMAN,),
        state=state,
    )


def pull_request_body(job: Job, spec: DomainSpec) -> str:
    f = spec.figures
    return "\n".join(
        [
            f"The WowDomain CoE wrote the **{md.text(spec.domain)}** domain specification "
            f"(job `{job.id}`, depth `{job.depth}`"
            + (f", asked in #{job.issue_number}" if job.issue_number else "")
            + ").",
            "",
            md.text(spec.summary),
            "",
            "| figure | value |",
            "|---|---|",
            f"| cost | ${f.cost_usd:.4f} (budget ${job.budget_usd:.2f}) |",
            f"| tokens | {f.tokens_in} in, {f.tokens_out} out |",
            f"| model calls / steps | {f.model_calls} / {f.steps} |",
            f"| mean skill confidence | {f.mean_confidence:.2f} |",
            f"| questions for humans | {f.escalations} |",
            f"| open questions | {len(spec.open_questions)} |",
            "",
            f"Every section names the agent, phase, step and context version it came from (see Provenance in "
            f"`domains/{spec.slug}/spec.md`).",
        ]
    )


def budget_question(job: Job, left: JobBudget, spent_usd: float, who: str, step: str) -> str:
    """The question a job parks on when the tightest limit left (`left`) cannot cover a call."""
    before = f"before {who} could work on step `{step}`"
    if left.own:
        return (
            f"The job's budget of ${job.budget_usd:.2f} is spent (${spent_usd:.4f} so far) {before}. "
            "Raise it to continue."
        )
    return (
        f"{left.limit[0].upper()}{left.limit[1:]} is spent {before} (this job: ${spent_usd:.4f} of its "
        f"${job.budget_usd:.2f}). It is the operator's limit: the job waits until it has room again."
    )
