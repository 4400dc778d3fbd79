"""Check runs, their annotations sent in batches and only when they changed."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from agents.context.documents import split_repo
from agents.outputs import CheckRun, marker
from bot.publish.common import Origin, content_hash, with_marker
from bot.publish.records import PublishingBase, Where, key_for

if TYPE_CHECKING:
    from githubkit import GitHub

SUMMARY_LIMIT = 65_535  # check run output summary
ANNOTATIONS_PER_REQUEST = 50


class CheckRunPublishing(PublishingBase):
    """Check runs, their annotations sent in batches and only when they changed."""

    async def _check_run(self, github: GitHub[Any], agent: str, output: CheckRun, origin: Origin) -> Where:
        owner, name = split_repo(output.repo)
        hidden = marker(agent, output.kind, output.key)
        external_id = f"waooaw:{agent}:{output.key}"
        summary = with_marker(output.summary, hidden, SUMMARY_LIMIT)
        annotations = [
            {
                "path": a.path,
                "start_line": a.start_line,
                "end_line": a.end_line,
                "annotation_level": a.level,
                "message": a.message,
                **({"title": a.title} if a.title else {}),
            }
            for a in output.annotations
        ]
        # Two halves: the whole output, and the annotations alone. GitHub appends the
        # annotations of every update, so unchanged ones are not sent again.
        annotations_digest = content_hash(annotations)[:32]
        digest = content_hash(output.title, summary, output.conclusion, annotations)[:32] + annotations_digest
        key = key_for(origin, output.repo, hidden)
        record = await self._load(key)
        if record is not None and record.content_hash == digest:
            return record.where
        run_id = record.github_id if record is not None else None
        send_annotations = True
        if run_id is None:
            run_id = await self._find_check_run(github, owner, name, output, external_id)
        elif record is not None and (record.content_hash or "")[32:] == annotations_digest:
            send_annotations = False
        batches = [
            annotations[i : i + ANNOTATIONS_PER_REQUEST] for i in range(0, len(annotations), ANNOTATIONS_PER_REQUEST)
        ]
        if not send_annotations or not batches:
            batches = [[]]
        final: dict[str, Any] = (
            {"status": "completed", "conclusion": output.conclusion} if output.conclusion else {"status": "in_progress"}
        )

        def output_with(batch: list[dict[str, Any]]) -> dict[str, Any]:
            return {"title": output.title, "summary": summary, **({"annotations": batch} if batch else {})}

        if run_id is None:
            first = batches.pop(0)
            status: dict[str, Any] = final if not batches else {"status": "in_progress"}
            run = (
                await github.rest.checks.async_create(  # type: ignore[call-overload]  # output: githubkit's TypedDict, ours a plain dict
                    owner,
                    name,
                    name=output.name,
                    head_sha=output.head_sha,
                    external_id=external_id,
                    output=output_with(first),
                    **status,
                )
            ).parsed_data
        for index, batch in enumerate(batches):
            status = final if index == len(batches) - 1 else {}
            run = (
                await github.rest.checks.async_update(  # type: ignore[call-overload]  # output: githubkit's TypedDict, ours a plain dict
                    owner, name, run_id if run_id is not None else run.id, output=output_with(batch), **status
                )
            ).parsed_data
        await self._save(key, agent, output.kind, origin, github_id=run.id, url=run.html_url, digest=digest)
        return run.id, run.html_url

    async def _find_check_run(
        self, github: GitHub[Any], owner: str, name: str, output: CheckRun, external_id: str
    ) -> int | None:
        # Only our App's runs: another App on the repo may use the same name and external id.
        mine: dict[str, Any] = {"app_id": self.clients.app_id} if self.clients.app_id is not None else {}
        response = await github.rest.checks.async_list_for_ref(
            owner, name, output.head_sha, check_name=output.name, filter_="all", per_page=100, **mine
        )
        for run in response.parsed_data.check_runs:
            if run.external_id == external_id:
                return run.id
        return None
