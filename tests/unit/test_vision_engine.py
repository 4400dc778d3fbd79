"""The engine: the shipped packs on real-looking changes, the LLM seam, renderings."""

from __future__ import annotations

import asyncio
import json

import pytest

from agents.vision import (
    Anchor,
    LlmItem,
    LlmOutcome,
    RepoConfig,
    Skipped,
    complete,
    inline_anchor,
    parse_diff,
    resolve_packs,
    review,
)
from agents.vision.findings import LLM_NOT_WIRED, Finding
from agents.vision.policy import LlmRule, PatternRule, builtin_pack
from agents.vision.render import render_review_markdown, render_text, to_json
from tests.secret_samples import github_pat
from tests.vision_support import added, modified, run

GITHUB_TOKEN = github_pat(1)  # made at run time, with a valid checksum
ALL_PACKS = RepoConfig(packs=["secrets", "hygiene", "structure", "architecture", "waooaw"])


def review_with(config: RepoConfig, *diffs: str, head: dict[str, str] | None = None):
    contents = {path: text.encode() for path, text in (head or {}).items()}
    return review(parse_diff("".join(diffs)), contents.get, config, resolve_packs(config))


def rules_found(result) -> list[str]:
    return [finding.rule for finding in result.findings]


# --- the shipped packs --------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "text", "rule"),
    [
        (
            "app/a.py",
            "x = 1\n" + "<" * 7 + " HEAD\ny = 2\n" + "=" * 7 + "\ny = 3\n" + ">" * 7 + " branch",
            "hygiene-conflict-marker",
        ),
        ("app/a.py", "def f():\n    breakpoint()", "hygiene-breakpoint"),
        ("app/a.py", "import pdb; pdb." + "set_trace()", "hygiene-breakpoint"),
        ("app/a.py", "def f():\n    print('debug')", "hygiene-print"),
        ("web/a.ts", "console.log(user)", "hygiene-console-log"),
        ("app/a.py", "# " + "TO" + "DO: make it fast", "hygiene-todo-without-issue"),
        ("app/a.py", "from os import *", "architecture-no-wildcard-import"),
        ("app/MyModule.py", "x = 1", "structure-python-module-name"),
        ("docs/my notes.md", "x", "structure-file-name-spaces"),
        ("app/a.py", f"TOKEN = '{GITHUB_TOKEN}'", "secret-github-token"),
        ("config/.env", "A=1", "secret-env-file"),
    ],
)
def test_shipped_packs_report(path, text, rule):
    assert rule in rules_found(review_with(RepoConfig(), added(path, text)))


@pytest.mark.parametrize(
    ("path", "text"),
    [
        ("docs/rst.rst", "Title\n" + "=" * 7),  # a heading underline is not a conflict
        ("tests/test_a.py", "def test():\n    print('fine in tests')"),
        ("bot/cli.py", "print('a command line prints')"),
        ("app/a.py", "# " + "TO" + "DO(#42): make it fast"),
        ("app/a.py", "log.info('breakpoint() is a builtin')  # a mention"),
        ("web/a.test.ts", "console.log(user)"),
        ("app/a.py", "from os import path"),
        ("migrations/versions/0003_add_x.py", "x = 1"),
        ("config/.env.example", "A=changeme"),
    ],
)
def test_shipped_packs_stay_quiet(path, text):
    result = review_with(RepoConfig(), added(path, text))
    assert [f for f in result.findings if f.rule != "waooaw-tests-with-code"] == [], result.findings


