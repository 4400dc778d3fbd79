"""Context API bearer tokens: `wao_<id>_<secret>`, scoped to an installation (optionally a repository,
a job, read-only). A job's token always names its job's repository and reaches no other.

The secret is 256 random bits, so a single SHA-256 is enough to keep it unusable from
a database dump; the plaintext exists only in what `issue` returns. Tokens expire
(default 1 hour, at most 30 days) and can be revoked.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from agents.store.tables import ApiToken, AuditEntry, Installation, declared_length

TOKEN_PREFIX = "wao"
DEFAULT_TTL = timedelta(hours=1)
MAX_TTL = timedelta(days=30)
JOB_ID_MAX = declared_length(ApiToken.__table__.c.job_id)  # a job id longer than this has no token
_TOKEN = re.compile(r"^wao_([0-9a-f]{16})_([A-Za-z0-9_-]{43})$")
_ID = re.compile(r"^[0-9a-f]{16}$")
_TTL_PART = re.compile(r"(\d+)([smhd])")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


@dataclass(frozen=True)
class Grant:
    """What a request may do: the token's installation, its repository and job (if any), read-only
    or not, and who it is."""

    installation_id: int
    job_id: str | None = None
    read_only: bool = False
    actor: str = "system"
    repo: str | None = None  # OWNER/NAME: the only repository it reaches

    def may_reach(self, repo: str) -> bool:
        """A token bound to a repository reaches that one alone."""
        return self.repo is None or repo == self.repo

    def may_touch(self, repo: str, scope: str) -> bool:
        """In the repositories it reaches, a job's token reaches the scopes of its job: `<job>` and
        `<job>:…`; others reach all."""
        in_job = self.job_id is None or scope == self.job_id or scope.startswith(self.job_id + ":")
        return in_job and self.may_reach(repo)

    def reach(self) -> str:
        """What the grant reaches, as a refusal tells it."""
        where = f" of {self.repo}" if self.repo is not None else ""
        if self.job_id is not None:
            return (
                f"this token is scoped to job {self.job_id}: it reaches scopes {self.job_id} and {self.job_id}:…{where}"
            )
        return f"this token reaches {self.repo} only"


@dataclass(frozen=True)
class IssuedToken:
    id: str
    token: str  # the only copy of the secret
    installation_id: int
    job_id: str | None
    read_only: bool
    expires_at: datetime
    repo: str | None = None


@dataclass(frozen=True)
class TokenRecord:
    """A stored token as the API checks it (no secret, only its hash)."""

    id: str
    secret_hash: str
    installation_id: int
    job_id: str | None
    read_only: bool
    expires_at: float  # epoch seconds
    revoked: bool
    installation_active: bool
    repo: str | None = None

    def grant(self) -> Grant:
        return Grant(self.installation_id, self.job_id, self.read_only, actor=f"token:{self.id}", repo=self.repo)


class InvalidToken(ValueError):
    """Why a presented token is refused; the message is safe to show its bearer."""


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def parse(token: str) -> tuple[str, str]:
    """(id, secret) of a `wao_<id>_<secret>` token; InvalidToken if it is not shaped like one."""
    match = _TOKEN.match(token.strip())
    if match is None:
        raise InvalidToken("not a WAOOAW token (expected wao_<id>_<secret>)")
    return match.group(1), match.group(2)


def token_id(text: str) -> str:
    """The id of a token given either as the full token or as its id."""
    text = text.strip()
    if _ID.match(text):
        return text
    return parse(text)[0]


def parse_ttl(text: str) -> timedelta:
    """`90s`, `15m`, `1h`, `7d`, `1h30m` → a timedelta, more than zero and at most 30 days."""
    compact = text.strip().lower().replace(" ", "")
    parts = _TTL_PART.findall(compact)
    if not compact or "".join(number + unit for number, unit in parts) != compact:
        raise ValueError(f"invalid TTL {text!r}: use a number and a unit, e.g. 90s, 15m, 1h, 7d")
    ttl = sum((timedelta(**{_UNITS[unit]: int(number)}) for number, unit in parts), timedelta())
    if ttl <= timedelta():
        raise ValueError("the TTL must be more than zero")
    if ttl > MAX_TTL:
        raise ValueError(f"the TTL is at most {MAX_TTL.days} days")
    return ttl


def issue(
    session: Session,
    *,
    installation_id: int,
    job_id: str | None = None,
    repo: str | None = None,
    read_only: bool = False,
    ttl: timedelta = DEFAULT_TTL,
    created_by: str = "system",
    now: datetime | None = None,
) -> IssuedToken:
    """Create a token (the OIDC exchange does for a CoE runner; `waooaw tokens create` does)."""
    if not timedelta() < ttl <= MAX_TTL:
        raise ValueError(f"a token lives more than zero and at most {MAX_TTL.days} days")
    if job_id is not None and repo is None:
        raise ValueError(f"a job's token is bound to the job's repository: name the repository of job {job_id}")
    if job_id is not None and not 0 < len(job_id) <= JOB_ID_MAX:
        raise ValueError(f"a job id has 1 to {JOB_ID_MAX} characters")
    now = now or datetime.now(UTC)
    ident, secret = secrets.token_hex(8), secrets.token_urlsafe(32)
    expires_at = now + ttl
    session.add(
        ApiToken(
            id=ident,
            secret_hash=hash_secret(secret),
            installation_id=installation_id,
            job_id=job_id,
            repo=repo,
            read_only=read_only,
            created_by=created_by,
            created_at=now,
            expires_at=expires_at,
        )
    )
    session.add(
        AuditEntry(
            actor=created_by,
            action="token.create",
            target=f"token:{ident}",
            details={"repo": repo, "read_only": read_only, "expires_at": expires_at.isoformat()},
            installation_id=installation_id,
            job_id=job_id,
            at=now,
        )
    )
    session.flush()
    return IssuedToken(ident, f"{TOKEN_PREFIX}_{ident}_{secret}", installation_id, job_id, read_only, expires_at, repo)


def revoke(session: Session, ident: str, *, actor: str = "system", now: datetime | None = None) -> ApiToken | None:
    """Revoke a token by id; None if there is no such token. Revoking twice keeps the first time."""
    row = session.get(ApiToken, ident, with_for_update=True)
    if row is None:
        return None
    now = now or datetime.now(UTC)
    if row.revoked_at is None:
        row.revoked_at = now
        session.add(
            AuditEntry(
                actor=actor,
                action="token.revoke",
                target=f"token:{ident}",
                details={},
                installation_id=row.installation_id,
                job_id=row.job_id,
                at=now,
            )
        )
    return row


# Everything `check` needs about a token, in one statement: the API runs it on its event loop
# on PostgreSQL (bot/api/loop_db.py), and everything else through a session (`load`).
LOAD = (
    select(
        ApiToken.id,
        ApiToken.secret_hash,
        ApiToken.installation_id,
        ApiToken.job_id,
        ApiToken.read_only,
        ApiToken.expires_at,
        ApiToken.revoked_at,
        Installation.status,
        ApiToken.repo,
    )
    .outerjoin(Installation, Installation.id == ApiToken.installation_id)
    .where(ApiToken.id == bindparam("id"))
)


def load(session: Session, ident: str) -> TokenRecord | None:
    row = session.execute(LOAD, {"id": ident}).first()
    return None if row is None else record(*row)


def record(
    ident: str,
    secret_hash: str,
    installation_id: int,
    job_id: str | None,
    read_only: bool,
    expires_at: datetime,
    revoked_at: datetime | None,
    installation_status: str | None,
    repo: str | None,
) -> TokenRecord:
    """The TokenRecord of a row LOAD returned."""
    return TokenRecord(
        id=ident,
        secret_hash=secret_hash,
        installation_id=installation_id,
        job_id=job_id,
        read_only=read_only,
        expires_at=_aware(expires_at).timestamp(),
        revoked=revoked_at is not None,
        # An installation we never heard of (no webhook yet, or a development set-up) is not refused.
        installation_active=installation_status is None or installation_status == "active",
        repo=repo,
    )


def check(record: TokenRecord | None, secret: str, now: float) -> Grant:
    """The grant of a presented token, or InvalidToken saying why not."""
    if record is None or not hmac.compare_digest(record.secret_hash, hash_secret(secret)):
        raise InvalidToken("unknown token")
    if record.revoked:
        raise InvalidToken("the token was revoked")
    if now >= record.expires_at:
        raise InvalidToken("the token has expired")
    if not record.installation_active:
        raise InvalidToken("the token's installation is suspended or uninstalled")
    if record.job_id is not None and record.repo is None:
        # Made before job tokens named their repository, for a job whose repository was not known.
        raise InvalidToken(
            "this job token names no repository: create a new one (waooaw tokens create --job … --repo …)"
        )
    return record.grant()


def _aware(moment: datetime) -> datetime:
    """SQLite hands back naive datetimes; everything we store is UTC."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
