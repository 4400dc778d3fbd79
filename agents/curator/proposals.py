"""What the Learning Curator proposes from the evidence, and the pull request's file and body. Pure functions.

For a rule over the thresholds: when the outcomes against it that name a file all lie under one
directory, the rule is scoped away from there (`rules: {ID: {ignore: ["DIR/**"]}}`); otherwise its
severity goes down one step (error → warning → notice → off). For an agent over the thresholds:
it is paused on the repository (`agents.disable`, or taken off `agents.enable` for an agent that
must be hired).
"""

from __future__ import annotations

import posixpath
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from agents import markdown as md
from agents.config_edit import edit, set_rules
from agents.curator.evidence import AGAINST_RULE, CURATOR, AgentEvidence, Evidence, Item, RuleEvidence, Thresholds
from agents.reputation.outcomes import KINDS
from agents.reputation.score import summary
from agents.vision.config import CONFIG_PATH, RepoConfig, RuleOverride
from agents.vision.policy import Pack

LOWER: dict[str, str | None] = {"error": "warning", "warning": "notice", "notice": None}  # None: off
NOT_PAUSED = frozenset({"hiring"})  # applies the agents section: the config cannot disable it
LINKS = 10  # outcomes a proposal links to


@dataclass(frozen=True)
class RuleChange:
    evidence: RuleEvidence
    severity: str  # what the rule is at now
    lowered: str | None  # the severity proposed (None: off), unless it is scoped instead
    scope: str | None  # the glob the rule is proposed to ignore
    value: Any  # the override as `rules.<id>` will say it

    @property
    def rule(self) -> str:
        return self.evidence.rule

    @property
    def what(self) -> str:
        if self.scope is not None:
            return f"stop looking at {md.code(self.scope)}"
        return f"lower its severity: {self.severity} → {self.lowered or 'off'}"


@dataclass(frozen=True)
class AgentChange:
    evidence: AgentEvidence
    hire_required: bool

    @property
    def agent(self) -> str:
        return self.evidence.agent


@dataclass(frozen=True)
class Proposal:
    rules: tuple[RuleChange, ...]
    agents: tuple[AgentChange, ...]

    def __bool__(self) -> bool:
        return bool(self.rules or self.agents)


def propose(
    evidence: Evidence,
    config: RepoConfig,
    packs: Sequence[Pack],
    catalogue: Mapping[str, bool],
    t: Thresholds,
) -> Proposal:
    """The changes the evidence supports and the config does not make yet. `catalogue`: each agent's
    name → whether it must be hired."""
    applied = {rule.id: rule for rule in config.apply([rule for pack in packs for rule in pack.rules])}
    rules = []
    for found in evidence.rules:
        rule = applied.get(found.rule)
        if rule is None:  # off already, or no longer in an applied pack
            continue
        override = config.rules.get(found.rule) or RuleOverride()
        scope = _scope(found.items, t)
        if scope is not None:
            if scope in rule.ignore:  # scoped so already: the evidence is older than that
                continue
            value = _written(override.severity, False, [*override.ignore, scope])
            rules.append(RuleChange(found, rule.severity, rule.severity, scope, value))
        else:
            lowered = LOWER[rule.severity]
            value = _written(lowered, lowered is None, list(override.ignore))
            rules.append(RuleChange(found, rule.severity, lowered, None, value))
    agents = []
    for judged in evidence.agents:
        name = judged.agent
        if name not in catalogue or name in NOT_PAUSED:
            continue
        hire_required = catalogue[name]
        off = name in config.agents.disable or (hire_required and name not in config.agents.enable)
        if not off:
            agents.append(AgentChange(judged, hire_required))
    return Proposal(tuple(rules), tuple(agents))


def _scope(items: Sequence[Item], t: Thresholds) -> str | None:
    """The deepest directory every outcome against the rule that names a file lies under, as a glob;
    None when fewer than the threshold name one, or they share no directory."""
    paths = [item.path for item in items if item.kind in AGAINST_RULE and item.path]
    if len(paths) < t.scope_paths:
        return None
    common = posixpath.commonpath([posixpath.dirname(path.lstrip("/")) or "." for path in paths])
    return None if common in ("", ".") else f"{common}/**"