def test_the_waooaw_pack_on_this_repository_conventions():
    config = RepoConfig(packs=["waooaw"])
    bad = review_with(
        config,
        added("agents/vision/x.py", "from bot.settings import Settings"),
        modified("agents/context/models.py", "a = 1\n", "a = 2\n"),
        added("scratch/notes.txt", "x"),
        added("tests/unit/helpers_vision.py", "x = 1"),
        head={"agents/vision/x.py": "from bot.settings import Settings"},
    )
    assert sorted(rules_found(bad)) == sorted(
        [
            "waooaw-agents-do-not-import-bot",
            "waooaw-migration-with-models",
            "waooaw-top-level",
            "waooaw-test-file-name",
        ]
    )
    assert bad.failed
    misnamed = review_with(config, added("migrations/versions/add_table.py", "x = 1"))
    assert rules_found(misnamed) == ["waooaw-migration-name"]
    good = review_with(
        config,
        added("agents/vision/x.py", "from agents.outputs import Review"),
        modified("agents/context/models.py", "a = 1\n", "a = 2\n"),
        added("migrations/versions/0005_vision.py", "revision = '0005'"),
        added("tests/unit/test_vision_x.py", "def test(): pass"),
        head={"agents/vision/x.py": "from agents.outputs import Review"},
    )
    assert good.findings == () and not good.failed
    untested = review_with(config, modified("bot/app.py", "a\n", "b\n"))
    assert [(f.rule, f.severity) for f in untested.findings] == [("waooaw-tests-with-code", "warning")]


# --- the review ---------------------------------------------------------------------


def test_findings_are_sorted_and_counted():
    result = review_with(
        ALL_PACKS,
        added("z.py", "breakpoint()"),
        added("a.py", "print(1)\nbreakpoint()"),
    )
    assert [(f.path, f.line, f.rule) for f in result.findings if f.line] == [
        ("a.py", 1, "hygiene-print"),
        ("a.py", 2, "hygiene-breakpoint"),
        ("z.py", 1, "hygiene-breakpoint"),
    ]
    summary = result.summary
    assert (summary.errors, summary.conclusion, summary.files_changed, summary.files_reviewed) == (2, "failure", 2, 2)
    assert summary.findings == len(result.findings)


def test_config_ignores_files_and_overrides_rules():
    diff = added("vendor/lib.py", "breakpoint()") + added("app.py", "breakpoint()\nprint(1)")
    config = RepoConfig(
        ignore=["vendor/"], rules={"hygiene-breakpoint": {"severity": "notice"}, "hygiene-print": False}
    )
    result = review_with(config, diff)
    assert [(f.path, f.rule, f.severity) for f in result.findings] == [("app.py", "hygiene-breakpoint", "notice")]
    assert not result.failed


def test_binary_and_capped_files_are_skipped_with_a_reason():
    diff = parse_diff(
        "diff --git a/logo.png b/logo.png\nindex 1..2 100644\nBinary files a/logo.png and b/logo.png differ\n"
        + "".join(added(f"f{i}.txt", "x") for i in range(3)),
        max_files=2,
    )
    result = review(diff, lambda path: None, RepoConfig(packs=["hygiene"]), [builtin_pack("hygiene")])
    assert [(s.kind, s.path, s.reason) for s in result.skipped] == [
        ("file", "logo.png", "binary file: line rules do not apply"),
        ("file", "f1.txt", "beyond the first 3000 files"),
        ("file", "f2.txt", "beyond the first 3000 files"),
    ]
    assert result.summary.files_skipped == 3 and result.summary.files_changed == 4


def test_fingerprints_follow_the_content_not_the_line_number():
    rule = PatternRule(kind="pattern", id="p", message="m", regex="bad")
    first = run(added("a.py", "bad()"), rules=[rule]).findings[0]
    moved = run(added("a.py", "x\ny\n  bad()  "), rules=[rule]).findings[0]
    elsewhere = run(added("b.py", "bad()"), rules=[rule]).findings[0]
    assert first.fingerprint == moved.fingerprint != elsewhere.fingerprint
    assert first.line != moved.line


