"""Policy packs and the repository config: schema, shipped packs, errors naming the line."""

from __future__ import annotations

import pytest

from agents.vision import ConfigError, PolicyError, RepoConfig, parse_config, parse_pack, resolve_packs
from agents.vision.config import DEFAULT_PACKS, extend
from agents.vision.globs import matches_any
from agents.vision.policy import BUILTIN_DIR, LANGUAGES, RULE_KINDS, builtin_pack, builtin_pack_names

# --- the shipped packs ----------------------------------------------------------------


def test_every_shipped_pack_loads_and_rule_ids_are_unique_across_packs():
    names = builtin_pack_names()
    assert set(names) == {"secrets", "hygiene", "structure", "architecture", "waooaw"}
    ids = [rule.id for name in names for rule in builtin_pack(name).rules]
    assert len(ids) == len(set(ids))
    kinds = {rule.kind for name in names for rule in builtin_pack(name).rules}
    assert kinds == set(RULE_KINDS)


def test_every_rule_explains_itself():
    for name in builtin_pack_names():
        for rule in builtin_pack(name).rules:
            assert rule.rationale and rule.hint, rule.id


def test_the_policies_readme_documents_every_kind_and_pack():
    text = (BUILTIN_DIR / "README.md").read_text()
    for kind in RULE_KINDS:
        assert f"`{kind}`" in text
    for name in builtin_pack_names():
        assert f"`{name}`" in text


# --- pack errors name the file and the line -------------------------------------------

GOOD_RULE = """\
name: mine
rules:
  - id: ok
    kind: pattern
    message: m
    regex: x
"""


@pytest.mark.parametrize(
    ("text", "line", "where", "says"),
    [
        (
            GOOD_RULE + "  - id: bad\n    kind: pattern\n    message: m\n    regex: 'a(b'\n",
            10,
            "rules[1].regex",
            "invalid regular expression",
        ),
        (
            GOOD_RULE + "  - id: bad\n    kind: patern\n    message: m\n",
            8,
            "rules[1].kind",
            "does not match any of the expected tags",
        ),
        (GOOD_RULE + "  - id: bad\n    kind: pattern\n    regex: x\n", 7, "rules[1].message", "required"),
        (
            GOOD_RULE + "  - id: bad\n    kind: pattern\n    message: m\n    regex: x\n    severity: fatal\n",
            11,
            "rules[1].severity",
            "'error', 'warning' or 'notice'",
        ),
        (
            GOOD_RULE + "  - id: bad\n    kind: pattern\n    message: m\n    regex: x\n    pahts: [a]\n",
            11,
            "rules[1].pahts",
            "unknown key",
        ),
        (
            GOOD_RULE + "  - id: bad\n    kind: pattern\n    message: m\n    regex: x\n    languages: [cobol]\n",
            11,
            "rules[1].languages",
            "unknown language cobol",
        ),
        (GOOD_RULE + "  - id: bad\n    kind: size\n    message: m\n", 7, "rules[1]", "a size rule needs one of"),
        (
            GOOD_RULE + "  - id: bad\n    kind: placement\n    message: m\n",
            7,
            "rules[1]",
            "needs `allowed_top_level` or `under`",
        ),
        (
            GOOD_RULE + "  - id: bad\n    kind: layering\n    message: m\n    forbidden: [not a module]\n",
            10,
            "rules[1].forbidden",
            "not a dotted module name",
        ),
        (
            GOOD_RULE + "  - id: ok\n    kind: pattern\n    message: m\n    regex: y\n",
            7,
            "rules[1].id",
            "duplicate rule id 'ok'",
        ),
        (
            GOOD_RULE + "  - id: Bad Id\n    kind: pattern\n    message: m\n    regex: y\n",
            7,
            "rules[1].id",
            "String should match pattern",
        ),
        (GOOD_RULE + "    regex: again\n", 7, "regex", "duplicate key (first at line 6)"),
        ("name: mine\nrules:\n  - id: x\n    kind: [pattern\n", 5, "", "not valid YAML"),
        ("- just\n- a list\n", 1, "", "expected a mapping"),
        ("", 1, "", "expected a mapping of keys to values, found nothing"),
    ],
)
def test_a_bad_pack_is_reported_with_file_and_line(text, line, where, says):
    with pytest.raises(PolicyError) as caught:
        parse_pack(text, "policies/mine.yml")
    error = caught.value
    problem = error.problems[0]
    assert (problem.line, problem.where) == (line, where), str(error)
    assert says in problem.message
    assert str(error).startswith(f"policies/mine.yml:{line}:")


def test_every_problem_is_reported_at_once():
    text = "name: mine\nrules:\n  - id: a\n    kind: pattern\n    severity: loud\n    regex: x\n"
    with pytest.raises(PolicyError) as caught:
        parse_pack(text, "p.yml")
    assert {(p.line, p.where) for p in caught.value.problems} == {(5, "rules[0].severity"), (3, "rules[0].message")}


