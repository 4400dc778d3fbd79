"""One pass of one detector over a file's added lines: the hits, each on one line.

`DETECTORS` names every detector a `secret` rule may list: a vendor's formats (see
`tokens.FORMATS`), `private_key` and `gcp_service_account` (`keys`), `curl` and
`url_credentials` (`commands`), `generic` (`generic`), and `env_file`, which is about
a file rather than its lines (the check reads it from the file's status).

The needles of every detector (substrings one of which any text it can match holds)
are looked for once per file (`AddedText.present`): a detector none of whose needles
occurs does not run on that file.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import cached_property

from agents.vision.diff import AddedLine, FileDiff
from agents.vision.secrets import commands, generic, keys
from agents.vision.secrets.placeholders import fake_body, test_word
from agents.vision.secrets.tokens import AWS_KEY_ID, AWS_SECRET_VALUE, FORMATS, MASK, mixed_case_and_digits

AWS_PAIR_DISTANCE = 2  # lines between an access key id and a bare secret key read as its pair


@dataclass(frozen=True, slots=True)
class SecretHit:
    detector: str
    label: str
    index: int  # of its line in the file's added lines
    secret: str  # blanked out of the line before anything identifies it; never shown
    shown: str
    test_value: str | None = None  # why the value itself reads as a test value


@dataclass(frozen=True)
class GenericLimits:
    min_length: int
    min_entropy: float


@dataclass
class AddedText:
    """A file's added lines as the detectors read them: one by one, and joined.

    `present` names the detectors one of whose needles occurs in the text: the others
    cannot find anything there and are not run.
    """

    file: FileDiff
    joined: str  # the lines joined with "\n"
    lowered: str
    present: frozenset[str] = frozenset()
    _starts: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.present = frozenset(
            {name for needle, names in _EXACT.items() if needle in self.joined for name in names}
            | {name for needle, names in _FOLDED.items() if needle in self.lowered for name in names}
            | _ALWAYS
        )

    @property
    def path(self) -> str:
        return self.file.path

    @cached_property
    def lines(self) -> tuple[AddedLine, ...]:
        return tuple(self.file.added_lines())

    @cached_property
    def lowered_lines(self) -> list[str]:
        return self.lowered.split("\n")

    def index_at(self, offset: int) -> int:
        """The index of the line holding `offset` of the joined text."""
        if not self._starts:
            position = 0
            for line in self.lines:
                self._starts.append(position)
                position += len(line.text) + 1
        return bisect.bisect_right(self._starts, offset) - 1


Scanner = Callable[[str, AddedText, GenericLimits], Iterator[SecretHit]]


def _vendor(detector: str, text: AddedText, _: GenericLimits) -> Iterator[SecretHit]:
    seen: set[tuple[int, str]] = set()
    for token_format in FORMATS[detector]:
        if not token_format.present(text.joined, text.lowered):
            continue
        for token in token_format.tokens(text.joined):
            index = text.index_at(token.start)
            if fake_body(token.body) or (index, token.secret) in seen or _in_presigned_url(text.joined, token.start):
                continue
            seen.add((index, token.secret))
            yield SecretHit(detector, token_format.label, index, token.secret, token.shown, _test_value(token.body))
            if token_format is AWS_KEY_ID:
                yield from _aws_secret_beside(text, index, seen)


def _in_presigned_url(joined: str, start: int) -> bool:
    """A presigned S3 URL carries its access key id in the open (`X-Amz-Credential=AKIA…/date/…`)."""
    return joined[max(0, start - 16) : start].lower().endswith(("credential=", "credential%3d"))


def _aws_secret_beside(text: AddedText, index: int, seen: set[tuple[int, str]]) -> Iterator[SecretHit]:
    """A secret access key written next to its key id (a CSV row, `accessKeyId`/`secretAccessKey`)."""
    for near in range(max(0, index - AWS_PAIR_DISTANCE), min(len(text.lines), index + AWS_PAIR_DISTANCE + 1)):
        for match in AWS_SECRET_VALUE.finditer(text.lines[near].text):
            value = match.group("token")
            if (near, value) in seen or not mixed_case_and_digits(value) or fake_body(value):
                continue
            seen.add((near, value))
            yield SecretHit("aws", "AWS secret access key", near, value, MASK, _test_value(value))


def _test_value(body: str) -> str | None:
    word = test_word(body)
    return f"its value says {word}" if word else None


def _keys(detector: str, text: AddedText, _: GenericLimits) -> Iterator[SecretHit]:
    for block in keys.key_blocks(text.lines, text.joined):
        if block.service_account != (detector == "gcp_service_account"):
            continue
        label = "Google Cloud service account key" if block.service_account else "private key"
        reason = f"its body says {block.test_word}" if block.test_word else None
        yield SecretHit(detector, label, block.index, block.secret, block.header, reason)


def _curl(detector: str, text: AddedText, _: GenericLimits) -> Iterator[SecretHit]:
    for found in commands.curl_credentials(text.lines):
        yield SecretHit(detector, found.label, found.index, found.secret, found.shown)


def _urls(detector: str, text: AddedText, _: GenericLimits) -> Iterator[SecretHit]:
    for found in commands.url_credentials(text.lines):
        yield SecretHit(detector, found.label, found.index, found.secret, found.shown)


def _generic(detector: str, text: AddedText, limits: GenericLimits) -> Iterator[SecretHit]:
    lines, lowered = text.lines, text.lowered_lines
    for found, label in generic.generic_secrets(lines, lowered, text.path, limits.min_length, limits.min_entropy):
        yield SecretHit(detector, label, found.index, found.value, MASK)


SCANNERS: dict[str, Scanner] = {
    **{name: _vendor for name in FORMATS},
    "private_key": _keys,
    "gcp_service_account": _keys,
    "curl": _curl,
    "url_credentials": _urls,
    "generic": _generic,
}


def _needles(folded: bool) -> dict[str, tuple[str, ...]]:
    """needle → the detectors it lets run (`folded`: the needles looked for in lower-cased text)."""
    pairs = [(n, name) for name, formats in FORMATS.items() for f in formats if f.folded == folded for n in f.needles]
    if folded:
        pairs += [("curl", "curl"), *((n, "generic") for n in generic.NEEDLES)]
    else:
        pairs += [(keys.NEEDLE, "private_key"), (keys.NEEDLE, "gcp_service_account"), ("://", "url_credentials")]
    needles: dict[str, tuple[str, ...]] = {}
    for needle, name in pairs:
        needles[needle] = (*needles.get(needle, ()), name)
    return needles


_EXACT = _needles(folded=False)
_FOLDED = _needles(folded=True)
_ALWAYS = frozenset(name for name, formats in FORMATS.items() if any(not f.needles for f in formats))
ENV_FILE_DETECTOR = "env_file"
DETECTORS = (*SCANNERS, ENV_FILE_DETECTOR)


def scan(detector: str, text: AddedText, limits: GenericLimits) -> Iterator[SecretHit]:
    """The hits of one detector (any name of `SCANNERS`) in a file's added text."""
    if detector not in text.present:
        return iter(())
    return SCANNERS[detector](detector, text, limits)
