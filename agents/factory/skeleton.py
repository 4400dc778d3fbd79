"""Specs written for an author to finish: `waooaw agents new` and the drafts `agents propose` makes.

Each is a set of files (path relative to a catalogue directory → text): the spec under
`<coe>/<name>.yaml` and its example payload under `<coe>/examples/`. Both validate and
their examples pass as written; `tests/unit/test_factory_cli.py` holds them to it.
"""

from __future__ import annotations

import json
import re
from typing import Any

import yaml

from agents.factory.spec import NAME_PATTERN, SPEC_VERSION

EXAMPLE_REPO = "octo-org/octo-repo"


def check_name(value: str, what: str) -> str:
    if not re.fullmatch(NAME_PATTERN, value):
        raise ValueError(f"{what} {value!r} is 2 to 40 characters: a lowercase letter, then letters, digits or '-'")
    return value


def issue_payload(title: str, body: str) -> dict[str, Any]:
    """An `issues.opened` payload with what an agent reads of it (the repository, the issue, the sender)."""
    user = {"login": "octocat", "id": 1, "type": "User"}
    return {
        "action": "opened",
        "issue": {
            "number": 1,
            "title": title,
            "body": body,
            "user": user,
            "labels": [],
            "state": "open",
            "html_url": f"https://github.com/{EXAMPLE_REPO}/issues/1",
        },
        "repository": {"full_name": EXAMPLE_REPO, "private": False},
        "sender": user,
    }


def comment_payload(body: str) -> dict[str, Any]:
    """An `issue_comment.created` payload: `body` commented on issue #1 by a maintainer."""
    payload = issue_payload("A question for the team", "Please have a look.")
    payload["action"] = "created"
    payload["comment"] = {"id": 11, "body": body, "user": payload["sender"]}
    return payload


class _Dumper(yaml.SafeDumper):
    """Text of several lines as a `|` block, as an author writes instructions and bodies."""


def _text(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _text)


def dump(header: str, spec: dict[str, Any]) -> str:
    """A spec's YAML, after its header comment."""
    comment = "".join(f"# {line}".rstrip() + "\n" for line in header.strip().splitlines())
    return comment + yaml.dump(spec, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=100)


def payload_text(payload: dict[str, Any]) -> str:
    return json.dumps(payload, indent=2) + "\n"


SKELETON_HEADER = """\
An agent spec (waooaw/agent/v1): see docs/writing-an-agent-spec.md.
Check it with `waooaw agents validate FILE` and run its examples with `waooaw agents test FILE`.
A spec agent is off on every repository until that repository hires it
(`agents: {enable: [NAME]}` in .github/waooaw.yml, or `/waooaw hire NAME`)."""


def new_spec(name: str, coe: str) -> dict[str, str]:
    """The files of a skeleton spec: it thanks the author of a new issue and labels it a question."""
    check_name(name, "the name")
    check_name(coe, "the CoE")
    example = f"examples/{name}.issue-opened.json"
    spec = {
        "spec": SPEC_VERSION,
        "name": name,
        "coe": coe,
        "title": name.replace("-", " ").capitalize(),
        "description": (
            "Say here what the agent does, and what it cannot do: it sees only what it reads below "
            "and acts only through the outputs below."
        ),
        "wakes_on": ["issues.opened"],
        "reads": ["issue"],
        "instructions": (
            "A new issue was opened on {{ repo }}, titled {{ issue.title }}:\n{{ issue.body }}\n\n"
            "Thank its author in one or two sentences, and say whether it is a question.\n"
        ),
        "answer": {
            "type": "object",
            "properties": {
                "reply": {"type": "string", "maxLength": 1000},
                "question": {"type": "boolean"},
            },
            "required": ["reply", "question"],
        },
        "deterministic": [
            {
                "when": "not issue.body.strip()",
                "answer": {"reply": "Thanks! Could you describe what you need?", "question": True},
            }
        ],
        "outputs": [
            {"comment": {"body": "{{ answer.reply | lines }}"}},
            {"labels": {"add": ["question"], "allowed": ["question"]}, "when": "answer.question"},
        ],
        "limits": {"outputs_per_event": 2, "usd_per_run": 0.05},
        "examples": [
            {
                "name": "a question is thanked and labelled",
                "event": {"name": "issues", "action": "opened", "payload_file": example},
                "answer": {"reply": "Thanks for asking!", "question": True},
                "expect": [
                    {"kind": "comment", "contains": "Thanks for asking"},
                    {"kind": "labels", "equals": ["question"]},
                    {"rung": "llm"},
                ],
            }
        ],
    }
    payload = issue_payload("How do I configure it?", "I could not find the setting in the README.")
    return {f"{coe}/{name}.yaml": dump(SKELETON_HEADER, spec), f"{coe}/{example}": payload_text(payload)}
