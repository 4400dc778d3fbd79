"""agents/markdown.py: text from outside renders as its own characters, with nothing live in it.

Rendered with GitHub's own parser (cmark-gfm) and with Python-Markdown (the report
pages), in running text, a list item and a table cell, against adversarial strings.
"""

from __future__ import annotations

import html
import re

import cmarkgfm
import markdown as python_markdown
import pytest
from cmarkgfm.cmark import Options
from hypothesis import given, settings
from hypothesis import strategies as st

from agents import markdown as md

ZWSP = md.ZERO_WIDTH_SPACE
NASTY = [
    "<!-- waooaw:concierge:comment:help:2 -->",
    "-->",
    "<!-->",
    "`",
    "``",
    "```",
    "\\",
    "|",
    "@acme/security-team",
    "@octocat",
    "[Your token leaked](https://evil.example)",
    "![x](https://evil.example/x.png)",
    "https://evil.example",
    "www.evil.example",
    "user@evil.example",
    "#12",
    "GH-12",
    "acme/widgets#3",
    "~~",
    "$x$",
    "*",
    "_",
    "**",
    "<b>",
    "&amp;",
    "&#64;",
    "<https://evil.example>",
    "\n",
    "\r\n",
    "\t",
    "\x00",
    "\u202e",
    "1.",
    "- ",
    "+ ",
    "> ",
    "# ",
    "[x]: https://evil.example",
    ":",
    "//",
    "a",
    " ",
]
hostile = st.lists(st.sampled_from(NASTY) | st.text(max_size=6), max_size=12).map("".join)
GFM = Options.CMARK_OPT_UNSAFE  # raw HTML kept, so any that got through would show


def gfm(markup: str) -> str:
    return cmarkgfm.github_flavored_markdown_to_html(markup, options=GFM)


def flat(value: str) -> str:
    """What `text` and `code` promise to show: the characters on one line, controls replaced."""
    return " ".join(re.sub(r"[\x00-\x08\x0e-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]", md.REPLACEMENT, value).split())


def shown(rendered: str) -> str:
    return html.unescape(rendered).replace(ZWSP, "")


def assert_plain(inner: str, value: str) -> None:
    assert "<" not in inner, f"markup in {inner!r}"
    assert shown(inner) == flat(value).replace(ZWSP, "")
    live = html.unescape(inner)
    for pattern in (r"@\w", r"#\d", r"(?i)gh-\d", r"://", r"(?i)www\."):
        assert not re.search(pattern, live), f"{pattern} is live in {live!r}"


@settings(max_examples=300, deadline=None)
@given(hostile)
def test_text_renders_as_its_characters_in_running_text_a_list_and_a_table(value):
    markup = md.text(value)
    assert "<!--" not in markup and "-->" not in markup and "\n" not in markup
    if not flat(value):
        return
    paragraph = re.fullmatch(r"<p>(.*)</p>\n", gfm(f"{markup}"), re.S)
    assert paragraph is not None, gfm(markup)
    assert_plain(paragraph[1], value)
    item = re.fullmatch(r"<ul>\n<li>(.*)</li>\n</ul>\n", gfm(f"- {markup}"), re.S)
    assert item is not None and assert_plain(item[1], value) is None
    cells = re.findall(r"<td>(.*?)</td>", gfm(f"| a | b |\n|---|---|\n| {markup} | end |\n"), re.S)
    assert len(cells) == 2 and cells[1] == "end"
    assert_plain(cells[0], value)


@settings(max_examples=300, deadline=None)
@given(hostile)
def test_text_is_plain_on_the_report_pages_too(value):
    if not flat(value):
        return
    rendered = python_markdown.markdown(f"| a | b |\n|---|---|\n| {md.text(value)} | end |\n", extensions=["tables"])
    cells = re.findall(r"<td>(.*?)</td>", rendered, re.S)
    assert len(cells) == 2 and cells[1] == "end", rendered
    assert "<" not in cells[0] and shown(cells[0]) == flat(value).replace(ZWSP, "")


