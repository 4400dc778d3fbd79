"""`git` in one local repository, through subprocess: what the commands read a change from where GitHub is not asked."""

from __future__ import annotations

import subprocess
from pathlib import Path
from types import TracebackType

from bot.usage import UsageError

INDEX = ":0"  # the index as a revision: `:0:path` is a staged file, as `sha:path` is a committed one


class Git:
    """`git` in one repository, through subprocess."""

    def __init__(self, repo: Path) -> None:
        self.repo = repo
        self._batch: subprocess.Popen[bytes] | None = None

    def run(self, *args: str) -> subprocess.CompletedProcess[bytes]:
        try:
            return subprocess.run(["git", "-C", str(self.repo), *args], capture_output=True, timeout=300)
        except FileNotFoundError:
            raise UsageError("git is not installed (or not on PATH)") from None

    def commit(self, ref: str) -> str | None:
        found = self.run("rev-parse", "--verify", "--quiet", "--end-of-options", f"{ref}^{{commit}}")
        return found.stdout.decode().strip() if found.returncode == 0 else None

    def default_branch(self) -> str | None:
        """origin's HEAD, else main, else master (local, then origin's)."""
        remote_head = self.run("symbolic-ref", "--quiet", "refs/remotes/origin/HEAD")
        candidates = ["main", "master", "origin/main", "origin/master"]
        if remote_head.returncode == 0:
            candidates.insert(0, remote_head.stdout.decode().strip().removeprefix("refs/remotes/"))
        return next((ref for ref in candidates if self.commit(ref)), None)

    def merge_base(self, one: str, two: str) -> str | None:
        found = self.run("merge-base", one, two)
        return found.stdout.decode().strip() if found.returncode == 0 else None

    def empty_tree(self) -> str:
        """The id of the empty tree in this repository's hash (the base of a first commit)."""
        return (
            subprocess.run(
                ["git", "-C", str(self.repo), "hash-object", "-t", "tree", "--stdin"],
                input=b"",
                capture_output=True,
                check=True,
                timeout=60,
            )
            .stdout.decode()
            .strip()
        )

    def diff(self, base: str, head: str) -> bytes:
        """`git diff base head`; with head INDEX, the staged changes against base."""
        sides = ["--cached", base] if head == INDEX else [base, head]
        found = self.run(
            "-c",
            "core.quotePath=false",
            "diff",
            "--no-color",
            "--no-ext-diff",
            "--no-textconv",
            "--find-renames",
            "--src-prefix=a/",
            "--dst-prefix=b/",
            "--unified=3",
            *sides,
            "--",
        )
        if found.returncode != 0:
            raise UsageError(f"git diff failed: {found.stderr.decode(errors='replace').strip()}")
        return found.stdout

    def read(self, commit: str, path: str) -> bytes | None:
        """A file's bytes at `commit` (or INDEX), or None when it is not there (one `cat-file --batch` for all)."""
        if "\n" in path:
            return None
        if self._batch is None:
            self._batch = subprocess.Popen(
                ["git", "-C", str(self.repo), "cat-file", "--batch"], stdin=subprocess.PIPE, stdout=subprocess.PIPE
            )
        assert self._batch.stdin is not None and self._batch.stdout is not None
        self._batch.stdin.write(f"{commit}:{path}\n".encode())
        self._batch.stdin.flush()
        header = self._batch.stdout.readline().split()
        if len(header) != 3:  # "<name> missing" or "<name> ambiguous"
            return None
        data = self._batch.stdout.read(int(header[2]))
        self._batch.stdout.read(1)  # the newline after the contents
        return data if header[1] == b"blob" else None

    def __enter__(self) -> Git:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        if self._batch is not None:
            assert self._batch.stdin is not None
            self._batch.stdin.close()
            self._batch.wait(timeout=30)


def toplevel(path: Path) -> Path:
    """The work tree of the git repository that holds `path`."""
    try:
        top = subprocess.run(["git", "-C", str(path), "rev-parse", "--show-toplevel"], capture_output=True)
    except FileNotFoundError:
        raise UsageError("git is not installed (or not on PATH)") from None
    if top.returncode != 0:
        raise UsageError(f"{path} is not a git repository")
    return Path(top.stdout.decode().strip())


def commit_range(git: Git, base: str | None, head: str) -> tuple[str, str]:
    """(base, head) as commits: `base` None is the merge-base of `head` with the default branch."""
    head_sha = git.commit(head)
    if head_sha is None:
        raise UsageError(f"--head {head!r} is not a commit in {git.repo}")
    if base is not None:
        base_sha = git.commit(base)
        if base_sha is None:
            raise UsageError(f"--base {base!r} is not a commit in {git.repo}")
        return base_sha, head_sha
    default = git.default_branch()
    if default is None:
        raise UsageError("cannot tell the default branch (no origin/HEAD, main or master); pass --base REF")
    merge_base = git.merge_base(default, head_sha)
    if merge_base is None:
        raise UsageError(f"{head!r} shares no history with {default!r}; pass --base REF")
    return merge_base, head_sha
