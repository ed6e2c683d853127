"""The HTTP API (FastAPI): ``/get_reward`` (OpenRLHF's remote reward model), ``/score``,
``/prefer``, ``/health``; OpenAPI docs at ``/docs``.

Every request's texts go through a :class:`~termwise.serve.batcher.DynamicBatcher`, so
concurrent clients share forward passes. Limits: texts per request and characters per text
(413 with the limit in the message), body bytes (413, checked while the body arrives),
malformed JSON or a missing field (422 naming the field, never echoing the input: NaN,
infinities and lone surrogates are valid to Python's JSON reader but not to any JSON writer),
an optional bearer token (401).
A model error answers 500 for the requests of that batch; the server keeps serving. The
routes of the model's kind (:mod:`termwise.serve.routes`) are chosen once, here.
"""

from __future__ import annotations

import math
import secrets
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from typing import Any

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from termwise.serve.api import ServeSettings
from termwise.serve.batcher import DynamicBatcher
from termwise.serve.routes import routes_for
from termwise.serve.served import ServedModel

__all__ = ["BodyLimit", "ServeSettings", "create_app", "wrap"]


def create_app(served: ServedModel, settings: ServeSettings) -> FastAPI:
    executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="termwise-model")
    routes = routes_for(served, settings)

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
        app.state.batchers = routes.start(batcher)
        yield
        for each in app.state.batchers.values():  # in-flight requests finish first
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

    app.include_router(routes.router)
    app.add_exception_handler(RequestValidationError, invalid_request)
    app.add_exception_handler(StarletteHTTPException, http_error)
    return app


def printable(value: Any) -> Any:
    """``value`` with every string made encodable (a lone surrogate as ``\\udXXX``) and every
    float finite (NaN and infinities as text): what JSON-encoding a response refuses."""
    if isinstance(value, str):
        return value.encode("utf-8", "backslashreplace").decode("utf-8")
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, list | tuple):
        return [printable(item) for item in value]
    if isinstance(value, dict):
        return {printable(str(k)): printable(v) for k, v in value.items()}
    return value if isinstance(value, int | float | bool) or value is None else repr(value)


async def invalid_request(request: Request, error: Exception) -> JSONResponse:
    """422 for a body that does not fit the request model, naming each field; the offending
    input is left out (it may be NaN, an infinity or a lone surrogate, which no JSON holds)."""
    assert isinstance(error, RequestValidationError)
    detail = [
        {
            "loc": printable(list(each.get("loc", ()))),
            "msg": printable(str(each.get("msg", ""))),
            "type": printable(str(each.get("type", ""))),
        }
        for each in error.errors()
    ]
    return JSONResponse(status_code=422, content={"detail": detail})


async def http_error(request: Request, error: Exception) -> JSONResponse:
    """Starlette's answer for an HTTPException, with its detail made printable."""
    assert isinstance(error, StarletteHTTPException)
    return JSONResponse(
        status_code=error.status_code,
        content={"detail": printable(error.detail)},
        headers=dict(error.headers or {}),
    )


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


def wrap(app: FastAPI, settings: ServeSettings) -> ASGIApp:
    """The app behind the body-size limit (what uvicorn serves)."""
    return BodyLimit(app, settings.max_body_bytes)
