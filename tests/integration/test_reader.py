"""GitHubReader: the real githubkit client against the fake GitHub."""

from __future__ import annotations

import asyncio

import pytest

from bot.github import GitHubClients
from bot.reader import GitHubReader
from tests.fakes.github import FakeGitHub
from tests.helpers import make_settings

DIFF = """diff --git a/app.py b/app.py
index 83db48f..bf269f4 100644
--- a/app.py
+++ b/app.py
@@ -1,2 +1,3 @@
 import os
+import sys
 print(os.getcwd())
"""


@pytest.fixture
def reader():
    with FakeGitHub() as fake:
        clients = GitHubClients(make_settings(GITHUB_TOKEN="ghs_test", GITHUB_API_URL=fake.url), max_wait=1)
        yield fake, GitHubReader(clients, installation_id=None)


def test_reads_pull_request_and_compare_diffs(reader):
    fake, github = reader
    fake.pull_diffs[("o/r", 7)] = DIFF
    fake.compare_diffs[("o/r", "abc", "def")] = DIFF
    assert asyncio.run(github.pull_request_diff("o/r", 7)) == DIFF
    assert asyncio.run(github.compare_diff("o/r", "abc", "def")) == DIFF
    assert fake.calls("GET", r"/pulls/7$")[0].headers["accept"] == "application/vnd.github.diff"


def test_reads_a_file_at_a_commit_and_none_when_missing(reader):
    fake, github = reader
    fake.files[("o/r", "base-sha", ".github/waooaw.yml")] = b"packs: [secrets]\n\xff"
    assert asyncio.run(github.file_at("o/r", "base-sha", ".github/waooaw.yml")) == b"packs: [secrets]\n\xff"
    assert asyncio.run(github.file_at("o/r", "head-sha", ".github/waooaw.yml")) is None


def test_permission_through_the_reader(reader):
    fake, github = reader
    fake.set_permission("octocat", "write")
    assert asyncio.run(github.permission("o/r", "octocat")) == "write"
    assert asyncio.run(github.permission("o/r", "stranger")) == "none"


def test_reads_the_pull_request_object(reader):
    from tests.conftest import load_payload

    fake, github = reader
    pull = load_payload("pull_request/opened.payload.json")["pull_request"]
    fake.pulls[("o/r", pull["number"])] = pull
    got = asyncio.run(github.pull_request("o/r", pull["number"]))
    assert got["head"]["sha"] == pull["head"]["sha"] and got["base"]["sha"] == pull["base"]["sha"]
