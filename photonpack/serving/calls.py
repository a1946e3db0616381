"""One handler call: its slot, its thread, its deadline, and the response it becomes.

Each handler has ``handler_max_concurrency`` slots. A call takes a slot, runs
(a sync handler in one of the handler's own threads) and gives the slot back
when it ends. With ``handler_timeout`` the client gets a 504 at the deadline,
counted from when the call arrived (waiting for a slot included), so every call
is answered in time. A sync call that overran keeps its slot until its thread
really returns: a thread cannot be stopped, and abandoning it would let hung
calls pile up threads without bound. So a handler never has more than
``handler_max_concurrency`` threads, and they are daemon threads: a hung one
never holds the process open once the server has shut down.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import json
import logging
import queue
import threading
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import anyio
from fastapi import Request
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from photonpack.serving.batching import Batcher
from photonpack.serving.errors import FileContentError
from photonpack.serving.handler import HandlerSpec
from photonpack.serving.operations import Queue

if TYPE_CHECKING:
    from photonpack.serving.photon import Photon

__all__ = ["Call", "Slots", "caller", "to_response"]

logger = logging.getLogger("photonpack")

# What a worker thread is handed: the loop to answer on, the future to settle,
# the call, its context, and the slot to give back.
_Job = tuple[
    asyncio.AbstractEventLoop,
    "asyncio.Future[Any]",
    Callable[[], Any],
    contextvars.Context,
    asyncio.Semaphore,
]


class Slots:
    """One handler's concurrency slots (one set per event loop) and its worker threads."""

    def __init__(self, name: str, limit: int) -> None:
        self._name = name
        self._limit = limit
        self._loop: asyncio.AbstractEventLoop | None = None
        self._free: asyncio.Semaphore | None = None
        self._lock = threading.Lock()
        self._idle: list[queue.SimpleQueue[_Job]] = []
        self.threads = 0  # worker threads started so far; they never exit

    def _semaphore(self) -> asyncio.Semaphore:
        loop = asyncio.get_running_loop()
        if self._free is None or loop is not self._loop:
            self._loop, self._free = loop, asyncio.Semaphore(self._limit)
        return self._free

    async def run_async(self, call: Callable[[], Awaitable[Any]]) -> Any:
        """Await ``call()`` in a slot; cancelling the caller cancels it and frees the slot."""
        async with self._semaphore():
            return await call()

    async def run_sync(self, call: Callable[[], Any]) -> Any:
        """Run ``call()`` in a worker thread, in a slot held until the thread returns."""
        free = self._semaphore()
        await free.acquire()
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        try:
            self._worker().put((loop, future, call, contextvars.copy_context(), free))
        except BaseException:
            free.release()
            raise
        # Cancelled (the deadline), this cancels the future only: the thread
        # runs on and _settle gives the slot back when it returns.
        return await future

    def _worker(self) -> queue.SimpleQueue[_Job]:
        with self._lock:
            if self._idle:
                return self._idle.pop()
            self.threads += 1
            number = self.threads
        jobs: queue.SimpleQueue[_Job] = queue.SimpleQueue()
        threading.Thread(
            target=self._work, args=(jobs,), name=f"{self._name}-{number}", daemon=True
        ).start()
        return jobs

    def _work(self, jobs: queue.SimpleQueue[_Job]) -> None:
        while True:
            loop, future, call, context, free = jobs.get()
            outcome: tuple[Any, BaseException | None]
            try:
                outcome = (context.run(call), None)
            except BaseException as exc:  # noqa: BLE001 - handed to the awaiting task
                outcome = (None, exc)
            # Idle before the slot is freed, so the call that takes the slot
            # finds this thread instead of starting another.
            with self._lock:
                self._idle.append(jobs)
            with contextlib.suppress(RuntimeError):  # a closed loop: nobody waits any more
                loop.call_soon_threadsafe(_settle, future, outcome, free)
            del loop, future, call, context, free, outcome  # hold nothing while idle


