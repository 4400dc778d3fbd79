"""The routing index names exactly the agents whose `wakes_on` matches, as the loop over every agent would."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from agents.base import WowAgent, wakes_on_any
from agents.events import Event
from agents.routing import CACHED_KINDS, WakeIndex, event_names

NAMES = ["issues", "issue_comment", "pull_request", "push", "release", "agent_message", "star"]
ACTIONS = ["opened", "closed", "created", "edited", "synchronize", "handoff", "labeled"]
PARTS = st.sampled_from([*NAMES, *ACTIONS, "*", "?", "[io]", "iss", "pull_", "x"])
# Patterns as agents write them, and odd ones: globs in the name, a dot without action, brackets.
PATTERN = st.one_of(
    st.sampled_from(NAMES),
    st.builds(lambda n, a: f"{n}.{a}", st.sampled_from(NAMES), st.sampled_from(ACTIONS)),
    st.builds(lambda n: f"{n}.*", st.sampled_from(NAMES)),
    st.builds(lambda a, b, c: f"{a}{b}.{c}", PARTS, PARTS, PARTS),
    st.builds(lambda a, b: f"{a}{b}", PARTS, PARTS),
    st.text(alphabet="ab.*?[]!", max_size=6),
)
EVENT = st.tuples(st.sampled_from([*NAMES, "a", "a.b", "b"]), st.one_of(st.none(), st.sampled_from([*ACTIONS, "b"])))


def agent(index: int, patterns: list[str]) -> type[WowAgent]:
    return type(f"Agent{index}", (WowAgent,), {"name": f"agent-{index:03d}", "wakes_on": tuple(patterns)})


def event(name: str, action: str | None) -> Event:
    return Event("d", name, {}, action=action)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.lists(PATTERN, max_size=4), max_size=12), st.lists(EVENT, min_size=1, max_size=8))
def test_the_index_names_what_the_loop_over_every_agent_would(pattern_lists, events):
    agents = [agent(i, patterns) for i, patterns in enumerate(pattern_lists)]
    index = WakeIndex(agents)
    for name, action in events * 2:  # the second time, from the index's cache
        looped = tuple(a for a in agents if wakes_on_any(event(name, action), a.wakes_on))
        assert index.candidates(event(name, action)) == looped, (name, action)


def test_an_exact_kind_a_name_and_a_glob_each_route_their_own_events():
    exact, named, globbed, other = (
        agent(0, ["issues.opened"]),
        agent(1, ["push"]),
        agent(2, ["issue_comment.*"]),
        agent(3, ["release.published"]),
    )
    index = WakeIndex([exact, named, globbed, other])
    assert index.candidates(event("issues", "opened")) == (exact,)
    assert index.candidates(event("issues", "closed")) == ()
    assert index.candidates(event("push", None)) == (named,)
    assert index.candidates(event("issue_comment", "edited")) == (globbed,)
    assert event_names([exact, named, globbed, other]) == {"issues", "push", "issue_comment", "release"}


def test_the_cache_of_answers_stays_bounded():
    index = WakeIndex([agent(0, ["issues.*"])])
    for n in range(CACHED_KINDS + 10):
        index.candidates(event("issues", f"action{n}"))
    assert len(index._answers) <= CACHED_KINDS
