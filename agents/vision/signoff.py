"""WowVision as the Accountable of engineering's tasks: it signs off a fix it has reviewed.

The engineering coordinator (agents/coordination/coordinator.py) asks the Accountable to sign off
with a `request` message whose body has `sign_off: true`; once the fix's pull request is merged,
the body also names it (`pull_request`) and its head (`head_sha`). WowVision answers such a request
with a `result` to its sender: its verdict, the conclusion of its check run on that head, read
from its own context of the pull request (what its last review left there). No model, no GitHub
call. It stays silent on a request it cannot vouch for — no pull request named yet, one it never
reviewed, or one it last reviewed at another head: the task's deadline then brings a person in.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import structlog

from agents.messages import Received
from agents.outputs import Message, Output

log = structlog.get_logger(__name__)

ASKED = "agent_message.request"


def asked_pull(received: Received | None) -> int | None:
    """The pull request a sign-off request names, or None for any other message."""
    if received is None or received.kind != "request" or not isinstance(received.body, dict):
        return None
    body = received.body
    number = body.get("pull_request")
    if body.get("sign_off") is not True or isinstance(number, bool) or not isinstance(number, int):
        return None
    return number


def verdict(received: Received, reviewed: Mapping[str, Any]) -> list[Output]:
    """The `result` answering a sign-off request, from WowVision's context of the pull request it names."""
    number = asked_pull(received)
    assert number is not None and isinstance(received.body, dict)  # should_wake let only those in
    body: dict[str, Any] = received.body
    head = reviewed.get("head_sha")
    asked_head = body.get("head_sha")
    if not isinstance(head, str) or (isinstance(asked_head, str) and asked_head != head):
        log.info("wowvision.no_sign_off", pull=number, reviewed=head, asked=asked_head, reason="not reviewed there")
        return []
    findings = [item for item in (reviewed.get("findings") or {}).values() if isinstance(item, dict)]
    severities = [item.get("severity") for item in findings]
    errors = severities.count("error")
    answer = {
        "task": body.get("task"),
        "assignment": body.get("assignment"),
        "pull_request": number,
        "head_sha": head,
        "conclusion": "failure" if errors else "success",  # as its check run on that head (findings.py)
        "findings": {"error": errors, "warning": severities.count("warning"), "notice": severities.count("notice")},
    }
    return [Message("result", received.sender, answer, key=f"sign-off:{number}")]
