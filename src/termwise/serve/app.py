"""The HTTP API (FastAPI): ``/get_reward`` (OpenRLHF's remote reward model), ``/score``,
``/prefer``, ``/health``; OpenAPI docs at ``/docs``.

Every request's texts go through a :class:`~termwise.serve.batcher.DynamicBatcher`, so
concurrent clients share forward passes. Limits: texts per request and characters per text
(413 with the limit in the message), body bytes (413, checked while the body arrives),
malformed JSON or a missing field (422 naming the field), an optional bearer token (401).
A model error answers 500 for the requests of that batch; the server keeps serving.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from fastapi import Depends, FastAPI, HTTPException, Request
from pydantic import BaseModel, ConfigDict, Field

from termwise.serve.batcher import DynamicBatcher
from termwise.serve.served import ServedModel

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


@dataclass(frozen=True)
class ServeSettings:
    token: str | None = None
    head: str | None = None  # the head /get_reward returns for a multi-head model
    max_texts: int = 256
    max_chars: int = 20_000
    max_body_bytes: int = 4_000_000
    max_wait_ms: float = 5.0
    max_batch_items: int = 64
    max_batch_tokens: int = 16_384
    batching: bool = True


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RewardRequest(BaseModel):
    """OpenRLHF's remote reward model request. Its client also sends ``labels`` (and, in
    some versions, more keys): other keys are accepted and ignored, as its servers do."""

    query: list[str] = Field(..., description="Texts to reward (OpenRLHF: prompt + response).")
    head: str | None = Field(None, description="Head of a multi-head model (default: --head).")
    prompts: list[str] | None = Field(
        None,
        description="The prompt of each query. btrm scores the query as it is; a pref bt "
        "model scores (prompt, the query with that prompt stripped from its start).",
    )


class RewardResponse(BaseModel):
    rewards: list[float]
    scores: dict[str, list[float]] | None = None


class ScoreRequest(Strict):
    texts: list[str] | None = Field(None, description="btrm: texts to score with every head.")
    prompts: list[str] | None = Field(None, description="pref bt: a prompt per response.")
    responses: list[str] | None = Field(None, description="pref bt: responses to reward.")


class ScoreResponse(BaseModel):
    scores: dict[str, list[float]]


class PreferRequest(Strict):
    prompt: str | list[str]
    a: str | list[str]
    b: str | list[str]
    calibrated: bool = Field(
        True, description="false: raw probabilities (no temperature or power)."
    )


class PreferResponse(BaseModel):
    p: float | list[float]
    std: float | list[float]


def approx_tokens(text: str) -> int:
    """A cheap token estimate for the batch budget (about 4 characters a token)."""
    return len(text) // 4 + 2


class BodyLimit:
    """413 for a body over ``limit`` bytes: from Content-Length when given, else counted
    as the body arrives (chunked uploads too). The body is read here, before the app sees
    any of it, so no framework error handler can turn the refusal into another status."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers", [])).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            await self._too_large(send)
            return
        chunks: list[bytes] = []
        seen = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                return
            chunk = message.get("body", b"")
            seen += len(chunk)
            if seen > self.limit:
                await self._too_large(send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        delivered = False

        async def replay() -> Message:
            nonlocal delivered
            if not delivered:
                delivered = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()  # after the body: wait for the disconnect

        await self.app(scope, replay, send)

    async def _too_large(self, send: Send) -> None:
        body = f'{{"detail":"request body over {self.limit} bytes"}}'.encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
        await send({"type": "http.response.start", "status": 413, "headers": headers})
        await send({"type": "http.response.body", "body": body})


def _check_texts(settings: ServeSettings, field: str, texts: list[str]) -> None:
    if len(texts) > settings.max_texts:
        raise HTTPException(
            413, f"{field}: {len(texts)} texts, over the limit of {settings.max_texts} a request"
        )
    for i, text in enumerate(texts):
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as error:  # JSON allows "\ud800"; no tokenizer does
            raise HTTPException(
                422, f"{field}[{i}]: not valid Unicode (a lone surrogate at {error.start})"
            ) from None
        if len(text) > settings.max_chars:
            raise HTTPException(
                413,
                f"{field}[{i}]: {len(text)} characters, over the limit of {settings.max_chars}",
            )


async def _batched(batcher: DynamicBatcher[Any], items: list[Any]) -> list[Any]:
    if not items:
        return []
    try:
        return await batcher.submit(items)
    except Exception as error:  # the model failed on this batch: 500, the server goes on
        raise HTTPException(500, f"model error: {type(error).__name__}: {error}") from None


def create_app(served: ServedModel, settings: ServeSettings) -> FastAPI:
    executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="termwise-model")
    batchers: dict[str, DynamicBatcher[Any]] = {}

    def batcher(run: Callable[[list[Any]], Any], cost: Callable[[Any], int]) -> DynamicBatcher[Any]:
        return DynamicBatcher(
            run,
            executor,
            cost,
            settings.max_batch_items,
            settings.max_batch_tokens,
            settings.max_wait_ms / 1000,
            one_request=not settings.batching,
        )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if served.type == "btrm":
            batchers["texts"] = batcher(served.score_texts, approx_tokens)
        else:
            batchers["pairs"] = batcher(
                served.pair_scores, lambda pair: sum(approx_tokens(t) for t in pair)
            )
            batchers["rewards"] = batcher(
                served.rewards, lambda item: sum(approx_tokens(t) for t in item)
            )
        for each in batchers.values():
            each.start()
        app.state.batchers = batchers
        yield
        for each in batchers.values():  # in-flight requests finish first
            await each.close()
        executor.shutdown(wait=True)

    async def authorised(request: Request) -> None:
        if settings.token is None:
            return
        given = request.headers.get("authorization", "")
        if not secrets.compare_digest(given.encode(), f"Bearer {settings.token}".encode()):
            raise HTTPException(
                401, "missing or wrong bearer token", {"WWW-Authenticate": "Bearer"}
            )

    app = FastAPI(
        title="termwise",
        description="Reward and preference models trained with termwise.",
        lifespan=lifespan,
        dependencies=[Depends(authorised)],
    )

    @app.get("/health")
    async def health() -> dict[str, Any]:
        """Model type, heads, termwise version (and the calibration of a preference model)."""
        return served.info()

    @app.post("/get_reward")
    async def get_reward(request: RewardRequest) -> RewardResponse:
        """OpenRLHF's remote reward model: ``{"query": [texts]}`` -> ``{"rewards": [...]}``;
        for a btrm model ``scores`` carries every head."""
        _check_texts(settings, "query", request.query)
        if served.type == "btrm":
            scores = await _text_scores(request.query)
            head = _reward_head(served, request.head or settings.head)
            return RewardResponse(rewards=scores[head], scores=scores)
        prompts = request.prompts if request.prompts is not None else [""] * len(request.query)
        _check_texts(settings, "prompts", prompts)
        if len(prompts) != len(request.query):
            raise HTTPException(422, "prompts: need one per query")
        responses = [
            query[len(prompt) :] if prompt and query.startswith(prompt) else query
            for prompt, query in zip(prompts, request.query, strict=True)
        ]
        return RewardResponse(rewards=await _rewards(prompts, responses))

    @app.post("/score")
    async def score(request: ScoreRequest) -> ScoreResponse:
        """btrm: ``{"texts"}`` -> every head's scores; pref bt: ``{"prompts", "responses"}``
        -> ``{"scores": {"bt": rewards}}``."""
        if served.type == "btrm":
            if request.texts is None:
                raise HTTPException(422, "texts: required for a btrm model")
            _check_texts(settings, "texts", request.texts)
            return ScoreResponse(scores=await _text_scores(request.texts))
        if request.responses is None:
            raise HTTPException(422, "responses: required for a pref model")
        prompts = request.prompts if request.prompts is not None else [""] * len(request.responses)
        _check_texts(settings, "responses", request.responses)
        _check_texts(settings, "prompts", prompts)
        return ScoreResponse(scores={"bt": await _rewards(prompts, request.responses)})

    @app.post("/prefer")
    async def prefer(request: PreferRequest) -> PreferResponse:
        """P(a > b | prompt) and its std (bayes_gpm; 0 otherwise), calibrated by default."""
        if served.type != "pref":
            raise HTTPException(400, "/prefer needs a preference model; this is a btrm model")
        single = isinstance(request.a, str)
        columns = [[v] if isinstance(v, str) else v for v in (request.prompt, request.a, request.b)]
        if len({len(c) for c in columns}) != 1:
            raise HTTPException(422, "prompt, a and b: need the same number of items")
        for name, column in zip(("prompt", "a", "b"), columns, strict=True):
            _check_texts(settings, name, column)
        rows = await _batched(batchers["pairs"], list(zip(*columns, strict=True)))
        if not rows:
            return PreferResponse(p=[], std=[])
        from termwise.pref import Calibration, probabilities

        manifest = served.scorer.manifest
        calibration = manifest.fitted_calibration() if request.calibrated else Calibration()
        p, std = probabilities(_draws(rows), calibration)
        if single:
            return PreferResponse(p=float(p[0]), std=float(std[0]))
        return PreferResponse(p=p.tolist(), std=std.tolist())

    async def _text_scores(texts: list[str]) -> dict[str, list[float]]:
        rows = await _batched(batchers["texts"], texts)
        return {head: [row[i] for row in rows] for i, head in enumerate(served.heads)}

    async def _rewards(prompts: list[str], responses: list[str]) -> list[float]:
        if served.scorer.kind != "bt":
            raise HTTPException(
                400, f"rewards need a bt model; this is {served.scorer.kind} (use /prefer)"
            )
        if len(prompts) != len(responses):
            raise HTTPException(422, "prompts: need one per response")
        return await _batched(batchers["rewards"], list(zip(prompts, responses, strict=True)))

    return app


def _draws(rows: list[list[float]]) -> Any:
    import numpy as np

    return np.asarray(rows, dtype=np.float64).reshape(len(rows), -1).T


def _reward_head(served: ServedModel, head: str | None) -> str:
    heads = served.heads
    if head is None:
        if len(heads) == 1:
            return heads[0]
        raise HTTPException(
            400,
            f"this model has {len(heads)} heads ({', '.join(heads)}): pass 'head' in the "
            "request or start the server with --head",
        )
    if head not in heads:
        raise HTTPException(400, f"head {head!r}: not one of {', '.join(heads)}")
    return head


def wrap(app: FastAPI, settings: ServeSettings) -> ASGIApp:
    """The app behind the body-size limit (what uvicorn serves)."""
    return BodyLimit(app, settings.max_body_bytes)
