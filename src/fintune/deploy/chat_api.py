"""``POST /v1/chat/completions``: OpenAI's chat API for generation runs, streamed or whole.

The official ``openai`` client works against it (``base_url=http://HOST:PORT/v1``; the API
key, when the server has one, goes in ``X-API-Key`` through ``default_headers``). One answer
is generated at a time (a CPU has no room for two); ``serve.chat_queue`` more may wait, and
beyond that the server answers 503 with ``Retry-After``. The same limits as ``/v1/predict``
apply (messages per request, characters per message, body size) plus ``serve.max_new_tokens``;
the prediction log gets one record per answer, under the same rules.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any, Literal

from fastapi import Depends, FastAPI, HTTPException
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from fintune.config import ServeConfig
from fintune.deploy.limits import limit_error
from fintune.deploy.predlog import PredictionLog, Record, input_hash
from fintune.models.generation import Sampling

RETRY_S = 5


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="ignore")
    role: Literal["system", "user", "assistant"]
    content: str


class ChatRequest(BaseModel):
    """OpenAI's request; fields this server does not use (``user``, ``stop``...) are ignored."""

    model_config = ConfigDict(extra="ignore")
    model: str | None = None
    messages: list[ChatMessage] = Field(examples=[[{"role": "user", "content": "$AAPL beats on revenue: sentiment?"}]])
    max_tokens: int | None = Field(None, ge=1)
    max_completion_tokens: int | None = Field(None, ge=1)
    temperature: float | None = Field(None, ge=0, le=2, description="0 or absent: greedy (the answer evaluation "
                                      "measured); above 0: sampled")
    top_p: float = Field(1.0, gt=0, le=1)
    seed: int | None = None
    n: int = Field(1, ge=1, le=1, description="one answer per request")
    stream: bool = False


class ChatChoice(BaseModel):
    index: int = 0
    message: ChatMessage
    finish_reason: Literal["stop", "length"]


