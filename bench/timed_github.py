#!/usr/bin/env python
"""The fake GitHub for bench/load.py: tests/fakes/github.py in a process of its own, timing its answers.

    python bench/timed_github.py --serve github --port 8080     # as bench.common.spawn_server starts it

Besides the GitHub API it answers /healthz and STATE_PATH, where `GitHubRecord` reads what it
did since its last look: when it answered each call, and the comments it holds. It stamps
each answer with `time.perf_counter()`, CLOCK_MONOTONIC on Linux: one clock for every
process of the machine, so the bench compares it with its own send times.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.common import Connection

STATE_PATH = "/_bench/state"
HELP_MARKER = "<!-- waooaw:concierge:comment:help:{number} -->"
COMMENT_ID_BASE = 900_000_000  # the users' comments: far above the ids the fake gives its own objects


def serve_fake_github(port: int) -> None:
    """tests/fakes/github.py on `port`, noting when it answered each call (read at STATE_PATH)."""
    import uvicorn
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse, Response
    from starlette.routing import Route

    from tests.fakes.github import FakeGitHub

    class TimedFakeGitHub(FakeGitHub):
        def __init__(self) -> None:
            super().__init__()
            self.answered: list[tuple[float, str, str, int]] = []  # (perf_counter, method, path, status)

        async def _endpoint(self, request: Request) -> Response:
            path = "/" + request.path_params["path"]
            if path == "/healthz":
                return JSONResponse({"status": "ok"})
            if path == STATE_PATH:
                query = request.query_params
                return JSONResponse(self.record(int(query.get("calls", 0)), int(query.get("comments", 0))))
            response = await super()._endpoint(request)
            # perf_counter is CLOCK_MONOTONIC here: one clock for every process of the machine.
            self.answered.append((time.perf_counter(), request.method, path, response.status_code))
            return response

        def record(self, calls_from: int, comments_from: int) -> dict[str, list[list[object]]]:
            comments = list(self.comments.values())[comments_from:]
            return {
                "calls": [list(call) for call in self.answered[calls_from:]],
                "comments": [[c["id"], int(c["issue_url"].rsplit("/", 1)[1]), c["body"][-120:]] for c in comments],
            }

    fake = TimedFakeGitHub()
    fake.url = f"http://127.0.0.1:{port}"  # the fake builds its objects' URLs from it
    app = Starlette(routes=[Route("/{path:path}", fake._endpoint, methods=["GET", "POST", "PATCH", "PUT", "DELETE"])])
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")


class GitHubRecord:
    """What the fake GitHub did, per delivery (known by its issue number), read incrementally."""

    def __init__(self, port: int) -> None:
        self.connection = Connection("127.0.0.1", port)
        self.calls_seen = self.comments_seen = 0
        self.last_call: dict[int, float] = {}  # issue number → when GitHub answered its last call
        self.help_comments: Counter[int] = Counter()  # issue number → comments carrying its marker
        self.reactions: Counter[int] = Counter()  # issue number → reactions created or found on its comment
        self.comment_issue: dict[int, int] = {}  # our comment's id → its issue number

    async def update(self) -> None:
        query = f"{STATE_PATH}?calls={self.calls_seen}&comments={self.comments_seen}"
        status, payload = await self.connection.request("GET", query, {})
        if status != 200:
            raise SystemExit(f"the fake GitHub answered {status} to {query}")
        record = json.loads(payload)
        for comment_id, number, tail in record["comments"]:
            self.comment_issue[comment_id] = number
            if HELP_MARKER.format(number=number) in tail:
                self.help_comments[number] += 1
        for at, method, path, status in record["calls"]:
            number = self._number(method, path, status)
            if number is not None:
                self.last_call[number] = max(at, self.last_call.get(number, 0.0))
        self.calls_seen += len(record["calls"])
        self.comments_seen += len(record["comments"])

    def _number(self, method: str, path: str, status: int) -> int | None:
        """The issue number of the delivery a call served: its issue, its comment or our comment on it."""
        parts = path.strip("/").split("/")  # repos/OWNER/NAME/issues/...
        if len(parts) < 6 or parts[3] != "issues":
            return None
        if parts[4] == "comments":
            comment_id = int(parts[5])
            if len(parts) == 7 and parts[6] == "reactions":
                number = comment_id - COMMENT_ID_BASE
                if method == "POST" and status in (200, 201):
                    self.reactions[number] += 1
                return number
            return self.comment_issue.get(comment_id)
        return int(parts[4]) if parts[4].isdigit() else None

    async def close(self) -> None:
        await self.connection.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench/timed_github.py", description=__doc__.splitlines()[0])
    parser.add_argument("--serve", choices=("github",), required=True)
    parser.add_argument("--port", type=int, required=True)
    serve_fake_github(parser.parse_args(argv).port)
    return 0


if __name__ == "__main__":
    sys.exit(main())
