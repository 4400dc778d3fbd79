"""Request and response bodies of the Context API, as its OpenAPI schema shows them."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from agents.context.documents import (
    NO_CONTROLS,
    PROSE,
    SUMMARY_MAX,
    TAG_MAX,
    TAGS_MAX,
    VERSION_MAX,
    check_text,
)
from agents.context.errors import InvalidRequest


def _outside(*, prose: bool = False) -> AfterValidator:
    def check(value: str) -> str:
        try:
            return check_text("the value", value, prose=prose)
        except InvalidRequest as refused:  # pydantic names the field: 422 with its location
            raise ValueError(refused.message) from None

    return AfterValidator(check)


# Every text field and query parameter from outside is one of these: no control characters.
Text = Annotated[str, _outside(), Field(json_schema_extra={"pattern": NO_CONTROLS})]
Prose = Annotated[str, _outside(prose=True), Field(json_schema_extra={"pattern": PROSE})]


class ContextWrite(BaseModel):
    """A new version of a context."""

    model_config = ConfigDict(extra="forbid")

    data: dict[str, Any] = Field(description="The context itself: any JSON object (no U+0000 in its strings).")
    summary: Prose = Field("", max_length=SUMMARY_MAX, description="Searchable text saying what this version holds.")
    tags: list[Annotated[Text, Field(min_length=1, max_length=TAG_MAX)]] = Field(
        default_factory=list, max_length=TAGS_MAX, description=f"Labels, each 1 to {TAG_MAX} characters."
    )


class VersionCreated(BaseModel):
    version: int


class ContextDocument(BaseModel):
    owner: str
    repo: str
    agent: str
    scope: str
    version: int
    data: dict[str, Any]
    summary: str
    tags: list[str]
    created_by: str | None
    job: str | None
    event: str | None = Field(description="The webhook delivery that led to this version, if any.")
    created_at: str


class ContextSummary(BaseModel):
    """A search result: a version without its data."""

    owner: str
    repo: str
    agent: str
    scope: str
    version: int
    summary: str
    tags: list[str]
    created_by: str | None
    job: str | None
    event: str | None
    created_at: str


class SearchPage(BaseModel):
    items: list[ContextSummary]
    next: str | None = Field(description="Pass as `cursor` for the next page; null on the last page.")


class RestoreLink(BaseModel):
    snapshot: int
    version: int


class HandoffBrief(BaseModel):
    id: int
    to_agent: str
    claimed_at: str | None
    claimed_by: str | None


class LineageEntry(BaseModel):
    version: int
    parent: int | None = Field(
        description="The version before this one in its lineage (for a restore: the one it restores)."
    )
    agent: str
    created_by: str | None
    created_at: str
    job: str | None
    event: str | None
    summary: str
    tags: list[str]
    restores: RestoreLink | None = Field(
        description="Set on a version a restore wrote: the snapshotted version it carries."
    )
    kept_by_snapshot: int | None = Field(
        description="Set when the live row is gone and this snapshot kept its lineage."
    )
    handoffs: list[HandoffBrief]


class Lineage(BaseModel):
    owner: str
    repo: str
    agent: str
    scope: str
    versions: list[LineageEntry] = Field(description="Oldest first.")


class SnapshotCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    owner: Text
    repo: Text
    scope_prefix: Text = Field(
        "", description="Only contexts whose scope starts with this (a job id); empty: all of them."
    )


class SnapshotCreated(BaseModel):
    id: int
    contexts: int


class RestoredContext(BaseModel):
    owner: str
    repo: str
    agent: str
    scope: str
    version: int = Field(description="The new version the restore wrote.")
    restores: int = Field(description="The snapshotted version whose contents it carries.")


class RestoreResult(BaseModel):
    snapshot: int
    restored: list[RestoredContext]


class HandoffPackage(BaseModel):
    deliverable: Any = Field(description="What the sending agent produced (no U+0000 in its strings).")
    open_questions: list[Prose] = Field(default_factory=list)
    provenance: dict[str, Any] = Field(default_factory=dict, description="Where the deliverable comes from.")


class HandoffCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    owner: Text
    repo: Text
    scope: Text
    from_agent: Text
    to_agent: Text
    package: HandoffPackage
    version: int | None = Field(
        None, ge=1, le=VERSION_MAX, description="The sender's context version to hand on; the latest by default."
    )


class HandoffCreated(BaseModel):
    id: int


class HandoffDocument(BaseModel):
    id: int
    owner: str
    repo: str
    scope: str
    from_agent: str
    to_agent: str
    context_version: int | None
    package: HandoffPackage
    job: str | None
    created_at: str
    claimed_at: str | None
    claimed_by: str | None


class HandoffList(BaseModel):
    items: list[HandoffDocument]


class ErrorBody(BaseModel):
    error: str


ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorBody, "description": "No token, or a malformed, unknown, expired or revoked one."},
    403: {"model": ErrorBody, "description": "A write with a read-only token, or outside the token's job."},
    404: {
        "model": ErrorBody,
        "description": "Not found in the token's installation (whatever other installations hold).",
    },
    # Two shapes: {"error": "…"} from the API's own checks, {"detail": [{"loc", "msg", …}]} from FastAPI's.
    422: {"description": "A name, parameter or body invalid (a control character, a number out of range, …)."},
    429: {"model": ErrorBody, "description": "Over the token's rate limit; see Retry-After."},
    503: {"model": ErrorBody, "description": "The store cannot be reached; try again after Retry-After."},
}
# Every POST and PUT reads its body, if one is sent, before its handler (bot/api/route.py, json_body.py).
WRITE_ERRORS: dict[int | str, dict[str, Any]] = {
    **ERRORS,
    413: {"model": ErrorBody, "description": "Body larger than the limit."},
    415: {"model": ErrorBody, "description": "Body not JSON (Content-Type must be application/json)."},
}
