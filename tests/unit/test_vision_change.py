"""Findings about what a change did, not about the state it left: a file it made large, a
schema it changed, output printed by library code — not a file that was already large,
a method body in models.py, a script's status output or a pytest plugin importing pytest.

The cases come from merged history of public projects where the rules fired wrongly
(the shapes of the files, not their text): a build script that exits with a status, a
root `test.ts` runner, a `pytest_plugin` package defining a hook, a model whose method
changed."""

from __future__ import annotations

import pytest

from agents.vision import RepoConfig, resolve_packs, review
from agents.vision.diff import parse_diff
from agents.vision.policy import CompanionRule, LayeringRule, PatternRule, SizeRule
from tests.vision_support import added, modified, pack, removed, renamed, run

# --- size: a file the change makes large ----------------------------------------------

BIG = SizeRule(kind="size", id="big", message="too big", max_file_bytes=100)
SMALL_TEXT, BIG_TEXT, BIGGER_TEXT = "x = 1\n" * 10, "x = 1\n" * 20, "x = 1\n" * 21


def test_a_file_already_over_the_limit_is_not_reported_again_on_each_edit():
    diff = modified("app/big.py", BIG_TEXT, BIGGER_TEXT)
    result = run(diff, rules=[BIG], head={"app/big.py": BIGGER_TEXT}, base={"app/big.py": BIG_TEXT})
    assert result.findings == () and result.skipped == ()


def test_a_file_the_change_grows_past_the_limit_or_adds_over_it_is_reported():
    diff = modified("app/big.py", SMALL_TEXT, BIG_TEXT)
    [found] = run(diff, rules=[BIG], head={"app/big.py": BIG_TEXT}, base={"app/big.py": SMALL_TEXT}).findings
    assert (found.path, found.message) == ("app/big.py", "too big: grew from 60 bytes to 120 bytes (limit 100 bytes)")
    [found] = run(added("app/big.py", BIG_TEXT), rules=[BIG], head={"app/big.py": BIG_TEXT}, base={}).findings
    assert found.message == "too big: 120 bytes (limit 100 bytes)"


def test_a_renamed_file_is_compared_with_its_old_name():
    diff = renamed("app/old.py", "app/new.py")
    assert run(diff, rules=[BIG], head={"app/new.py": BIG_TEXT}, base={"app/old.py": BIG_TEXT}).findings == ()


def test_a_base_that_cannot_be_read_is_skipped_and_said():
    result = run(modified("app/big.py", SMALL_TEXT, BIG_TEXT), rules=[BIG], head={"app/big.py": BIG_TEXT}, base={})
    assert result.findings == ()
    assert [(s.rule, s.path, s.reason) for s in result.skipped] == [
        ("big", "app/big.py", "content at the base commit is not available")
    ]


# --- companion `when: schema`: models need a migration when their schema changes ---

MIGRATION = CompanionRule(
    kind="companion", id="migrate", message="m", paths=["models.py"], requires=["migrations/"], when="schema"
)
MODELS = '''\
"""The tables."""
from sqlalchemy import Column, Integer, String, Table

from app.db import Base, metadata


class User(Base):
    """A person."""

    __tablename__ = "users"
    id = Column(Integer, primary_key=True)
    name = Column(String(50))

    def greeting(self) -> str:
        return f"hello {self.name}"


class Article(models.Model):
    title = models.CharField(max_length=200)

    class Meta:
        ordering = ["title"]


tags = Table("tags", metadata, Column("id", Integer))
'''


@pytest.mark.parametrize(
    ("old", "new"),
    [
        (MODELS, MODELS.replace("hello {self.name}", "hi {self.name}")),  # a method body
        (MODELS, MODELS.replace('"""A person."""', '"""Someone who signed up."""')),  # a docstring
        (MODELS, MODELS.replace("    name = Column(String(50))", "    name = Column(String(50))  # shown")),
        (MODELS, MODELS.replace("Column(String(50))", "Column(String( 50 ))")),  # formatting
        (MODELS, MODELS + "\n\ndef helper():\n    return 1\n"),  # a function beside the models
    ],
)
def test_a_change_outside_the_schema_needs_no_migration(old, new):
    diff = modified("app/models.py", old, new)
    assert run(diff, rules=[MIGRATION], head={"app/models.py": new}, base={"app/models.py": old}).findings == ()