def _settle(
    future: asyncio.Future[Any], outcome: tuple[Any, BaseException | None], free: asyncio.Semaphore
) -> None:
    free.release()
    if future.cancelled():
        return
    result, error = outcome
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)


Call = Callable[[dict[str, Any], Request | None], Awaitable[Response]]


def caller(photon: Photon, spec: HandlerSpec, queue: Queue | None = None) -> Call:
    """Call the handler under the photon's concurrency cap and timeout; map the outcome.

    The call takes the request only to watch its connection
    (``cancel_on_disconnect``); ``queue`` counts the calls in flight.
    """
    cls = type(photon)
    func = spec.func.__get__(photon)  # undecorated: init() already ran
    slots = Slots(f"photon-{spec.name}", cls.handler_max_concurrency)
    timeout = cls.handler_timeout
    queue = queue or Queue()

    async def run(kwargs: dict[str, Any]) -> Any:
        if spec.is_async:
            return await slots.run_async(lambda: func(**kwargs))
        return await slots.run_sync(lambda: func(**kwargs))

    invoke: Callable[[dict[str, Any]], Awaitable[Any]] = run
    if spec.max_batch_size is not None and spec.max_wait_time is not None:
        invoke = Batcher(spec.name, run, size=spec.max_batch_size, wait=spec.max_wait_time).submit

    async def call(kwargs: dict[str, Any], request: Request | None = None) -> Response:
        with queue.counting():
            if spec.cancel_on_disconnect is None or request is None:
                return await answer(kwargs)
            return await _unless_disconnected(request, spec, answer(kwargs))

    async def answer(kwargs: dict[str, Any]) -> Response:
        try:
            if timeout is None:
                result = await invoke(kwargs)
            else:
                with anyio.fail_after(timeout):
                    result = await invoke(kwargs)
        except StarletteHTTPException as exc:
            return JSONResponse({"error": exc.detail}, exc.status_code, headers=exc.headers)
        except TimeoutError:
            return JSONResponse(
                {"error": f"{spec.name} did not finish within {timeout} s (handler_timeout)"},
                504,
            )
        except FileContentError as exc:  # the caller's file (a URL, base64) cannot be read
            return JSONResponse({"error": exc.message}, 400)
        except Exception as exc:
            logger.exception("handler %s failed", spec.name)
            return JSONResponse({"error": f"{type(exc).__name__}: {exc}"}, 500)
        try:
            return to_response(result)
        except Exception:
            logger.exception("handler %s returned a value that is not JSON", spec.name)
            return JSONResponse(
                {
                    "error": f"{spec.name} returned {type(result).__name__!r}, which cannot be "
                    "encoded as JSON; return JSON data, a pydantic model or a Response"
                },
                500,
            )

    return call


async def _unless_disconnected(
    request: Request, spec: HandlerSpec, answer: Awaitable[Response]
) -> Response:
    """``answer``, unless the client goes away first: then the call is cancelled, 503.

    A sync handler's thread cannot be stopped: it runs to its end, holding its
    slot, but its result is dropped. An async handler is cancelled where it awaits.
    """
    interval = spec.cancel_on_disconnect or 1.0
    task = asyncio.ensure_future(answer)
    while True:
        done, _ = await asyncio.wait({task}, timeout=interval)
        if done:
            return task.result()
        if await request.is_disconnected():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            logger.info("%s: the client went away; the call was cancelled", spec.name)
            return JSONResponse(
                {"error": f"{spec.name} was cancelled: the client disconnected"}, 503
            )


def to_response(result: Any) -> Response:
    """The HTTP response for a handler's return value (raises when it is not JSON data)."""
    if isinstance(result, Response):
        return result
    if result is None:
        return Response(status_code=204)
    if type(result) in (int, float, str, bool):  # the common case, without the encoder
        body = json.dumps(result, ensure_ascii=False, allow_nan=False)
        return Response(body.encode(), media_type="application/json")
    return JSONResponse(jsonable_encoder(result))
