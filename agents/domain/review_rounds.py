"""The review rounds of a CoE job: the items reviewers raise, and what each round asks of reviewers and owners."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from agents.domain import deliverables as d
from agents.llm import untrusted

if TYPE_CHECKING:
    from agents.domain.steps import Step


def item_id(kind: str, owner: str, name: str) -> str:
    slug = "-".join("".join(ch if ch.isalnum() else " " for ch in f"{owner} {name}".lower()).split())
    return f"{kind}-{slug}"[:63]


def merge_items(*groups: Sequence[dict[str, Any]]) -> list[d.ReviewItem]:
    items: dict[str, d.ReviewItem] = {}
    for group in groups:
        for raw in group:
            item = d.ReviewItem.model_validate(raw)
            items.setdefault(item.id, item)
    return sorted(items.values(), key=lambda i: i.id)


def review_extra(round_no: int, previous: list[d.ReviewItem]) -> str:
    if not previous:
        return f"Review round {round_no}. Report only real problems; an empty list means the deliverables pass."
    listed = "\n".join(f"- `{i.id}` ({i.owner}): {i.problem}" for i in previous)
    return (
        f"Review round {round_no}. The owners revised their deliverables after these items. Report again "
        f"(same id) only the items that still hold, and any new problem:\n{listed}"
    )


def revision_extra(round_no: int, owner: str, current: dict[str, Step], items: list[d.ReviewItem]) -> str:
    listed = "\n".join(f"- `{i.id}`: {i.problem}" for i in items)
    mine = json.dumps(current[owner].deliverable, indent=1, sort_keys=True, ensure_ascii=False)
    return (
        f"Revision round {round_no}. Revise your deliverable to settle these review items:\n{listed}\n\n"
        f"Your current deliverable:\n{untrusted(mine)}"
    )