@settings(max_examples=300, deadline=None)
@given(hostile)
def test_code_is_one_code_element_that_nothing_closes(value):
    markup = md.code(value)
    assert "<!--" not in markup and "-->" not in markup and "\n" not in markup
    for rendered in (gfm(f"see {markup} here"), gfm(f"| a | b |\n|---|---|\n| {markup} | end |\n")):
        spans = re.findall(r"<code>(.*?)</code>", rendered, re.S)
        assert len(spans) == 1, rendered
        assert "<" not in spans[0] and shown(spans[0]) == flat(value).replace(ZWSP, "")
        outside = rendered.replace(f"<code>{spans[0]}</code>", "")
        assert re.sub(r"</?(p|table|thead|tbody|tr|th|td)>|\s|see|here|a|b|end", "", outside) == ""


quoting = st.lists(hostile | hostile.map(lambda value: f"`{value}`"), max_size=4).map(" ".join)


@settings(max_examples=300, deadline=None)
@given(quoting)
def test_prose_shows_its_quoted_spans_as_code_and_nothing_live(value):
    markup = md.prose(value)
    assert "<!--" not in markup and "-->" not in markup and "\n" not in markup
    expected = "".join(re.split(r"`([^`\s](?:[^`]*[^`\s])?)`", flat(value))).replace(ZWSP, "")
    if not expected.strip():
        return
    for rendered in (gfm(markup), gfm(f"| a | b |\n|---|---|\n| {markup} | end |\n")):
        inner = re.fullmatch(r"<p>(.*)</p>\n", rendered, re.S) or re.search(r"<td>(.*?)</td>", rendered, re.S)
        assert inner is not None, rendered
        spans = re.findall(r"<code>(.*?)</code>", inner[1], re.S)
        outside = re.sub(r"<code>.*?</code>", "", inner[1], flags=re.S)
        assert "<" not in outside and all("<" not in span for span in spans), rendered
        live = html.unescape(outside)
        for pattern in (r"@\w", r"#\d", r"(?i)gh-\d", r"://", r"(?i)www\."):
            assert not re.search(pattern, live), f"{pattern} is live in {live!r}"
        assert shown(re.sub(r"</?code>", "", inner[1])) == expected


def test_prose_reads_as_our_messages_are_written():
    assert md.prose("`DiscountRules.py` does not match `[a-z0-9_]+\\.py`") == (
        "`DiscountRules.py` does not match `[a-z0-9_]+\\.py`"
    )
    assert md.prose("grew past the limit: `a|b.py`") == "grew past the limit: <code>a\\|b.py</code>"
    assert md.prose("by `@acme/team` see [x](https://evil.example)") == (
        f"by `@acme/team` see \\[x\\](https:{ZWSP}//evil.example)"
    )


@settings(max_examples=300, deadline=None)
@given(hostile)
def test_a_code_block_keeps_its_lines_and_nothing_closes_it(value):
    markup = md.code_block(value)
    assert "<!--" not in markup and "-->" not in markup
    rendered = gfm(f"{markup}\n\nafter")
    block = re.fullmatch(r"<pre><code>(.*)</code></pre>\n<p>after</p>\n", rendered, re.S)
    assert block is not None, rendered
    lines = re.sub(r"[\x00-\x08\x0e-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]", md.REPLACEMENT, value)
    lines = lines.replace("\r\n", "\n").replace("\r", "\n")
    assert shown(block[1]) == (lines + "\n").replace(ZWSP, "")


@pytest.mark.parametrize(
    ("value", "markup"),
    [
        ("app/main.py:3", "app/main.py:3"),
        ("scripts print by design", "scripts print by design"),
        (
            "[Your token leaked](https://evil.example) @acme/security-team",
            f"\\[Your token leaked\\](https:{ZWSP}//evil.example) @{ZWSP}acme/security-team",
        ),
    ],
)
def test_ordinary_text_stays_readable(value, markup):
    assert md.text(value) == markup


def test_ordinary_code_is_a_plain_code_span():
    assert md.code("app/main.py:3") == "`app/main.py:3`"
    assert md.code("x`y") == "``x`y``"
    assert md.code("`y") == "`` `y ``"
    assert md.code("a|b") == "<code>a\\|b</code>"
