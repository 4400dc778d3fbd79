"""A review as SARIF 2.1.0, the format GitHub code scanning uploads.

One run, with one rule descriptor for each rule the review applied (so code scanning
knows the rules that found nothing and closes their alerts), one result for each
finding that has a file, and the rest — findings about the change as a whole, what was
skipped — as the invocation's notifications, because code scanning refuses a whole
upload when a single result has no location.

Nothing here quotes the change: results carry the finding's message (secret findings
show only a redacted form), its place and its fingerprint, never a snippet.
"""

from __future__ import annotations

from collections.abc import Sequence
from importlib import metadata
from typing import Any
from urllib.parse import quote

from agents.vision.config import RepoConfig
from agents.vision.engine import ReviewResult
from agents.vision.findings import Finding
from agents.vision.policy import Pack, Rule

SCHEMA = "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
LEVELS = {"error": "error", "warning": "warning", "notice": "note"}
# code scanning ranks security alerts by this score (0-10); a credential is one
SECURITY_SEVERITY = {"error": "8.0", "warning": "5.0", "notice": "2.0"}
FINGERPRINT = "wowvision/v1"


def to_sarif(result: ReviewResult, packs: Sequence[Pack], config: RepoConfig) -> dict[str, Any]:
    rules = [(pack.name, rule) for pack in packs for rule in config.apply(pack.rules)]
    index = {rule.id: position for position, (_, rule) in enumerate(rules)}
    located = [found for found in result.findings if found.path is not None]
    notifications = [_notification(found, index) for found in result.findings if found.path is None]
    notifications += [
        {
            "level": "note",
            "message": {"text": f"skipped, not passed: {item.path or 'the change'}: {item.reason}"},
            **({"associatedRule": {"id": item.rule, "index": index[item.rule]}} if item.rule in index else {}),
        }
        for item in result.skipped
    ]
    return {
        "$schema": SCHEMA,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "WowVision",
                        "version": _version(),
                        "rules": [_descriptor(pack, rule) for pack, rule in rules],
                    }
                },
                "invocations": [{"executionSuccessful": True, "toolExecutionNotifications": notifications}],
                "results": [_result(found, index) for found in located],
            }
        ],
    }


def _descriptor(pack: str, rule: Rule) -> dict[str, Any]:
    security = pack == "secrets" or rule.kind == "secret"
    properties: dict[str, Any] = {"tags": [pack, rule.kind, *(["security"] if security else [])]}
    if security:
        properties["security-severity"] = SECURITY_SEVERITY[rule.severity]
    return {
        "id": rule.id,
        "shortDescription": {"text": rule.message},
        "fullDescription": {"text": rule.rationale or rule.message},
        "help": {"text": rule.hint or rule.message},
        "defaultConfiguration": {"level": LEVELS[rule.severity]},
        "properties": properties,
    }


def _result(found: Finding, index: dict[str, int]) -> dict[str, Any]:
    assert found.path is not None
    region = {"startLine": found.line or 1, "endLine": found.end_line or found.line or 1}
    return {
        "ruleId": found.rule,
        **({"ruleIndex": index[found.rule]} if found.rule in index else {}),
        "level": LEVELS[found.severity],
        "message": {"text": _text(found)},
        "locations": [{"physicalLocation": {"artifactLocation": {"uri": quote(found.path)}, "region": region}}],
        "partialFingerprints": {FINGERPRINT: found.fingerprint},
    }


def _notification(found: Finding, index: dict[str, int]) -> dict[str, Any]:
    return {
        "level": LEVELS[found.severity],
        "message": {"text": _text(found)},
        **({"associatedRule": {"id": found.rule, "index": index[found.rule]}} if found.rule in index else {}),
    }


def _text(found: Finding) -> str:
    return found.message + (f"\n{found.hint}" if found.hint else "")


def _version() -> str:
    try:
        return metadata.version("waooaw")
    except metadata.PackageNotFoundError:
        return "0+unknown"
