"""/api/v1/contexts: store, retrieve (ETag, If-None-Match), lineage and search."""

from __future__ import annotations

import re
from datetime import datetime
from typing import TYPE_CHECKING
from urllib.parse import quote

import orjson
from fastapi import APIRouter, Depends, Header, Query, Request, Response
from starlette.background import BackgroundTask

from agents.context.documents import VERSION_MAX, ContextRef
from agents.context.errors import InvalidRequest
from agents.context.search import DEFAULT_LIMIT, MAX_LIMIT, SearchQuery
from agents.tokens import Grant
from bot.api.cache import Hit
from bot.api.json_body import JSON
from bot.api.route import granted
from bot.api.schemas import (
    ERRORS,
    WRITE_ERRORS,
    ContextDocument,
    ContextWrite,
    ErrorBody,
    Lineage,
    SearchPage,
    Text,
    VersionCreated,
)

if TYPE_CHECKING:
    from bot.api.router import Api

_VERSION_TAG = re.compile(r'^"?([0-9]{1,18})"?$')
CONTEXT = "/contexts/{owner}/{repo}/{agent}/{scope}"


def etag(version: int) -> str:
    return f'"{version}"'


def expected_version(if_match: str | None) -> int | None:
    if if_match is None:
        return None
    match = _VERSION_TAG.match(if_match.strip())
    if match is None:
        raise InvalidRequest('If-Match takes the version the write builds on, in quotes, as the ETag gave it: "3"')
    return int(match.group(1))


def matches_none(if_none_match: str | None, version: int) -> bool:
    """Whether If-None-Match names this version (weak comparison, as RFC 9110 says for GET)."""
    if if_none_match is None:
        return False
    if if_none_match.strip() == "*":
        return True
    return any(tag.strip().removeprefix("W/") == etag(version) for tag in if_none_match.split(","))


def version_response(request: Request, version: int, body: bytes) -> Response:
    headers = {"ETag": etag(version), "Cache-Control": "no-cache"}
    if matches_none(request.headers.get("if-none-match"), version):
        return Response(status_code=304, headers=headers)
    return Response(body, media_type=JSON, headers=headers)


def router(api: Api) -> APIRouter:
    routes = APIRouter(route_class=api.route_class, tags=["contexts"])

    @routes.put(
        CONTEXT,
        status_code=201,
        response_model=VersionCreated,
        summary="Store a new version of a context",
        responses={
            **WRITE_ERRORS,
            409: {
                "model": ErrorBody,
                "description": "Stale or missing If-Match, or If-Match on a context that does not exist.",
            },
        },
    )
    async def store_context(
        owner: str,
        repo: str,
        agent: str,
        scope: str,
        body: ContextWrite,
        if_match: str | None = Header(
            None,
            description='The version the write builds on, as its ETag gave it ("3"); required once the context exists.',
        ),
        grant: Grant = Depends(granted),
    ) -> Response:
        ref = ContextRef.of(owner, repo, agent, scope)
        append = api.service.prepare_put(
            grant, ref, body.data, if_match=expected_version(if_match), summary=body.summary, tags=body.tags
        )
        written = await api.writer.append(append)
        version = written.row.version
        location = "/api/v1/contexts/" + "/".join(quote(part, safe="") for part in (owner, repo, agent, scope))
        return Response(
            orjson.dumps({"version": version}),
            status_code=201,
            media_type=JSON,
            headers={"ETag": etag(version), "Location": f"{location}?version={version}"},
            background=None if written.after_answer is None else BackgroundTask(written.after_answer),
        )

    @routes.get(
        CONTEXT,
        response_model=ContextDocument,
        summary="Retrieve a context: its latest version, or `version`",
        responses={**ERRORS, 304: {"description": "If-None-Match names this version."}},
    )
    async def retrieve_context(
        request: Request,
        owner: str,
        repo: str,
        agent: str,
        scope: str,
        version: int | None = Query(None, ge=1, le=VERSION_MAX, description="A version number; the latest by default."),
        if_none_match: str | None = Header(None, description="ETags already held: 304 if the version is one of them."),
        grant: Grant = Depends(granted),
    ) -> Response:
        ref = ContextRef.of(owner, repo, agent, scope)
        api.service.check_read(grant, ref)
        if version is not None or api.cache is None:
            _, document = await api.call(api.service.read, grant, ref, version)
            return version_response(request, document["version"], orjson.dumps(document))
        key = ref.key(grant.installation_id)
        cached = await api.cache.lookup(key)
        if isinstance(cached, Hit):
            return version_response(request, cached.version, cached.body)
        row_id, document = await api.call(api.service.read, grant, ref)
        body = orjson.dumps(document)
        if cached is not None:
            await api.cache.fill(key, cached, row_id, document["version"], body)
        return version_response(request, document["version"], body)

    @routes.get(
        CONTEXT + "/lineage",
        response_model=Lineage,
        summary="The versions and handoffs that led to a version, oldest first",
        responses=ERRORS,
    )
    async def context_lineage(
        owner: str,
        repo: str,
        agent: str,
        scope: str,
        version: int | None = Query(
            None, ge=1, le=VERSION_MAX, description="Whose lineage; the latest version by default."
        ),
        grant: Grant = Depends(granted),
    ) -> Response:
        ref = ContextRef.of(owner, repo, agent, scope)
        versions = await api.call(api.service.lineage, grant, ref, version)
        document = {"owner": owner, "repo": repo, "agent": agent, "scope": scope, "versions": versions}
        return Response(orjson.dumps(document), media_type=JSON)

    @routes.get(
        "/contexts",
        response_model=SearchPage,
        summary="Search contexts, newest first, a page at a time",
        responses=ERRORS,
    )
    async def search_contexts(
        owner: Text | None = Query(None),
        repo: Text | None = Query(None, description="A repository name (with `owner`), or OWNER/NAME."),
        agent: Text | None = Query(None),
        scope: Text | None = Query(None),
        scope_prefix: Text | None = Query(None, description="Scopes starting with this, e.g. a job id."),
        tag: list[Text] = Query([], description="Carries this tag; repeat for several (all must be present)."),
        q: Text | None = Query(None, description="Full text of the summary (PostgreSQL text search; words on SQLite)."),
        since: datetime | None = Query(
            None, description="Written at or after (ISO 8601; clamped to years 1 to 9999 in UTC)."
        ),
        until: datetime | None = Query(None, description="Written before (ISO 8601; clamped as `since`)."),
        cursor: Text | None = Query(None, description="The `next` of the previous page."),
        limit: int = Query(DEFAULT_LIMIT, ge=1, le=MAX_LIMIT),
        all_versions: bool = Query(False, description="Every version, not only each context's latest."),
        grant: Grant = Depends(granted),
    ) -> Response:
        query = SearchQuery(
            owner=owner,
            repo=repo,
            agent=agent,
            scope=scope,
            scope_prefix=scope_prefix,
            tags=tuple(tag),
            q=q,
            since=since,
            until=until,
            cursor=cursor,
            limit=limit,
            all_versions=all_versions,
        )
        page = await api.call(api.service.search, grant, query)
        return Response(orjson.dumps(page), media_type=JSON)

    return routes
