"""`waooaw vision check` on real git repositories, as a newcomer runs it."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
import yaml

from tests.secret_samples import github_pat
from tests.vision_support import GitRepo

ROOT = Path(__file__).resolve().parents[2]
WAOOAW = [sys.executable, "-m", "bot.cli", "vision", "check"]
GITHUB_TOKEN = github_pat(1)  # made at run time, with a valid checksum
HYGIENE_ONLY = "packs: [hygiene]\n"


def check(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "WAOOAW_", "ANTHROPIC_", "GIT_"))}
    env["PYTHONPATH"] = str(ROOT)
    return subprocess.run(WAOOAW + list(args), capture_output=True, text=True, cwd=cwd, env=env, timeout=120)


@pytest.fixture
def repo(tmp_path: Path) -> GitRepo:
    repo = GitRepo(tmp_path / "repo")
    repo.commit("start", {".github/waooaw.yml": HYGIENE_ONLY, "app/main.py": "def main():\n    return 1\n"})
    return repo


def test_a_clean_range_exits_0(repo):
    base = repo.git("rev-parse", "HEAD")
    repo.commit("tidy", {"app/main.py": "def main():\n    return 2\n"})
    result = check(repo.root, "--base", base)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("✔ no findings · 1 file reviewed with 5 rules · ")


def test_an_error_level_finding_exits_1_and_reads_well(repo):
    base = repo.git("rev-parse", "HEAD")
    head = repo.commit("debug", {"app/main.py": "def main():\n    breakpoint()\n    print('x')\n    return 2\n"})
    result = check(repo.root, "--base", base, "--head", head)
    assert result.returncode == 1, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split()[:3] == ["app/main.py:2", "error", "hygiene-breakpoint"]
    assert lines[1].strip() == "↳ Remove it."
    assert lines[2].split()[:3] == ["app/main.py:3", "notice", "hygiene-print"]
    assert lines[-1] == f"✖ 1 error, 1 notice · 1 file reviewed with 5 rules · {base[:7]}..{head[:7]}"
    assert "\x1b[" not in result.stdout  # not a terminal: no colour


def test_warnings_and_notices_alone_exit_0(repo):
    base = repo.git("rev-parse", "HEAD")
    repo.commit("print", {"app/main.py": "def main():\n    print('x')\n"})
    result = check(repo.root, "--base", base)
    assert result.returncode == 0 and "hygiene-print" in result.stdout


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--base", "no-such-ref"], "--base 'no-such-ref' is not a commit"),
        (["--base", "HEAD", "--head", "deadbeef"], "--head 'deadbeef' is not a commit"),
        (["--base", "--upload-pack=touch /tmp/x"], "is not a commit"),
        (["--format", "xml"], "Invalid value for '--format'"),
        (["--staged", "--head", "HEAD"], "--staged reviews the index: it takes no --head"),
        (["--staged", "--base", "no-such-ref"], "--base 'no-such-ref' is not a commit"),
        (["--bogus"], "No such option"),
    ],
)
def test_usage_errors_and_bad_refs_exit_2(repo, args, says):
    result = check(repo.root, *args)
    assert result.returncode == 2
    assert says in result.stderr
    assert "Traceback" not in result.stderr


def test_not_a_repository_exits_2(tmp_path):
    result = check(tmp_path, "--base", "HEAD")
    assert result.returncode == 2 and "is not a git repository" in result.stderr


def test_default_base_is_the_merge_base_with_origins_default_branch(repo, tmp_path):
    repo.commit("main moves on", {"app/later.py": "breakpoint()\n"})  # on main, not on the branch under review
    work = GitRepo.clone(repo.root, tmp_path / "clone")
    assert work.git("symbolic-ref", "refs/remotes/origin/HEAD") == "refs/remotes/origin/main"
    work.git("checkout", "-q", "-b", "feature", "HEAD~1")
    work.commit("feature", {"app/feature.py": "x = 1\nbreakpoint()\n"})
    result = check(work.root)
    assert result.returncode == 1, result.stderr
    assert "app/feature.py:2" in result.stdout and "app/later.py" not in result.stdout


def test_default_base_falls_back_to_local_main(repo):
    repo.git("checkout", "-q", "-b", "feature")
    repo.commit("feature", {"app/feature.py": "breakpoint()\n"})
    result = check(repo.root)
    assert result.returncode == 1 and "app/feature.py:1" in result.stdout


def test_no_default_branch_to_compare_with_exits_2(tmp_path):
    repo = GitRepo(tmp_path / "trunk", branch="trunk")
    repo.commit("one", {"a.py": "x = 1\n"})
    result = check(repo.root)
    assert result.returncode == 2 and "pass --base" in result.stderr


def test_json_and_markdown_formats(repo):
    base = repo.git("rev-parse", "HEAD")
    head = repo.commit("debug", {"app/main.py": "def main():\n    breakpoint()\n"})
    as_json = check(repo.root, "--base", base, "--format", "json")
    assert as_json.returncode == 1
    data = json.loads(as_json.stdout)
    assert set(data) == {"findings", "skipped", "summary"}
    assert data["findings"] == [
        {
            "rule": "hygiene-breakpoint",
            "severity": "error",
            "path": "app/main.py",
            "line": 2,
            "end_line": 2,
            "message": "A debugger breakpoint is left in the code",
            "hint": "Remove it.",
            "rung": "deterministic",
        }
    ]
    assert data["summary"]["conclusion"] == "failure" and (data["summary"]["base"], data["summary"]["head"]) == (
        base,
        head,
    )
    as_markdown = check(repo.root, "--base", base, "--format", "markdown")
    assert as_markdown.returncode == 1
    assert as_markdown.stdout.startswith(f"### WowVision {base[:7]}..{head[:7]}: 1 error\n")
    assert "| 🔴 error | `app/main.py:2` | `hygiene-breakpoint` |" in as_markdown.stdout


def test_the_base_config_rules_a_head_cannot_relax_its_own_check(repo):
    base = repo.git("rev-parse", "HEAD")
    relaxed = HYGIENE_ONLY + "rules:\n  hygiene-breakpoint: off\n"
    repo.commit("sneaky", {".github/waooaw.yml": relaxed, "app/main.py": "breakpoint()\n"})
    result = check(repo.root, "--base", base)
    assert result.returncode == 1 and "hygiene-breakpoint" in result.stdout
    # once the relaxed config is on the base, it applies
    later = repo.commit("again", {"app/main.py": "breakpoint()\nbreakpoint()  # still\n"})
    after = check(repo.root, "--base", f"{later}~1", "--head", later)
    assert after.returncode == 0 and "hygiene-breakpoint" not in after.stdout


def test_an_invalid_base_config_exits_2_naming_the_line(repo):
    repo.commit("bad config", {".github/waooaw.yml": "packs: [hygiene]\nreview: LOUDLY\n"})
    base = repo.git("rev-parse", "HEAD")
    repo.commit("change", {"app/main.py": "breakpoint()\n"})
    result = check(repo.root, "--base", base)
    assert result.returncode == 2
    assert ".github/waooaw.yml:2: review: Input should be 'COMMENT' or 'REQUEST_CHANGES'" in result.stderr
    assert "nothing was reviewed" in result.stderr and result.stdout == ""


def test_a_repository_pack_comes_from_the_base(repo):
    pack = "name: team\nrules:\n  - {id: team-no-foo, kind: pattern, severity: error, message: no foo, regex: foo}\n"
    repo.commit("team pack", {".github/team.yml": pack, ".github/waooaw.yml": "packs: [.github/team.yml]\n"})
    base = repo.git("rev-parse", "HEAD")
    repo.commit(
        "foo",
        {".github/team.yml": pack.replace("regex: foo", "regex: nothing-matches-this"), "app/main.py": "foo = 1\n"},
    )
    result = check(repo.root, "--base", base)
    assert result.returncode == 1 and "team-no-foo" in result.stdout


def test_the_secret_never_appears_in_any_output(repo):
    base = repo.commit("secrets pack", {".github/waooaw.yml": "packs: [secrets]\n"})
    repo.commit("oops", {"app/settings.py": f"TOKEN = '{GITHUB_TOKEN}'\n"})
    for output_format in ("text", "json", "markdown", "sarif", "github"):
        result = check(repo.root, "--base", base, "--format", output_format)
        assert result.returncode == 1
        assert "secret-github-token" in result.stdout
        for stream in (result.stdout, result.stderr):
            assert GITHUB_TOKEN not in stream and GITHUB_TOKEN[4:] not in stream


def test_renames_deletions_binary_and_non_utf8_do_not_break_it(repo):
    base = repo.commit("more", {"docs/old.md": "a\nb\n", "logo.png": b"\x89PNG\r\n\x1a\n\x00\x00", "gone.txt": "x\n"})
    repo.git("mv", "docs/old.md", "docs/new.md")
    repo.git("rm", "-q", "gone.txt")
    repo.commit(
        "shuffle", {"logo.png": b"\x89PNG\r\n\x1a\n\x00\x01", "latin1.txt": b"caf\xe9\n", "caf\xc3\xa9.py": "x = 1\n"}
    )
    result = check(repo.root, "--base", base, "--format", "json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert {
        "kind": "file",
        "rule": None,
        "path": "logo.png",
        "line": None,
        "end_line": None,
        "reason": "binary file: line rules do not apply",
    } in data["skipped"]


def test_this_repository_history_reviews_without_a_crash():
    first = subprocess.run(
        ["git", "rev-list", "--max-parents=0", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()[0]
    for base in (first, "HEAD~1"):
        if subprocess.run(["git", "rev-parse", "--verify", "--quiet", base], cwd=ROOT, capture_output=True).returncode:
            continue  # a shallow clone holds no HEAD~1
        result = check(ROOT, "--base", base, "--head", "HEAD", "--format", "json")
        assert result.returncode in (0, 1), result.stderr
        assert "findings" in json.loads(result.stdout)


def test_the_documented_sample_is_what_it_prints(tmp_path):
    repo = GitRepo(tmp_path / "sample")
    repo.commit(
        "base",
        {
            ".github/waooaw.yml": "packs: [secrets, hygiene, structure, architecture, waooaw]\n",
            "agents/review.py": "def run(event):\n    return []\n",
        },
    )
    repo.git("checkout", "-q", "-b", "feature")
    source = (
        "from bot.github import client\n\n\ndef run(event):\n    # TO" + "DO cache this\n    break" + "point()\n"
        f'    token = "{GITHUB_TOKEN}"\n    return client.get(event)\n'
    )
    repo.commit("feature", {"agents/review.py": source})
    result = check(repo.root)
    assert result.returncode == 1, result.stderr
    guide = (ROOT / "docs" / "wowvision.md").read_text()
    sample = guide.split("## Run it on a local range", 1)[1].split("```\n", 2)[2].split("```", 1)[0]
    expected, printed = sample.splitlines(), result.stdout.splitlines()
    assert printed[:-1] == expected[:-1]
    assert printed[-1].rsplit(" · ", 1)[0] == expected[-1].rsplit(" · ", 1)[0]


def test_extends_is_kept_and_said_to_be_local_only(repo):
    base = repo.commit("org", {".github/waooaw.yml": HYGIENE_ONLY + "extends: my-org/.github\n"})
    repo.commit("change", {"app/main.py": "x = 1\n"})
    result = check(repo.root, "--base", base)
    assert result.returncode == 0
    assert "`extends: my-org/.github` is not fetched by a local check" in result.stderr


def test_a_file_is_reported_large_when_the_range_makes_it_so_not_when_it_already_was(repo):
    filler = "x = 1\n" * 9000  # 52.7 KiB: over structure-large-module's 50 KiB
    base = repo.commit(
        "start big",
        {".github/waooaw.yml": "packs: [structure]\n", "app/big.py": filler, "app/grown.py": filler[:49_800]},
    )
    repo.commit("edit both", {"app/big.py": filler + "y = 2\n", "app/grown.py": filler})
    result = check(repo.root, "--base", base, "--format", "json")
    found = [(f["rule"], f["path"], f["message"]) for f in json.loads(result.stdout)["findings"]]
    grown = "A large source module: grew from 48.6 KiB to 52.7 KiB (limit 50.0 KiB)"
    assert found == [("structure-large-module", "app/grown.py", grown)]


# What `waooaw vision check` and `waooaw --help` must not load: the SDKs, the store, the CoE and report code.
HEAVY = ("anthropic", "githubkit", "sqlalchemy", "pydantic_settings", "agents.domain", "agents.reports", "agents.llm")
IMPORTED = """
import json, sys
from bot.cli import app
code = app({args!r}, standalone_mode=False)
heavy = sorted({{name for name in sys.modules for root in {heavy!r} if name == root or name.startswith(root + ".")}})
print("imported:", json.dumps(heavy))
"""


def imported_by(cwd: Path, *args: str) -> list[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "WAOOAW_", "ANTHROPIC_", "GIT_"))}
    env["PYTHONPATH"] = str(ROOT)
    script = IMPORTED.format(args=list(args), heavy=HEAVY)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=cwd, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.rsplit("imported: ", 1)[1])


def test_vision_check_and_help_import_only_what_they_use(repo):
    base = repo.git("rev-parse", "HEAD")
    repo.commit("one file", {"app/main.py": "def main():\n    return 2\n"})
    sarif = ["vision", "check", "--base", base, "--format", "sarif"]
    for args in (["vision", "check", "--base", base], sarif, ["--help"]):
        assert imported_by(repo.root, *args) == [], args
    assert "anthropic" in imported_by(repo.root, "coe", "--help")  # the guard sees an import when there is one


def test_sarif_and_github_formats_keep_the_exit_codes(repo):
    base = repo.git("rev-parse", "HEAD")
    repo.commit("debug", {"app/main.py": "def main():\n    breakpoint()\n"})
    sarif = check(repo.root, "--base", base, "--format", "sarif")
    assert sarif.returncode == 1, sarif.stderr
    schema = json.loads((ROOT / "tests" / "fixtures" / "sarif" / "sarif-schema-2.1.0.json").read_text())
    log = json.loads(sarif.stdout)
    jsonschema.Draft4Validator(schema).validate(log)
    assert [r["ruleId"] for r in log["runs"][0]["results"]] == ["hygiene-breakpoint"]
    annotations = check(repo.root, "--base", base, "--format", "github")
    assert annotations.returncode == 1
    assert annotations.stdout.startswith("::error file=app/main.py,line=2,endLine=2,title=hygiene-breakpoint::")
    clean = check(repo.root, "--base", "HEAD", "--format", "sarif")
    assert clean.returncode == 0 and json.loads(clean.stdout)["runs"][0]["results"] == []


def test_staged_reviews_the_index_not_the_working_tree(repo):
    big = f"VALUE = '{'a' * 50}'\n" * 900  # 53.6 KiB in 900 lines: over structure-large-module's limit
    repo.commit("structure too", {".github/waooaw.yml": "packs: [hygiene, structure]\n"})
    repo.write("app/main.py", "def main():\n    breakpoint()\n")
    repo.write("app/big.py", big)
    repo.git("add", "app/main.py", "app/big.py")
    repo.write("app/big.py", "x = 1\n")  # unstaged edits: not what the commit records
    repo.write("app/unstaged.py", "breakpoint()\n")
    result = check(repo.root, "--staged", "--format", "json")
    assert result.returncode == 1, result.stderr
    data = json.loads(result.stdout)
    assert sorted((f["rule"], f["path"]) for f in data["findings"]) == [
        ("hygiene-breakpoint", "app/main.py"),
        ("structure-large-module", "app/big.py"),
    ]
    assert data["summary"]["head"] is None and data["summary"]["staged"] is True
    assert data["summary"]["base"] == repo.git("rev-parse", "HEAD")
    text = check(repo.root, "--staged")
    assert text.stdout.splitlines()[-1].endswith(f"{data['summary']['base'][:7]}..staged")
    repo.git("reset", "-q")
    assert check(repo.root, "--staged").returncode == 0


def test_staged_before_the_first_commit(tmp_path):
    repo = GitRepo(tmp_path / "new")
    repo.write("app/main.py", "breakpoint()\n")
    repo.git("add", "-A")
    result = check(repo.root, "--staged")
    assert result.returncode == 1, result.stderr
    assert "app/main.py:1" in result.stdout and "hygiene-breakpoint" in result.stdout


def test_the_pre_commit_hook_runs_its_entry_on_the_staged_changes(repo):
    (hook,) = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())
    assert (hook["id"], hook["language"], hook["pass_filenames"]) == ("wowvision", "python", False)
    program, *args = shlex.split(hook["entry"])
    assert program == "waooaw"  # the console script pyproject.toml installs
    repo.write("app/main.py", "def main():\n    breakpoint()\n")
    repo.git("add", "app/main.py")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "WAOOAW_", "ANTHROPIC_", "GIT_"))}
    env["PYTHONPATH"] = str(ROOT)
    run = [sys.executable, "-m", "bot.cli", *args]
    blocked = subprocess.run(run, capture_output=True, text=True, cwd=repo.root, env=env, timeout=120)
    assert blocked.returncode == 1 and "hygiene-breakpoint" in blocked.stdout, blocked.stderr
    repo.write("app/main.py", "def main():\n    return 3\n")
    repo.git("add", "app/main.py")
    passed = subprocess.run(run, capture_output=True, text=True, cwd=repo.root, env=env, timeout=120)
    assert passed.returncode == 0, passed.stdout + passed.stderr


def run_action_step(name: str, cwd: Path, tmp: Path, **env: str) -> tuple[subprocess.CompletedProcess[str], dict]:
    """A `run:` step of action.yml, as the runner runs a `shell: bash` step: `bash -eo pipefail`,
    its outputs written to $GITHUB_OUTPUT, `waooaw` on PATH (the installed console script)."""
    (step,) = [s for s in yaml.safe_load((ROOT / "action.yml").read_text())["runs"]["steps"] if s.get("name") == name]
    outputs = tmp / f"github-output-{name}"
    outputs.write_text("")
    script = tmp / f"{name}.sh"
    script.write_text(step["run"])
    bin_dir = Path(sys.executable).parent
    assert (bin_dir / "waooaw").is_file(), "the waooaw console script is installed with `pip install -e .`"
    base_env = {k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "WAOOAW_", "ANTHROPIC_", "GIT_"))}
    full_env = {**base_env, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "GITHUB_OUTPUT": str(outputs), **env}
    done = subprocess.run(
        ["bash", "--noprofile", "--norc", "-eo", "pipefail", str(script)],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=full_env,
        timeout=120,
    )
    return done, dict(line.split("=", 1) for line in outputs.read_text().splitlines())


def test_the_actions_review_step_annotates_writes_sarif_and_leaves_the_verdict_to_the_last_step(repo, tmp_path):
    base = repo.git("rev-parse", "HEAD")
    head = repo.commit("debug", {"app/main.py": "def main():\n    breakpoint()\n"})
    inputs = {
        "WOWVISION_BASE": base,
        "WOWVISION_HEAD": head,
        "WOWVISION_SARIF": "true",
        "WOWVISION_SARIF_FILE": str(tmp_path / "out.sarif"),
    }
    review, outputs = run_action_step("Review", repo.root, tmp_path, **inputs)
    assert review.returncode == 0, review.stderr  # findings do not stop the SARIF upload that follows
    assert review.stdout.startswith("::error file=app/main.py,line=2,endLine=2,title=hygiene-breakpoint::")
    assert outputs == {"sarif-file": str(tmp_path / "out.sarif"), "exit-code": "1"}
    assert json.loads((tmp_path / "out.sarif").read_text())["runs"][0]["results"][0]["ruleId"] == "hygiene-breakpoint"
    for fail_on_error, expected in (("true", 1), ("false", 0)):
        verdict, _ = run_action_step(
            "Verdict", repo.root, tmp_path, WOWVISION_CODE="1", WOWVISION_FAIL_ON_ERROR=fail_on_error
        )
        assert verdict.returncode == expected

    missing, outputs = run_action_step("Review", repo.root, tmp_path, **{**inputs, "WOWVISION_BASE": "f" * 40})
    assert outputs == {"exit-code": "2"} and "fetch-depth: 0" in missing.stdout
    verdict, _ = run_action_step("Verdict", repo.root, tmp_path, WOWVISION_CODE="2", WOWVISION_FAIL_ON_ERROR="false")
    assert verdict.returncode == 2

    # a new branch's first push: no commit before it, so the default branch's merge-base is the base
    repo.git("checkout", "-q", "-b", "feature")
    repo.commit("feature", {"app/feature.py": "breakpoint()\n"})
    pushed, outputs = run_action_step(
        "Review",
        repo.root,
        tmp_path,
        WOWVISION_BASE="0" * 40,
        WOWVISION_HEAD="",
        WOWVISION_SARIF="false",
        WOWVISION_SARIF_FILE="unused.sarif",
    )
    assert outputs == {"exit-code": "1"} and "file=app/feature.py,line=1" in pushed.stdout
    assert "file=app/main.py" not in pushed.stdout, "main's own history is not the branch's change"
