"""Every deterministic rule kind, with cases it must report and cases it must not."""

from __future__ import annotations

import random

import pytest

from agents.vision.policy import (
    CompanionRule,
    LayeringRule,
    NamingRule,
    PatternRule,
    PlacementRule,
    SecretRule,
    SizeRule,
)
from tests.secret_samples import github_fine_grained, github_pat, one, pem_body
from tests.vision_support import added, modified, removed, renamed, run


def pattern(**fields):
    return PatternRule(kind="pattern", id="p", message="matched", **fields)


# --- pattern ------------------------------------------------------------------------


def test_pattern_reports_added_lines_and_merges_adjacent_ones():
    diff = added("app.py", "ok\nbad()\nbad()\nok\nbad()")
    result = run(diff, rules=[pattern(regex=r"bad\(\)", hint="remove it")])
    assert [(f.path, f.line, f.end_line, f.message, f.hint) for f in result.findings] == [
        ("app.py", 2, 3, "matched", "remove it"),
        ("app.py", 5, 5, "matched", "remove it"),
    ]
    assert all(f.rung == "deterministic" and f.severity == "warning" for f in result.findings)


def test_pattern_ignores_removed_and_context_lines():
    diff = modified("app.py", "bad()\nkeep bad()\nx\n", "keep bad()\nx\ny\n")
    assert run(diff, rules=[pattern(regex="bad")]).findings == ()


def test_pattern_unless_cancels_a_match_on_the_same_line():
    rule = pattern(regex=r"\bTODO\b", unless=r"#\d+|https?://")
    diff = added("a.py", "# TODO tidy\n# TODO(#12) tidy\n# TODO see https://x.test/1")
    assert [f.line for f in run(diff, rules=[rule]).findings] == [1]


def test_pattern_languages_filter_by_extension():
    rule = pattern(regex="console.log", languages=["javascript", "typescript"])
    diff = added("a.ts", "console.log(1)") + added("b.py", "console.log(1)") + added("c.MJS", "console.log(1)")
    assert [f.path for f in run(diff, rules=[rule]).findings] == ["a.ts", "c.MJS"]


def test_pattern_paths_and_ignore():
    rule = pattern(regex="x", paths=["src/"], ignore=["src/vendor/", "*_test.py"])
    diff = added("src/a.py", "x") + added("src/vendor/b.py", "x") + added("src/c_test.py", "x") + added("d.py", "x")
    assert [f.path for f in run(diff, rules=[rule]).findings] == ["src/a.py"]


def test_pattern_lines_match_one_at_a_time():
    # `\s` must not join two lines: "print" at the end of one and "(" on the next.
    rule = pattern(regex=r"print\s*\(")
    assert run(added("a.py", "print\n(1)"), rules=[rule]).findings == ()
    assert [f.line for f in run(added("a.py", "x\n  print (1)"), rules=[rule]).findings] == [2]


# --- secret -------------------------------------------------------------------------

# Built at run time so that no credential-shaped literal sits in this file.
GITHUB_TOKEN = github_pat(1)
FINE_GRAINED = github_fine_grained(random.Random(2))
AWS_KEY_ID = "AKIA" + "Q3RZ7WX2MN4KP6TB"
AWS_SECRET = "".join(["wJalrXUtnFEMI/K7MDENG/", "bPxRfiCYz8Ql4vNw2T"])
ANTHROPIC_KEY = one("anthropic", 3)
PASSWORD = "".join(["Tr0ub4dor&3-", "horse9Q"])
PRIVATE_KEY_HEADER = "-----BEGIN " + "RSA PRIVATE KEY-----"


def secret_rule(*detectors: str, **fields) -> SecretRule:
    return SecretRule(
        kind="secret", id="s", message="credential", detectors=list(detectors), severity="error", **fields
    )


