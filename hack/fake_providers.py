"""Local HTTP servers that speak the OpenAI and Anthropic APIs (no network in tests).

They implement just what the runtime calls, in the providers' wire formats:
- OpenAI: `POST /v1/chat/completions` (JSON and `stream: true` server-sent events) and
  `POST /v1/embeddings` (float or base64 encoding; bag-of-words hashed vectors, so similar
  texts get similar vectors).
- Anthropic: `POST /v1/messages` (JSON and streaming events: message_start,
  content_block_start, content_block_delta, content_block_stop, message_delta, message_stop).
Answers quote the first passage of the prompt and cite it as [1] (plus an invalid [99], which
the runtime must drop). Every request is recorded for assertions.

`python -m hack.fake_providers --port P --delay S` serves them on 127.0.0.1 with each answer
S seconds late: the slow generation provider of the canary tests' latency fault.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import json
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, StreamingResponse

from hack.services import free_port

EMBED_DIMS = 64


def fake_embedding(text: str, dims: int = EMBED_DIMS) -> list[float]:
    vec = np.zeros(dims, dtype=np.float32)
    for word in re.findall(r"[a-z0-9]+", text.lower()):
        vec[int(hashlib.md5(word.encode()).hexdigest(), 16) % dims] += 1.0
    norm = float(np.linalg.norm(vec)) or 1.0
    return [float(x) for x in vec / norm]


def answer_for(prompt: str) -> str:
    match = re.search(r"\[1\] (.+)", prompt)
    first = match.group(1) if match else "nothing"
    words = first.split()[:8]
    return f"According to the passages, {' '.join(words)} [1]. See also [99]."


def _pieces(text: str) -> list[str]:
    return re.findall(r"\S+\s*", text)


@dataclass
class FakeProviders:
    port: int
    requests: list[dict[str, Any]] = field(default_factory=list)
    # Statuses the next embedding requests get instead of an answer (one each, in order).
    embedding_failures: list[int] = field(default_factory=list)
    # Inputs holding this text are refused (with `rejected_status`), every time.
    rejected_text: str | None = None
    rejected_status: int = 400
    # Seconds every chat or message answer waits before its first byte.
    answer_delay_seconds: float = 0.0
    # Off for a long-running server, whose list would only grow.
    record_requests: bool = True

    @property
    def openai_base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def anthropic_base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def build_app(state: FakeProviders) -> FastAPI:
    app = FastAPI()

    async def record(request: Request) -> dict[str, Any]:
        body: dict[str, Any] = await request.json()
        if request.url.path != "/v1/embeddings" and state.answer_delay_seconds:
            await asyncio.sleep(state.answer_delay_seconds)
        if state.record_requests:
            state.requests.append(
                {"path": request.url.path, "headers": dict(request.headers), "body": body}
            )
        return body

    @app.post("/v1/embeddings")
    async def embeddings(request: Request) -> JSONResponse:
        body = await record(request)
        inputs = body["input"] if isinstance(body["input"], list) else [body["input"]]
        if state.embedding_failures:
            code = state.embedding_failures.pop(0)
            headers = {"Retry-After": "0"} if code == 429 else {}
            error = {"message": f"upstream says {code} at 10.9.8.7", "type": "server_error"}
            return JSONResponse({"error": error}, status_code=code, headers=headers)
        if state.rejected_text and any(state.rejected_text in t for t in inputs):
            error = {"message": "input rejected by model sk-internal-7", "type": "invalid_request"}
            return JSONResponse({"error": error}, status_code=state.rejected_status)
        data = []
        for i, text in enumerate(inputs):
            vec = fake_embedding(text)
            encoded: Any = vec
            if body.get("encoding_format") == "base64":
                encoded = base64.b64encode(np.asarray(vec, dtype="<f4").tobytes()).decode()
            data.append({"object": "embedding", "index": i, "embedding": encoded})
        return JSONResponse(
            {
                "object": "list",
                "data": data,
                "model": body["model"],
                "usage": {"prompt_tokens": 1, "total_tokens": 1},
            }
        )

    @app.post("/v1/chat/completions", response_model=None)
    async def chat(request: Request) -> JSONResponse | StreamingResponse:
        body = await record(request)
        prompt = body["messages"][-1]["content"]
        answer = answer_for(prompt)
        base = {"id": "chatcmpl-fake", "created": int(time.time()), "model": body["model"]}
        if not body.get("stream"):
            return JSONResponse(
                {
                    **base,
                    "object": "chat.completion",
                    "choices": [
                        {
                            "index": 0,
                            "message": {"role": "assistant", "content": answer},
                            "finish_reason": "stop",
                        }
                    ],
                    "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
                }
            )

        def events() -> Iterator[str]:
            for piece in _pieces(answer):
                chunk = {
                    **base,
                    "object": "chat.completion.chunk",
                    "choices": [
                        {
                            "index": 0,
                            "delta": {"role": "assistant", "content": piece},
                            "finish_reason": None,
                        }
                    ],
                }
                yield f"data: {json.dumps(chunk)}\n\n"
            end = {
                **base,
                "object": "chat.completion.chunk",
                "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
            }
            yield f"data: {json.dumps(end)}\n\n"
            yield "data: [DONE]\n\n"

        return StreamingResponse(events(), media_type="text/event-stream")

    @app.post("/v1/messages", response_model=None)
    async def messages(request: Request) -> JSONResponse | StreamingResponse:
        body = await record(request)
        content = body["messages"][-1]["content"]
        prompt = content if isinstance(content, str) else content[0]["text"]
        answer = answer_for(prompt)
        message = {
            "id": "msg_fake",
            "type": "message",
            "role": "assistant",
            "model": body["model"],
            "stop_sequence": None,
        }
        if not body.get("stream"):
            return JSONResponse(
                {
                    **message,
                    "content": [{"type": "text", "text": answer}],
                    "stop_reason": "end_turn",
                    "usage": {"input_tokens": 5, "output_tokens": 5},
                }
            )

        def sse(kind: str, data: dict[str, Any]) -> str:
            return f"event: {kind}\ndata: {json.dumps({'type': kind, **data})}\n\n"

        def events() -> Iterator[str]:
            yield sse(
                "message_start",
                {
                    "message": {
                        **message,
                        "content": [],
                        "stop_reason": None,
                        "usage": {"input_tokens": 5, "output_tokens": 1},
                    }
                },
            )
            yield sse(
                "content_block_start", {"index": 0, "content_block": {"type": "text", "text": ""}}
            )
            for piece in _pieces(answer):
                yield sse(
                    "content_block_delta",
                    {"index": 0, "delta": {"type": "text_delta", "text": piece}},
                )
            yield sse("content_block_stop", {"index": 0})
            yield sse(
                "message_delta",
                {
                    "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                    "usage": {"output_tokens": 9},
                },
            )
            yield sse("message_stop", {})

        return StreamingResponse(events(), media_type="text/event-stream")

    return app


def start_fake_providers() -> tuple[FakeProviders, uvicorn.Server]:
    state = FakeProviders(port=free_port())
    config = uvicorn.Config(
        build_app(state), host="127.0.0.1", port=state.port, log_level="warning", lifespan="off"
    )
    server = uvicorn.Server(config)
    threading.Thread(target=server.run, daemon=True).start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("fake provider server did not start")
        time.sleep(0.02)
    return state, server


def main() -> None:
    parser = argparse.ArgumentParser(description="Serve the fake OpenAI and Anthropic APIs.")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--delay", type=float, default=0.0, help="seconds before each answer")
    args = parser.parse_args()
    state = FakeProviders(port=args.port, answer_delay_seconds=args.delay, record_requests=False)
    uvicorn.run(build_app(state), host="127.0.0.1", port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