@pytest.mark.parametrize(
    "new",
    [
        MODELS.replace("    name = Column(String(50))\n", "    name = Column(String(50))\n    mail = Column(String)\n"),
        MODELS.replace("String(50)", "String(80)"),  # a column's type
        MODELS.replace('"users"', '"people"'),  # a table's name
        MODELS.replace('ordering = ["title"]', 'ordering = ["-title"]'),  # Django's Meta
        MODELS.replace("class Article(models.Model)", "class Article(models.Model, Timestamped)"),  # a base
        MODELS.replace('Column("id", Integer)', 'Column("id", Integer), Column("label", String)'),  # a Table
        MODELS + "\n\nclass Tag(Base):\n    __tablename__ = 'labels'\n",  # a new model
    ],
)
def test_a_schema_change_needs_a_migration(new):
    diff = modified("app/models.py", MODELS, new)
    [found] = run(diff, rules=[MIGRATION], head={"app/models.py": new}, base={"app/models.py": MODELS}).findings
    assert "the schema in `app/models.py` changed, but nothing matching `migrations/`" in found.message
    with_migration = diff + added("migrations/versions/0002_more.py", "x = 1")
    files = {"head": {"app/models.py": new}, "base": {"app/models.py": MODELS}}
    assert run(with_migration, rules=[MIGRATION], **files).findings == ()


def test_new_and_removed_models_and_what_cannot_be_read_count_as_schema_changes():
    touched = MODELS.replace("hello {self.name}", "hi {self.name}")
    files = {"head": {"app/models.py": touched}, "base": {"app/models.py": MODELS}}
    assert run(modified("app/models.py", MODELS, touched), rules=[MIGRATION], **files).findings == ()
    assert len(run(added("app/models.py", MODELS), rules=[MIGRATION], head={"app/models.py": MODELS}).findings) == 1
    gone = removed("app/models.py", MODELS)
    assert len(run(gone, rules=[MIGRATION], head={}, base={"app/models.py": MODELS}).findings) == 1
    broken = MODELS + "def (:\n"
    files = {"head": {"app/models.py": broken}, "base": {"app/models.py": MODELS}}
    assert len(run(modified("app/models.py", MODELS, broken), rules=[MIGRATION], **files).findings) == 1
    other = CompanionRule(kind="companion", id="m", message="m", paths=["models/"], requires=["db/"], when="schema")
    diff = modified("models/user.rb", "class User\nend\n", "class User\n  def x; end\nend\n")
    assert len(run(diff, rules=[other]).findings) == 1  # not Python: any change counts


# --- printing: what scripts and command lines do -------------------------------------


def test_print_to_a_chosen_stream_is_output_on_purpose_a_bare_print_is_a_leftover():
    config = RepoConfig(packs=["hygiene"])
    source = "def publish(out, stream):\n    print(f'[dry-run] {out}', file=stream)\n    print(out)\n"
    result = review(parse_diff(added("app/outputs.py", source)), {}.get, config, resolve_packs(config))
    assert [(f.rule, f.line) for f in result.findings] == [("hygiene-print", 3)]


def console_log(path: str, text: str) -> list[str]:
    config = RepoConfig(packs=["hygiene"])
    result = review(parse_diff(added(path, text)), {path: text.encode()}.get, config, resolve_packs(config))
    return [f.rule for f in result.findings]


PRINTING = {
    # a build script run by the maintainers, printing its status and exiting with it
    "src/check-webhooks.ts": 'export async function check() {\n  console.log("done");\n  process.exit(1);\n}\n',
    "test.ts": "const errors = validate();\nconsole.log(JSON.stringify(errors));\n",  # a root test runner
    "tools/release.js": "#!/usr/bin/env node\nconsole.log('released');\n",
    "lib/main.mjs": "#!/usr/bin/env node\nconsole.log('done');\n",  # an executable, wherever it is
    "src/commands.ts": 'import { program } from "commander";\nconsole.log(program.opts());\n',
    "src/args.js": "const argv = require('minimist')(process.argv.slice(2));\nconsole.log(argv);\n",
    "script/bootstrap.js": "console.log('installing');\n",
    "packages/cli/src/index.ts": "console.log('usage: x');\n",
    "webpack.config.js": "console.log('building for', mode);\n",
    "app/cli.ts": "console.log('hello');\n",
    "spec/runner.js": "console.log('ran');\n",
    # library code: still reported
    "src/render.ts": "export function render(items) {\n  console.log(items);\n  return items.join('');\n}\n",
    "lib/exit-codes.js": "// process.exitCode is set by the caller\nconsole.log(code);\n",
}