@pytest.mark.parametrize(
    ("detector", "line", "secret", "shown"),
    [
        ("github", f'TOKEN = "{GITHUB_TOKEN}"', GITHUB_TOKEN, "GitHub token (ghp_****)"),
        ("github", f"auth: {FINE_GRAINED}", FINE_GRAINED, "GitHub token (github_pat_****)"),
        ("aws", f"key_id = '{AWS_KEY_ID}'", AWS_KEY_ID, "AWS access key id (AKIA****)"),
        ("aws", f"aws_secret_access_key = {AWS_SECRET}", AWS_SECRET, "AWS secret access key (****)"),
        (
            "anthropic",
            f"client = Anthropic(api_key='{ANTHROPIC_KEY}')",
            ANTHROPIC_KEY,
            "Anthropic API key (sk-ant-api03-****)",
        ),
        ("generic", f'db_password = "{PASSWORD}"', PASSWORD, "value assigned to `db_password` (****)"),
        ("generic", f'self.api_key: str = "{PASSWORD}"', PASSWORD, "value assigned to `self.api_key` (****)"),
        ("generic", f'{{"client_secret": "{PASSWORD}"}}', PASSWORD, "value assigned to `client_secret` (****)"),
    ],
)
def test_secrets_are_found_and_never_repeated(detector, line, secret, shown):
    result = run(added("app/settings.py", f"x = 1\n{line}"), rules=[secret_rule(detector)])
    [found] = result.findings
    assert (found.line, found.severity, found.message) == (2, "error", f"credential: {shown}")
    assert secret not in repr(result)


def test_a_private_key_block_is_reported_by_its_header_only():
    body = "\n".join(pem_body(random.Random(4)))
    result = run(
        added("deploy/id_rsa", f"{PRIVATE_KEY_HEADER}\n{body}\n-----END RSA PRIVATE KEY-----"),
        rules=[secret_rule("private_key")],
    )
    [found] = result.findings
    assert found.line == 1 and "private key" in found.message
    assert body not in repr(result)


def test_unquoted_secrets_in_configuration_files():
    rule = secret_rule("generic")
    assert [
        f.line for f in run(added("deploy/.env", f"DEBUG=1\nexport API_TOKEN={PASSWORD}"), rules=[rule]).findings
    ] == [2]
    assert [f.line for f in run(added("conf/app.yml", f"db:\n  password: {PASSWORD}"), rules=[rule]).findings] == [2]
    # the same line in code is an expression, not a value
    assert run(added("app.py", f"password = {PASSWORD}"), rules=[rule]).findings == ()


@pytest.mark.parametrize(
    "line",
    [
        'password = "changeme"',
        'password = "${DB_PASSWORD}"',
        'api_key = "<your-api-key>"',
        'token = os.environ["GITHUB_TOKEN"]',
        'TEST_SECRET = "test-webhook-secret"',
        'token_type = "bearer_token_v2"',
        'max_tokens = "4096abcdef"',
        'password = "aaaaaaaaaaaa"',  # no entropy
        'secret = "short"',
        'password = "correct_horse_battery"',  # words, not a generated value
        "if token == 'expected-token-value':",
        'key_id = "AKIAIOSFODNN7EXAMPLE"',  # AWS's documentation key
        "url = 'https://b.s3.amazonaws.com/x?X-Amz-Credential=" + "AKIA" + "IWNJYAX4CSVEH53A" + "%2F20190509'",
        'password_hash = "9f86d081884c7d659a2feaa0c55ad015"',
    ],
)
def test_what_is_not_a_secret(line):
    assert (
        run(added("app.py", line), rules=[secret_rule("private_key", "aws", "github", "anthropic", "generic")]).findings
        == ()
    )


def test_secret_fingerprint_does_not_hash_the_secret_itself():
    first = run(added("a.py", f'TOKEN = "{GITHUB_TOKEN}"'), rules=[secret_rule("github")]).findings[0]
    other = github_pat(2)
    second = run(added("a.py", f'TOKEN = "{other}"'), rules=[secret_rule("github")]).findings[0]
    assert first.fingerprint == second.fingerprint  # the redacted line is what identifies it


# --- placement ------------------------------------------------------------------------


def test_placement_allowed_top_level_reports_each_new_entry_once():
    rule = PlacementRule(kind="placement", id="top", message="new top-level entry", allowed_top_level=["src", "*.md"])
    diff = (
        added("src/a.py", "x")
        + added("README.md", "x")
        + added("tmp/a", "x")
        + added("tmp/b", "x")
        + added("junk.txt", "x")
    )
    result = run(diff, rules=[rule])
    assert [(f.path, f.line) for f in result.findings] == [("junk.txt", None), ("tmp/a", None)]
    assert "`tmp` is not an allowed top-level entry" in result.findings[1].message


