"""A pool of threads that runs the most urgent fetch first, and lets a waiter run its own.

:class:`~photonpack.lock.shared.SharedIndex` fetches ahead for every target of a
lock at once, and the targets resolve one after another: with a first-come pool,
the first target's resolver waited behind the guesses made for the three others
(a four-target lock spent half again as long on its first target as a one-target
lock). Here each call has a priority (lower first: the target resolving now, then
the next); a call still queued when someone needs its result is run by that
caller at once (:meth:`PriorityPool.run_now`) rather than waited for.
"""

from __future__ import annotations

import concurrent.futures
import itertools
import queue
import threading
from collections.abc import Callable
from typing import Any, TypeVar

__all__ = ["PriorityPool"]

T = TypeVar("T")

_Item = tuple[int, int, "concurrent.futures.Future[Any] | None", Callable[[], Any]]


class PriorityPool:
    """``workers`` threads taking queued calls lowest priority first (ties: first submitted)."""

    def __init__(self, workers: int, name: str) -> None:
        self._queue: queue.PriorityQueue[_Item] = queue.PriorityQueue()
        self._order = itertools.count()
        self._lock = threading.Lock()
        self._calls: dict[concurrent.futures.Future[Any], Callable[[], Any]] = {}
        self._closed = False
        self._threads = [
            threading.Thread(target=self._work, name=f"{name}-{n}", daemon=True)
            for n in range(workers)
        ]
        for thread in self._threads:
            thread.start()

    def submit(self, priority: int, call: Callable[[], T]) -> concurrent.futures.Future[T]:
        """Queue ``call``; its future. Raises RuntimeError once the pool is shut down."""
        future: concurrent.futures.Future[T] = concurrent.futures.Future()
        with self._lock:
            if self._closed:
                raise RuntimeError("the pool is shut down")
            self._calls[future] = call
        self._queue.put((priority, next(self._order), future, call))
        return future

    def run_now(self, future: concurrent.futures.Future[Any]) -> None:
        """Run ``future``'s call in this thread if no worker has started it (else: nothing)."""
        call = self._claim(future)
        if call is not None:
            _run(future, call)

    def shutdown(self) -> None:
        """Cancel what is queued, let the calls running end, and stop the threads."""
        with self._lock:
            self._closed = True
            queued = list(self._calls)
            self._calls.clear()
        for future in queued:
            future.cancel()
        for _ in self._threads:
            self._queue.put((-1, next(self._order), None, lambda: None))  # ahead of anything
        for thread in self._threads:
            thread.join()

    def _claim(self, future: concurrent.futures.Future[Any]) -> Callable[[], Any] | None:
        with self._lock:
            call = self._calls.pop(future, None)
            if call is None or not future.set_running_or_notify_cancel():
                return None
            return call

    def _work(self) -> None:
        while True:
            _, _, future, _ = self._queue.get()
            if future is None:
                return
            if (call := self._claim(future)) is not None:
                _run(future, call)


def _run(future: concurrent.futures.Future[Any], call: Callable[[], Any]) -> None:
    try:
        result = call()
    except BaseException as exc:  # noqa: BLE001 - raised again by the future's result()
        future.set_exception(exc)
    else:
        future.set_result(result)