def test_a_valid_pack_with_every_kind():
    text = """\
name: all
description: one of each
rules:
  - {id: a, kind: pattern, message: m, regex: x, languages: [python]}
  - {id: b, kind: secret, message: m}
  - {id: c, kind: placement, message: m, allowed_top_level: [src]}
  - {id: d, kind: naming, message: m, regex: '[a-z]+'}
  - {id: e, kind: layering, message: m, packages: [a], forbidden: [b.c]}
  - {id: f, kind: companion, message: m, requires: [tests/]}
  - {id: g, kind: size, message: m, max_changed_files: 3}
  - {id: h, kind: llm, message: m, instruction: judge it, trigger: 'except'}
"""
    pack = parse_pack(text, "all.yml")
    assert [rule.kind for rule in pack.rules] == list(RULE_KINDS)
    assert {"private_key", "aws", "github", "slack", "curl", "generic"} <= set(pack.rules[1].detectors)
    assert "env_file" not in pack.rules[1].detectors  # about files, not lines: only where a rule asks for it
    assert pack.rules[0].severity == "warning" and pack.rules[0].paths == ["**"]


def test_rule_digest_changes_with_its_definition():
    one = parse_pack(GOOD_RULE, "a.yml").rules[0]
    two = parse_pack(GOOD_RULE.replace("regex: x", "regex: y"), "a.yml").rules[0]
    assert one.digest == parse_pack(GOOD_RULE, "a.yml").rules[0].digest != two.digest


def test_languages_table_uses_extensions():
    assert all(ext.startswith(".") for exts in LANGUAGES.values() for ext in exts)


# --- globs ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "glob", "expected"),
    [
        ("a/b/c.py", "*.py", True),
        ("c.py", "*.py", True),
        ("a/b/c.pyc", "*.py", False),
        ("a/tests/x.py", "tests/", True),  # a trailing slash alone does not anchor
        ("a/tests/x.py", "tests/**", False),  # a slash before the end anchors at the root
        ("tests/unit/x.py", "tests/", True),
        ("tests/unit/x.py", "tests", True),  # a directory matches what is under it
        ("src/vendor/x.js", "vendor", True),  # a name matches at any depth
        ("bot/a/b.py", "bot/**/*.py", True),
        ("bot/b.py", "bot/**/*.py", True),
        ("bots/b.py", "bot/**/*.py", False),
        ("a.ts", "*.{ts,tsx}", True),
        ("a.tsx", "*.{ts,tsx}", True),
        ("a.js", "*.{ts,tsx}", False),
        ("x/.env", ".env", True),
        ("x/.env.local", ".env.*", True),
        ("README.md", "/README.md", True),
        ("docs/README.md", "/README.md", False),
        ("f1.txt", "f?.txt", True),
        ("fa.txt", "f[0-9].txt", False),
    ],
)
def test_globs(path, glob, expected):
    assert matches_any(path, [glob]) is expected


# --- the repository config --------------------------------------------------------------


def test_missing_or_empty_config_is_the_defaults():
    for config in (parse_config(None), parse_config(b""), parse_config("# nothing yet\n")):
        assert config.packs == list(DEFAULT_PACKS)
        assert (config.review, config.max_inline_comments, config.drafts, config.extends) == (
            "COMMENT",
            25,
            False,
            None,
        )


def test_a_full_config():
    config = parse_config(
        """\
extends: my-org/.github
packs: [secrets, hygiene, .github/waooaw/team.yml]
rules:
  hygiene-print: off
  hygiene-todo-without-issue: warning
  secret-generic: {severity: error}
  hygiene-breakpoint: {disabled: true}
ignore: ["vendor/", "*.min.js"]
review: REQUEST_CHANGES
max_inline_comments: 10
budget_usd: 2.5
drafts: true
"""
    )
    assert config.extends == "my-org/.github"
    assert config.rules["hygiene-print"].disabled and config.rules["hygiene-breakpoint"].disabled
    assert config.rules["hygiene-todo-without-issue"].severity == "warning"
    assert config.rules["secret-generic"].severity == "error"
    assert (config.review, config.max_inline_comments, config.budget_usd, config.drafts) == (
        "REQUEST_CHANGES",
        10,
        2.5,
        True,
    )