def test_inline_anchor_of_findings():
    diff = parse_diff(
        modified(
            "a.py",
            "".join(f"l{i}\n" for i in range(30)),
            "".join(f"l{i}\n" for i in range(30)).replace("l5\n", "bad\nbad\n"),
        )
    )
    finding = Finding("p", "error", "a.py", 6, 7, "m", "", "f")
    assert inline_anchor(diff, finding) == Anchor("a.py", 7, start_line=6)
    assert inline_anchor(diff, Finding("p", "error", "a.py", 6, 6, "m", "", "f")) == Anchor("a.py", 6)
    assert inline_anchor(diff, Finding("p", "error", "a.py", 25, 25, "m", "", "f")) is None  # outside the hunk
    assert inline_anchor(diff, Finding("p", "error", "a.py", None, None, "m", "", "f")) is None
    assert inline_anchor(diff, Finding("p", "error", None, None, None, "m", "", "f")) is None


# --- the LLM seam -------------------------------------------------------------------

SWALLOW = LlmRule(
    kind="llm",
    id="swallow",
    message="swallowed",
    instruction="report swallowed errors",
    trigger=r"\bexcept\b",
    paths=["*.py"],
)
UNTRIGGERED = LlmRule(
    kind="llm", id="naming-sense", message="unclear", instruction="names say what things are", paths=["*.py"]
)


def test_llm_rules_are_skipped_never_passed_without_the_rung():
    text = "def f():\n    try:\n        g()\n    except Exception:\n        pass\n"
    result = run(added("a.py", text), rules=[SWALLOW])
    assert result.findings == ()
    assert [(s.kind, s.rule, s.path, s.line, s.end_line, s.reason) for s in result.skipped] == [
        ("llm", "swallow", "a.py", 1, 5, LLM_NOT_WIRED)
    ]
    [item] = result.pending
    assert isinstance(item, LlmItem) and (item.rule.id, item.path, item.start, item.end) == ("swallow", "a.py", 1, 5)
    assert "+    except Exception:" in item.text and item.rule.digest in item.key
    assert result.summary.decisions == {"deterministic": 0, "unsettled": 1}


def test_a_trigger_settles_hunks_it_does_not_match_without_a_model():
    result = run(added("a.py", "x = 1\ny = 2"), rules=[SWALLOW])
    assert result.pending == () and result.skipped == ()
    assert result.summary.decisions == {"deterministic": 1, "unsettled": 0}


def test_a_deterministic_finding_settles_its_hunk():
    bad = PatternRule(kind="pattern", id="bp", message="m", regex=r"breakpoint\(\)")
    result = run(added("a.py", "try:\n    breakpoint()\nexcept Exception:\n    pass"), rules=[bad, SWALLOW])
    assert rules_found(result) == ["bp"] and result.pending == ()


def test_windows_around_trigger_matches_keep_questions_small():
    lines = [f"x{i} = {i}" for i in range(200)]
    lines[20] = "except ValueError: pass"
    lines[30] = "except KeyError: pass"
    lines[150] = "except OSError: pass"
    result = run(added("a.py", "\n".join(lines)), rules=[SWALLOW])
    assert [(item.start, item.end) for item in result.pending] == [(6, 46), (136, 166)]


def test_untriggered_rules_take_a_long_hunk_in_slices():
    result = run(added("a.py", "\n".join(f"x{i} = {i}" for i in range(320))), rules=[UNTRIGGERED])
    assert [(item.start, item.end) for item in result.pending] == [(1, 150), (151, 300), (301, 320)]


def test_the_rung_settles_pending_items():
    result = run(added("a.py", "try:\n    g()\nexcept Exception:\n    pass"), rules=[SWALLOW])

    class FakeLadder:
        def __init__(self) -> None:
            self.asked: list[LlmItem] = []

        async def settle(self, items):
            self.asked += items
            item = items[0]
            found = Finding(
                item.rule.id, item.rule.severity, item.path, 3, 4, item.rule.message, item.rule.hint, "fp", rung="llm"
            )
            return LlmOutcome(findings=(found,), decisions={"llm": 1})

    ladder = FakeLadder()
    settled = asyncio.run(complete(result, ladder))
    assert ladder.asked == list(result.pending)
    assert [(f.rule, f.rung, f.line) for f in settled.findings] == [("swallow", "llm", 3)]
    assert settled.skipped == () and settled.pending == ()
    assert settled.summary.decisions == {"deterministic": 0, "llm": 1, "unsettled": 0}
    assert settled.summary.warnings == 1


