"""Private keys: a PEM or OpenSSH block whose header is followed by a key body.

A header alone is not a key: READMEs and tests write `-----BEGIN … PRIVATE KEY-----`
followed by `...`, `some/private/key` or a template variable. A key is reported only
when base64 lines follow its header — on the next lines, inside string literals
joined with `+`, in a YAML block, or on the same line with escaped newlines (`\\n`,
as in a JSON file) — and they carry at least `MIN_BODY` characters of high entropy.

A key under a `"private_key":` member of a file that reads as a Google Cloud
service-account key (`"type": "service_account"`, `…gserviceaccount.com`) is
reported as such, with where to revoke it, rather than as a bare private key.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from agents.vision.diff import AddedLine
from agents.vision.secrets.placeholders import entropy

HEADER = re.compile(
    r"-----BEGIN (?:(?:RSA|DSA|EC|OPENSSH|PGP|ENCRYPTED|DH|SSH2 ENCRYPTED) )?PRIVATE KEY(?: BLOCK)?-----"
)
NEEDLE = "PRIVATE KEY"
MIN_BODY = 64  # base64 characters; the smallest real key (an EC key) has over 150
MAX_BODY_LINES = 120
_BASE64_LINE = re.compile(r"[A-Za-z0-9+/]+={0,2}")
_ARMOR_HEADER = re.compile(r"[A-Za-z][A-Za-z-]*: ")  # Proc-Type:, DEK-Info:, Version:, Comment:
_NOISE = " \t\"'`+,;()[]{}|\\"  # what string literals and YAML put around a key's lines
_SERVICE_ACCOUNT_MEMBER = re.compile(r"[\"']private_key\\?[\"']\s*:\s*\\?[\"']$")
_SERVICE_ACCOUNT_MARKS = ("service_account", "gserviceaccount.com", "private_key_id")
_TEST_WORDS = re.compile(r"fake|mock|dummy|test|example|sample|FAKE|MOCK|DUMMY|TEST|EXAMPLE|SAMPLE")


@dataclass(frozen=True, slots=True)
class KeyBlock:
    index: int  # of the header's line in the added lines
    header: str
    secret: str  # the header's line from the header on: blanked out of what identifies the finding
    service_account: bool
    test_word: str | None  # a word in the body that makes it a test key


def key_blocks(lines: Sequence[AddedLine], joined: str) -> Iterator[KeyBlock]:
    """The private keys among consecutive added lines."""
    service_account_file = any(mark in joined for mark in _SERVICE_ACCOUNT_MARKS)
    for index, line in enumerate(lines):
        match = HEADER.search(line.text)
        if match is None:
            continue
        body = _body(lines, index, match.end())
        if len(body) < MIN_BODY or entropy(body) < 4.5 or re.search(r"(.)\1{15}", body):
            continue
        before = line.text[: match.start()].rstrip()
        words = _TEST_WORDS.findall(body)
        yield KeyBlock(
            index=index,
            header=match.group(0),
            secret=line.text[match.start() :],
            service_account=service_account_file and _SERVICE_ACCOUNT_MEMBER.search(before) is not None,
            # twice: a random body holds one such word once in a few thousand keys
            test_word=words[0].lower() if len(words) >= 2 else None,
        )


def _body(lines: Sequence[AddedLine], index: int, start: int) -> str:
    """The base64 characters that follow a header, up to its END line or the first line
    that is not base64."""
    parts = [lines[index].text[start:]]
    number = lines[index].number
    for line in lines[index + 1 : index + MAX_BODY_LINES]:
        if line.number != number + 1 or "-----END" in parts[-1]:
            break
        parts.append(line.text)
        number = line.number
    text = "\n".join(parts).replace("\\r", "").replace("\\n", "\n")
    body: list[str] = []
    for raw in text.split("\n"):
        piece = raw.split("-----END", 1)[0].strip(_NOISE)
        if piece and not body and _ARMOR_HEADER.match(piece):
            continue
        if piece and _BASE64_LINE.fullmatch(piece):
            body.append(piece)
        elif piece:
            break
        if "-----END" in raw:
            break
    return "".join(body)
