"""RACI matrices: the shipped ones load and name their CoE's agents; a broken one is refused with lines."""

from __future__ import annotations

from pathlib import Path

import pytest

from agents.catalog import default_registry
from agents.coordination.raci import RaciError, load_raci
from agents.factory.catalogue import BUILTIN_SPECS, CatalogueError
from agents.store.db import Store

SUPPORT = ("tech-support", "customer-success")


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "support" / "raci.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_each_coe_has_a_matrix_and_a_coordinator_answering_to_its_task_kinds():
    registry = default_registry(Store("sqlite://"))
    for coe in ("support", "marketing", "sales", "engineering"):
        assert (BUILTIN_SPECS / coe / "raci.yaml").is_file()
        coordinator = registry.get(f"{coe}-coordinator")
        assert coordinator.coe == coe
        assert f"{coe}:coordinator" in coordinator.roles
        for kind, task in coordinator.raci.tasks.items():
            assert f"{coe}:{kind}" in coordinator.roles
            for name in (*task.responsible, task.accountable, *task.consulted, *task.informed):
                assert ":" in name or registry.get(name).coe == coe
    assert registry.get("engineering-coordinator").raci.tasks["review"].responsible == ["wowvision"]


def test_a_valid_matrix_loads(tmp_path):
    path = write(
        tmp_path,
        "tasks:\n  question:\n    responsible: [tech-support, 'support:triage']\n    accountable: customer-success\n",
    )
    raci = load_raci(path, "support", SUPPORT)
    assert raci.tasks["question"].responsible == ["tech-support", "support:triage"]
    assert raci.tasks["question"].consulted == []
    assert raci.roles() == ("support:coordinator", "support:question")


def test_errors_name_the_file_and_the_line(tmp_path):
    path = write(
        tmp_path,
        "tasks:\n"  # 1
        "  question:\n"  # 2
        "    responsible:\n"  # 3
        "      - tech-support\n"  # 4
        "      - seo\n"  # 5: an agent of another CoE
        "    accountable: Customer Success\n"  # 6: not a name
        "    informed: [tech-support]\n"  # 7
        "  Bad Kind:\n"  # 8
        "    responsible: [tech-support]\n"
        "    accountable: tech-support\n"
        "  coordinator:\n"  # 11
        "    responsible: [tech-support]\n"
        "    accountable: tech-support\n",
    )
    with pytest.raises(RaciError) as caught:
        load_raci(path, "support", SUPPORT)
    lines = str(caught.value).splitlines()
    assert f"{path}:5: tasks.question.responsible[1]: 'seo' is not an agent of the support CoE" in lines[0]
    assert lines[1].startswith(f"{path}:6: tasks.question.accountable: 'Customer Success': an agent's name")
    assert lines[2].startswith(f"{path}:8: tasks.Bad Kind: task kind 'Bad Kind'")
    assert lines[3].startswith(f"{path}:11: tasks.coordinator: 'coordinator' is the coordinator's own role")
    assert len(lines) == 4


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("tasks:\n  question:\n    responsible: []\n    accountable: tech-support\n", ":3: tasks.question.resp"),
        ("tasks:\n  question:\n    accountable: tech-support\n", ":3: tasks.question.responsible: required"),
        ("tasks:\n  question:\n    responsible: [tech-support]\n    accountable: x\n    owner: y\n", ":5:"),
        ("tasks:\n  question:\n    responsible: [tech-support, tech-support]\n    accountable: tech-support\n", ":3:"),
        ("tasks: {}\n", ":1: tasks:"),
        ("tasks: [\n", ":2: not valid YAML"),
    ],
)
def test_shape_errors_have_lines(tmp_path, text, expected):
    path = write(tmp_path, text)
    with pytest.raises(RaciError) as caught:
        load_raci(path, "support", SUPPORT)
    assert f"{path}{expected}" in str(caught.value)


def test_a_broken_matrix_in_a_spec_directory_stops_the_registry_with_its_line(tmp_path):
    write(tmp_path, "tasks:\n  question:\n    responsible: [nobody-here]\n    accountable: tech-support\n")
    with pytest.raises(CatalogueError) as caught:
        default_registry(Store("sqlite://"), spec_dirs=[tmp_path])
    assert f"{tmp_path / 'support' / 'raci.yaml'}:3: tasks.question.responsible[0]: 'nobody-here'" in str(caught.value)
