"""Context API tokens: their shape, lifetimes and checks (agents/tokens.py)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from agents import tokens
from agents.tokens import Grant, InvalidToken, TokenRecord


def record(**overrides) -> TokenRecord:
    values = {
        "id": "0123456789abcdef",
        "secret_hash": tokens.hash_secret("s" * 43),
        "installation_id": 7,
        "job_id": None,
        "read_only": False,
        "expires_at": 1000.0,
        "revoked": False,
        "installation_active": True,
    }
    return TokenRecord(**{**values, **overrides})


def test_parse_splits_id_and_secret_and_refuses_anything_else():
    secret = "a_b-" + "c" * 39
    assert tokens.parse(f"wao_0123456789abcdef_{secret}") == ("0123456789abcdef", secret)
    for bad in (
        "",
        "wao_",
        "wao_0123456789abcdef",
        "ghp_0123456789abcdef_" + "c" * 43,
        "wao_XYZ_" + "c" * 43,
        "wao_0123456789abcdef_short",
    ):
        with pytest.raises(InvalidToken):
            tokens.parse(bad)


def test_token_id_takes_a_token_or_an_id():
    assert tokens.token_id("0123456789abcdef") == "0123456789abcdef"
    assert tokens.token_id("wao_0123456789abcdef_" + "c" * 43) == "0123456789abcdef"
    with pytest.raises(InvalidToken):
        tokens.token_id("01234")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("90s", timedelta(seconds=90)),
        ("15m", timedelta(minutes=15)),
        ("1h", timedelta(hours=1)),
        ("1h30m", timedelta(minutes=90)),
        ("30d", timedelta(days=30)),
        (" 2H ", timedelta(hours=2)),
    ],
)
def test_parse_ttl(text, expected):
    assert tokens.parse_ttl(text) == expected


@pytest.mark.parametrize("text", ["", "1", "h", "0s", "31d", "720h1s", "1w", "-1h", "1.5h"])
def test_parse_ttl_refuses(text):
    with pytest.raises(ValueError):
        tokens.parse_ttl(text)


def test_check_gives_the_grant_of_a_good_token():
    assert tokens.check(record(job_id="job-1", repo="octo/hello", read_only=True), "s" * 43, now=999.0) == Grant(
        7, "job-1", True, actor="token:0123456789abcdef", repo="octo/hello"
    )


@pytest.mark.parametrize(
    ("stored", "secret", "now", "reason"),
    [
        (None, "s" * 43, 0.0, "unknown"),
        (record(), "t" * 43, 0.0, "unknown"),
        (record(revoked=True), "s" * 43, 0.0, "revoked"),
        (record(), "s" * 43, 1000.0, "expired"),
        (record(installation_active=False), "s" * 43, 0.0, "suspended"),
        (record(job_id="job-1"), "s" * 43, 0.0, "names no repository"),  # made before job tokens named one
    ],
)
def test_check_refuses(stored, secret, now, reason):
    with pytest.raises(InvalidToken, match=reason):
        tokens.check(stored, secret, now)


def test_a_job_grant_reaches_its_job_scopes_only():
    grant = Grant(1, job_id="job-1")
    assert grant.may_touch("octo/a", "job-1") and grant.may_touch("octo/a", "job-1:research")
    assert not any(grant.may_touch("octo/a", scope) for scope in ("job-10", "repo", "x:job-1"))
    assert Grant(1).may_touch("octo/a", "anything")


def test_a_grant_bound_to_a_repository_reaches_nothing_of_another():
    job = Grant(1, job_id="job-1", repo="octo/alpha")
    assert job.may_touch("octo/alpha", "job-1:research") and job.may_reach("octo/alpha")
    assert not any(job.may_touch(repo, "job-1") for repo in ("octo/other", "Octo/Alpha", "octo/alpha2"))
    assert not job.may_reach("octo/other") and "octo/alpha" in job.reach()
    repository = Grant(1, repo="octo/alpha")
    assert repository.may_touch("octo/alpha", "anything") and not repository.may_touch("octo/other", "anything")


def test_a_job_token_cannot_be_issued_without_its_repository():
    with pytest.raises(ValueError, match="repository"):
        tokens.issue(None, installation_id=1, job_id="job-1")  # type: ignore[arg-type]  # refused before any write
