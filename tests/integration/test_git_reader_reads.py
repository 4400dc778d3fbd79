"""What a spec agent reads in a dry run: the clone's files at HEAD, and nothing GitHub alone holds."""

from __future__ import annotations

import asyncio
from pathlib import Path

from bot.git_reader import LocalClone
from tests.vision_support import GitRepo

REPO = "Codertocat/Hello-World"


def test_a_clone_serves_its_files_by_glob_and_reads_the_rest_as_empty(tmp_path: Path) -> None:
    clone = GitRepo(tmp_path / "clone")
    clone.commit("base", {"README.md": "old\n"})
    head = clone.commit(
        "head",
        {
            "README.md": "# Hello\n",
            "docs/guide.md": "Guide\n",
            "docs/big.md": "x" * 2000,
            "docs/logo.md": b"\x89PNG\x00",
            "src/app.py": "print()\n",
        },
    )
    payload = {"repository": {"full_name": REPO}, "after": head}
    with LocalClone(clone.root, payload) as reader:
        files = asyncio.run(reader.default_branch_files(REPO, ["docs/**", "README.md"], 1000, 20))
        assert files == {"README.md": "# Hello\n", "docs/guide.md": "Guide\n"}
        assert list(asyncio.run(reader.default_branch_files(REPO, ["**/*.md"], 5000, 2))) == [
            "README.md",
            "docs/big.md",
        ]
        assert asyncio.run(reader.default_branch_files("someone/else", ["**"], 1000, 20)) == {}
        assert asyncio.run(reader.labels(REPO)) == []
        assert asyncio.run(reader.search_issues(REPO, "crash", 5, "all")) == []
        assert asyncio.run(reader.issue_with_comments(REPO, 3))["comments"] == []
