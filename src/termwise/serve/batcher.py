"""Dynamic batching: requests from concurrent clients share one forward pass.

Each request hands over a list of items (texts, pairs). A worker takes the first waiting
request, then keeps collecting for at most ``max_wait_s`` or until the batch holds
``max_items`` items or ``max_cost`` (an estimate of tokens), runs ``run`` once on every
item in the thread that owns the model, and gives each caller its own slice back, in
order. When ``run`` fails, every request of that batch gets the error (the server answers
500 for them) and the worker goes on with the next batch. ``one_request=True`` runs each
request on its own: the baseline that dynamic batching is measured against.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

Item = TypeVar("Item")


@dataclass
class _Request(Generic[Item]):
    items: Sequence[Item]
    cost: int
    future: asyncio.Future[list[Any]] = field(repr=False)


class DynamicBatcher(Generic[Item]):
    def __init__(
        self,
        run: Callable[[list[Item]], Sequence[Any]],
        executor: Executor,
        cost: Callable[[Item], int] = lambda item: 1,
        max_items: int = 64,
        max_cost: int = 16_384,
        max_wait_s: float = 0.005,
        one_request: bool = False,
    ) -> None:
        self.run, self.executor, self.cost = run, executor, cost
        self.max_items, self.max_cost, self.max_wait_s = max_items, max_cost, max_wait_s
        self.one_request = one_request
        self.queue: asyncio.Queue[_Request[Item] | None] = asyncio.Queue()
        self.batches = 0  # forward passes run (for tests and the load benchmark)
        self._worker: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._worker = asyncio.get_running_loop().create_task(self._work())

    async def close(self) -> None:
        """Finish every request already queued, then stop."""
        if self._worker is not None:
            await self.queue.put(None)
            await self._worker
            self._worker = None

    async def submit(self, items: Sequence[Item]) -> list[Any]:
        """The results for ``items``, in order, computed in some shared batch."""
        if self._worker is None:
            raise RuntimeError("DynamicBatcher: not started (or already closed)")
        future: asyncio.Future[list[Any]] = asyncio.get_running_loop().create_future()
        await self.queue.put(_Request(items, sum(self.cost(i) for i in items), future))
        return await future

    async def _work(self) -> None:
        stopping = False
        while not stopping:
            first = await self.queue.get()
            if first is None:
                break
            batch, stopping = await self._collect(first)
            await self._run(batch)

    async def _collect(self, first: _Request[Item]) -> tuple[list[_Request[Item]], bool]:
        loop = asyncio.get_running_loop()
        batch, items, cost = [first], len(first.items), first.cost
        deadline = loop.time() + self.max_wait_s
        while not self.one_request and items < self.max_items and cost < self.max_cost:
            timeout = deadline - loop.time()
            if timeout <= 0:
                break
            try:
                request = await asyncio.wait_for(self.queue.get(), timeout)
            except TimeoutError:
                break
            if request is None:
                return batch, True
            batch.append(request)
            items, cost = items + len(request.items), cost + request.cost
        return batch, False

    async def _run(self, batch: list[_Request[Item]]) -> None:
        items = [item for request in batch for item in request.items]
        try:
            results = await asyncio.get_running_loop().run_in_executor(
                self.executor, self.run, items
            )
            if len(results) != len(items):
                raise RuntimeError(f"the model gave {len(results)} results for {len(items)}")
        except Exception as error:  # answered as a 500 for this batch; the server goes on
            for request in batch:
                if not request.future.done():
                    request.future.set_exception(error)
            return
        finally:
            self.batches += 1
        start = 0
        for request in batch:
            end = start + len(request.items)
            if not request.future.done():  # a caller that went away is skipped
                request.future.set_result(list(results[start:end]))
            start = end
