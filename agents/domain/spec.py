"""The domain specification: a validated schema, written as `spec.yaml` and `spec.md`.

The spec is assembled in code from the deliverables, so every section names the agent,
phase, step and context version (and the model) it came from.
"""

from __future__ import annotations

from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field

from agents.domain import deliverables as d


class SpecSkill(d.Skill):
    confidence: float = Field(ge=0.0, le=1.0)
    rationale: str = ""
    confirmed_by: str | None = None  # a maintainer who answered its escalation
    human_note: str | None = None


class Provenance(BaseModel):
    section: str
    agent: str
    phase: str
    step: str
    context_version: int
    model: str | None = None
    input_hash: str


class QualityItem(BaseModel):
    id: str
    owner: str
    problem: str
    status: str  # resolved in round N | answered by @login | closed without an answer


class Figures(BaseModel):
    cost_usd: float
    tokens_in: int
    tokens_out: int
    model_calls: int
    steps: int
    escalations: int
    mean_confidence: float


class DomainSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    schema_version: int = 1
    domain: str
    slug: str
    job: str
    depth: str
    overview: str
    summary: str
    scope: list[str]
    concepts: list[d.Concept]
    regulations: list[d.Regulation]
    market: d.Market
    tools: list[d.Tool]
    components: list[d.Component]
    skills: list[SpecSkill]
    roles: list[d.Role]
    risks: list[d.Risk]
    compliance_checklist: list[d.Check]
    quality: list[QualityItem]
    open_questions: list[str]
    figures: Figures
    provenance: list[Provenance]


def to_yaml(spec: DomainSpec) -> str:
    return yaml.safe_dump(spec.model_dump(mode="json"), sort_keys=False, allow_unicode=True, width=100)


def _bullets(items: list[str]) -> list[str]:
    return [f"- {item}" for item in items] or ["_None._"]


def to_markdown(spec: DomainSpec) -> str:
    f = spec.figures
    lines: list[str] = [
        f"# {spec.domain} — domain specification",
        "",
        f"_Written by the WowDomain CoE, job `{spec.job}` ({spec.depth}): {f.steps} steps, {f.model_calls} model "
        f"calls, ${f.cost_usd:.4f}, mean skill confidence {f.mean_confidence:.2f}, {f.escalations} question(s) "
        "for humans. `spec.yaml` beside this file holds the same content as data._",
        "",
        "## Overview",
        "",
        spec.overview,
        "",
        spec.summary,
        "",
        "### Scope",
        "",
        *_bullets(spec.scope),
        "",
        "## Key concepts",
        "",
    ]
    lines += [f"- **{c.term}** — {c.definition}" for c in spec.concepts] or ["_None._"]
    lines += ["", "## Regulations", ""]
    for reg in spec.regulations:
        lines += [f"### {reg.name} ({reg.jurisdiction})", "", reg.summary, "", *_bullets(reg.obligations), ""]
    if not spec.regulations:
        lines += ["_None found._", ""]
    m = spec.market
    lines += [
        "## Market",
        "",
        m.summary,
        "",
        "**Segments**",
        "",
        *_bullets(m.segments),
        "",
        "**Competitors**",
        "",
        *_bullets(m.competitors),
        "",
        "**Trends**",
        "",
        *_bullets(m.trends),
        "",
        "## Tools",
        "",
        "| tool | category | purpose |",
        "|---|---|---|",
    ]
    lines += [f"| {t.name} | {t.category} | {t.purpose} |" for t in spec.tools]
    lines += ["", "## Components", "", "| component | responsibility | tools |", "|---|---|---|"]
    lines += [f"| {c.name} | {c.responsibility} | {', '.join(c.tools)} |" for c in spec.components]
    lines += ["", "## Skills", "", "| skill | what it is | confidence | reviewed by a human |", "|---|---|---|---|"]
    for s in spec.skills:
        human = f"@{s.confirmed_by}: {s.human_note}" if s.confirmed_by else ""
        lines.append(f"| `{s.id}` {s.name} | {s.description} | {s.confidence:.2f} | {human} |")
    lines += ["", "## Roles", ""]
    for role in spec.roles:
        lines += [
            f"### {role.name}",
            "",
            *_bullets(role.responsibilities),
            "",
            "Skills: " + (", ".join(f"`{s}`" for s in role.skills) or "none"),
            "",
        ]
    lines += ["## Risks", "", "| risk | severity | mitigation |", "|---|---|---|"]
    lines += [f"| {r.risk} | {r.severity} | {r.mitigation} |" for r in spec.risks]
    lines += ["", "## Compliance checklist", ""]
    marks = {"met": "x", "partial": " ", "missing": " "}
    lines += [
        f"- [{marks[c.status]}] {c.requirement} ({c.regulation}) — {c.status}{': ' + c.note if c.note else ''}"
        for c in spec.compliance_checklist
    ] or ["_None._"]
    lines += ["", "## Quality review", ""]
    lines += [f"- `{q.id}` ({q.owner}): {q.problem} — {q.status}" for q in spec.quality] or ["_No items were raised._"]
    lines += [
        "",
        "## Open questions",
        "",
        *_bullets(spec.open_questions),
        "",
        "## Provenance",
        "",
        "| section | agent | phase | step | context version | model |",
        "|---|---|---|---|---|---|",
    ]
    lines += [
        f"| {p.section} | {p.agent} | {p.phase} | `{p.step}` | {p.context_version} | {p.model or '-'} |"
        for p in spec.provenance
    ]
    return "\n".join(lines).rstrip() + "\n"


def files(spec: DomainSpec) -> dict[str, str]:
    """What the PR adds: the paths are the contract (`domains/<slug>/spec.md` and `spec.yaml`)."""
    base = f"domains/{spec.slug}"
    return {f"{base}/spec.md": to_markdown(spec), f"{base}/spec.yaml": to_yaml(spec)}


def load_yaml(text: str) -> DomainSpec:
    """Read a spec back, validated (a hand-edited spec.yaml is checked the same way)."""
    data: Any = yaml.safe_load(text)
    return DomainSpec.model_validate(data)