def test_console_log_is_reported_in_library_code_not_in_scripts_command_lines_and_test_runners():
    reported = {path for path, text in PRINTING.items() if console_log(path, text)}
    assert reported == {"src/render.ts", "lib/exit-codes.js"}


def test_unless_file_reads_the_file_only_when_the_rule_would_report():
    read: list[str] = []
    rule = PatternRule(kind="pattern", id="p", message="m", regex="bad", unless_file=r"\A#!")

    def head(path: str) -> bytes | None:
        read.append(path)
        return b"#!/bin/sh\nbad\n" if path == "run.sh" else b"good\n"

    diff = parse_diff(added("run.sh", "#!/bin/sh\nbad") + added("ok.txt", "good"))
    assert review(diff, head, RepoConfig(), [pack(rule)]).findings == ()
    assert read == ["run.sh"]


# --- layering `exempt_pytest_plugins`: a pytest plugin may import pytest ------------

NO_TEST_IMPORTS = LayeringRule(
    kind="layering", id="no-tests", message="m", forbidden=["pytest"], exempt_pytest_plugins=True
)
HOOK = (
    "import os\n\nimport pytest\n\n\n@pytest.hookimpl(tryfirst=True)\n"
    "def pytest_load_initial_conftests(args):\n    os.environ['X'] = '1'\n"
)
ENTRY_POINTS = '[project.entry-points.pytest11]\nsnap = "snap.plugin"\n'
POETRY_PLUGINS = '[tool.poetry.plugins."pytest11"]\nsnap = "snap"\n'
SETUP_CFG = "[options.entry_points]\npytest11 =\n    snap = snap.plugin:main\n"
SETUP_PY = 'setup(entry_points={"pytest11": ["snap = snap.plugin"]})\n'


PLUGINS = [  # (path, source, packaging files at the root): pytest plugins
    ("bot/pytest_plugin/plugin.py", HOOK, {}),  # a plugin package defining a hook
    ("src/myproject/hooks.py", HOOK, {}),  # a hook defined at top level, whatever the name
    ("src/pytest_snapshots.py", "import pytest\n", {}),
    ("app/testing_fixtures.py", "import pytest\n\npytest_plugins = ['app.more_fixtures']\n", {}),
    ("src/snap/plugin.py", "import pytest\n", {"pyproject.toml": ENTRY_POINTS}),  # a src layout
    ("snap/fixtures.py", "import pytest\n", {"pyproject.toml": POETRY_PLUGINS}),  # a module of the plugin package
    ("snap/plugin.py", "import pytest\n", {"setup.cfg": SETUP_CFG}),
    ("snap/plugin.py", "import pytest\n", {"setup.py": SETUP_PY}),
]
HELPER = "import pytest\n\n\ndef helper():\n    return pytest.approx(1)\n"
NOT_PLUGINS = [  # modules that merely import pytest
    ("snap/helpers.py", HELPER, {}),
    ("snap/helpers.py", HELPER, {"pyproject.toml": ENTRY_POINTS.replace("snap.plugin", "other.plugin")}),
    ("snap/helpers.py", HELPER, {"pyproject.toml": "not [toml"}),
]


def test_a_pytest_plugin_may_import_pytest_and_other_modules_may_not():
    def reported(path: str, source: str, packaging: dict[str, str]) -> bool:
        return bool(run(added(path, source), rules=[NO_TEST_IMPORTS], head={path: source, **packaging}).findings)

    assert [case[0] for case in PLUGINS if reported(*case)] == []
    assert [reported(*case) for case in NOT_PLUGINS] == [True, True, True]


def test_the_shipped_architecture_pack_lets_a_plugin_import_pytest():
    config = RepoConfig(packs=["architecture"])
    diff = parse_diff(added("bot/pytest_plugin/plugin.py", HOOK) + added("bot/app/helpers.py", "import pytest\n"))
    files = {"bot/pytest_plugin/plugin.py": HOOK.encode(), "bot/app/helpers.py": b"import pytest\n"}
    result = review(diff, files.get, config, resolve_packs(config))
    assert [(f.rule, f.path) for f in result.findings] == [("architecture-no-test-imports", "bot/app/helpers.py")]
