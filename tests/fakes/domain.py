"""Scripted answers of the 13 WowDomain agents, for the fake Anthropic server.

    script = DomainScript()
    fake_anthropic.responder = script
    script.reviews[("critique", 1)] = [item("vague-market", "market-analysis")]
    script.confidence["seo-audit"] = 0.3

The responder knows which agent is asking from its system prompt ("You are the QA
agent, ...") and its tool, and which round from "Review round N" / "Revision round N"
in the prompt. Every answer is a valid deliverable unless a test says otherwise.
`hold(agent)` blocks that agent's next call until `release()`, so a test can kill a
runner while its model call is in flight.
"""

from __future__ import annotations

import copy
import re
import threading
from collections import Counter
from typing import Any

from agents.domain.roster import AGENTS_BY_ID

_TITLES = {agent.title: agent.id for agent in AGENTS_BY_ID.values()}
_ROUND = re.compile(r"(Review|Revision) round (\d+)")

DEFAULTS: dict[str, dict[str, Any]] = {
    "orchestrator": {
        "overview": "Digital marketing promotes products through online channels.",
        "scope": ["search", "social", "email"],
        "key_questions": ["Which channels matter most?"],
        "assumptions": ["B2C first"],
        "open_questions": ["Which markets come first?"],
    },
    "research": {
        "summary": "Marketing through digital channels, measured end to end.",
        "concepts": [{"term": "CTR", "definition": "Clicks divided by impressions."}],
        "sources": ["IAB guidelines"],
    },
    "regulatory-intelligence": {
        "regulations": [
            {"name": "GDPR", "jurisdiction": "EU", "summary": "Personal data.", "obligations": ["consent for tracking"]}
        ]
    },
    "market-analysis": {
        "summary": "A large, growing market.",
        "segments": ["SMB"],
        "competitors": ["Agencies"],
        "trends": ["privacy-first measurement"],
    },
    "tool-discovery": {
        "tools": [
            {"name": "HubSpot", "category": "CRM", "purpose": "Contacts and email."},
            {"name": "Google Ads", "category": "ads", "purpose": "Search advertising."},
        ]
    },
    "component-mapper": {
        "components": [{"name": "Campaign manager", "responsibility": "Plans campaigns.", "tools": ["HubSpot"]}]
    },
    "skills-discovery": {
        "skills": [
            {"id": "campaign-planning", "name": "Campaign planning", "description": "Plan a multi-channel campaign."},
            {"id": "seo-audit", "name": "SEO audit", "description": "Audit a site for search."},
        ]
    },
    "role-definition": {
        "roles": [
            {
                "name": "Campaign agent",
                "responsibilities": ["run campaigns"],
                "skills": ["campaign-planning", "seo-audit"],
            }
        ]
    },
    "qa": {"items": []},
    "critique": {"items": []},
    "compliance-validator": {
        "checklist": [{"requirement": "Consent banner", "regulation": "GDPR", "status": "met", "note": ""}],
        "risks": [{"risk": "Tracking without consent", "severity": "high", "mitigation": "Consent mode."}],
    },
    "confidence-analyzer": {
        "skills": [
            {"skill_id": "campaign-planning", "confidence": 0.9, "rationale": "Common."},
            {"skill_id": "seo-audit", "confidence": 0.8, "rationale": "Well documented."},
        ]
    },
    "writer": {"overview": "Digital marketing, specified for WAOOAW agents.", "summary": "Three channels, two skills."},
    "learning-curator": {"lessons": ["Ask about target markets up front."]},
}


def item(item_id: str, owner: str, problem: str = "needs work") -> dict[str, Any]:
    return {"id": item_id, "owner": owner, "problem": problem, "severity": "major"}


class DomainScript:
    def __init__(self) -> None:
        self.answers = copy.deepcopy(DEFAULTS)
        self.reviews: dict[tuple[str, int], list[dict[str, Any]]] = {}  # (qa|critique, round) → items
        self.revisions: dict[tuple[str, int], dict[str, Any]] = {}  # (owner, round) → revised deliverable
        self.confidence: dict[str, float] = {}  # skill id → confidence
        self.calls: Counter[str] = Counter()  # agent (or "writer") → calls answered
        self._hold: str | None = None
        self.arrived = threading.Event()
        self._go = threading.Event()

    def hold(self, agent: str) -> None:
        self._hold, self._go = agent, threading.Event()
        self.arrived.clear()

    def release(self) -> None:
        self._hold = None
        self._go.set()

    def __call__(self, request: dict[str, Any]) -> dict[str, Any]:
        agent = self.agent_of(request)
        if agent == self._hold:
            self.arrived.set()
            self._go.wait(timeout=60)
        prompt = request["messages"][-1]["content"]
        text = prompt if isinstance(prompt, str) else " ".join(block.get("text", "") for block in prompt)
        found = _ROUND.search(text)
        round_no = int(found.group(2)) if found else 0
        self.calls[agent] += 1
        if agent in ("qa", "critique"):
            return {"items": self.reviews.get((agent, round_no), [])}
        if found and found.group(1) == "Revision":
            return copy.deepcopy(self.revisions.get((agent, round_no), self.answers[agent]))
        answer = copy.deepcopy(self.answers[agent])
        if agent == "confidence-analyzer":
            for rating in answer["skills"]:
                rating["confidence"] = self.confidence.get(rating["skill_id"], rating["confidence"])
        return answer

    @staticmethod
    def agent_of(request: dict[str, Any]) -> str:
        if request["tools"][0]["name"] == "record_Write":
            return "writer"
        system = request["system"][0]["text"]
        title = system.removeprefix("You are ").split(",", 1)[0]
        return _TITLES[title]

    @property
    def total(self) -> int:
        return sum(self.calls.values())
