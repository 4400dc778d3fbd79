"""/api/v1/handoffs: a package addressed to the next agent, claimed once."""

from __future__ import annotations

from typing import TYPE_CHECKING

import orjson
from fastapi import APIRouter, Depends, Path, Query, Response

from agents.context.documents import ID_MAX
from agents.context.search import DEFAULT_LIMIT, MAX_LIMIT
from agents.tokens import Grant
from bot.api.json_body import JSON
from bot.api.route import granted
from bot.api.schemas import (
    ERRORS,
    WRITE_ERRORS,
    ErrorBody,
    HandoffCreate,
    HandoffCreated,
    HandoffDocument,
    HandoffList,
    Text,
)

if TYPE_CHECKING:
    from bot.api.router import Api


def router(api: Api) -> APIRouter:
    routes = APIRouter(route_class=api.route_class, tags=["handoffs"])

    @routes.post(
        "/handoffs",
        status_code=201,
        response_model=HandoffCreated,
        summary="Hand a package (deliverable, open questions, provenance) and a context version to an agent",
        responses=WRITE_ERRORS,
    )
    async def create_handoff(body: HandoffCreate, grant: Grant = Depends(granted)) -> Response:
        created = await api.call(
            lambda: api.service.create_handoff(
                grant,
                repo=f"{body.owner}/{body.repo}",
                scope=body.scope,
                from_agent=body.from_agent,
                to_agent=body.to_agent,
                package=body.package.model_dump(mode="json"),
                version=body.version,
            )
        )
        return Response(orjson.dumps(created), status_code=201, media_type=JSON)

    @routes.post(
        "/handoffs/{handoff_id}/claim",
        response_model=HandoffDocument,
        summary="Claim a handoff: 200 the first time, 409 after",
        responses={**WRITE_ERRORS, 409: {"model": ErrorBody, "description": "Already claimed."}},
    )
    async def claim_handoff(handoff_id: int = Path(ge=1, le=ID_MAX), grant: Grant = Depends(granted)) -> Response:
        claimed = await api.call(api.service.claim_handoff, grant, handoff_id)
        return Response(orjson.dumps(claimed), media_type=JSON)

    @routes.get("/handoffs/{handoff_id}", response_model=HandoffDocument, summary="One handoff", responses=ERRORS)
    async def get_handoff(handoff_id: int = Path(ge=1, le=ID_MAX), grant: Grant = Depends(granted)) -> Response:
        found = await api.call(api.service.get_handoff, grant, handoff_id)
        return Response(orjson.dumps(found), media_type=JSON)

    @routes.get("/handoffs", response_model=HandoffList, summary="Handoffs, oldest first", responses=ERRORS)
    async def list_handoffs(
        to_agent: Text | None = Query(None),
        owner: Text | None = Query(None),
        repo: Text | None = Query(None, description="A repository name (with `owner`), or OWNER/NAME."),
        scope: Text | None = Query(None),
        unclaimed: bool = Query(True, description="Only those nobody has claimed yet."),
        limit: int = Query(DEFAULT_LIMIT, ge=1, le=MAX_LIMIT),
        grant: Grant = Depends(granted),
    ) -> Response:
        full_repo = f"{owner}/{repo}" if owner and repo and "/" not in repo else repo
        found = await api.call(
            lambda: api.service.list_handoffs(
                grant, to_agent=to_agent, repo=full_repo, scope=scope, unclaimed=unclaimed, limit=limit
            )
        )
        return Response(orjson.dumps({"items": found}), media_type=JSON)

    return routes
