"""Labels on an issue or pull request: added and removed once per decision."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from agents.context.documents import split_repo
from agents.outputs import Labels, marker
from bot.publish.common import Origin, content_hash, status_of
from bot.publish.records import PublishingBase, Where, key_for

if TYPE_CHECKING:
    from githubkit import GitHub


class LabelPublishing(PublishingBase):
    """Labels on an issue or pull request: added and removed once per decision.

    Labels carry no text a marker could end, so the record (named by the marker all the
    same) is what makes publishing again change nothing: once a decision is applied, a
    maintainer who takes a label off or puts one back is not overruled by a redelivery;
    a changed decision under the same key is applied. Applying is itself idempotent —
    only missing labels are added, only present ones removed, a 404 on removal means
    gone already — so a crash between GitHub's answer and the record does no harm.
    GitHub creates a label the repository lacks when it is added; which labels an agent
    may add at all is the agent's to limit (a spec's `allowed` list).
    """

    async def _labels(self, github: GitHub[Any], agent: str, output: Labels, origin: Origin) -> Where:
        owner, name = split_repo(output.repo)
        key = key_for(origin, output.repo, marker(agent, output.kind, output.key))
        digest = content_hash(output.issue_number, sorted(output.add), sorted(output.remove))
        record = await self._load(key)
        if record is not None and record.content_hash == digest:
            return record.where
        current: set[str] = set()
        async for label in github.rest.paginate(  # type: ignore[var-annotated]  # paginate cannot infer from githubkit's overloads
            github.rest.issues.async_list_labels_on_issue,
            owner=owner,
            repo=name,
            issue_number=output.issue_number,
            per_page=100,
        ):
            current.add(label.name.casefold())
        adding = [label for label in dict.fromkeys(output.add) if label.casefold() not in current]
        if adding:
            await github.rest.issues.async_add_labels(owner, name, output.issue_number, labels=adding)
        wanted = {label.casefold() for label in output.add}
        for label in dict.fromkeys(output.remove):
            if label.casefold() in current and label.casefold() not in wanted:
                await self._remove_label(github, owner, name, output.issue_number, label)
        await self._save(key, agent, output.kind, origin, github_id=output.issue_number, url=None, digest=digest)
        return output.issue_number, None

    @staticmethod
    async def _remove_label(github: GitHub[Any], owner: str, name: str, number: int, label: str) -> None:
        try:
            await github.rest.issues.async_remove_label(owner, name, number, label)
        except Exception as exc:
            if status_of(exc) != 404:  # 404: someone took it off in the meantime
                raise