class Usage(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class ChatResponse(BaseModel):
    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[ChatChoice]
    usage: Usage


class ChatService:
    """Checks a request against the limits, generates one answer at a time, logs it."""

    def __init__(self, model: Any, cfg: ServeConfig, name: str, log: PredictionLog | None, hash_key: bytes | None,
                 count: Callable[[str], None]) -> None:
        self.model, self.cfg, self.name, self.log, self.hash_key, self.count = model, cfg, name, log, hash_key, count
        self._running = asyncio.Semaphore(1)
        self._pending = 0

    def check(self, request: ChatRequest) -> tuple[list[dict[str, str]], Sampling, int]:
        """The conversation, how to decode it and its prompt's length in tokens; a 422 over a limit."""
        if len(request.messages) > self.cfg.max_texts:
            raise limit_error(422, "max_texts", self.cfg.max_texts, len(request.messages), "too many messages")
        longest = max((len(m.content) for m in request.messages), default=0)
        if longest > self.cfg.max_text_chars:
            raise limit_error(422, "max_text_chars", self.cfg.max_text_chars, longest, "message too long")
        wanted = request.max_completion_tokens or request.max_tokens or self.model.meta.max_new_tokens or 256
        if wanted > self.cfg.max_new_tokens:
            raise limit_error(422, "max_new_tokens", self.cfg.max_new_tokens, wanted, "too many tokens asked for")
        messages = [{"role": m.role, "content": m.content} for m in request.messages]
        prompt = len(self.model.chat_ids(messages))  # a malformed conversation fails here, before any queueing
        return messages, Sampling(wanted, request.temperature or 0.0, request.top_p, request.seed), prompt

    def _enter(self) -> None:
        if self._pending > self.cfg.chat_queue:
            raise HTTPException(503, {"error": f"{self._pending} answers are being generated or waiting; retry in "
                                               f"{RETRY_S} s", "limit": "chat_queue", "allowed": self.cfg.chat_queue},
                                headers={"Retry-After": str(RETRY_S)})
        self._pending += 1

    async def answer(self, request: ChatRequest) -> ChatResponse:
        messages, sampling, prompt = self.check(request)
        self._enter()
        try:
            async with self._running:
                started = time.time()
                text = await asyncio.get_running_loop().run_in_executor(None, self.model.chat, messages, sampling)
        finally:
            self._pending -= 1
        return self._response(messages, text, sampling, started, prompt)

    async def stream(self, request: ChatRequest) -> StreamingResponse:
        messages, sampling, _ = self.check(request)
        self._enter()
        ident, created = _ident(), int(time.time())

        async def events() -> AsyncIterator[str]:
            try:
                async with self._running:
                    loop = asyncio.get_running_loop()
                    pieces = await loop.run_in_executor(None, lambda: iter(self.model.chat_stream(messages, sampling)))
                    yield _event(ident, created, self.name, {"role": "assistant", "content": ""}, None)
                    answer = []
                    while (piece := await loop.run_in_executor(None, next, pieces, None)) is not None:
                        answer.append(piece)
                        yield _event(ident, created, self.name, {"content": piece}, None)
                    text = "".join(answer).strip()
                    reason = self._finish(self._tokens(text), sampling)
                    yield _event(ident, created, self.name, {}, reason)
                    yield "data: [DONE]\n\n"
                    self._record(ident, messages, text)
            finally:
                self._pending -= 1

        return StreamingResponse(events(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"})

    def _tokens(self, text: str) -> int:
        return len(self.model.tokenizer(text, add_special_tokens=False)["input_ids"])

    @staticmethod
    def _finish(produced: int, sampling: Sampling) -> Literal["stop", "length"]:
        return "length" if produced >= sampling.max_new_tokens else "stop"

    def _response(self, messages: list[dict[str, str]], text: str, sampling: Sampling, started: float,
                  prompt: int) -> ChatResponse:
        ident = _ident()
        completion = self._tokens(text)
        self._record(ident, messages, text)
        return ChatResponse(id=ident, created=int(started), model=self.name,
                            choices=[ChatChoice(message=ChatMessage(role="assistant", content=text),
                                                finish_reason=self._finish(completion, sampling))],
                            usage=Usage(prompt_tokens=prompt, completion_tokens=completion,
                                        total_tokens=prompt + completion))

    def _record(self, ident: str, messages: list[dict[str, str]], text: str) -> None:
        self.count(text)
        if self.log is None:
            return
        question = messages[-1]["content"]
        # The log keeps a hash of the question (and its text only where serve.log.raw_text allows).
        self.log.write([Record(ident, input_hash(question, self.hash_key), len(question), None, None, None, None,
                               None, question)])


def _ident() -> str:
    return "chatcmpl-" + uuid.uuid4().hex


def _event(ident: str, created: int, model: str, delta: dict[str, str], reason: str | None) -> str:
    chunk = {"id": ident, "object": "chat.completion.chunk", "created": created, "model": model,
             "choices": [{"index": 0, "delta": delta, "finish_reason": reason}]}
    return f"data: {json.dumps(chunk, ensure_ascii=False)}\n\n"


def add_chat_routes(app: FastAPI, chat: ChatService, require_key: Callable[..., Any],
                    responses: dict[int | str, dict[str, Any]]) -> None:
    """``POST /v1/chat/completions`` (and ``GET /v1/models``, which OpenAI clients list)."""

    @app.post("/v1/chat/completions", response_model=ChatResponse, responses=responses,
              dependencies=[Depends(require_key)])
    async def completions(request: ChatRequest) -> Any:
        """The assistant's answer to the conversation (``stream: true``: server-sent events)."""
        return await (chat.stream(request) if request.stream else chat.answer(request))

    @app.get("/v1/models", dependencies=[Depends(require_key)])
    async def models() -> dict[str, Any]:
        """The one model this server answers with."""
        return {"object": "list", "data": [{"id": chat.name, "object": "model", "owned_by": "fintune"}]}
