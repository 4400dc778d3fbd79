"""`secret` rules: credentials in added lines.

Nothing here ever returns a secret: a detection carries a label and a redacted form
(the public prefix of a token, never its body), and the finding's fingerprint hashes
the line with the secret already replaced.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass

from agents.vision.checks.base import Scope, finding
from agents.vision.findings import Finding
from agents.vision.policy import SecretRule

MASK = "****"

_PRIVATE_KEY = re.compile(r"-----BEGIN (?:(?:RSA|DSA|EC|OPENSSH|PGP|ENCRYPTED|DH) )?PRIVATE KEY(?: BLOCK)?-----")
_AWS_KEY_ID = re.compile(r"\b((?:AKIA|ASIA|ABIA|ACCA|AGPA|AIDA|AROA|AIPA|ANPA|ANVA|APKA)[A-Z0-9]{16})\b")
_AWS_SECRET = re.compile(
    r"(?i)aws_?secret_?(?:access_?)?key[\"']?\s*(?::=|=>|=|:)\s*[\"']?([A-Za-z0-9/+]{40})(?![A-Za-z0-9/+=])"
)
_GITHUB = re.compile(r"\b((?:ghp|gho|ghu|ghs|ghr)_[A-Za-z0-9]{36,251}|github_pat_[A-Za-z0-9_]{22,244})\b")
_ANTHROPIC = re.compile(r"\b(sk-ant-[A-Za-z0-9_-]{20,})")

_KEYWORD = (
    r"(?:password|passwd|pwd|secret|token|api[_-]?key|apikey|access[_-]?key|auth[_-]?key|private[_-]?key"
    r"|credentials?)(?![A-Za-z0-9])"
)
# name = "value", name: 'value', name := "value", "name": "value", name: str = "value". The
# search starts at the keyword (fast); the full name is read backwards from it.
_GENERIC_QUOTED = re.compile(
    r"(?P<keyword>"
    + _KEYWORD
    + r")[\"']?(?:\s*:\s*[A-Za-z_][\w\[\]., |]*?)?\s*(?::=|=>|=|:)\s*[rbfu]?(?P<quote>[\"'`])"
    r"(?P<value>[^\"'`\s]+)(?P=quote)",
    re.IGNORECASE,
)
# NAME=value and name: value in configuration files, where values go unquoted
_GENERIC_BARE = re.compile(
    r"^\s*(?:export\s+)?(?P<name>[A-Za-z0-9_.-]*" + _KEYWORD + r")\s*(?:=|:)\s*(?P<value>[^\s\"'#]+)\s*(?:#.*)?$",
    re.IGNORECASE,
)
_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-")
_MAX_GENERIC_LINE = 2000  # minified code and data blobs: only the specific detectors read them
_CONFIG_SUFFIXES = (".env", ".yml", ".yaml", ".ini", ".toml", ".cfg", ".conf", ".properties")
_PLACEHOLDER_WORDS = tuple(
    "example sample dummy fake placeholder changeme change_me change-me redacted your_ your- xxxx **** .... "
    "test secret password token todo fixme".split()
)
# Substrings one of which a line must hold before a detector's regex runs on it
# (lowercase ones are looked for in the lowercased text).
_PREFILTERS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "private_key": (("PRIVATE KEY",), ()),
    "aws": (("AKIA", "ASIA", "ABIA", "ACCA", "AGPA", "AIDA", "AROA", "AIPA", "ANPA", "ANVA", "APKA"), ("aws",)),
    "github": (("ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_"), ()),
    "anthropic": (("sk-ant-",), ()),
    "generic": ((), ("passw", "pwd", "secret", "token", "key", "credential")),
}
_WORDS_ONLY = re.compile(r"[a-z]+(?:[_.-][a-z]+)*|[A-Z]+(?:_[A-Z]+)*")


@dataclass(frozen=True, slots=True)
class Detection:
    label: str
    redacted: str
    secret: str  # kept only to blank it out of the fingerprint; never put in a message


def entropy(value: str) -> float:
    """Shannon entropy in bits per character."""
    counts = Counter(value)
    return -sum(n / len(value) * math.log2(n / len(value)) for n in counts.values())


def is_placeholder(value: str) -> bool:
    lowered = value.lower()
    return (
        value[:1] in "$%<{[("
        or "{{" in value
        or len(set(value)) <= 2
        or any(word in lowered for word in _PLACEHOLDER_WORDS)
    )


def detect(text: str, path: str, rule: SecretRule) -> list[Detection]:
    """The credentials in one line, each with a redacted form to show instead."""
    found: list[Detection] = []
    detectors = set(rule.detectors)
    if "private_key" in detectors and (match := _PRIVATE_KEY.search(text)):
        found.append(Detection("private key", match.group(0), match.group(0)))
    if "aws" in detectors:
        for match in _AWS_KEY_ID.finditer(text):
            # A presigned URL carries its key id in the open (X-Amz-Credential=AKIA…/date/…).
            if not text[: match.start()].lower().endswith(("credential=", "credential%3d")):
                found.append(Detection("AWS access key id", match.group(1)[:4] + MASK, match.group(1)))
        found += [Detection("AWS secret access key", MASK, m) for m in _AWS_SECRET.findall(text)]
    if "github" in detectors:
        for token in _GITHUB.findall(text):
            prefix = "github_pat_" if token.startswith("github_pat_") else token[:4]
            found.append(Detection("GitHub token", prefix + MASK, token))
    if "anthropic" in detectors:
        found += [Detection("Anthropic API key", "sk-ant-" + MASK, key) for key in _ANTHROPIC.findall(text)]
    found = [d for d in found if d.label == "private key" or not is_placeholder(d.secret)]
    if "generic" in detectors and not found:
        found += _generic(text, path, rule)
    return found


def _generic(text: str, path: str, rule: SecretRule) -> list[Detection]:
    if len(text) > _MAX_GENERIC_LINE or ("=" not in text and ":" not in text):
        return []
    found: list[tuple[str, str]] = []
    for match in _GENERIC_QUOTED.finditer(text):
        start = match.start()
        while start > 0 and text[start - 1] in _NAME_CHARS:
            start -= 1
        found.append((text[start : match.end("keyword")], match.group("value")))
    file_name = path.rsplit("/", 1)[-1].lower()
    if not found and (file_name.endswith(_CONFIG_SUFFIXES) or file_name.startswith(".env")):
        bare = _GENERIC_BARE.match(text)
        if bare is not None:
            found.append((bare.group("name"), bare.group("value")))
    return [
        Detection(f"value assigned to `{name}`", MASK, value)
        for name, value in found
        if len(value) >= rule.min_length
        and entropy(value) >= rule.min_entropy
        and not is_placeholder(value)
        and not _WORDS_ONLY.fullmatch(value)
        and not _is_known_token(value)
    ]


def _is_known_token(value: str) -> bool:
    """A value a specific detector recognises: its own rule reports it, not the generic one."""
    return any(pattern.search(value) for pattern in (_GITHUB, _AWS_KEY_ID, _ANTHROPIC, _PRIVATE_KEY))


def _prefilter_words(detectors: list[str]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    exact = tuple(word for name in detectors for word in _PREFILTERS[name][0])
    folded = tuple(word for name in detectors for word in _PREFILTERS[name][1])
    return exact, folded


def check_secret(rule: SecretRule, scope: Scope) -> Iterator[Finding]:
    exact, folded = _prefilter_words(rule.detectors)
    for file in scope.text_files_for(rule):
        joined_lower, lines_lower = scope.lowered(file)
        joined = scope.joined(file)
        if not (any(word in joined for word in exact) or any(word in joined_lower for word in folded)):
            continue
        for line, lowered in zip(file.added_lines(), lines_lower, strict=True):
            if not (any(word in line.text for word in exact) or any(word in lowered for word in folded)):
                continue
            detections = detect(line.text, file.path, rule)
            if not detections:
                continue
            redacted_line = line.text
            for detection in detections:
                redacted_line = redacted_line.replace(detection.secret, detection.redacted)
            detail = ", ".join(f"{d.label} ({d.redacted})" for d in detections)
            yield finding(rule, file.path, line=line.number, detail=detail, content=redacted_line)
