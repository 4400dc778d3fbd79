"""The built-in catalogue (agents/specs): every spec validates and every golden example passes,
through the `waooaw agents` commands a spec author runs."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
from typer.testing import CliRunner

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
