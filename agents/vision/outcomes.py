"""WowVision's own outcomes: findings fixed by a later commit, rules dismissed with `/wowvision ignore`.

WowVision is the one that knows a finding is gone — its next review of the pull request or
of the default branch no longer finds it — so it records that outcome itself when it sees it
(agents/reputation/outcomes.py). A finding gone because its rule was ignored is not fixed:
the ignore is its outcome.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from agents.events import Event
from agents.reputation.outcomes import Outcome

AGENT = "wowvision"
# An inline comment's first words, as agents/vision/agent.py writes them: **severity** `rule` — …
_INLINE = re.compile(r"\A\*\*(?:error|warning|notice)\*\* `(?P<rule>[a-z0-9][a-z0-9._-]*)` ")

Remembered = Mapping[str, Mapping[str, Any]]  # fingerprint → the finding as the context keeps it


def inline_rule(body: object) -> str | None:
    """The rule an inline review comment of WowVision is about, or None for any other text."""
    found = _INLINE.match(body) if isinstance(body, str) else None
    return found.group("rule") if found else None


def fixed(
    event: Event, where: str, before: Remembered, after: Remembered, suppressed: set[str], *, sha: str, url: str | None
) -> list[Outcome]:
    """A positive outcome for each finding of `before` that `after` no longer has (where: `pr-N` or
    `default-branch`), unless its rule is now ignored."""
    if event.repo is None:
        return []
    return [
        Outcome(
            event.installation_id,
            event.repo,
            AGENT,
            "finding_fixed",
            f"{where}:{fingerprint}",
            rule=item.get("rule"),
            url=url,
            evidence={
                "path": item.get("path"),
                "line": item.get("line"),
                "severity": item.get("severity"),
                "message": item.get("message"),
                "fixed_at": sha,
            },
            delivery_id=event.delivery_id,
        )
        for fingerprint, item in before.items()
        if fingerprint not in after and item.get("rule") not in suppressed
    ]


def ignored(event: Event, rule: str, reason: str) -> Outcome:
    """A negative outcome: the rule is dismissed on the repository."""
    comment = event.payload.get("comment") or {}
    return Outcome(
        event.installation_id,
        event.repo or "",
        AGENT,
        "finding_ignored",
        f"rule:{rule}",
        rule=rule,
        url=comment.get("html_url"),
        github_id=comment.get("id"),
        evidence={"by": event.sender_login, "reason": reason},
        delivery_id=event.delivery_id,
    )
