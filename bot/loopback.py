"""A real HTTP server on 127.0.0.1 in a background thread: what `waooaw demo`'s scripted model runs on,
and the tests' fakes of GitHub and Anthropic."""

from __future__ import annotations

import threading
from collections.abc import Awaitable, Callable

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route


class LoopbackServer:
    """Serves every path with one endpoint; `url` is known once `start()` returns."""

    def __init__(self, name: str, endpoint: Callable[[Request], Awaitable[Response]], methods: list[str]) -> None:
        app = Starlette(routes=[Route("/{path:path}", endpoint, methods=methods)])
        config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="off")
        self.name = name
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, name=name, daemon=True)
        self.url = ""

    def start(self) -> str:
        self._thread.start()
        while not self._server.started:  # start-up, bounded by the thread staying alive
            if not self._thread.is_alive():
                raise RuntimeError(f"{self.name} did not start")
            threading.Event().wait(0.01)
        port = self._server.servers[0].sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        return self.url

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)
