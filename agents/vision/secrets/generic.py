"""Values assigned to secret-looking names: the generic rule, for credentials no
vendor format covers.

The name must end in password, secret, token, api_key, access_key, private_key,
credentials… and the value must look generated (at least `min_length` characters,
`min_entropy` bits per character, not words alone, not a placeholder). The shapes
read, on added lines:

    name = "v"   name: "v"   name := "v"   name => "v"   "name": "v"   name: str = "v"
    var name string = "v"  (Go)       $name .= "v"  (PHP)      os.environ["NAME"] = "v"
    NAME ?= v  NAME ::= v  NAME :::= v  (Make)                 setProperty("NAME", "v")
    "{\\"name\\": \\"v\\"}"  (JSON inside a string, with escapes such as \\n in the value)
    <name>v</name>   <name>⏎ v ⏎</name>   <add key="Name" value="v"/>  (XML)
    NAME=v  name: v  name = v  export NAME=v  ENV NAME v   (unquoted, in .env, YAML, INI,
                                         TOML, properties, Makefiles, shell, Dockerfiles)
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from agents.vision.diff import AddedLine
from agents.vision.secrets.placeholders import entropy, identifier_words, is_placeholder
from agents.vision.secrets.tokens import claimed

KEYWORD = (
    r"(?:password|passwd|pwd|secret|token|api[_-]?key|apikey|access[_-]?key|auth[_-]?key|private[_-]?key"
    r"|credentials?)(?![A-Za-z0-9])"
)
# The keywords' spellings in lower case: a line holding none of them is not read.
NEEDLES = (
    "passw",
    "pwd",
    "secret",
    "token",
    "credential",
    *(f"{word}{sep}key" for word in ("api", "access", "auth", "private") for sep in ("", "_", "-")),
)
_NEEDLE = re.compile("|".join(NEEDLES))
MAX_LINE = 2000  # minified code and data blobs: only the vendor formats read them
# A quoted value; escapes (`\n`, or `\\n` in JSON inside a string) may end it, escaped quotes enclose it.
_QUOTED_VALUE = r"""[rbfu]?\\?(?P<quote>["'`])(?P<value>(?:[^"'`\s\\]|\\+[nrt/])+)\\?(?P=quote)"""
_ASSIGNED = re.compile(
    r"(?P<keyword>" + KEYWORD + r""")\\?["']?\]?"""  # the name, maybe quoted or subscripted
    r"(?:\s*:\s*[A-Za-z_][\w\[\]., |]*?|\s+[A-Za-z_][\w.\[\]*]*)?"  # a type: `: str`, Go's ` string`
    r"\s*(?:[:?.+]*=>?|:)\s*" + _QUOTED_VALUE,
    re.IGNORECASE,
)
_CALL = re.compile(
    r"""\(\s*(?P<q>["'])(?P<name>[\w.-]*""" + KEYWORD + r""")(?P=q)\s*,\s*""" + _QUOTED_VALUE, re.IGNORECASE
)
_XML_ELEMENT = re.compile(r"<(?P<name>[\w.:-]*" + KEYWORD + r")(?:\s[^>]*)?>\s*(?P<value>[^<\s]+)\s*</", re.IGNORECASE)
_XML_OPEN = re.compile(r"^\s*<(?P<name>[\w.:-]*" + KEYWORD + r")(?:\s[^>]*)?>\s*$", re.IGNORECASE)
_XML_NEXT_VALUE = re.compile(r"^\s*(?P<value>[^<\s]+)\s*(?:</[\w.:-]+>\s*)?$")
_XML_ATTRIBUTES = re.compile(
    r"""\b(?:key|name)\s*=\s*["'](?P<name>[\w.:-]*"""
    + KEYWORD
    + r""")["'][^>]*?\bvalue\s*=\s*["'](?P<value>[^"'\s]+)["']""",
    re.IGNORECASE,
)
_BARE = re.compile(
    r"^\s*(?:(?:export|ENV|ARG|set|setenv)\s+)?(?P<name>[A-Za-z0-9_.-]*" + KEYWORD + r")"
    r"(?:\s*(?:[:?+]*=|:)\s*|\s+)(?P<value>[^\s\"'#]+)\s*(?:#.*)?$",
    re.IGNORECASE,
)
_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.$-")
_BARE_SUFFIXES = (
    ".env",
    ".yml",
    ".yaml",
    ".ini",
    ".toml",
    ".cfg",
    ".conf",
    ".properties",
    ".mk",
    ".sh",
    ".bash",
    ".zsh",
    ".envrc",
)
_BARE_NAMES = ("makefile", "gnumakefile", "dockerfile", "containerfile")
_LETTERS_ONLY = re.compile(r"[A-Za-z_.\- ]+")
_SEPARATED_WORDS = re.compile(r"_*(?:[a-z]+(?:[_.\- ][a-z]+)*|[A-Z]+(?:[_.\- ][A-Z]+)*)_*")
_PUBLIC_NAMES = ("public", "publishable")  # publicKeyToken, PUBLISHABLE_KEY: meant to be seen


@dataclass(frozen=True, slots=True)
class Assignment:
    index: int  # of the value's line in the added lines
    name: str
    value: str
    start: int  # of the value in its line
    text: str  # the value's line


def assignments(lines: Sequence[AddedLine], lowered: Sequence[str], path: str) -> Iterator[Assignment]:
    """Every (name, value) the shapes above read in the added lines (`lowered`: the same
    lines in lower case), names ending in a keyword."""
    file_name = path.rsplit("/", 1)[-1].lower()
    bare_allowed = (
        file_name.endswith(_BARE_SUFFIXES) or file_name.startswith((".env", "dockerfile")) or (file_name in _BARE_NAMES)
    )
    for index, line in enumerate(lines):
        text = line.text
        if len(text) > MAX_LINE or not _NEEDLE.search(lowered[index]):
            continue
        found = False
        for match in _ASSIGNED.finditer(text):
            start = match.start()
            while start > 0 and text[start - 1] in _NAME_CHARS:
                start -= 1
            found = True
            yield Assignment(
                index, text[start : match.end("keyword")], match.group("value"), match.start("value"), text
            )
        for pattern in (_CALL, _XML_ELEMENT, _XML_ATTRIBUTES):
            for match in pattern.finditer(text):
                found = True
                yield Assignment(index, match.group("name"), match.group("value"), match.start("value"), text)
        if not found and bare_allowed and (bare := _BARE.match(text)) is not None:
            yield Assignment(index, bare.group("name"), bare.group("value"), bare.start("value"), text)
        opening = _XML_OPEN.match(text)
        if opening and index + 1 < len(lines) and lines[index + 1].number == line.number + 1:
            following = lines[index + 1].text
            if (value := _XML_NEXT_VALUE.match(following)) is not None:
                yield Assignment(
                    index + 1, opening.group("name"), value.group("value"), value.start("value"), following
                )


def looks_generated(value: str, min_length: int, min_entropy: float) -> bool:
    """A value of the length and randomness of a credential, that is no placeholder."""
    return (
        len(value) >= min_length
        and entropy(value) >= min_entropy
        and not is_placeholder(value)
        and not words_only(value)
    )


def words_only(value: str) -> bool:
    """Letters making words (`i-am-the-worst`, `IAmSensitive`, `INVALID-VALUE`), not random letters."""
    if _SEPARATED_WORDS.fullmatch(value):
        return True
    if not _LETTERS_ONLY.fullmatch(value):
        return False
    words = identifier_words(value)
    return bool(words) and sum(map(len, words)) / len(words) >= 3


def generic_secrets(
    lines: Sequence[AddedLine], lowered: Sequence[str], path: str, min_length: int, min_entropy: float
) -> Iterator[tuple[Assignment, str]]:
    """The assignments whose value looks generated and no vendor format claims, each
    with its label."""
    for assignment in assignments(lines, lowered, path):
        value = assignment.value
        public = any(word in assignment.name.lower() for word in _PUBLIC_NAMES)
        if (
            not public
            and looks_generated(value, min_length, min_entropy)
            and not claimed(assignment.text, assignment.start, assignment.start + len(value))
        ):
            yield assignment, f"value assigned to `{assignment.name}`"
