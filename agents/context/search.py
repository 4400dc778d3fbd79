"""Searching an installation's contexts: by repository, agent, scope, tags, time and summary text.

Newest first, in pages joined by an opaque cursor. The summary's full text is searched
with PostgreSQL's text search (the expression the GIN index of migration 0003 covers)
and with LIKE on SQLite, where every word must appear.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnClause, ColumnElement, Text, and_, case, cast, func, literal_column, or_, select
from sqlalchemy.orm import Session

from agents.context.documents import ID_MAX
from agents.context.errors import InvalidRequest
from agents.context.models import ContextVersion
from agents.context.repository import is_head
from agents.tokens import Grant

DEFAULT_LIMIT, MAX_LIMIT = 50, 200
_TEXT_SEARCH_CONFIG: ColumnClause[Any] = literal_column("'english'::regconfig")  # must equal the index's expression
# A \u0000 escape in a JSON text (after an even number of backslashes): PostgreSQL cannot turn it into text.
_NUL_ESCAPE = r"(^|[^\\])(\\\\)*\\u0000"
_WHOLE: ColumnClause[Any] = literal_column("'{}'::text[]")  # json #>> '{}': a JSON string as text


@dataclass(frozen=True)
class SearchQuery:
    owner: str | None = None
    repo: str | None = None  # a name with `owner`, or OWNER/NAME
    agent: str | None = None
    scope: str | None = None
    scope_prefix: str | None = None
    tags: tuple[str, ...] = ()  # every one must be present
    q: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    cursor: str | None = None
    limit: int = DEFAULT_LIMIT
    all_versions: bool = False  # by default only each context's latest version


def find(session: Session, grant: Grant, query: SearchQuery) -> tuple[list[ContextVersion], str | None]:
    if not 1 <= query.limit <= MAX_LIMIT:
        raise InvalidRequest(f"limit must be between 1 and {MAX_LIMIT}")
    dialect = session.get_bind().dialect.name
    conditions: list[ColumnElement[bool]] = [ContextVersion.installation_id == grant.installation_id]
    conditions += _repo_conditions(query.owner, query.repo)
    if grant.repo is not None:
        conditions.append(ContextVersion.repo == grant.repo)
    if query.agent:
        conditions.append(ContextVersion.agent == query.agent)
    if query.scope:
        conditions.append(ContextVersion.scope == query.scope)
    if query.scope_prefix:
        conditions.append(ContextVersion.scope.startswith(query.scope_prefix, autoescape=True))
    if grant.job_id is not None:
        conditions.append(
            or_(
                ContextVersion.scope == grant.job_id,
                ContextVersion.scope.startswith(grant.job_id + ":", autoescape=True),
            )
        )
    conditions += [_has_tag(dialect, tag) for tag in query.tags]
    if query.q and query.q.strip():
        conditions.append(_matches_text(dialect, query.q.strip()))
    if query.since is not None:
        conditions.append(ContextVersion.created_at >= _utc(query.since))
    if query.until is not None:
        conditions.append(ContextVersion.created_at < _utc(query.until))
    if query.cursor:
        conditions.append(ContextVersion.id < decode_cursor(query.cursor))
    if not query.all_versions:
        conditions.append(is_head())
    rows = list(
        session.scalars(
            select(ContextVersion).where(and_(*conditions)).order_by(ContextVersion.id.desc()).limit(query.limit + 1)
        )
    )
    if len(rows) > query.limit:
        return rows[: query.limit], encode_cursor(rows[query.limit - 1].id)
    return rows, None


def encode_cursor(last_id: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"before": last_id}).encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> int:
    try:
        decoded = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        before = decoded["before"]
        if not isinstance(before, int) or isinstance(before, bool) or not 0 < before <= ID_MAX:
            raise TypeError
        return before
    except (binascii.Error, ValueError, TypeError, KeyError, UnicodeDecodeError) as exc:
        raise InvalidRequest("invalid cursor: pass back the `next` value of the previous page") from exc


def _repo_conditions(owner: str | None, repo: str | None) -> list[ColumnElement[bool]]:
    if owner and repo:
        return [ContextVersion.repo == f"{owner}/{repo}"]
    if repo:
        return (
            [ContextVersion.repo == repo]
            if "/" in repo
            else [ContextVersion.repo.endswith("/" + repo, autoescape=True)]
        )
    if owner:
        return [ContextVersion.repo.startswith(owner + "/", autoescape=True)]
    return []


def _has_tag(dialect: str, tag: str) -> ColumnElement[bool]:
    if dialect == "postgresql":
        # Tag by tag, and a tag holding a \u0000 escape (stored before writes refused it) is passed
        # over rather than read as text: reading it would fail the whole search, for good.
        each = func.json_array_elements(ContextVersion.tags).table_valued("value")
        text = case((cast(each.c.value, Text).regexp_match(_NUL_ESCAPE), None), else_=each.c.value.op("#>>")(_WHOLE))
        return select(each.c.value).where(text == tag).exists()
    each = func.json_each(ContextVersion.tags).table_valued("value")
    return select(each.c.value).where(each.c.value == tag).exists()


def _matches_text(dialect: str, text: str) -> ColumnElement[bool]:
    if dialect == "postgresql":
        vector = func.to_tsvector(_TEXT_SEARCH_CONFIG, ContextVersion.summary)
        return vector.op("@@")(func.websearch_to_tsquery(_TEXT_SEARCH_CONFIG, text))
    return and_(*(ContextVersion.summary.contains(word, autoescape=True) for word in text.split()))


def _utc(moment: datetime) -> datetime:
    # SQLite keeps datetimes as text without a zone: compare in UTC, as they are written.
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    try:
        return moment.astimezone(UTC)
    except OverflowError:  # within a day of year 1 or 9999: clamped, nothing is stored that far out
        return (datetime.min if moment.year == 1 else datetime.max).replace(tzinfo=UTC)
