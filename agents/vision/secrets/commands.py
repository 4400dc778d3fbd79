"""Credentials written into command lines and URLs.

- curl: `-u user:password` / `--user`, and `-H "Authorization: Basic|Bearer|Token …"`
  or an API-key header (`X-Api-Key:`, `PRIVATE-TOKEN:`…), on the curl line or on the
  lines that continue it (`\\` at the end of a line);
- a URL with a password: `scheme://user:password@host`.

Variables (`$TOKEN`, `${{ secrets.X }}`, `<token>`), common stand-ins (`user:pass`,
`admin:admin`), passwords made of words only, and hosts that are not on a network
(`localhost`, a compose service name, `example.com`) are not reported. A value a
vendor format recognises is left to that vendor's rule.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from agents.vision.diff import AddedLine
from agents.vision.secrets.checksums import b64decode
from agents.vision.secrets.generic import words_only
from agents.vision.secrets.placeholders import entropy, is_placeholder
from agents.vision.secrets.tokens import MASK, claimed

_CURL = re.compile(r"(?<![\w-])curl\s")
_USER = re.compile(r"""(?:^|\s)(?:-u|--user)(?:=|\s+)(?:"(?P<dq>[^"]+)"|'(?P<sq>[^']+)'|(?P<bare>[^\s"']+))""")
_HEADER = re.compile(r"""(?:^|\s)(?:-H|--header)(?:=|\s+)(?P<q>["'])(?P<name>[\w-]+)\s*:\s*(?P<value>[^"']+)(?P=q)""")
_KEY_HEADER = re.compile(r"(?i)authorization|(?:x-)?(?:[a-z]+-)*(?:api-?key|token|secret|auth)")
_SCHEME = re.compile(r"(?i)(basic|bearer|token|api-token|apikey|digest|key)\s+")
_URL = re.compile(
    r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]{1,20})://(?P<user>[^\s:@/\"'<>`]{0,64}):"
    r"(?P<password>[^\s@/\"'<>`:]{1,128})@(?P<host>[^\s/\"'<>`:?#@]+)"
)
_LOCAL_HOSTS = re.compile(
    r"(?i)localhost|127(?:\.\d+){3}|0\.0\.0\.0|\[?::1\]?|.*\.(?:local|test|example|invalid|localhost)"
)
_EXAMPLE_DOMAINS = re.compile(r"(?i)(?:.*\.)?example\.(?:com|org|net)")
_STAND_INS = frozenset(
    "pass passwd password pwd secret admin root user username guest changeme test demo postgres mysql redis "
    "rabbitmq minio".split()
)


@dataclass(frozen=True, slots=True)
class Credential:
    index: int  # of its line in the added lines
    label: str
    secret: str
    shown: str


def curl_credentials(lines: Sequence[AddedLine]) -> Iterator[Credential]:
    for index in _curl_lines(lines):
        text = lines[index].text
        for match in _USER.finditer(text):
            pair = match.group("dq") or match.group("sq") or match.group("bare")
            _, colon, password = pair.partition(":")
            start = (
                match.start("dq")
                if match.group("dq")
                else match.start("sq")
                if match.group("sq")
                else match.start("bare")
            )
            start += len(pair) - len(password)
            if colon and _is_password(password) and not claimed(text, start, start + len(password)):
                yield Credential(index, "credentials in a curl command", password, "-u " + MASK)
        for match in _HEADER.finditer(text):
            name, value = match.group("name"), match.group("value").strip()
            if not _KEY_HEADER.fullmatch(name):
                continue
            scheme = _SCHEME.match(value)
            credential = value[scheme.end() :] if scheme else value
            start = match.start("value") + match.group("value").index(credential)
            if scheme and scheme.group(1).lower() == "basic":
                decoded = b64decode(credential)
                usable = (
                    decoded is not None
                    and b":" in decoded
                    and _is_password(decoded.split(b":", 1)[1].decode(errors="replace"))
                )
            else:
                usable = _is_token(credential)
            if usable and not claimed(text, start, start + len(credential)):
                shown = f"{name}: {scheme.group(1) + ' ' if scheme else ''}{MASK}"
                yield Credential(index, "credentials in a curl command", credential, shown)


def url_credentials(lines: Sequence[AddedLine]) -> Iterator[Credential]:
    for index, line in enumerate(lines):
        if "://" not in line.text or "@" not in line.text:
            continue
        for match in _URL.finditer(line.text):
            password, host = match.group("password"), match.group("host")
            if (
                password == match.group("user")
                or not _is_password(password)
                or "." not in host.strip("[]")
                or _LOCAL_HOSTS.fullmatch(host)
                or _EXAMPLE_DOMAINS.fullmatch(host)
                or claimed(line.text, match.start("password"), match.end("password"))
            ):
                continue
            yield Credential(index, "URL with a password", password, f"{match.group('scheme')}://{MASK}@{host}")


def _curl_lines(lines: Sequence[AddedLine]) -> Iterator[int]:
    """The indexes of lines that are part of a curl command: the one naming curl and its continuations."""
    in_command = False
    for index, line in enumerate(lines):
        continued = in_command and index > 0 and lines[index - 1].number == line.number - 1
        in_command = bool(_CURL.search(line.text)) or continued
        if in_command:
            yield index
        in_command = in_command and line.text.rstrip().endswith(("\\", "^", "`"))


def _is_password(value: str) -> bool:
    return len(value) >= 6 and value.lower() not in _STAND_INS and not is_placeholder(value) and not words_only(value)


def _is_token(value: str) -> bool:
    return len(value) >= 12 and " " not in value and not is_placeholder(value) and entropy(value) >= 3.0
