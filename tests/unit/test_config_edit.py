"""`/waooaw hire` and `fire` edit `.github/waooaw.yml` in its own text: the lists change, the rest stays as written."""

from __future__ import annotations

import pytest

from agents.config_edit import edit
from agents.vision.config import ConfigError, parse_config


def hired(text: str | None, name: str = "helper") -> str:
    edited = edit(text, name, hire=True, hire_required=True)
    assert edited is not None and edited.kept_layout
    return edited.text


def fired(text: str | None, name: str = "wowvision") -> str:
    edited = edit(text, name, hire=False, hire_required=False)
    assert edited is not None and edited.kept_layout
    return edited.text


def test_no_file_gets_one_with_the_section():
    assert hired(None) == "agents:\n  enable:\n    - helper\n"
    assert fired("") == "agents:\n  disable:\n    - wowvision\n"


def test_a_file_without_the_section_gets_it_at_its_end():
    text = "# our rules\npacks: [secrets]  # no newline"
    assert hired(text) == text + "\nagents:\n  enable:\n    - helper\n"
    assert hired("# only a comment\n") == "# only a comment\nagents:\n  enable:\n    - helper\n"


def test_a_block_list_keeps_the_comments_of_the_items_that_stay():
    text = "agents:\n  enable:\n    - one   # first\n    - two\n\n# rules next\nrules: {}\n"
    added = "agents:\n  enable:\n    - one   # first\n    - two\n    - helper\n\n# rules next\nrules: {}\n"
    assert hired(text) == added
    edited = edit(text, "two", hire=False, hire_required=True)
    assert edited is not None and edited.text == "agents:\n  enable:\n    - one   # first\n\n# rules next\nrules: {}\n"


def test_a_flow_list_stays_a_flow_list_and_a_missing_list_is_added_under_the_section():
    text = "review: COMMENT\nagents:\n  enable: [a-b]\n# trailing\nrules: {}\n"
    assert hired(text) == "review: COMMENT\nagents:\n  enable: [a-b, helper]\n# trailing\nrules: {}\n"
    disabled = "review: COMMENT\nagents:\n  enable: [a-b]\n  disable:\n    - wowvision\n# trailing\nrules: {}\n"
    assert fired(text) == disabled
    assert hired("agents: {enable: [a]}\n") == "agents: {enable: [a, helper]}\n"


def test_an_empty_section_or_list_is_filled_in_place():
    assert hired("agents:\npacks: [hygiene]\n") == "agents: {enable: [helper]}\npacks: [hygiene]\n"
    assert hired("agents: ~\n") == "agents: {enable: [helper]}\n"
    assert hired("agents:\n  enable:\n  disable: [x]\n") == "agents:\n  enable: [helper]\n  disable: [x]\n"


def test_hiring_an_agent_on_by_default_takes_it_off_disable_and_firing_a_hired_one_off_enable():
    assert edit("agents: {disable: [wowvision]}\n", "wowvision", hire=True, hire_required=False).text == (
        "agents: {disable: []}\n"
    )
    assert edit("agents:\n  enable:\n    - helper\n", "helper", hire=False, hire_required=True).text == (
        "agents:\n  enable: []\n"
    )


def test_nothing_to_change_is_none():
    assert edit("agents: {enable: [helper]}\n", "helper", hire=True, hire_required=True) is None
    assert edit(None, "wowvision", hire=True, hire_required=False) is None
    assert edit(None, "helper", hire=False, hire_required=True) is None


def test_a_layout_the_edit_does_not_foresee_is_written_out_from_its_data():
    text = "agents:\n  enable:\n    - >-\n      helper-two\n"
    edited = edit(text, "helper", hire=True, hire_required=True)
    assert edited is not None and not edited.kept_layout
    assert parse_config(edited.text).agents.enable == ["helper-two", "helper"]


def test_an_invalid_file_is_not_edited():
    with pytest.raises(ConfigError, match="waooaw.yml:3: enable: duplicate key"):
        edit("agents:\n  enable: [helper]\n  enable: [x]\n", "helper", hire=True, hire_required=True)
