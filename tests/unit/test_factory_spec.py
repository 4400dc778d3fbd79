"""Agent specs are checked before they run: each problem named with its file and line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agents.events import Event
from agents.factory.catalogue import CatalogueError, load_specs
from agents.factory.reads import release_of, skipped_reads
from agents.factory.spec import SpecError, load_spec

ROOT = Path(__file__).resolve().parents[2]
TRIAGER = ROOT / "tests/fixtures/specs/support/triager.yaml"

VALID = """\
spec: waooaw/agent/v1
name: greeter
coe: support
title: Greeter
description: Thanks the author of a new issue. It cannot do anything else.
wakes_on: ["issues.opened"]
reads:
  - issue
instructions: |
  Thank the author of {{ issue.title }}.
answer:
  type: object
  properties:
    reply: {type: string}
  required: [reply]
outputs:
  - comment: {body: "{{ answer.reply }}"}
examples:
  - name: thanks
    event: {name: issues, action: opened, payload: {action: opened, issue: {number: 1, title: t, body: b}}}
    answer: {reply: Thanks}
    expect: [{kind: comment, contains: Thanks}]
"""


def problems(tmp_path: Path, text: str) -> list[str]:
    path = tmp_path / "spec.yaml"
    path.write_text(text)
    with pytest.raises(SpecError) as raised:
        load_spec(path)
    return str(raised.value).splitlines()


def line_of(text: str, needle: str) -> int:
    return next(number for number, line in enumerate(text.splitlines(), 1) if needle in line)


def test_the_fixture_spec_and_a_minimal_one_are_valid(tmp_path):
    assert load_spec(TRIAGER).name == "triager"
    (tmp_path / "spec.yaml").write_text(VALID)
    spec = load_spec(tmp_path / "spec.yaml")
    assert (spec.name, spec.coe, spec.read_names) == ("greeter", "support", ("issue",))


def test_malformed_yaml_names_its_line(tmp_path):
    text = VALID.replace("title: Greeter", "title: [Greeter")
    [problem] = problems(tmp_path, text)
    assert problem.startswith(f"{tmp_path / 'spec.yaml'}:") and "not valid YAML" in problem


def test_a_bad_name_and_an_unknown_key_each_get_their_line(tmp_path):
    text = VALID.replace("name: greeter", "name: Greeter_Bot").replace("title: Greeter", "title: Greeter\ncolour: red")
    found = problems(tmp_path, text)
    assert any(p.startswith(f"{tmp_path / 'spec.yaml'}:2: name:") for p in found), found
    assert any(":5: colour: unknown key" in p for p in found), found


@pytest.mark.parametrize("value", ["false", "{limit: 3}"])
def test_a_read_without_options_given_some_gets_its_line(tmp_path, value):
    text = VALID.replace("  - issue\n", f"  - issue: {value}\n")
    found = problems(tmp_path, text)
    assert any(f":{line_of(text, '- issue:')}:" in p and "takes no options" in p for p in found), found


def test_an_answer_field_used_but_not_declared(tmp_path):
    text = VALID.replace('body: "{{ answer.reply }}"', 'body: "{{ answer.reply }} {{ answer.mood }}"')
    [problem] = problems(tmp_path, text)
    assert f":{line_of(text, 'answer.mood')}: outputs[0].comment.body:" in problem
    assert "`answer.mood` is not declared" in problem


def test_an_answer_field_in_a_when_is_checked_too_and_nested_ones_against_their_object(tmp_path):
    text = VALID.replace(
        "    reply: {type: string}",
        "    reply: {type: string}\n    meta: {type: object, properties: {tone: {type: string}}}",
    )
    text = text.replace(
        '  - comment: {body: "{{ answer.reply }}"}',
        '  - comment: {body: "{{ answer.meta.tone }}"}\n    when: answer.meta.mood',
    )
    [problem] = problems(tmp_path, text)
    assert "outputs[0].when: `answer.meta.mood` is not declared" in problem


def test_an_undeclared_output_kind(tmp_path):
    text = VALID.replace('  - comment: {body: "{{ answer.reply }}"}', '  - tweet: {text: "{{ answer.reply }}"}')
    [problem] = problems(tmp_path, text)
    assert f":{line_of(text, 'tweet')}: outputs[0]: unknown output kind 'tweet'" in problem


def test_a_variable_that_is_not_read_and_answer_in_the_instructions(tmp_path):
    text = VALID.replace(
        "Thank the author of {{ issue.title }}.", "Thank {{ issue.user }}.\n  See {{ files }} and {{ answer.reply }}."
    )
    found = problems(tmp_path, text)
    line = line_of(text, "See {{ files }}")
    assert any(f":{line}: instructions: `files` is not read: add it to `reads`" in p for p in found), found
    assert any(f":{line}: instructions: `answer` is not known here" in p for p in found), found


def test_a_template_that_does_not_parse(tmp_path):
    text = VALID.replace("{{ issue.title }}.", "{{ issue.title }.")
    [problem] = problems(tmp_path, text)
    assert f":{line_of(text, 'issue.title }')}: instructions: the template does not parse" in problem


def test_an_answer_schema_that_is_not_json_schema(tmp_path):
    text = VALID.replace("    reply: {type: string}", "    reply: {type: strang}")
    found = problems(tmp_path, text)
    assert any("answer" in p and "not a valid JSON Schema" in p for p in found), found


def test_labels_need_an_allowed_list_and_literal_labels_must_be_in_it(tmp_path):
    text = VALID.replace(
        '  - comment: {body: "{{ answer.reply }}"}', "  - labels: {add: [bug, wontfix], allowed: [bug]}"
    )
    found = problems(tmp_path, text)
    assert any("outputs[0].labels.add[1]: label 'wontfix' is not in `allowed`" in p for p in found), found
    text = VALID.replace('  - comment: {body: "{{ answer.reply }}"}', "  - labels: {add: [bug], allowed: []}")
    assert any("allowed" in p for p in problems(tmp_path, text))


def test_a_pull_request_needs_paths_and_its_literal_files_inside_them(tmp_path):
    pull = '  - pull_request: {title: t, body: b, files: {"src/app.py": "{{ answer.reply }}"}, paths: ["docs/**"]}'
    found = problems(tmp_path, VALID.replace('  - comment: {body: "{{ answer.reply }}"}', pull))
    assert any("'src/app.py' is outside the pull request's `paths`" in p for p in found), found
    no_paths = '  - pull_request: {title: t, body: b, files: "{{ answer.reply }}"}'
    found = problems(tmp_path, VALID.replace('  - comment: {body: "{{ answer.reply }}"}', no_paths))
    assert any("outputs[0].pull_request.paths: required, but missing" in p for p in found), found


def test_raw_is_for_the_authors_constants_only(tmp_path):
    text = VALID.replace('body: "{{ answer.reply }}"', 'body: "{{ answer.reply | raw }}"')
    [problem] = problems(tmp_path, text)
    assert "`raw` is for the author's own text" in problem
    (tmp_path / "ok.yaml").write_text(VALID.replace('body: "{{ answer.reply }}"', "body: \"{{ '**hi**' | raw }}\""))
    assert load_spec(tmp_path / "ok.yaml").name == "greeter"


def test_caps_are_bounded(tmp_path):
    text = VALID.replace("examples:", "limits: {outputs_per_event: 100, usd_per_run: 0.05}\nexamples:")
    [problem] = problems(tmp_path, text)
    assert "limits.outputs_per_event" in problem and "less than or equal to 20" in problem


def test_examples_payload_file_answer_given_and_expect_are_checked(tmp_path):
    text = VALID.replace(
        "payload: {action: opened, issue: {number: 1, title: t, body: b}}", "payload_file: examples/missing.json"
    )
    text = text.replace("answer: {reply: Thanks}", "answer: {reply: 3}\n    given: {labels: [bug]}")
    text = text.replace("expect: [{kind: comment, contains: Thanks}]", "expect: [{kind: review, contains: Thanks}]")
    found = problems(tmp_path, text)
    assert any("payload_file: 'examples/missing.json' cannot be read" in p for p in found), found
    assert any("does not fit the answer schema: answer.reply: 3 is not of type 'string'" in p for p in found), found
    assert any("given.labels: `labels` is not read by this spec" in p for p in found), found
    assert any("this spec has no `review` output" in p for p in found), found


def test_a_catalogue_is_loaded_all_or_nothing_with_every_problem(tmp_path):
    (tmp_path / "good.yaml").write_text(VALID)
    (tmp_path / "twin.yaml").write_text(VALID)
    (tmp_path / "bad.yaml").write_text(VALID.replace("name: greeter", "name: x"))
    (tmp_path / "raci.yaml").write_text("tasks: {}\n")  # a CoE's RACI matrix is not a spec
    (tmp_path / "examples").mkdir()
    (tmp_path / "examples" / "payload.yaml").write_text(json.dumps({"action": "opened"}))
    with pytest.raises(CatalogueError) as raised:
        load_specs([tmp_path])
    text = str(raised.value)
    assert "bad.yaml:2: name:" in text and "'greeter' is taken by" in text and "raci" not in text
    (tmp_path / "bad.yaml").unlink()
    (tmp_path / "twin.yaml").unlink()
    assert [spec.name for spec in load_specs([tmp_path])] == ["greeter"]


def test_the_registry_holds_the_built_in_agents_and_one_agent_per_spec(tmp_path):
    from agents.catalog import default_registry
    from agents.store.db import Store

    store = Store(f"sqlite:///{tmp_path / 'r.db'}")
    registry = default_registry(store, spec_dirs=[TRIAGER.parent.parent])
    assert {"concierge", "wowvision", "wowdomain", "triager"} <= set(registry.names())
    triager = registry.get("triager")
    assert triager.spec is not None and triager.spec.name == "triager" and registry.get("concierge").spec is None
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "concierge.yaml").write_text(VALID.replace("name: greeter", "name: concierge"))
    with pytest.raises(CatalogueError, match="'concierge' is a built-in agent's name"):
        default_registry(store, spec_dirs=[tmp_path / "mine"])
    with pytest.raises(CatalogueError, match="no such file or directory"):
        default_registry(store, spec_dirs=[tmp_path / "missing"])


def test_issues_reads_fill_their_own_variables_and_a_second_needs_a_name(tmp_path):
    reads = (
        "reads:\n  - issue\n  - issues: {labels: [lead]}\n"
        "  - issues: {labels: [lead], updated_before_days: 30, as: stale}\n"
    )
    text = VALID.replace("reads:\n  - issue\n", reads)
    (tmp_path / "spec.yaml").write_text(text)
    assert load_spec(tmp_path / "spec.yaml").read_names == ("issue", "issues", "stale")

    found = problems(tmp_path, text.replace(", as: stale", ""))
    assert any("`issues` is read twice: name one `as:`" in problem for problem in found), found
    found = problems(tmp_path, text.replace("as: stale", "as: labels"))
    assert any("`labels` is the name of another variable" in problem for problem in found), found
    found = problems(tmp_path, text.replace("as: stale", "as: Stale"))
    assert any("should match pattern" in problem for problem in found), found
    found = problems(tmp_path, text.replace("updated_before_days: 30", "state: merged"))
    assert any("reads[2].issues.state" in problem for problem in found), found


def test_a_comment_closes_only_by_a_literal_or_an_answer_boolean(tmp_path):
    closing = VALID.replace(
        'comment: {body: "{{ answer.reply }}"}', 'comment: {body: "{{ answer.reply }}", close: "{{ issue.title }}"}'
    )
    found = problems(tmp_path, closing)
    assert any("outputs[0].comment.close" in p and "`close` is true, false" in p for p in found), found
    found = problems(tmp_path, closing.replace("issue.title", "answer.closing"))
    assert any("`answer.closing` is not declared" in problem for problem in found), found
    (tmp_path / "spec.yaml").write_text(closing.replace('"{{ issue.title }}"', "true"))
    assert load_spec(tmp_path / "spec.yaml").outputs[0].comment.close is True


def test_a_merged_pulls_release_template_reads_the_event_only(tmp_path):
    release = "{{ payload.message.body.release }} {{ issue.title }}"
    text = VALID.replace("  - issue\n", f'  - issue\n  - merged_pulls: {{release: "{release}"}}\n')
    [problem] = problems(tmp_path, text)
    assert f":{line_of(text, 'merged_pulls')}: reads[1].merged_pulls.release:" in problem
    assert "`issue` is not known here: a read's `when` and options know only event, payload, repo" in problem


def test_the_release_whose_merges_are_read_is_the_templates_then_a_release_events_own():
    spec = load_spec(ROOT / "agents/specs/marketing/content-marketing.yaml")
    (item,) = [read for read in spec.reads if read.merged_pulls is not None]
    examples = ROOT / "agents/specs/marketing/examples"

    def event(name: str, file: str) -> Event:
        return Event.from_payload("d", name, json.loads((examples / file).read_text()))

    assert release_of(spec, item, event("agent_message", "agent_message.handoff.release-post.json")) == "0.0.1"
    assert release_of(spec, item, event("issue_comment", "issue_comment.created.blog-post.json")) is None
    assert release_of(spec, item, event("release", "release.published.json")) == "0.0.1"


def test_a_read_is_skipped_when_its_when_is_false_and_made_when_the_event_cannot_evaluate_it(tmp_path):
    reads = (
        'reads:\n  - issue:\n    when: payload.label.name == "lead"\n  - labels:\n    when: event.action == "closed"\n'
    )
    (tmp_path / "spec.yaml").write_text(VALID.replace("reads:\n  - issue\n", reads))
    spec = load_spec(tmp_path / "spec.yaml")
    issue = {"number": 1, "title": "t", "body": "b"}
    opened = Event.from_payload("d-1", "issues", {"action": "opened", "issue": issue})
    labeled = Event.from_payload("d-2", "issues", {"action": "labeled", "issue": issue, "label": {"name": "bug"}})
    # an opened issue has no `label`: the issue's `when` cannot say, and the read is made rather than missed
    assert skipped_reads(spec, opened) == {"labels": []}
    assert skipped_reads(spec, labeled) == {"issue": None, "labels": []}
