"""`waooaw agents validate|test|new|propose` as an author runs them."""

from __future__ import annotations

import shutil
from pathlib import Path

from typer.testing import CliRunner

from bot.cli import app

ROOT = Path(__file__).resolve().parents[2]
SPECS = ROOT / "tests/fixtures/specs"
KINDS = "comment, labels, issue, pull_request, review, message"
BASE = "event, payload, repo"  # what a read's `when` may use
DOMAIN = ROOT / "tests/fixtures/domains/digital-marketing/spec.yaml"


def waooaw(*args: str | Path) -> tuple[int, str]:
    result = CliRunner().invoke(app, [str(arg) for arg in args])
    return result.exit_code, result.output


def test_validate_passes_a_valid_catalogue():
    code, output = waooaw("agents", "validate", SPECS)
    assert code == 0 and "1 spec valid" in output and "triager (support)" in output


def test_validate_gives_exit_2_and_each_problem_with_its_file_and_line(tmp_path):
    shutil.copytree(SPECS / "support", tmp_path / "support")
    spec = tmp_path / "support/triager.yaml"
    original = spec.read_text()
    spec.write_text(original.replace("  - comment:\n", "  - tweet:\n").replace("limits:", "limit:"))
    code, output = waooaw("agents", "validate", tmp_path)
    assert code == 2
    assert output.splitlines() == [
        f"{spec}:37: outputs[0]: unknown output kind 'tweet': one of {KINDS}",
        f"{spec}:43: limit: unknown key (check its spelling)",
    ]
    spec.write_text(original.replace("Triage issue", "Triage {{ oops").replace("answer.kind", "answer.mood"))
    code, output = waooaw("agents", "validate", tmp_path)
    assert code == 2
    assert output.splitlines() == [
        f"{spec}:16: instructions: the template does not parse: unexpected char '#' at 15",
        f"{spec}:39: outputs[0].comment.body: `answer.mood` is not declared in the answer schema's properties",
    ]


def test_validate_checks_a_reads_when_over_the_event_alone(tmp_path):
    shutil.copytree(SPECS / "support", tmp_path / "support")
    spec = tmp_path / "support/triager.yaml"
    reads = '  - labels:\n    when: issue.body\n  - files: ["README.md"]\n    when: event.action ==\n'
    spec.write_text(spec.read_text().replace('  - labels\n  - files: ["README.md"]\n', reads))
    code, output = waooaw("agents", "validate", tmp_path)
    assert code == 2
    assert output.splitlines() == [
        f"{spec}:14: reads[1].when: `issue` is not known here: a read's `when` and options know only {BASE}",
        f"{spec}:16: reads[2].when: the template does not parse: unexpected ')'",
    ]


def test_test_passes_the_fixture_examples():
    code, output = waooaw("agents", "test", SPECS)
    assert code == 0, output
    assert "PASS triager: a bug report is labelled and answered" in output and "2 of 2 examples passed" in output


def test_test_fails_with_a_diff_of_expected_and_produced_intents(tmp_path):
    shutil.copytree(SPECS / "support", tmp_path / "support")
    spec = tmp_path / "support/triager.yaml"
    spec.write_text(spec.read_text().replace("{kind: labels, equals: [bug]}", "{kind: labels, equals: [question]}"))
    code, output = waooaw("agents", "test", tmp_path)
    assert code == 1
    assert "FAIL triager: a bug report is labelled and answered" in output and "1 of 2 examples passed" in output
    assert '-labels add equals ["question"]' in output and '+labels add=["bug"] remove=[]' in output
    assert ' comment body="**Triage: bug**' in output  # the matched intent is shown on both sides: no noise


def test_test_fails_an_example_that_gives_a_read_its_event_skips(tmp_path):
    shutil.copytree(SPECS / "support", tmp_path / "support")
    spec = tmp_path / "support/triager.yaml"
    spec.write_text(spec.read_text().replace("  - labels\n", "  - labels:\n    when: event.action == 'closed'\n"))
    assert waooaw("agents", "validate", tmp_path)[0] == 0
    code, output = waooaw("agents", "test", tmp_path)
    assert code == 1 and "1 of 2 examples passed" in output
    assert "FAIL triager: a bug report is labelled and answered" in output
    assert "`given.labels` stands in for a read this event skips: its `when` is false" in output


def test_test_of_an_invalid_spec_exits_2(tmp_path):
    (tmp_path / "bad.yaml").write_text("spec: waooaw/agent/v1\nname: bad\n")
    code, output = waooaw("agents", "test", tmp_path)
    assert code == 2 and f"{tmp_path / 'bad.yaml'}:" in output and "coe: required, but missing" in output


def test_new_writes_a_skeleton_that_validates_and_passes_and_never_overwrites(tmp_path):
    code, output = waooaw("agents", "new", "release-helper", "--coe", "marketing", "--out", tmp_path)
    assert code == 0, output
    assert (tmp_path / "marketing/release-helper.yaml").is_file()
    assert (tmp_path / "marketing/examples/release-helper.issue-opened.json").is_file()
    assert waooaw("agents", "validate", tmp_path)[0] == 0
    code, output = waooaw("agents", "test", tmp_path)
    assert code == 0 and "1 of 1 example passed" in output
    code, output = waooaw("agents", "new", "release-helper", "--coe", "marketing", "--out", tmp_path)
    assert code == 2 and "not overwriting" in output
    assert waooaw("agents", "new", "Bad_Name", "--coe", "marketing", "--out", tmp_path)[0] == 2


def test_propose_turns_a_domain_specs_roles_into_drafts_that_validate_and_pass(tmp_path):
    code, output = waooaw("agents", "propose", "--from", DOMAIN, "--out", tmp_path)
    assert code == 0, output
    drafts = sorted(path.name for path in (tmp_path / "digital-marketing").glob("*.yaml"))
    assert drafts == ["campaign-agent.yaml", "compliance-agent.yaml", "search-agent.yaml"]
    text = (tmp_path / "digital-marketing/campaign-agent.yaml").read_text()
    assert text.startswith("# DRAFT, proposed from the WowDomain spec of Digital Marketing")
    assert "It is not hired anywhere" in text
    assert waooaw("agents", "validate", tmp_path)[0] == 0
    code, output = waooaw("agents", "test", tmp_path)
    assert code == 0 and "3 of 3 examples passed" in output
