"""What each WowDomain agent hands on: one pydantic schema per agent.

The model answers through a tool whose input schema is one of these, so it can only
return fields that fit; every deliverable carries its open questions, which travel in
its handoff package and end up in the spec when nobody answers them.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

# The agents whose deliverables QA and Critique may send back for revision.
Revisable = Literal[
    "research",
    "regulatory-intelligence",
    "market-analysis",
    "tool-discovery",
    "component-mapper",
    "skills-discovery",
    "role-definition",
]

Text = Field(min_length=1, max_length=4000)
Short = Field(min_length=1, max_length=300)


class Deliverable(BaseModel):
    model_config = ConfigDict(extra="forbid")

    open_questions: list[str] = Field(default_factory=list, max_length=20)


class Plan(Deliverable):
    """Orchestrator, phase 1: what the domain is and what the job must find out."""

    overview: str = Text
    scope: list[str] = Field(min_length=1, max_length=20)
    key_questions: list[str] = Field(default_factory=list, max_length=20)
    assumptions: list[str] = Field(default_factory=list, max_length=20)


class Concept(BaseModel):
    term: str = Short
    definition: str = Text


class Research(Deliverable):
    summary: str = Text
    concepts: list[Concept] = Field(default_factory=list, max_length=40)
    sources: list[str] = Field(default_factory=list, max_length=40)


class Regulation(BaseModel):
    name: str = Short
    jurisdiction: str = Short
    summary: str = Text
    obligations: list[str] = Field(default_factory=list, max_length=30)


class Regulations(Deliverable):
    regulations: list[Regulation] = Field(default_factory=list, max_length=40)


class Market(Deliverable):
    summary: str = Text
    segments: list[str] = Field(default_factory=list, max_length=30)
    competitors: list[str] = Field(default_factory=list, max_length=30)
    trends: list[str] = Field(default_factory=list, max_length=30)


class Tool(BaseModel):
    name: str = Short
    category: str = Short
    purpose: str = Text


class Tools(Deliverable):
    tools: list[Tool] = Field(default_factory=list, max_length=50)


class Component(BaseModel):
    name: str = Short
    responsibility: str = Text
    tools: list[str] = Field(default_factory=list, max_length=20)


class Components(Deliverable):
    components: list[Component] = Field(default_factory=list, max_length=50)


class Skill(BaseModel):
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{0,62}$")
    name: str = Short
    description: str = Text


class Skills(Deliverable):
    skills: list[Skill] = Field(min_length=1, max_length=60)


class Role(BaseModel):
    name: str = Short
    responsibilities: list[str] = Field(min_length=1, max_length=20)
    skills: list[str] = Field(default_factory=list, max_length=30)


class Roles(Deliverable):
    roles: list[Role] = Field(min_length=1, max_length=30)


class ReviewItem(BaseModel):
    """One problem QA or Critique found, owned by the agent whose deliverable must change."""

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{0,62}$")
    owner: Revisable
    problem: str = Text
    severity: Literal["minor", "major"] = "major"


class Review(Deliverable):
    """QA and Critique: the items still wrong. An empty list means the deliverables pass."""

    items: list[ReviewItem] = Field(default_factory=list, max_length=30)


class Check(BaseModel):
    requirement: str = Short
    regulation: str = Short
    status: Literal["met", "partial", "missing"]
    note: str = Field(default="", max_length=2000)


class Risk(BaseModel):
    risk: str = Short
    severity: Literal["low", "medium", "high"]
    mitigation: str = Text


class Compliance(Deliverable):
    checklist: list[Check] = Field(default_factory=list, max_length=60)
    risks: list[Risk] = Field(default_factory=list, max_length=30)


class SkillConfidence(BaseModel):
    skill_id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{0,62}$")
    confidence: float = Field(ge=0.0, le=1.0)
    rationale: str = Text


class Confidence(Deliverable):
    skills: list[SkillConfidence] = Field(min_length=1, max_length=60)


class Write(Deliverable):
    """Orchestrator, phase 7: the spec's final overview, written over every deliverable."""

    overview: str = Text
    summary: str = Field(min_length=1, max_length=600)


class Lessons(Deliverable):
    """Learning Curator: what the next domain onboarding should know."""

    lessons: list[str] = Field(default_factory=list, max_length=20)
