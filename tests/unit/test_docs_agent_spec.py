"""The complete example of docs/writing-an-agent-spec.md is a valid spec whose examples pass."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

from agents.factory.examples import run_examples
from agents.factory.spec import load_spec

ROOT = Path(__file__).resolve().parents[2]


def test_the_guides_complete_example_validates_and_its_examples_pass(tmp_path):
    guide = (ROOT / "docs/writing-an-agent-spec.md").read_text()
    example = re.search(r"```yaml\n(.*?)```", guide, re.DOTALL)
    assert example is not None
    (tmp_path / "docs-helper.yaml").write_text(example.group(1))
    spec = load_spec(tmp_path / "docs-helper.yaml")
    assert {"reads", "deterministic", "fallback", "limits", "examples"} <= set(spec.model_fields_set)
    results = asyncio.run(run_examples(spec))
    assert [result.report() for result in results if not result.passed] == []
    assert [result.run.rung for result in results if result.run] == ["llm", "deterministic"]
