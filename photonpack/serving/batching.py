"""Server-side batching (Lepton's ``max_batch_size`` and ``max_wait_time``).

Calls that arrive while a batch is open are gathered into one call of the
handler: each parameter becomes the list of the calls' values, in arrival
order, and the handler returns one result per call, which goes back to that
call. A batch runs when it holds ``max_batch_size`` calls or when its first
call has waited ``max_wait_time`` seconds, whichever comes first.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

__all__ = ["BatchResultError", "Batcher"]

RunBatch = Callable[[dict[str, list[Any]]], Awaitable[Any]]


class BatchResultError(Exception):
    """A batched handler did not return one result per call."""


class Batcher:
    """Gathers calls into batches for one handler (one batcher per event loop use)."""

    def __init__(self, name: str, run: RunBatch, *, size: int, wait: float) -> None:
        self._name = name
        self._run = run
        self._size = size
        self._wait = wait
        self._open: list[tuple[dict[str, Any], asyncio.Future[Any]]] = []
        self._timer: asyncio.TimerHandle | None = None
        self._running: set[asyncio.Task[None]] = set()  # held: the loop keeps weak refs only

    async def submit(self, kwargs: dict[str, Any]) -> Any:
        """Add one call to the open batch and wait for its own result."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        self._open.append((kwargs, future))
        if len(self._open) >= self._size:
            self._flush()
        elif self._timer is None:
            self._timer = loop.call_later(self._wait, self._flush)
        return await future

    def _flush(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        batch, self._open = self._open[: self._size], self._open[self._size :]
        if self._open:
            self._timer = asyncio.get_running_loop().call_later(self._wait, self._flush)
        calls = [(kwargs, future) for kwargs, future in batch if not future.done()]
        if calls:
            task = asyncio.get_running_loop().create_task(self._execute(calls))
            self._running.add(task)
            task.add_done_callback(self._running.discard)

    async def _execute(self, calls: list[tuple[dict[str, Any], asyncio.Future[Any]]]) -> None:
        names = list(calls[0][0])
        batched = {name: [kwargs.get(name) for kwargs, _ in calls] for name in names}
        try:
            results = await self._run(batched)
            if not isinstance(results, list | tuple) or len(results) != len(calls):
                is_list = isinstance(results, list | tuple)
                found = f"{len(results)}" if is_list else type(results).__name__
                raise BatchResultError(
                    f"{self._name} is batched (max_batch_size) and must return a list with one "
                    f"result per call: {len(calls)} calls, got {found}"
                )
        except asyncio.CancelledError:
            for _, future in calls:
                future.cancel()
            raise
        except Exception as exc:  # noqa: BLE001 - every caller of the batch gets it
            for _, future in calls:
                if not future.done():
                    future.set_exception(exc)
            return
        for (_, future), result in zip(calls, results, strict=True):
            if not future.done():
                future.set_result(result)
