"""What a CoE job's deliverables turn into: the prompt each agent is asked, the QA items that
need no model, what the learning curator reads, and the domain specification the pull request carries."""

from __future__ import annotations

import json
from typing import Any

from agents.domain import deliverables as d
from agents.domain.job import Job, settled_note
from agents.domain.phases import PHASES
from agents.domain.review_rounds import item_id
from agents.domain.roster import DomainAgent
from agents.domain.spec import DomainSpec, Figures, Provenance, QualityItem, SpecSkill
from agents.domain.steps import Step
from agents.llm import untrusted

# The spec section each agent's deliverable feeds: its provenance.
SECTIONS = {
    "orchestrator": "overview",
    "research": "concepts",
    "regulatory-intelligence": "regulations",
    "market-analysis": "market",
    "tool-discovery": "tools",
    "component-mapper": "components",
    "skills-discovery": "skills",
    "role-definition": "roles",
    "compliance-validator": "compliance",
    "confidence-analyzer": "confidence",
    "qa": "quality",
    "critique": "quality",
    "learning-curator": "learning",
}


def prompt_for(job: Job, agent: DomainAgent, current: dict[str, Step], extra: str) -> str:
    parts = [f'Job: write the specification of the domain "{job.domain}" (depth: {job.depth}).']
    if agent.id == "orchestrator" and job.learnings and "orchestrator" not in current:
        parts.append(
            "What earlier onboardings on this repository learned:\n" + "\n".join(f"- {x}" for x in job.learnings)
        )
    answered = [e for e in job.escalations if e.status != "open" and e.answer]
    if answered:
        parts.append("Maintainers answered:\n" + "\n".join(f"- {e.question} → {e.answer}" for e in answered))
    inputs = {name: current[name].deliverable for name in agent.reads if name in current}
    if inputs:
        parts.append("Deliverables:\n" + untrusted(json.dumps(inputs, indent=1, sort_keys=True, ensure_ascii=False)))
    if extra:
        parts.append(extra)
    return "\n\n".join(parts)


def reference_items(current: dict[str, Step]) -> list[dict[str, Any]]:
    """The deterministic rung of QA: references to skills and tools that do not exist need no model."""
    skills = {s["id"] for s in current["skills-discovery"].deliverable.get("skills", [])}
    tools = {t["name"].lower() for t in current["tool-discovery"].deliverable.get("tools", [])}
    items = []
    for role in current["role-definition"].deliverable.get("roles", []):
        for skill in role.get("skills", []):
            if skill not in skills:
                items.append(
                    {
                        "id": item_id("unknown-skill", role["name"], skill),
                        "owner": "role-definition",
                        "problem": f"role {role['name']!r} needs skill {skill!r}, which is not in the skills list",
                    }
                )
    for component in current["component-mapper"].deliverable.get("components", []):
        for tool in component.get("tools", []):
            if tool.lower() not in tools:
                items.append(
                    {
                        "id": item_id("unknown-tool", component["name"], tool),
                        "owner": "component-mapper",
                        "problem": f"component {component['name']!r} uses tool {tool!r}, "
                        "which is not in the tools list",
                    }
                )
    return items


def lessons_input(job: Job, quality: list[QualityItem]) -> str:
    asked = [f"- ({e.kind}) {e.question} → {e.answer or e.status}" for e in job.escalations]
    raised = [f"- {q.id} ({q.owner}): {q.problem} — {q.status}" for q in quality]
    return "\n".join(
        [
            "Questions humans were asked:",
            *(asked or ["- none"]),
            "Items QA and Critique raised:",
            *(raised or ["- none"]),
        ]
    )


def build_spec(job: Job, steps: dict[str, Step], current: dict[str, Step], quality: list[QualityItem]) -> DomainSpec:
    c = {agent: step.deliverable for agent, step in current.items()}
    writer = steps[PHASES[-1].step("orchestrator")].deliverable
    ratings = {s["skill_id"]: s for s in c["confidence-analyzer"]["skills"]}
    gate = job.escalation("confidence", "validation.gate")
    skills = []
    for skill in c["skills-discovery"]["skills"]:
        rating = ratings.get(skill["id"], {})
        human = gate is not None and skill["id"] in gate.items
        skills.append(
            SpecSkill(
                **skill,
                confidence=rating.get("confidence", 0.0),
                rationale=rating.get("rationale", ""),
                confirmed_by=(gate.answered_by or "maintainer") if human and gate else None,
                human_note=settled_note(gate) if human and gate else None,
            )
        )
    open_questions = sorted({q for step in current.values() for q in step.open_questions})
    confidence = [s.confidence for s in skills]
    t = job.totals
    return DomainSpec(
        domain=job.domain,
        slug=job.slug,
        job=job.id,
        depth=job.depth,
        overview=writer["overview"],
        summary=writer["summary"],
        scope=c["orchestrator"]["scope"],
        concepts=c["research"].get("concepts", []),
        regulations=c["regulatory-intelligence"].get("regulations", []),
        market=d.Market.model_validate(c["market-analysis"]),
        tools=c["tool-discovery"].get("tools", []),
        components=c["component-mapper"].get("components", []),
        skills=skills,
        roles=c["role-definition"]["roles"],
        risks=c["compliance-validator"].get("risks", []),
        compliance_checklist=c["compliance-validator"].get("checklist", []),
        quality=quality,
        open_questions=open_questions,
        figures=Figures(
            cost_usd=round(t.cost_usd, 6),
            tokens_in=t.tokens_in,
            tokens_out=t.tokens_out,
            model_calls=t.model_calls,
            steps=t.steps,
            escalations=len(job.escalations),
            mean_confidence=round(sum(confidence) / len(confidence), 3) if confidence else 0.0,
        ),
        provenance=[
            Provenance(
                section=SECTIONS.get(step.agent, step.agent),
                agent=step.agent,
                phase=step.phase,
                step=step.key,
                context_version=step.version,
                model=step.model,
                input_hash=step.input_hash,
            )
            for step in used_steps(steps, current)
        ],
    )


def used_steps(steps: dict[str, Step], current: dict[str, Step]) -> list[Step]:
    """The steps whose deliverables the spec uses, in table order (parallel steps commit in any order)."""
    used = {step.key: step for step in current.values()}
    used |= {key: steps[key] for key in (PHASES[-1].step("orchestrator"), PHASES[-1].step("learning-curator"))}
    rank = {phase.id: n for n, phase in enumerate(PHASES)}
    return sorted(used.values(), key=lambda s: (rank[s.phase], s.key))
