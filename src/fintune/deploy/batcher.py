"""Micro-batching: concurrent requests are scored together in one forward pass.

A request waits at most ``max_wait_ms`` for others to join; a batch closes when it holds
``max_batch_size`` inputs. Scoring runs on one worker thread, so the model sees one batch
at a time and the event loop stays free to accept requests.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

Job = TypeVar("Job")


@dataclass
class _Pending(Generic[Job]):
    job: Job
    size: int
    future: asyncio.Future = field(repr=False)


class MicroBatcher(Generic[Job]):
    """Collects jobs (each with a size) and runs ``score(jobs) -> results`` on batches of them."""

    def __init__(self, score: Callable[[list[Job]], list[Any]], max_batch_size: int, max_wait_ms: float,
                 on_batch: Callable[[int], None] | None = None) -> None:
        self.score, self.max_batch_size, self.max_wait = score, max_batch_size, max_wait_ms / 1000
        self.on_batch = on_batch
        self._queue: asyncio.Queue[_Pending[Job] | None] = asyncio.Queue()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="scorer")
        self._task: asyncio.Task | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        """Finish every queued job, then stop."""
        await self._queue.put(None)
        if self._task is not None:
            await self._task
        self._executor.shutdown(wait=True)

    async def submit(self, job: Job, size: int) -> Any:
        """Queue one job and wait for its result."""
        future = asyncio.get_running_loop().create_future()
        await self._queue.put(_Pending(job, size, future))
        return await future

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        stopping = False
        while not stopping:
            first = await self._queue.get()
            if first is None:
                break
            batch, total = [first], first.size
            deadline = time.monotonic() + self.max_wait
            while total < self.max_batch_size:
                try:
                    nxt = await asyncio.wait_for(self._queue.get(), max(deadline - time.monotonic(), 0))
                except asyncio.TimeoutError:
                    break
                if nxt is None:
                    stopping = True
                    break
                batch.append(nxt)
                total += nxt.size
            await self._score(loop, batch, total)
        # Anything still queued behind the stop marker is scored before the loop ends.
        rest = []
        while not self._queue.empty():
            item = self._queue.get_nowait()
            if item is not None:
                rest.append(item)
        if rest:
            await self._score(loop, rest, sum(p.size for p in rest))

    async def _score(self, loop: asyncio.AbstractEventLoop, batch: list[_Pending[Job]], total: int) -> None:
        try:
            results = await loop.run_in_executor(self._executor, self.score, [p.job for p in batch])
        except Exception as exc:  # noqa: BLE001 - the error belongs to the requests, not the loop
            for pending in batch:
                if not pending.future.done():
                    pending.future.set_exception(exc)
            return
        if self.on_batch:
            self.on_batch(total)
        for pending, result in zip(batch, results, strict=True):
            if not pending.future.done():
                pending.future.set_result(result)
