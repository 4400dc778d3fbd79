"""The demo's scripted model: canned answers behind the Anthropic Messages API, on loopback.

`waooaw demo` runs WowDomain's 13 agents and WowVision's LLM rung through the real
`LLMClient` and the real anthropic SDK; only the far end is scripted. It is not Claude:
every answer is fixed in `scripted_answers.yaml`, chosen by the one tool the request
offers (each agent answers through its own schema, so the tool says who is asking).
Token counts are estimated (characters / 4) so the ledger and the daily report show
what such calls would cost; no key is used and nothing is paid.
"""

from __future__ import annotations

import itertools
import json
import math
from pathlib import Path
from types import TracebackType
from typing import Any

import yaml
from starlette.requests import Request
from starlette.responses import JSONResponse

from bot.loopback import LoopbackServer

ANSWERS = Path(__file__).with_name("scripted_answers.yaml")


class ScriptedModel:
    """`with ScriptedModel() as url:` — the Messages API at `url` while the block runs."""

    def __init__(self, answers: Path = ANSWERS) -> None:
        self.answers: dict[str, Any] = yaml.safe_load(answers.read_text())
        self.calls = 0
        self._ids = itertools.count(1)
        self._server = LoopbackServer("waooaw-demo-model", self._endpoint, ["POST"])

    def __enter__(self) -> str:
        return self._server.start()

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self._server.stop()

    async def _endpoint(self, request: Request) -> JSONResponse:
        if request.path_params["path"] != "v1/messages":
            return _error(
                404,
                "not_found_error",
                f"the demo's scripted model serves POST /v1/messages only, not /{request.path_params['path']}",
            )
        body = await request.json()
        tool = _offered_tool(body)
        if tool not in self.answers:
            return _error(
                400, "invalid_request_error", f"the demo's scripted model has no answer for the tool {tool!r}"
            )
        self.calls += 1
        number = next(self._ids)
        content = [{"type": "tool_use", "id": f"toolu_scripted_{number}", "name": tool, "input": self.answers[tool]}]
        prompt = [body.get("system"), body.get("tools"), body.get("messages")]
        return JSONResponse(
            {
                "id": f"msg_scripted_{number}",
                "type": "message",
                "role": "assistant",
                "model": body["model"],
                "content": content,
                "stop_reason": "tool_use",
                "stop_sequence": None,
                "usage": {
                    "input_tokens": _tokens(prompt),
                    "output_tokens": _tokens(content),
                    "cache_creation_input_tokens": 0,
                    "cache_read_input_tokens": 0,
                },
            }
        )


def _offered_tool(body: dict[str, Any]) -> str | None:
    choice = body.get("tool_choice") or {}
    if choice.get("type") == "tool":
        return choice.get("name")
    tools = body.get("tools") or []
    return tools[0].get("name") if tools else None


def _tokens(value: Any) -> int:
    return math.ceil(len(json.dumps(value, ensure_ascii=False)) / 4)


def _error(status: int, kind: str, message: str) -> JSONResponse:
    return JSONResponse({"type": "error", "error": {"type": kind, "message": message}}, status_code=status)
