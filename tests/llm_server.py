"""A local server that speaks OpenAI's wire protocol and answers chat completions from a script.

The real ``openai`` SDK talks to it::

    async with ScriptedOpenAIServer() as server:
        client = AsyncOpenAI(base_url=server.base_url, api_key=API_KEY)
        server.script(Text("Hello!"), ToolCalls(Call("orders__status", {"id": 7})))

Each chat request takes the next step of the script (``tests.llm_script``), in order: a text
answer, tool calls (one or several in parallel), an HTTP error in OpenAI's shape, any raw
JSON, a delayed step, a hang, or a function of the request (plain or async) that returns one
of those. An
empty script answers 500, saying so.
Before taking a step the server checks what OpenAI checks (the bearer key, then
``tests.llm_request_rules``) and answers OpenAI's 400 or 401, leaving the step for the next
request. Every chat request is recorded in ``requests``, every audio upload in ``uploads``.

Also served: ``POST /v1/audio/transcriptions`` (multipart ``file`` and ``model``, answered from
``transcribe(...)``'s queue) and ``GET /v1/models``.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import itertools
import json
import socket
import time
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self

from aiohttp import web
from multidict import CIMultiDict

from tests.llm_request_rules import request_error
from tests.llm_script import (
    Delayed,
    Failure,
    Hang,
    Raw,
    SeenRequest,
    Step,
    Text,
    ToolCalls,
    Usage,
    bad_request,
    unauthorized,
)

API_KEY = "test"
"""The key the server accepts; any other gets OpenAI's 401."""
HANG_LIMIT_S = 300.0
"""A ``Hang`` ends after this long at most (the per-test timeout ends the test first)."""
_NESTED_STEPS_MAX = 8


@dataclass(frozen=True, slots=True)
class SeenUpload:
    """An audio transcription request: the file and the form fields beside it."""

    filename: str | None
    content_type: str
    data: bytes
    fields: Mapping[str, str]