def test_placement_ignores_files_that_were_already_there():
    rule = PlacementRule(kind="placement", id="top", message="m", allowed_top_level=["src"])
    assert run(modified("legacy/a.py", "x\n", "y\n"), removed("old/b.py", "x"), rules=[rule]).findings == ()
    assert [f.path for f in run(renamed("src/a.py", "misc/a.py"), rules=[rule]).findings] == ["misc/a.py"]


def test_placement_under():
    rule = PlacementRule(
        kind="placement", id="tests-live-in-tests", message="misplaced", paths=["test_*.py"], under=["tests/"]
    )
    diff = added("tests/unit/test_a.py", "x") + added("src/test_b.py", "x")
    [found] = run(diff, rules=[rule]).findings
    assert found.path == "src/test_b.py" and "must live under `tests/`" in found.message


def test_placement_under_nothing_means_never_committed():
    rule = PlacementRule(kind="placement", id="env", message="env file", paths=[".env"], under=[])
    [found] = run(added("app/.env", "A=1"), rules=[rule]).findings
    assert "must not be committed" in found.message


# --- naming -------------------------------------------------------------------------


def test_naming_checks_new_file_names_only():
    rule = NamingRule(kind="naming", id="snake", message="name", paths=["*.py"], regex=r"[a-z0-9_]+\.py")
    diff = added("pkg/GoodBad.py", "x") + added("pkg/good_one.py", "x") + modified("pkg/Legacy.py", "a\n", "b\n")
    [found] = run(diff, rules=[rule]).findings
    assert found.path == "pkg/GoodBad.py" and "`GoodBad.py` does not match" in found.message


# --- layering -----------------------------------------------------------------------

AGENTS_NO_BOT = LayeringRule(
    kind="layering", id="layers", message="agents imports bot", packages=["agents"], forbidden=["bot"]
)


def layering(path: str, source: str, old: str | None = None, rule: LayeringRule = AGENTS_NO_BOT):
    diff = added(path, source) if old is None else modified(path, old, source)
    return run(diff, rules=[rule], head={path: source})


@pytest.mark.parametrize(
    ("path", "source"),
    [
        ("agents/a.py", "import bot.settings"),
        ("agents/a.py", "import os, bot"),
        ("agents/a.py", "from bot.outputs import publish"),
        ("agents/a.py", "from bot import settings as s"),
        ("agents/sub/a.py", "from ...bot import x"),  # agents/sub → .. = agents → ... = the root: bot
        ("agents/__init__.py", "from ..bot import x"),  # a package's own __init__: .. is the root
        ("agents/a.py", "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from bot.app import App"),
        ("agents/a.py", "def lazy():\n    import bot.cli\n"),
    ],
)
def test_layering_reports_forbidden_imports(path, source):
    [found] = layering(path, source).findings
    assert found.path == path and "imports `bot" in found.message


@pytest.mark.parametrize(
    ("path", "source"),
    [
        ("agents/a.py", "import botocore\nimport agents.bot"),  # a prefix of a name is not the package
        ("agents/a.py", "from . import bot"),  # agents.bot
        ("agents/sub/a.py", "from ..bot import x"),  # agents.bot
        ("bot/a.py", "import bot.settings"),  # bot may import itself
        ("tools/a.py", "import bot"),  # not in agents
        ("agents/a.py", "s = 'import bot'"),
    ],
)
def test_layering_allows_what_is_not_forbidden(path, source):
    assert layering(path, source).findings == ()


def test_layering_reports_a_multiline_import_by_its_whole_range():
    new = "import os\nfrom bot.outputs import (\n    a,\n    b,\n)\n"
    [found] = layering("agents/a.py", new, old="import os\n").findings
    assert (found.line, found.end_line) == (2, 5)


def test_layering_a_name_added_to_an_existing_import_is_not_a_new_dependency():
    old = "from bot.outputs import (\n    a,\n)\n"
    new = "from bot.outputs import (\n    a,\n    b,\n)\n"
    assert layering("agents/a.py", new, old=old).findings == ()