@pytest.mark.parametrize(
    ("text", "line", "says"),
    [
        ("packs: [secrets]\nreview: APPROVE\n", 2, "'COMMENT' or 'REQUEST_CHANGES'"),
        ("packs: [secrets]\nrules:\n  a-rule: loud\n", 3, "'error', 'warning' or 'notice'"),
        ("packs: [secrets]\nmax_inline_comments: -1\n", 2, "greater than or equal to 0"),
        ("packs: [secrets]\nreveiw: COMMENT\n", 2, "unknown key"),
        ("packs: [Not A Pack]\n", 1, "neither a pack name nor a path"),
        ("extends: just-an-org\n", 1, "String should match pattern"),
        ("ignore:\n  - vendor/\n  - 'src/[z-a].py'\n", 3, "invalid glob"),
        ("budget_usd: [1\n", 2, "not valid YAML"),
    ],
)
def test_a_bad_config_names_the_line(text, line, says):
    with pytest.raises(ConfigError) as caught:
        parse_config(text)
    assert caught.value.line == line, str(caught.value)
    assert says in str(caught.value)
    assert str(caught.value).startswith(f".github/waooaw.yml:{line}:")


def test_resolving_packs_checks_names_and_overrides_against_the_rules():
    config = parse_config("packs: [secrets, hygiene]\nrules:\n  hygiene-print: off\n")
    assert [pack.name for pack in resolve_packs(config)] == ["secrets", "hygiene"]
    with pytest.raises(ConfigError) as unknown_pack:
        resolve_packs(parse_config("packs:\n  - secrets\n  - nosuchpack\n"))
    assert unknown_pack.value.line == 3 and "no built-in pack 'nosuchpack'" in str(unknown_pack.value)
    with pytest.raises(ConfigError) as unknown_rule:
        resolve_packs(parse_config("packs: [secrets]\nrules:\n  hygiene-print: off\n"))
    assert unknown_rule.value.line == 3 and "no applied pack has a rule 'hygiene-print'" in str(unknown_rule.value)


def test_a_repository_pack_is_read_from_the_base_and_validated():
    files = {".github/team.yml": b"name: team\nrules:\n  - {id: team-x, kind: pattern, message: m, regex: x}\n"}
    config = parse_config("packs: [secrets, .github/team.yml]\nrules:\n  team-x: error\n")
    packs = resolve_packs(config, files.get)
    assert [pack.name for pack in packs] == ["secrets", "team"]
    with pytest.raises(ConfigError) as missing:
        resolve_packs(parse_config("packs: [.github/none.yml]\n"), files.get)
    assert "does not exist in the base commit" in str(missing.value)
    broken = {".github/team.yml": b"name: team\nrules:\n  - {id: team-x, kind: pattern, message: m, regex: '('}\n"}
    with pytest.raises(PolicyError) as bad:
        resolve_packs(parse_config("packs: [.github/team.yml]\n"), broken.get)
    assert str(bad.value).startswith(".github/team.yml:3: rules[0].regex: invalid regular expression")


def test_two_packs_defining_one_rule_is_an_error():
    files = {
        "a.yml": b"name: a\nrules:\n  - {id: same, kind: pattern, message: m, regex: x}\n",
        "b.yml": b"name: b\nrules:\n  - {id: same, kind: pattern, message: m, regex: y}\n",
    }
    with pytest.raises(ConfigError) as caught:
        resolve_packs(parse_config("packs:\n  - a.yml\n  - b.yml\n"), files.get)
    assert caught.value.line == 3 and "'same'" in str(caught.value)


def test_overrides_change_severity_and_disable():
    pack = parse_pack(GOOD_RULE + "  - {id: other, kind: pattern, message: m, regex: y}\n", "p.yml")
    config = RepoConfig.model_validate({"rules": {"ok": "notice", "other": False}})
    [rule] = config.apply(pack.rules)
    assert (rule.id, rule.severity) == ("ok", "notice")


def test_an_override_scopes_a_rule_away_from_paths_it_adds_to_ignore():
    pack = parse_pack(GOOD_RULE, "p.yml")
    assert pack.rules[0].applies_to("scripts/tool.py")  # asked before, so its answer is cached
    config = parse_config('rules:\n  ok: {severity: notice, ignore: ["scripts/**"]}\n')
    [rule] = config.apply(pack.rules)
    assert rule.severity == "notice"
    assert not rule.applies_to("scripts/tool.py") and rule.applies_to("app/tool.py")
    with pytest.raises(ConfigError):
        parse_config('rules:\n  ok: {ignore: [" "]}\n')


@pytest.mark.parametrize(
    ("org", "repo", "budget"),
    [
        ("budget_usd: 0.2\n", "budget_usd: 5\n", 0.2),  # a repository cannot raise its org's budget
        ("budget_usd: 0.2\n", "budget_usd: 0.1\n", 0.1),
        ("budget_usd: 0.2\n", "drafts: true\n", 0.2),
        ("drafts: true\n", "budget_usd: 0.3\n", 0.3),
        ("drafts: true\n", "drafts: false\n", None),  # unset: the operator's limit
    ],
)
def test_a_budget_only_goes_down_from_the_org_config_to_the_repository(org, repo, budget):
    assert extend(parse_config(org), parse_config(repo)).budget_usd == budget
