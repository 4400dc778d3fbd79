"""The built-in catalogue (agents/specs): every spec validates and every golden example passes,
through the `waooaw agents` commands a spec author runs."""

from __future__ import annotations

import asyncio
import tomllib
import warnings
from pathlib import Path

import pytest
from typer.testing import CliRunner

from agents.factory import templates
from agents.factory.examples import run_examples
from agents.factory.spec import load_spec
from bot.cli import app

ROOT = Path(__file__).resolve().parents[2]
SPECS = ROOT / "agents" / "specs"
CATALOGUE = {
    "support": {"tech-support", "customer-success"},
    "marketing": {
        "content-marketing",
        "social-media",
        "seo",
        "email-marketing",
        "ppc-advertising",
        "brand-strategy",
        "influencer-marketing",
    },
    "sales": {"sdr", "account-executive", "sales-enablement", "crm-management", "lead-generation"},
}


def test_the_catalogue_holds_one_spec_per_agent_of_each_coe():
    found = {coe.name: {spec.stem for spec in coe.glob("*.yaml")} - {"raci"} for coe in SPECS.iterdir() if coe.is_dir()}
    # engineering/ holds only its RACI matrix: its agent, WowVision, is built in.
    assert found == {**CATALOGUE, "engineering": set()}


@pytest.mark.parametrize("command", ["validate", "test"])
def test_the_catalogue_passes(command):
    result = CliRunner().invoke(app, ["agents", command, str(SPECS)])
    assert result.exit_code == 0, result.output


def test_an_installed_app_carries_every_file_of_the_catalogue():
    patterns = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["agents"]
    shipped = {path for pattern in patterns for path in (ROOT / "agents").glob(pattern)}
    assert {path for path in SPECS.rglob("*") if path.is_file()} == shipped


@pytest.mark.parametrize(
    "path", [pytest.param(path, id=path.stem) for path in sorted(SPECS.glob("*/*.yaml")) if path.name != "raci.yaml"]
)
def test_every_built_in_spec_compiles_and_runs_its_examples_without_a_warning(path):
    # Jinja decodes a string literal's escapes like Python's: `'\s'` in a regex is a DeprecationWarning
    # today (a SyntaxError tomorrow) and must be written `'\\s'` in the template text.
    templates._template.cache_clear()  # compiled once per process: compile them again, here
    templates._expression.cache_clear()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        spec = load_spec(path)
        results = asyncio.run(run_examples(spec))
    assert all(result.passed for result in results), "\n".join(r.report() for r in results if not r.passed)
