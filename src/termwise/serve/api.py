"""What every route of the HTTP API shares: the server's settings, the request and response
bodies, the per-request limits and the hand-off to a batcher."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastapi import HTTPException
from pydantic import BaseModel, ConfigDict, Field

from termwise.serve.batcher import DynamicBatcher


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


def check_texts(settings: ServeSettings, field: str, texts: list[str]) -> None:
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


async def batched(batcher: DynamicBatcher[Any], items: list[Any]) -> list[Any]:
    if not items:
        return []
    try:
        return await batcher.submit(items)
    except Exception as error:  # the model failed on this batch: 500, the server goes on
        raise HTTPException(500, f"model error: {type(error).__name__}: {error}") from None
