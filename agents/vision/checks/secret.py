"""`secret` rules: credentials in what a change adds.

Each detector of the rule reads the added lines of each file (`agents.vision.secrets`);
the hits on one line become one finding. Nothing here ever shows a secret: a finding
names each credential by its label and a redacted form (the public prefix of a
token, never its body), and its fingerprint hashes the line with the secrets already
replaced by those forms.

In a test fixture or a docs example — by path, by the repository's `fixtures` globs,
or by a name or value that says mock, fake, dummy… — a finding is a notice saying
"test key committed — confirm it is not live", never an error.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import replace

from agents.vision.checks.base import Scope, finding
from agents.vision.diff import FileStatus
from agents.vision.findings import Finding
from agents.vision.policy import SecretRule
from agents.vision.secrets.context import TEST_KEY, fixture_name, fixture_path
from agents.vision.secrets.scan import ENV_FILE_DETECTOR, AddedText, GenericLimits, SecretHit, scan


def check_secret(rule: SecretRule, scope: Scope) -> Iterator[Finding]:
    if ENV_FILE_DETECTOR in rule.detectors:
        yield from _env_files(rule, scope)
    limits = GenericLimits(rule.min_length, rule.min_entropy)
    by_detector = scope.derived("secrets", lambda: _texts_by_detector(scope))
    texts = {text.path: text for name in rule.detectors for text in by_detector.get(name, ())}
    for text in texts.values():
        if not rule.applies_to(text.path):
            continue
        hits = [hit for name in rule.detectors if name in text.present for hit in scan(name, text, limits)]
        if hits:
            yield from _findings(rule, text, hits, fixture_path(text.path, scope.fixtures))


def _texts_by_detector(scope: Scope) -> dict[str, list[AddedText]]:
    """The added text of each file under review, filed under the detectors that may find something in it."""
    by_detector: dict[str, list[AddedText]] = {}
    for file in scope.text_files:
        text = AddedText(file, scope.joined(file), scope.lowered(file)[0])
        for name in text.present:
            by_detector.setdefault(name, []).append(text)
    return by_detector


def _env_files(rule: SecretRule, scope: Scope) -> Iterator[Finding]:
    for file in scope.files_for(rule):
        if file.status in (FileStatus.ADDED, FileStatus.RENAMED):
            found = finding(rule, file.path, detail=f"`{file.path}`", content=file.path)
            in_fixture = fixture_path(file.path, scope.fixtures)
            yield _as_test_value(found, in_fixture) if in_fixture else found


def _findings(
    rule: SecretRule, text: AddedText, hits: Sequence[SecretHit], in_fixture: str | None
) -> Iterator[Finding]:
    by_line: dict[int, list[SecretHit]] = {}
    for hit in hits:
        by_line.setdefault(hit.index, []).append(hit)
    for index, on_line in sorted(by_line.items()):
        line = text.lines[index]
        redacted = line.text
        for hit in on_line:
            redacted = redacted.replace(hit.secret, hit.shown)
        detail = ", ".join(f"{hit.label} ({hit.shown})" for hit in on_line)
        found = finding(rule, text.path, line=line.number, detail=detail, content=redacted)
        reason = in_fixture or next((hit.test_value for hit in on_line if hit.test_value), None)
        reason = reason or fixture_name(redacted) or _named_on_line_before(text, index, on_line)
        yield _as_test_value(found, reason) if reason else found


def _named_on_line_before(text: AddedText, index: int, on_line: Sequence[SecretHit]) -> str | None:
    """A private key usually opens a string whose name is on the line before (`FAKE_KEY = \"\"\"`)."""
    if index == 0 or not any(hit.detector in ("private_key", "gcp_service_account") for hit in on_line):
        return None
    previous, line = text.lines[index - 1], text.lines[index]
    return fixture_name(previous.text) if previous.number == line.number - 1 else None


def _as_test_value(found: Finding, reason: str) -> Finding:
    return replace(found, severity="notice", message=f"{found.message} — {TEST_KEY} ({reason})")
