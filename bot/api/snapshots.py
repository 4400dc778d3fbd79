"""/api/v1/snapshots: freeze a repository's (or a job's) contexts; restore them exactly, as new versions."""

from __future__ import annotations

from typing import TYPE_CHECKING

import orjson
from fastapi import APIRouter, Depends, Path, Response

from agents.context.documents import ID_MAX
from agents.tokens import Grant
from bot.api.json_body import JSON
from bot.api.route import granted
from bot.api.schemas import WRITE_ERRORS, ErrorBody, RestoreResult, SnapshotCreate, SnapshotCreated

if TYPE_CHECKING:
    from bot.api.router import Api


def router(api: Api) -> APIRouter:
    routes = APIRouter(route_class=api.route_class, tags=["snapshots"])

    @routes.post(
        "/snapshots",
        status_code=201,
        response_model=SnapshotCreated,
        summary="Snapshot every context of a repository whose scope starts with scope_prefix",
        responses=WRITE_ERRORS,
    )
    async def create_snapshot(body: SnapshotCreate, grant: Grant = Depends(granted)) -> Response:
        created = await api.call(api.service.snapshot, grant, f"{body.owner}/{body.repo}", body.scope_prefix)
        return Response(orjson.dumps(created), status_code=201, media_type=JSON)

    @routes.post(
        "/snapshots/{snapshot_id}/restore",
        response_model=RestoreResult,
        summary="Write each snapshotted context back as a new version with the snapshotted contents",
        responses={
            **WRITE_ERRORS,
            409: {"model": ErrorBody, "description": "A context was written during the restore."},
        },
    )
    async def restore_snapshot(snapshot_id: int = Path(ge=1, le=ID_MAX), grant: Grant = Depends(granted)) -> Response:
        restored = await api.call(api.service.restore, grant, snapshot_id)
        return Response(orjson.dumps(restored), media_type=JSON)

    return routes
