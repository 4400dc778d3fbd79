"""The Learning Curator's pure parts: what the evidence calls for, and rule overrides written into the
config's own text."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from agents.config_edit import set_rules
from agents.curator import THRESHOLDS, Evidence, propose
from agents.curator.evidence import AgentEvidence, Item, RuleEvidence
from agents.curator.proposals import edited
from agents.reputation.score import Tally, score
from agents.vision.config import parse_config, resolve_packs

AT = datetime(2026, 1, 2, tzinfo=UTC)


def rule_evidence(rule: str, *paths: str | None, ignored: int = 0) -> RuleEvidence:
    items = tuple(Item("thread_unresolved", False, f"t{i}", None, path, 1, AT) for i, path in enumerate(paths))
    counts = {"thread_unresolved": len(paths), "finding_ignored": ignored}
    return RuleEvidence(
        rule, counts, score(rule, "r", [Tally("thread_unresolved", False, len(paths), len(paths))]), items
    )


def agent_evidence(agent: str, against: int) -> AgentEvidence:
    tallies = [Tally("pr_closed", False, against, against)]
    return AgentEvidence(agent, {"pr_closed": against}, score(agent, "r", tallies), 0.0, float(against))


def proposal_for(config_text: str, *, rules=(), agents=(), catalogue=None):
    config = parse_config(config_text)
    evidence = Evidence(None, tuple(rules), tuple(agents))
    return propose(evidence, config, resolve_packs(config), catalogue or {"wowdomain": False}, THRESHOLDS)


@pytest.mark.parametrize(
    ("written", "after"),
    [
        ("", "off"),  # hygiene-print is a notice in its pack
        ("rules:\n  hygiene-print: warning\n", "notice"),
        ("rules:\n  hygiene-print: error\n", "warning"),
        ("rules:\n  hygiene-print: notice\n", "off"),
    ],
)
def test_a_rule_without_one_directory_goes_down_one_severity(written, after):
    (change,) = proposal_for(written, rules=[rule_evidence("hygiene-print", "a/x.py", "b/y.py", None)]).rules
    assert (change.scope, change.lowered or "off") == (None, after)
    text, kept = edited(written, proposal_for(written, rules=[rule_evidence("hygiene-print", "a/x.py", "b/y.py")]))
    override = parse_config(text).rules["hygiene-print"]
    assert (override.severity or "off") == after and override.disabled == (after == "off") and kept


def test_a_rule_against_in_one_directory_is_scoped_away_from_it_and_keeps_its_severity():
    written = "rules:\n  hygiene-print: {severity: error, ignore: [vendor/**]}\n"
    found = rule_evidence("hygiene-print", "tools/gen/a.py", "tools/gen/sub/b.py", "/tools/gen/c.py")
    (change,) = proposal_for(written, rules=[found]).rules
    assert change.scope == "tools/gen/**"
    override = parse_config(edited(written, proposal_for(written, rules=[found]))[0]).rules["hygiene-print"]
    assert (override.severity, override.ignore) == ("error", ["vendor/**", "tools/gen/**"])


def test_what_is_off_already_or_scoped_already_is_not_proposed():
    off = proposal_for("rules:\n  hygiene-print: off\n", rules=[rule_evidence("hygiene-print", "a.py")])
    scoped_text = "rules:\n  hygiene-print: {ignore: [tools/**]}\n"
    scoped = proposal_for(scoped_text, rules=[rule_evidence("hygiene-print", "tools/a.py", "tools/b.py")])
    unknown = proposal_for("", rules=[rule_evidence("no-such-rule", "a.py")])
    assert not off and not scoped and not unknown


def test_an_agent_is_paused_once_and_never_the_one_that_applies_the_config():
    catalogue = {"wowdomain": False, "helper": True, "hiring": False}
    judged = [agent_evidence("wowdomain", 6), agent_evidence("helper", 6), agent_evidence("hiring", 6)]
    unknown = agent_evidence("gone", 6)
    found = proposal_for("agents: {enable: [helper]}\n", agents=[*judged, unknown], catalogue=catalogue)
    assert [change.agent for change in found.agents] == ["wowdomain", "helper"]
    paused = parse_config(edited("agents: {enable: [helper]}\n", found)[0]).agents
    assert (paused.enable, paused.disable) == ([], ["wowdomain"])
    off = proposal_for("agents: {disable: [wowdomain]}\n", agents=judged, catalogue=catalogue)
    assert [change.agent for change in off.agents] == []  # helper is not hired there: off too


@pytest.mark.parametrize(
    ("counts", "over"),
    [
        ({"finding_ignored": 1}, True),
        ({"thread_unresolved": 3}, True),
        ({"thread_unresolved": 2}, False),
        ({"finding_ignored": 1, "finding_fixed": 1}, False),  # fixed once: not "never fixed"
        ({"thread_unresolved": 5, "thread_resolved": 1}, False),
    ],
)
def test_the_thresholds_of_a_rule(counts, over):
    assert RuleEvidence("r", counts, score("r", "r", [])).over(THRESHOLDS) is over


@pytest.mark.parametrize(("against", "for_", "over"), [(5, 0, True), (4, 0, False), (4, 2, True), (4, 3, False)])
def test_the_thresholds_of_an_agent(against, for_, over):
    tallies = [Tally("pr_closed", False, against, against), Tally("pr_merged", True, for_, for_)]
    found = AgentEvidence("a", {}, score("a", "r", tallies), float(for_), float(against))
    assert found.over(THRESHOLDS) is over


@pytest.mark.parametrize(
    ("before", "after"),
    [
        (None, "rules:\n  hygiene-print: notice\n  hygiene-breakpoint: off\n"),
        ("# mine\n", "# mine\nrules:\n  hygiene-print: notice\n  hygiene-breakpoint: off\n"),
        (
            "rules:\n  hygiene-print: warning   # noisy\n  other: error\nreview: COMMENT\n",
            "rules:\n  hygiene-print: notice   # noisy\n  other: error\n  hygiene-breakpoint: off\nreview: COMMENT\n",
        ),
        (
            "rules:\n  hygiene-print:\n    severity: error\n# after\ndrafts: true\n",
            "rules:\n  hygiene-print: notice\n  hygiene-breakpoint: off\n# after\ndrafts: true\n",
        ),
        ("rules:\ndrafts: true\n", "rules: {hygiene-print: notice, hygiene-breakpoint: off}\ndrafts: true\n"),
    ],
)
def test_rule_overrides_are_written_into_the_files_own_text(before, after):
    assert set_rules(before, {"hygiene-print": "notice", "hygiene-breakpoint": False}) == (after, True)


def test_a_flow_rules_mapping_is_rewritten_in_flow_and_a_mapping_value_written_in_full():
    text, kept = set_rules("rules: {hygiene-print: warning}\n", {"hygiene-print": {"ignore": ["a/**"]}})
    assert kept and parse_config(text).rules["hygiene-print"].ignore == ["a/**"]
    assert text.startswith("rules: {hygiene-print: {ignore: [a/**]}}")
