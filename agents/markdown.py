"""Text from outside, made inert in the Markdown we post.

Paths, diff text, commit messages, comment text, command arguments, rule messages (a
repository may bring its own packs), error text and model answers all end up in
comments, issues, reviews and check runs that GitHub renders in our App's name. Put
there raw, such text could plant a hidden `<!-- waooaw:… -->` marker, post a live link
or an `@team` mention, or break out of a code span or a table cell. Every renderer puts
it through one of these, and only these:

- `text`: one line of inline Markdown showing exactly the characters given;
- `code`: the same as inline code;
- `prose`: a line of our own wording that quotes values in backticks, as WowVision's
  messages do (`app.py` is over the limit): `text`, with each backticked span as `code`;
- `code_block`: several lines as a fenced code block;
- `link`: a link to a web page (an address that is not one stays text).

Each holds in GitHub's Markdown (cmark-gfm) and in Python-Markdown (the report pages),
in running text as in a table cell. What GitHub links after rendering — `@user`,
`@org/team`, `#123`, `GH-123`, `https://…`, `www.…` — gets a zero-width space, which a
reader does not see: what they read is what was given, on one line.
"""

from __future__ import annotations

import html
import re

ZERO_WIDTH_SPACE = "\u200b"
REPLACEMENT = "\ufffd"

# Controls, and the bidirectional overrides that make text read as something else.
_CONTROLS = re.compile(r"[\x00-\x08\x0e-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
_LIVE = re.compile(r"(?<=@)(?=\w)|(?<=#)(?=\d)|(?<=GH)(?=-\d)|(?<=:)(?=//)|(?<=www)(?=\.)", re.IGNORECASE)
# A backslash escapes these in both renderers (`|` with tables on) ...
_BACKSLASHED = re.compile(r"([\\`*_\[\]|#])")
# ... and these only in cmark-gfm, so they become entities (`~` strikes through, `$` opens math).
_ENTITIES = str.maketrans({"~": "&#126;", "$": "&#36;"})
# A code span as our messages write one: text between backticks, not starting or ending with a space.
_SPAN = re.compile(r"`([^`\s](?:[^`]*[^`\s])?)`")
# What would open a list if the text started a line.
_LIST_START = re.compile(r"^(\d+)([.)])|^([-+])")


def text(value: object) -> str:
    """`value` as one line of inline Markdown that renders as its characters: no markup,
    no HTML, no links, no mentions."""
    flat = html.escape(_flat(value), quote=False)
    flat = _BACKSLASHED.sub(r"\\\1", _LIVE.sub(ZERO_WIDTH_SPACE, flat)).translate(_ENTITIES)
    return _LIST_START.sub(lambda m: f"{m[1]}\\{m[2]}" if m[1] else f"\\{m[3]}", flat)


def code(value: object) -> str:
    """`value` as inline code, on one line, that nothing in it can close."""
    flat = _flat(value)
    if "|" in flat or not flat:
        # A pipe ends a table cell even inside a code span, and only a table lets a code span
        # escape it: HTML code around escaped text shows it right in a table and out of one.
        return f"<code>{text(flat)}</code>"
    fence = "`" * (_longest_run(flat) + 1)
    pad = " " if flat.startswith("`") or flat.endswith("`") else ""
    return f"{fence}{pad}{_no_comment(flat)}{pad}{fence}"


def prose(value: object) -> str:
    """`value` on one line, each `backticked` span in it as `code` and the rest as `text`:
    whatever the spans hold (a path with a backtick only splits differently), nothing is live."""
    parts = _SPAN.split(_flat(value))
    last = len(parts) - 1
    # Two spans side by side would read as one fence of two backticks: a zero-width space parts them.
    return "".join(
        code(part) if index % 2 else _spaced(part) or ZERO_WIDTH_SPACE * (0 < index < last)
        for index, part in enumerate(parts)
    )


def code_block(value: object) -> str:
    """`value` as a fenced code block, line breaks kept, with a fence no line in it can close."""
    lines = _CONTROLS.sub(REPLACEMENT, str(value)).replace("\r\n", "\n").replace("\r", "\n")
    fence = "`" * max(3, _longest_run(lines) + 1)
    return f"{fence}\n{_no_comment(lines)}\n{fence}"


def link(label: object, url: str) -> str:
    """A Markdown link to a web page, its label as `text`; any other address stays text."""
    if not url.startswith(("https://", "http://")):
        return f"{text(label)} ({text(url)})"
    safe_url = url.replace(")", "%29").replace(" ", "%20").replace("<", "%3C").replace(">", "%3E").replace("|", "%7C")
    return f"[{text(label)}]({safe_url})"


def plural(count: int, noun: str) -> str:
    """`1 file`, `2 files`: our own wording, not outside text."""
    return f"{count} {noun}{'' if count == 1 else 's'}"


def _spaced(part: str) -> str:
    """`text` of a piece between code spans, keeping the space that parts it from them."""
    inner = text(part)
    return (" " if part.startswith(" ") else "") + inner + (" " if part.endswith(" ") and inner else "")


def _flat(value: object) -> str:
    return " ".join(_CONTROLS.sub(REPLACEMENT, str(value)).split())


def _longest_run(value: str) -> int:
    return max((len(run) for run in re.findall(r"`+", value)), default=0)


def _no_comment(value: str) -> str:
    """An HTML comment's ends broken: code shows them as they are, but a marker must never be
    found in a body where we did not put it."""
    return value.replace("<!--", f"<{ZERO_WIDTH_SPACE}!--").replace("-->", f"--{ZERO_WIDTH_SPACE}>")
