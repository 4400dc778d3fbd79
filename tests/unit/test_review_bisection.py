"""bisect_accepted: which inline comments GitHub accepts, asking as little as it can."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from bot.publish import bisect_accepted


def accepted(comments: Sequence[int], bad: set[int]) -> tuple[list[int], list[list[int]]]:
    """What bisection keeps, and every part it asked about."""
    asked: list[list[int]] = []

    async def fits(part: Sequence[int]) -> bool:
        asked.append(list(part))
        return not bad & set(part)

    return asyncio.run(bisect_accepted(comments, fits)), asked


@pytest.mark.parametrize("bad", [{0}, {1}, {2}, {0, 2}, {0, 1, 2}])
def test_keeps_exactly_the_comments_that_fit(bad: set[int]) -> None:
    kept, _ = accepted([0, 1, 2], bad)
    assert kept == [c for c in [0, 1, 2] if c not in bad]


def test_never_asks_about_the_whole_list_or_a_part_known_to_fail() -> None:
    kept, asked = accepted([0, 1, 2, 3], {3})
    assert kept == [0, 1, 2]
    # [0, 1] fits, so [2, 3] fails without asking; [2] fits, so [3] is the bad one.
    assert asked == [[0, 1], [2]]


def test_all_bad_costs_one_question_per_part_of_the_tree() -> None:
    kept, asked = accepted(list(range(8)), set(range(8)))
    assert kept == [] and len(asked) == 2 * 8 - 2


def test_nothing_to_ask_about_no_comments() -> None:
    assert accepted([], set()) == ([], [])