def test_what_the_rung_cannot_decide_stays_skipped_with_its_reason():
    result = run(added("a.py", "try:\n    g()\nexcept Exception:\n    pass"), rules=[SWALLOW])
    item = result.pending[0]
    outcome = LlmOutcome(skipped=(Skipped("llm", "budget spent", item.rule.id, item.path, item.start, item.end),))
    settled = result.settle(outcome)
    assert [(s.reason, s.rule) for s in settled.skipped] == [("budget spent", "swallow")]
    assert settled.summary.decisions["unsettled"] == 1


# --- renderings ---------------------------------------------------------------------


MIXED_PY = f"from bot import app\nTOKEN = '{GITHUB_TOKEN}'\nprint(1)\ntry:\n    x()\nexcept E:\n    pass"


@pytest.fixture
def mixed():
    return review_with(
        ALL_PACKS,
        added("agents/a.py", MIXED_PY),
        added("web/a|b.ts", "console.log('<b>')"),
        head={"agents/a.py": MIXED_PY, "web/a|b.ts": "console.log('<b>')"},
    )


def test_text_groups_by_file_with_hints_and_ends_with_a_summary(mixed):
    text = render_text(mixed, range_label="abc1234..def5678")
    lines = text.splitlines()
    assert lines[-1].startswith("✖ 2 errors, 3 warnings, 1 notice · 2 files reviewed with")
    assert lines[-1].endswith(" · abc1234..def5678")
    first = next(line for line in lines if line.startswith("agents/a.py:1 "))
    assert first.split()[:3] == ["agents/a.py:1", "error", "waooaw-agents-do-not-import-bot"]
    assert lines[lines.index(first) + 1].startswith("    ↳ Return an Output")
    assert (
        "" in lines[: lines.index(next(line for line in lines if line.startswith("web/")))]
    )  # a blank line between files
    assert "\x1b[" not in text
    assert "\x1b[1;31merror" in render_text(mixed, color=True)


def test_text_of_a_clean_review():
    clean = review_with(RepoConfig(packs=["hygiene"]), added("a.md", "fine"))
    assert render_text(clean).startswith("✔ no findings · 1 file reviewed with 5 rules")


def test_json_has_exactly_the_designed_shape(mixed):
    data = json.loads(json.dumps(to_json(mixed, base="b", head="h")))
    assert set(data) == {"findings", "skipped", "summary"}
    for finding in data["findings"]:
        assert list(finding) == ["rule", "severity", "path", "line", "end_line", "message", "hint", "rung"]
    assert data["summary"]["conclusion"] == "failure" and data["summary"]["base"] == "b"
    assert data["skipped"] == []


def test_markdown_escapes_what_would_break_the_table(mixed):
    markdown = render_review_markdown(mixed)
    assert markdown.startswith("### WowVision: 2 errors, 3 warnings, 1 notice\n")
    assert "<code>web/a\\|b.ts:1</code>" in markdown and "web/a|b" not in markdown  # a pipe in a table cell
    assert "<b>" not in markdown


def test_a_secret_never_reaches_any_rendering(mixed):
    assert "secret-github-token" in rules_found(mixed)
    for output in (
        render_text(mixed),
        render_text(mixed, color=True),
        render_review_markdown(mixed),
        json.dumps(to_json(mixed)),
    ):
        assert GITHUB_TOKEN not in output
        assert GITHUB_TOKEN[4:20] not in output