def _written(severity: str | None, disabled: bool, ignore: list[str]) -> Any:
    """A rule override the shortest way the config says it: `off`, a severity, or the full mapping."""
    if disabled and not ignore:
        return False
    if not ignore:
        return severity
    value: dict[str, Any] = {"disabled": True} if disabled else ({"severity": severity} if severity else {})
    return {**value, "ignore": ignore}


def edited(text: str | None, proposal: Proposal) -> tuple[str, bool]:
    """The config's text with the proposal applied, and whether its layout was kept."""
    current, kept = text or "", True
    if proposal.rules:
        current, kept = set_rules(text, {change.rule: change.value for change in proposal.rules})
    for change in proposal.agents:
        paused = edit(current, change.agent, hire=False, hire_required=change.hire_required)
        if paused is not None:
            current, kept = paused.text, kept and paused.kept_layout
    return current, kept


def body(proposal: Proposal, evidence: Evidence, t: Thresholds, *, kept_layout: bool) -> str:
    """The pull request's description: each change with its evidence (counts, the score, links)."""
    since = (
        f" since {evidence.since:%Y-%m-%d %H:%M} UTC, when a proposal of mine was last merged" if evidence.since else ""
    )
    lines = [
        f"The outcomes of WowVision's rules and of the agents on this repository{since} are over the "
        f"thresholds below, so I propose these changes to {md.code(CONFIG_PATH)}. Nothing changes until a "
        "maintainer merges this pull request; closing it leaves the file as it is.",
        "",
    ]
    for change in proposal.rules:
        lines += [f"### Rule {md.code(change.rule)}: {change.what}", ""]
        lines += _counts(change.evidence.counts, summary(change.evidence.score))
        lines += _links(change.evidence.items)
    for agent in proposal.agents:
        lines += [f"### Pause {md.code(agent.agent)} on this repository", ""]
        share = f"{agent.evidence.against_share:.0%} of the weight of its outcomes is against it"
        lines += [md.text(share) + ".", ""]
        lines += _counts(agent.evidence.counts, summary(agent.evidence.score))
        lines += _links(agent.evidence.items)
    if not kept_layout:
        lines += ["The file's layout could not be kept: it is written out from its data, without comments.", ""]
    lines += [
        "<details><summary>When I propose a change</summary>",
        "",
        f"- a rule: dismissed with `/wowvision ignore` at least {t.rule_ignored}×, or review threads on its "
        f"findings marked unresolved at least {t.rule_unresolved}×, and its findings fixed at most "
        f"{t.rule_fixed_max}×; when at least {t.scope_paths} outcomes against it name a file, all under one "
        "directory, it is scoped away from that directory, else its severity goes down one step;",
        f"- an agent: at least {t.agent_outcomes} outcomes not about a rule, at least {t.agent_against:.0%} of "
        "their weight against it (pull requests closed unmerged, 👎, triage changed): it is paused here.",
        "",
        "The score is the Wilson lower bound of the share of outcomes for, as `/waooaw status` shows it "
        "(docs/reputation.md).",
        "</details>",
    ]
    return "\n".join(lines)


def _counts(counts: Mapping[str, int], score: str) -> list[str]:
    lines = ["| outcome | count |", "|---|---:|"]
    lines += [f"| {md.text(KINDS[kind].meaning if kind in KINDS else kind)} | {n} |" for kind, n in counts.items()]
    return [*lines, "", f"Score: {score}", ""]


def _links(items: Sequence[Item]) -> list[str]:
    cited = [item for item in items if item.url][:LINKS]
    if not cited:
        return []
    lines = []
    for item in cited:
        assert item.url is not None
        where = f" {md.code(item.path + (f':{item.line}' if item.line else ''))}" if item.path else ""
        lines.append(f"- {md.link(item.kind, item.url)}{where}, {item.observed_at:%Y-%m-%d}")
    more = len([item for item in items if item.url]) - len(cited)
    return [*lines, *([f"- …and {more} more"] if more > 0 else []), ""]


__all__ = ["CURATOR", "AgentChange", "Proposal", "RuleChange", "body", "edited", "propose"]
