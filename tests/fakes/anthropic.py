"""A fake Anthropic Messages API on loopback, for the real anthropic SDK.

    with FakeAnthropic() as fake:
        fake.answer({"verdict": "pass"})            # the next call: one tool_use with this input
        llm = LLMClient("test-key", "claude-sonnet-4-6", base_url=fake.url)
        ...
        assert fake.messages[0].json["system"][0]["cache_control"] == {"type": "ephemeral"}

A real HTTP server (uvicorn in a background thread, Starlette app, port chosen by the
OS), so the SDK's own request building, retries, `retry-after` handling and error types
are exercised. `POST /v1/messages` answers with a complete Message; what it says comes
from a queue of scripted replies, else from `responder(request_json)`, else it is a 400
naming the missing script (a test bug, which the SDK does not retry).

Scripted replies: `answer(input)` (a tool_use of the request's tool), `answer_tool(name,
input)` (any tool name), `answer_text(text)` (text instead of a tool call), `fail(status,
times=…)` (an API error: 429 rate_limit_error with retry-after, 500 api_error, 529
overloaded_error, …). Failures carry `retry-after-ms` so the SDK's retries do not sleep.

Usage is computed like the API does it: the prefix up to the last `cache_control`
breakpoint (tools, then system blocks) is written to the cache on first sight
(`cache_creation_input_tokens`) and read on every later request with the same model and
prefix (`cache_read_input_tokens`); the rest counts as `input_tokens`. Tokens are
characters / 4. The fake has no minimum cacheable length.

Like the API, a forced `tool_choice` ("tool" or "any") on a model in
`REJECTS_FORCED_TOOL_CHOICE` is a 400.

Message Batches: `POST /v1/messages/batches` answers every request at once (scripts and
`responder` as for single calls) and keeps the results; the batch reads as in progress for
`batch_polls` retrievals, then ended, and `GET …/{id}/results` streams them as JSONL.
`batches` lists what was submitted.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from tests.fakes.loopback import LoopbackServer

# Documented: forced tool use returns an error on these (their thinking cannot be turned off).
REJECTS_FORCED_TOOL_CHOICE = frozenset({"claude-sonnet-5-5", "claude-opus-5-5", "claude-fable-5-1"})

ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    503: "api_error",
    529: "overloaded_error",
}


@dataclass
class Call:
    method: str
    path: str
    json: Any
    headers: dict[str, str] = field(repr=False)
    status: int = 0
    response: Any = field(default=None, repr=False)  # the body answered


@dataclass(frozen=True)
class Reply:
    """One scripted reply: a tool call, a text answer, or an API error."""

    kind: str  # "tool" | "text" | "error"
    tool_input: Any = None
    tool_name: str | None = None  # None: the request's own tool
    text: str = ""
    status: int = 200
    error_type: str = ""
    message: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    stop_reason: str | None = None
    output_tokens: int | None = None


class _Jsonl(str):
    """A body answered as JSON lines, not as one JSON document."""


def tokens(value: Any) -> int:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, sort_keys=True)
    return math.ceil(len(text) / 4)


class FakeAnthropic:
    def __init__(self) -> None:
        self.url = ""
        self._lock = threading.Lock()
        self._server: LoopbackServer | None = None
        self.reset()

    def reset(self) -> None:
        """Forget every request, script and cached prefix."""
        self.requests: list[Call] = []
        self.responder: Callable[[dict[str, Any]], Reply | dict[str, Any]] | None = None
        self._script: deque[Reply] = deque()
        self._cached_prefixes: set[str] = set()
        self._ids = itertools.count(1)
        self.batches: dict[str, dict[str, Any]] = {}  # id → {"requests", "results", "polls_left"}
        self.batch_polls = 0  # retrievals that still say "in_progress"

    # ------------------------------------------------------------ lifecycle

    def __enter__(self) -> FakeAnthropic:
        self._server = LoopbackServer("fake-anthropic", self._endpoint, ["GET", "POST"])
        self.url = self._server.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        assert self._server is not None
        self._server.stop()

    # ------------------------------------------------------------ knobs

    def answer(self, tool_input: Any, *, stop_reason: str = "tool_use", output_tokens: int | None = None) -> None:
        """The next call answers with one tool_use of the request's tool, with this input (valid or not)."""
        self._script.append(Reply("tool", tool_input=tool_input, stop_reason=stop_reason, output_tokens=output_tokens))

    def answer_tool(self, name: str, tool_input: Any) -> None:
        """The next call answers with a tool_use of a tool the request may not even have offered."""
        self._script.append(Reply("tool", tool_input=tool_input, tool_name=name))

    def answer_text(self, text: str) -> None:
        """The next call answers in prose, with no tool call."""
        self._script.append(Reply("text", text=text))

    def fail(
        self,
        status: int,
        *,
        times: int = 1,
        error_type: str | None = None,
        message: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        """The next `times` calls (SDK retries included) answer with this API error."""
        if headers is None:
            headers = {"retry-after-ms": "1"}
            if status == 429:
                headers["retry-after"] = "1"
        error_type = error_type or ERROR_TYPES.get(status, "api_error")
        reply = Reply(
            "error", status=status, error_type=error_type, message=message or f"fake {error_type}", headers=headers
        )
        self._script.extend([reply] * times)

    @property
    def messages(self) -> list[Call]:
        """The requests to POST /v1/messages, SDK retries included."""
        return [c for c in self.requests if c.method == "POST" and c.path == "/v1/messages"]

    # ------------------------------------------------------------ HTTP

    async def _endpoint(self, request: Request) -> JSONResponse:
        raw = await request.body()
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        call = Call(
            request.method, "/" + request.path_params["path"], body, {k.lower(): v for k, v in request.headers.items()}
        )
        with self._lock:
            self.requests.append(call)
            status, payload, headers = self._dispatch(call)
        call.status, call.response = status, payload
        if isinstance(payload, _Jsonl):
            return Response(str(payload), status_code=status, headers=headers, media_type="application/binary")
        return JSONResponse(payload, status_code=status, headers=headers)

    def _dispatch(self, call: Call) -> tuple[int, Any, dict[str, str]]:
        if not call.headers.get("x-api-key") and not call.headers.get("authorization"):
            return _error(401, "authentication_error", "x-api-key header is required")
        if call.method == "POST" and call.path == "/v1/messages/count_tokens":
            problem = _invalid(call.json, counting=True)
            if problem:
                return _error(400, "invalid_request_error", problem)
            return 200, {"input_tokens": sum(self._split_tokens(call.json, remember=False))}, {}
        if call.path.startswith("/v1/messages/batches"):
            return self._batch_route(call)
        if call.method != "POST" or call.path != "/v1/messages":
            return _error(404, "not_found_error", f"fake Anthropic does not serve {call.method} {call.path}")
        return self._answer(call.json)

    def _answer(self, request: Any) -> tuple[int, Any, dict[str, str]]:
        """One Messages request answered: by the script, else the responder."""
        problem = _invalid(request)
        if problem:
            return _error(400, "invalid_request_error", problem)
        if self._script:
            reply = self._script.popleft()
        elif self.responder is not None:
            produced = self.responder(request)
            reply = produced if isinstance(produced, Reply) else Reply("tool", tool_input=produced)
        else:
            return _error(400, "invalid_request_error", "fake Anthropic: no scripted reply for this request")
        if reply.kind == "error":
            return _error(reply.status, reply.error_type, reply.message, reply.headers)
        return 200, self._message(request, reply), {"request-id": f"req_fake{next(self._ids)}"}

    def _batch_route(self, call: Call) -> tuple[int, Any, dict[str, str]]:
        parts = call.path.removeprefix("/v1/messages/batches").strip("/").split("/")
        if call.method == "POST" and parts == [""]:
            batch_id = f"msgbatch_fake{next(self._ids)}"
            results = []
            for entry in call.json["requests"]:
                status, body, _ = self._answer(entry["params"])
                outcome = (
                    {"type": "succeeded", "message": body} if status == 200 else {"type": "errored", "error": body}
                )
                results.append({"custom_id": entry["custom_id"], "result": outcome})
            self.batches[batch_id] = {
                "requests": call.json["requests"],
                "results": results,
                "polls_left": self.batch_polls,
            }
            return 200, self._batch_object(batch_id), {}
        batch = self.batches.get(parts[0])
        if batch is None:
            return _error(404, "not_found_error", f"no batch {parts[0]}")
        if call.method == "GET" and len(parts) == 1:
            return 200, self._batch_object(parts[0], retrieved=True), {}
        if call.method == "GET" and parts[1:] == ["results"]:
            return 200, _Jsonl("".join(json.dumps(r) + "\n" for r in batch["results"])), {}
        return _error(404, "not_found_error", f"fake Anthropic does not serve {call.method} {call.path}")

    def _batch_object(self, batch_id: str, *, retrieved: bool = False) -> dict[str, Any]:
        batch = self.batches[batch_id]
        ended = retrieved and batch["polls_left"] <= 0
        if retrieved and batch["polls_left"] > 0:
            batch["polls_left"] -= 1
        counts = {
            "canceled": 0,
            "expired": 0,
            "processing": 0 if ended else len(batch["results"]),
            "succeeded": sum(r["result"]["type"] == "succeeded" for r in batch["results"]) if ended else 0,
            "errored": sum(r["result"]["type"] == "errored" for r in batch["results"]) if ended else 0,
        }
        return {
            "id": batch_id,
            "type": "message_batch",
            "processing_status": "ended" if ended else "in_progress",
            "request_counts": counts,
            "created_at": "2026-11-30T00:00:00Z",
            "expires_at": "2026-12-01T00:00:00Z",
            "ended_at": "2026-11-30T00:01:00Z" if ended else None,
            "archived_at": None,
            "cancel_initiated_at": None,
            "results_url": f"{self.url}/v1/messages/batches/{batch_id}/results" if ended else None,
        }

    def _message(self, request: dict[str, Any], reply: Reply) -> dict[str, Any]:
        number = next(self._ids)
        if reply.kind == "text":
            content: list[dict[str, Any]] = [{"type": "text", "text": reply.text}]
            stop_reason = "end_turn"
        else:
            name = reply.tool_name or _requested_tool(request)
            content = [{"type": "tool_use", "id": f"toolu_fake{number}", "name": name, "input": reply.tool_input}]
            stop_reason = reply.stop_reason or "tool_use"
        cache_write, cache_read, uncached = self._split_tokens(request, remember=True)
        output = reply.output_tokens if reply.output_tokens is not None else tokens(content) + 8
        return {
            "id": f"msg_fake{number}",
            "type": "message",
            "role": "assistant",
            "model": request["model"],
            "content": content,
            "stop_reason": stop_reason,
            "stop_sequence": None,
            "usage": {
                "input_tokens": uncached,
                "output_tokens": output,
                "cache_creation_input_tokens": cache_write,
                "cache_read_input_tokens": cache_read,
            },
        }

    def _split_tokens(self, request: dict[str, Any], *, remember: bool) -> tuple[int, int, int]:
        """(cache write, cache read, uncached input) for a request, as the API would bill it."""
        tools = request.get("tools") or []
        system = request.get("system") or []
        if isinstance(system, str):
            system = [{"type": "text", "text": system}]
        # The cacheable prefix runs through the last block that carries cache_control.
        blocks = [("tool", t) for t in tools] + [("system", b) for b in system]
        last = max((i for i, (_, b) in enumerate(blocks) if isinstance(b, dict) and b.get("cache_control")), default=-1)
        prefix = [b for _, b in blocks[: last + 1]]
        rest_tokens = sum(tokens(b) for _, b in blocks[last + 1 :]) + tokens(request.get("messages") or [])
        if not prefix:
            return 0, 0, rest_tokens
        key = hashlib.sha256(json.dumps([request.get("model"), prefix], sort_keys=True).encode()).hexdigest()
        prefix_tokens = sum(tokens(b) for b in prefix)
        if key in self._cached_prefixes:
            return 0, prefix_tokens, rest_tokens
        if remember:
            self._cached_prefixes.add(key)
        return prefix_tokens, 0, rest_tokens


def _requested_tool(request: dict[str, Any]) -> str:
    choice = request.get("tool_choice") or {}
    if choice.get("type") == "tool":
        return choice["name"]
    tools = request.get("tools") or []
    return tools[0]["name"] if tools else "no_tool_offered"


def _invalid(body: Any, *, counting: bool = False) -> str | None:
    if not isinstance(body, dict):
        return "the body must be a JSON object"
    for key in ("model", "messages") if counting else ("model", "max_tokens", "messages"):
        if key not in body:
            return f"{key}: Field required"
    if not body["messages"]:
        return "messages: at least one message is required"
    tools = {t.get("name") for t in body.get("tools") or []}
    choice = body.get("tool_choice") or {}
    if choice.get("type") in ("tool", "any") and body["model"] in REJECTS_FORCED_TOOL_CHOICE:
        return f"tool_choice: forced tool use is not supported with {body['model']}"
    if choice.get("type") == "tool" and choice.get("name") not in tools:
        return f"tool_choice: tool {choice.get('name')!r} is not among the tools"
    return None


def _error(
    status: int, error_type: str, message: str, headers: dict[str, str] | None = None
) -> tuple[int, Any, dict[str, str]]:
    return (
        status,
        {"type": "error", "error": {"type": error_type, "message": message}, "request_id": "req_fake"},
        headers or {},
    )