class ScriptedOpenAIServer:
    """An aiohttp app on 127.0.0.1 (a free port); ``base_url`` ends in ``/v1``, as the SDK wants."""

    def __init__(
        self, *, api_key: str = API_KEY, models: Sequence[str] = ("gpt-4o-mini", "whisper-1")
    ) -> None:
        self.requests: list[SeenRequest] = []
        self.uploads: list[SeenUpload] = []
        self.base_url = ""
        self._api_key = api_key
        self._models = tuple(models)
        self._steps: deque[Step] = deque()
        self._transcripts: deque[str | Failure] = deque()
        self._ids = itertools.count(1)
        self._stopping = asyncio.Event()
        self._runner: web.AppRunner | None = None

    def script(self, *steps: Step) -> None:
        """Answer the next chat requests with ``steps``, in order."""
        self._steps.extend(steps)

    def transcribe(self, *answers: str | Failure) -> None:
        """Answer the next transcription requests with these transcripts (or failures)."""
        self._transcripts.extend(answers)

    @property
    def steps_left(self) -> int:
        """Scripted chat steps not used yet."""
        return len(self._steps)

    async def __aenter__(self) -> Self:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._chat)
        app.router.add_post("/v1/audio/transcriptions", self._transcription)
        app.router.add_get("/v1/models", self._list_models)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=5)
        await self._runner.setup()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        await web.SockSite(self._runner, sock).start()
        self.base_url = f"http://127.0.0.1:{sock.getsockname()[1]}/v1"
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        # Delayed and hanging answers return now, so shutting down does not wait for them.
        self._stopping.set()
        if self._runner is not None:
            await self._runner.cleanup()

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        try:
            body = json.loads(await request.read())
        except ValueError:
            body = None
        if not isinstance(body, dict):
            return _error(
                bad_request(
                    "We could not parse the JSON body of your request. (HINT: This likely means "
                    "you aren't using your HTTP library correctly.)"
                )
            )
        seen = SeenRequest(body, CIMultiDict(request.headers))
        self.requests.append(seen)
        if (refusal := self._refusal(request, body)) is not None:
            return _error(refusal)
        if not self._steps:
            return _error(
                Failure(
                    500,
                    f"the test server's script ran out: no step left for chat request "
                    f"#{len(self.requests)}; script more answers with server.script(...)",
                    "server_error",
                )
            )
        return await self._answer(self._steps.popleft(), seen, depth=0)

    def _refusal(self, request: web.Request, body: Mapping[str, Any]) -> Failure | None:
        """What OpenAI would refuse the request for before any model runs."""
        if request.headers.get("Authorization") != f"Bearer {self._api_key}":
            return unauthorized()
        if body.get("stream"):
            return bad_request(
                "this test server does not stream: send stream=false (or leave it out)",
                param="stream",
                code="unsupported_value",
            )
        invalid = request_error(body)
        if invalid is None:
            return None
        return bad_request(invalid.message, param=invalid.param, code=invalid.code)

    async def _answer(self, step: Step, seen: SeenRequest, *, depth: int) -> web.StreamResponse:
        if depth > _NESTED_STEPS_MAX:
            raise ValueError(f"scripted step nests more than {_NESTED_STEPS_MAX} times")
        if isinstance(step, Failure):
            return _error(step)
        if isinstance(step, Raw):
            return web.json_response(step.body, status=step.status)
        if isinstance(step, Delayed):
            await self._wait(step.seconds)
            return await self._answer(step.then, seen, depth=depth + 1)
        if isinstance(step, Hang):
            await self._wait(HANG_LIMIT_S)
            return _error(Failure(504, "the test server hung as scripted", "server_error"))
        if isinstance(step, Text | ToolCalls):
            return web.json_response(self._completion(step, seen))
        chosen = step(seen)
        if inspect.isawaitable(chosen):
            chosen = await chosen
        return await self._answer(chosen, seen, depth=depth + 1)

    async def _wait(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), timeout=seconds)

    def _completion(self, step: Text | ToolCalls, seen: SeenRequest) -> dict[str, Any]:
        number = next(self._ids)
        message: dict[str, Any] = {"role": "assistant", "refusal": None}
        if isinstance(step, Text):
            message["content"] = step.content
            finish_reason, written = step.finish_reason, step.content
        else:
            message["content"] = step.content
            message["tool_calls"] = [
                {
                    "id": call.id or f"call_{number}_{position}",
                    "type": "function",
                    "function": {"name": call.name, "arguments": call.arguments_json()},
                }
                for position, call in enumerate(step.calls)
            ]
            finish_reason = "tool_calls"
            written = " ".join(call.arguments_json() for call in step.calls)
        usage = step.usage or Usage(_words(json.dumps(seen.messages)), _words(written))
        return {
            "id": f"chatcmpl-test{number}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": seen.model,
            "system_fingerprint": "fp_test",
            "choices": [
                {"index": 0, "message": message, "logprobs": None, "finish_reason": finish_reason}
            ],
            "usage": {
                "prompt_tokens": usage.prompt_tokens,
                "completion_tokens": usage.completion_tokens,
                "total_tokens": usage.prompt_tokens + usage.completion_tokens,
            },
        }

    async def _transcription(self, request: web.Request) -> web.StreamResponse:
        if request.headers.get("Authorization") != f"Bearer {self._api_key}":
            return _error(unauthorized())
        upload = await _read_upload(request)
        if upload is None:
            return _error(bad_request("Missing required parameter: 'file'.", param="file"))
        self.uploads.append(upload)
        if "model" not in upload.fields:
            return _error(bad_request("Missing required parameter: 'model'.", param="model"))
        if not self._transcripts:
            return _error(
                Failure(
                    500,
                    "the test server's transcripts ran out: script more with "
                    "server.transcribe(...)",
                    "server_error",
                )
            )
        answer = self._transcripts.popleft()
        if isinstance(answer, Failure):
            return _error(answer)
        return web.json_response({"text": answer})

    async def _list_models(self, request: web.Request) -> web.StreamResponse:
        if request.headers.get("Authorization") != f"Bearer {self._api_key}":
            return _error(unauthorized())
        data = [
            {"id": model, "object": "model", "created": 1_700_000_000, "owned_by": "atende-tests"}
            for model in self._models
        ]
        return web.json_response({"object": "list", "data": data})


async def _read_upload(request: web.Request) -> SeenUpload | None:
    """The multipart form's ``file`` and its text fields; None when no file was sent."""
    form = await request.post()
    fields: dict[str, str] = {}
    upload: web.FileField | None = None
    for name, value in form.items():
        if isinstance(value, web.FileField):
            if name == "file":
                upload = value
        else:
            fields[name] = str(value)
    if upload is None:
        return None
    return SeenUpload(upload.filename, upload.content_type, upload.file.read(), fields)


def _error(failure: Failure) -> web.Response:
    return web.json_response(failure.body(), status=failure.status, headers=failure.headers)


def _words(text: str) -> int:
    """A stand-in token count: deterministic, roughly proportional to the text."""
    return max(1, len(text.split()))
