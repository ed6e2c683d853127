"""One router per model kind, chosen once when the app is built: a btrm model answers
``/get_reward`` and ``/score`` with its heads' scores; a preference model answers
``/get_reward`` and ``/score`` with bt rewards and ``/prefer`` with P(a > b)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from fastapi import APIRouter, HTTPException

from termwise.serve.api import (
    PreferRequest,
    PreferResponse,
    RewardRequest,
    RewardResponse,
    ScoreRequest,
    ScoreResponse,
    ServeSettings,
    approx_tokens,
    batched,
    check_texts,
)
from termwise.serve.batcher import DynamicBatcher
from termwise.serve.served import ServedModel

BatcherFactory = Callable[[Callable[[list[Any]], Any], Callable[[Any], int]], DynamicBatcher[Any]]


@dataclass
class KindRoutes:
    """A kind's router and the batchers it submits to; ``start`` makes them inside the
    server's event loop (the app's lifespan)."""

    router: APIRouter
    specs: dict[str, tuple[Callable[[list[Any]], Any], Callable[[Any], int]]]
    batchers: dict[str, DynamicBatcher[Any]] = field(default_factory=dict)

    def start(self, make: BatcherFactory) -> dict[str, DynamicBatcher[Any]]:
        for name, (run, cost) in self.specs.items():
            self.batchers[name] = make(run, cost)
            self.batchers[name].start()
        return self.batchers


def routes_for(served: ServedModel, settings: ServeSettings) -> KindRoutes:
    return btrm_routes(served, settings) if served.type == "btrm" else pref_routes(served, settings)


def btrm_routes(served: ServedModel, settings: ServeSettings) -> KindRoutes:
    router = APIRouter()
    routes = KindRoutes(router, {"texts": (served.score_texts, approx_tokens)})

    async def text_scores(texts: list[str]) -> dict[str, list[float]]:
        rows = await batched(routes.batchers["texts"], texts)
        return {head: [row[i] for row in rows] for i, head in enumerate(served.heads)}

    @router.post("/get_reward")
    async def get_reward(request: RewardRequest) -> RewardResponse:
        """OpenRLHF's remote reward model: ``{"query": [texts]}`` -> ``{"rewards": [...]}``
        of one head; ``scores`` carries every head."""
        check_texts(settings, "query", request.query)
        scores = await text_scores(request.query)
        head = reward_head(served.heads, request.head or settings.head)
        return RewardResponse(rewards=scores[head], scores=scores)

    @router.post("/score")
    async def score(request: ScoreRequest) -> ScoreResponse:
        """``{"texts"}`` -> every head's scores."""
        if request.texts is None:
            raise HTTPException(422, "texts: required for a btrm model")
        check_texts(settings, "texts", request.texts)
        return ScoreResponse(scores=await text_scores(request.texts))

    @router.post("/prefer")
    async def prefer(request: PreferRequest) -> PreferResponse:
        """Only a preference model answers: 400."""
        raise HTTPException(400, "/prefer needs a preference model; this is a btrm model")

    return routes


def pref_routes(served: ServedModel, settings: ServeSettings) -> KindRoutes:
    router = APIRouter()
    routes = KindRoutes(
        router,
        {
            "pairs": (served.pair_scores, lambda pair: sum(approx_tokens(t) for t in pair)),
            "rewards": (served.rewards, lambda item: sum(approx_tokens(t) for t in item)),
        },
    )

    async def rewards(prompts: list[str], responses: list[str]) -> list[float]:
        if served.scorer.kind != "bt":
            raise HTTPException(
                400, f"rewards need a bt model; this is {served.scorer.kind} (use /prefer)"
            )
        if len(prompts) != len(responses):
            raise HTTPException(422, "prompts: need one per response")
        pairs = list(zip(prompts, responses, strict=True))
        return await batched(routes.batchers["rewards"], pairs)

    @router.post("/get_reward")
    async def get_reward(request: RewardRequest) -> RewardResponse:
        """OpenRLHF's remote reward model: ``{"query": [texts], "prompts": [...]}`` ->
        ``{"rewards": [...]}`` (a bt model; the prompt is stripped from its query)."""
        check_texts(settings, "query", request.query)
        prompts = request.prompts if request.prompts is not None else [""] * len(request.query)
        check_texts(settings, "prompts", prompts)
        if len(prompts) != len(request.query):
            raise HTTPException(422, "prompts: need one per query")
        responses = [
            query[len(prompt) :] if prompt and query.startswith(prompt) else query
            for prompt, query in zip(prompts, request.query, strict=True)
        ]
        return RewardResponse(rewards=await rewards(prompts, responses))

    @router.post("/score")
    async def score(request: ScoreRequest) -> ScoreResponse:
        """``{"prompts", "responses"}`` -> ``{"scores": {"bt": rewards}}``."""
        if request.responses is None:
            raise HTTPException(422, "responses: required for a pref model")
        prompts = request.prompts if request.prompts is not None else [""] * len(request.responses)
        check_texts(settings, "responses", request.responses)
        check_texts(settings, "prompts", prompts)
        return ScoreResponse(scores={"bt": await rewards(prompts, request.responses)})

    @router.post("/prefer")
    async def prefer(request: PreferRequest) -> PreferResponse:
        """P(a > b | prompt) and its std (bayes_gpm; 0 otherwise), calibrated by default."""
        single = isinstance(request.a, str)
        columns = [[v] if isinstance(v, str) else v for v in (request.prompt, request.a, request.b)]
        if len({len(c) for c in columns}) != 1:
            raise HTTPException(422, "prompt, a and b: need the same number of items")
        for name, column in zip(("prompt", "a", "b"), columns, strict=True):
            check_texts(settings, name, column)
        rows = await batched(routes.batchers["pairs"], list(zip(*columns, strict=True)))
        if not rows:
            return PreferResponse(p=[], std=[])
        from termwise.pref import Calibration, probabilities

        manifest = served.scorer.manifest
        calibration = manifest.fitted_calibration() if request.calibrated else Calibration()
        p, std = probabilities(draws(rows), calibration)
        if single:
            return PreferResponse(p=float(p[0]), std=float(std[0]))
        return PreferResponse(p=p.tolist(), std=std.tolist())

    return routes


def draws(rows: list[list[float]]) -> Any:
    import numpy as np

    return np.asarray(rows, dtype=np.float64).reshape(len(rows), -1).T


def reward_head(heads: list[str], head: str | None) -> str:
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
