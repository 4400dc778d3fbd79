import asyncio

from agents.commands import find_command, may_act, parse_commands, refusal
from agents.events import Event
from tests.conftest import load_payload


def test_commands_start_a_line_and_quoted_lines_are_not_commands():
    body = 'Thanks!\n/waooaw status\n> /wowvision pause\n  /wowvision ignore no-print "noisy in scripts"'
    assert [(c.prefix, c.args) for c in parse_commands(body)] == [
        ("waooaw", ("status",)),
        ("wowvision", ("ignore", "no-print", "noisy in scripts")),
    ]
    assert find_command(body, "waooaw", ("help",)) is None
    assert find_command("please run /waooaw help", "waooaw") is None


class Reader:
    def __init__(self, role):
        self.role = role
        self.asked = []

    async def permission(self, repo, user):
        self.asked.append((repo, user))
        return self.role


def event():
    return Event.from_payload("d", "issue_comment", load_payload("issue_comment/created.payload.json"))


def test_only_write_maintain_admin_may_act_and_it_is_asked_of_github():
    for role, allowed in [
        ("admin", True),
        ("maintain", True),
        ("write", True),
        ("triage", False),
        ("read", False),
        ("none", False),
    ]:
        reader = Reader(role)
        assert asyncio.run(may_act(reader, event())) is allowed
        assert reader.asked == [("Codertocat/Hello-World", "Codertocat")]


def test_without_credentials_nobody_may_act():
    assert asyncio.run(may_act(None, event())) is False


def test_refusal_is_polite_and_names_the_command():
    command = parse_commands("/wowvision pause")[0]
    text = refusal(command, "octocat")
    assert text.startswith("Sorry @octocat, `/wowvision pause` needs write access")
