"""WowVision signs off a fix it reviewed, from its own context of the pull request: a `result` with its
check run's conclusion at the head it reviewed, and nothing when it cannot vouch for that head."""

from __future__ import annotations

from typing import Any

from agents.messages import Received
from agents.outputs import Message
from agents.vision.signoff import asked_pull, verdict

HEAD = "ec26c3e57ca3a959ca5aad62de7213c562f8c821"


def request(body: Any, kind: str = "request") -> Received:
    return Received(
        id=1, kind=kind, sender="engineering-coordinator", to="wowvision", body=body,
        correlation_id="c-1", causation="d-1", hops=1,
    )  # fmt: skip


SIGN_OFF = {"task": "bug-fix", "assignment": 3, "issue": 1, "pull_request": 2, "head_sha": HEAD, "sign_off": True}


def reviewed(*severities: str, head: str = HEAD) -> dict[str, Any]:
    findings = {f"fp{i}": {"rule": f"r{i}", "severity": s} for i, s in enumerate(severities)}
    return {"head_sha": head, "findings": findings, "posted": []}


def test_only_a_sign_off_request_naming_a_pull_request_is_one():
    assert asked_pull(request(SIGN_OFF)) == 2
    assert asked_pull(request({**SIGN_OFF, "pull_request": None})) is None  # the task's first request: no fix yet
    assert asked_pull(request({**SIGN_OFF, "sign_off": None, "review": True})) is None  # review it: the PR event does
    assert asked_pull(request(SIGN_OFF, kind="inform")) is None
    assert asked_pull(request({**SIGN_OFF, "pull_request": True})) is None
    assert asked_pull(request("sign off #2")) is None
    assert asked_pull(None) is None


def test_a_clean_review_signs_off_with_success_to_the_sender_on_its_conversation():
    (answer,) = verdict(request(SIGN_OFF), reviewed("warning", "notice"))
    assert isinstance(answer, Message)
    assert (answer.kind, answer.to, answer.correlation_id) == ("result", "engineering-coordinator", None)
    assert answer.body == {
        "task": "bug-fix",
        "assignment": 3,
        "pull_request": 2,
        "head_sha": HEAD,
        "conclusion": "success",
        "findings": {"error": 0, "warning": 1, "notice": 1},
    }


def test_an_error_level_finding_is_a_failure_verdict():
    (answer,) = verdict(request(SIGN_OFF), reviewed("error", "warning"))
    assert isinstance(answer, Message) and isinstance(answer.body, dict)
    assert answer.body["conclusion"] == "failure" and answer.body["findings"]["error"] == 1


def test_no_verdict_on_a_pull_request_never_reviewed_or_reviewed_at_another_head():
    assert verdict(request(SIGN_OFF), {}) == []
    assert verdict(request(SIGN_OFF), reviewed(head="0" * 40)) == []
    (answer,) = verdict(request({k: v for k, v in SIGN_OFF.items() if k != "head_sha"}), reviewed())
    assert isinstance(answer, Message)  # a request naming no head: the last one reviewed