def test_layering_leaves_an_existing_import_alone():
    old = "import bot\n\nx = 1\n"
    new = "import bot\n\nx = 2\nimport os\n"
    assert layering("agents/a.py", new, old=old).findings == ()


def test_layering_with_a_src_root():
    rule = LayeringRule(kind="layering", id="l", message="m", packages=["core"], forbidden=["web"], root="src")
    assert len(layering("src/core/a.py", "from web import views", rule=rule).findings) == 1
    assert layering("core/a.py", "from web import views", rule=rule).findings == ()


def test_layering_skips_what_it_cannot_read_and_says_so():
    broken = run(
        added("agents/a.py", "import bot\ndef ("), rules=[AGENTS_NO_BOT], head={"agents/a.py": "import bot\ndef ("}
    )
    assert broken.findings == ()
    assert [(s.rule, s.path, s.kind) for s in broken.skipped] == [("layers", "agents/a.py", "rule")]
    assert "not valid Python" in broken.skipped[0].reason
    missing = run(added("agents/a.py", "import bot"), rules=[AGENTS_NO_BOT], head={})
    assert missing.findings == () and "not available" in missing.skipped[0].reason


# --- companion ----------------------------------------------------------------------

MIGRATION = CompanionRule(
    kind="companion",
    id="migrate",
    message="models without a migration",
    paths=["app/models.py"],
    requires=["migrations/"],
)


def test_companion_reports_a_change_without_its_companion():
    [found] = run(modified("app/models.py", "a\n", "b\n"), added("app/views.py", "x"), rules=[MIGRATION]).findings
    assert (found.path, found.line) == ("app/models.py", None)
    assert "`app/models.py` changed, but nothing matching `migrations/`" in found.message


def test_companion_satisfied():
    diff = modified("app/models.py", "a\n", "b\n") + added("migrations/0002_b.py", "x")
    assert run(diff, rules=[MIGRATION]).findings == ()
    assert run(added("app/views.py", "x"), rules=[MIGRATION]).findings == ()


def test_companion_counts_files_the_config_ignores():
    from agents.vision import RepoConfig

    diff = modified("app/models.py", "a\n", "b\n") + added("migrations/0002_b.py", "x")
    assert run(diff, rules=[MIGRATION], config=RepoConfig(ignore=["migrations/"])).findings == ()


# --- size ---------------------------------------------------------------------------


def size(**limits) -> SizeRule:
    return SizeRule(kind="size", id="size", message="too big", severity="notice", **limits)


def test_size_added_lines_per_file():
    diff = added("a.py", "x\n" * 5) + added("b.py", "x\n" * 3)
    [found] = run(diff, rules=[size(max_added_lines=4)]).findings
    assert (found.path, found.message) == ("a.py", "too big: 5 lines added (limit 4)")


def test_size_file_bytes_at_head():
    diff = modified("big.bin.txt", "a\n", "b\n") + added("small.txt", "b")
    result = run(diff, rules=[size(max_file_bytes=1024)], head={"big.bin.txt": b"x" * 2048, "small.txt": b"b"})
    [found] = result.findings
    assert found.path == "big.bin.txt" and "2.0 KiB (limit 1.0 KiB)" in found.message


def test_size_of_the_whole_change():
    diff = "".join(added(f"f{i}.py", "x\ny") for i in range(4))
    result = run(diff, rules=[size(max_changed_lines=7, max_changed_files=3)])
    assert [(f.path, f.message) for f in result.findings] == [
        (None, "too big: 8 lines changed (limit 7)"),
        (None, "too big: 4 files changed (limit 3)"),
    ]
    assert run(diff, rules=[size(max_changed_lines=8, max_changed_files=4)]).findings == ()


def test_size_counts_only_the_files_it_applies_to():
    diff = added("package-lock.json", "x\n" * 50) + added("a.py", "x")
    assert (
        run(
            diff, rules=[SizeRule(kind="size", id="s", message="m", ignore=["package-lock.json"], max_changed_lines=10)]
        ).findings
        == ()
    )
