"""An installed WowVision — `pip install .`, as pre-commit and the GitHub Action install it —
carries the built-in packs it reads: they are package data of agents.vision, not files
beside a source checkout."""

from __future__ import annotations

import tomllib
from pathlib import Path

import agents.vision
from agents.vision.policy import BUILTIN_DIR, builtin_pack_names

ROOT = Path(__file__).resolve().parents[2]


def test_the_packs_the_code_reads_are_the_package_data_a_wheel_carries():
    package = Path(agents.vision.__file__).parent
    assert BUILTIN_DIR.parent == package, "read from inside the package, where a wheel puts its data"
    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    shipped = {path.stem for pattern in setuptools["package-data"]["agents.vision"] for path in package.glob(pattern)}
    assert shipped == set(builtin_pack_names()) == {path.stem for path in (ROOT / "policies").glob("*.yml")}
