"""The lock's fetching pool: the most urgent call first, and a waiter runs a queued call itself."""

from __future__ import annotations

import concurrent.futures
import threading
from collections.abc import Callable

import pytest

from photonpack.lock.prefetch import PriorityPool


def _blocked(pool: PriorityPool) -> tuple[threading.Event, threading.Event]:
    """Occupy the pool's one worker until the first event is set; the second: it started."""
    release, started = threading.Event(), threading.Event()

    def hold() -> None:
        started.set()
        release.wait(10)

    pool.submit(0, hold)
    assert started.wait(10)
    return release, started


def test_queued_calls_run_lowest_priority_first_then_in_submission_order() -> None:
    pool = PriorityPool(1, "test")
    release, _ = _blocked(pool)
    ran: list[str] = []

    def call(name: str) -> Callable[[], None]:
        return lambda: ran.append(name)

    futures = [
        pool.submit(priority, call(name))
        for priority, name in ((3, "third"), (1, "first"), (2, "second"), (1, "first again"))
    ]
    release.set()
    concurrent.futures.wait(futures, timeout=10)
    pool.shutdown()
    assert ran == ["first", "first again", "second", "third"]


def test_a_waiter_runs_a_queued_call_in_its_own_thread_and_only_once() -> None:
    pool = PriorityPool(1, "test")
    release, _ = _blocked(pool)
    threads: list[int] = []

    def call() -> str:
        threads.append(threading.get_ident())
        return "done"

    future = pool.submit(5, call)
    pool.run_now(future)
    assert future.result(timeout=0) == "done"
    release.set()
    pool.shutdown()
    assert threads == [threading.get_ident()]


def test_run_now_leaves_a_call_a_worker_already_runs_to_it() -> None:
    pool = PriorityPool(1, "test")
    release, started = threading.Event(), threading.Event()

    def hold() -> str:
        started.set()
        release.wait(10)
        return "worker"

    future = pool.submit(0, hold)
    assert started.wait(10)
    pool.run_now(future)  # returns at once: the worker has it
    assert not future.done()
    release.set()
    assert future.result(timeout=10) == "worker"
    pool.shutdown()


def test_a_call_that_fails_raises_from_its_future() -> None:
    pool = PriorityPool(2, "test")
    future = pool.submit(0, lambda: 1 // 0)
    with pytest.raises(ZeroDivisionError):
        future.result(timeout=10)
    pool.shutdown()


def test_shutdown_cancels_what_is_queued_and_refuses_more() -> None:
    pool = PriorityPool(1, "test")
    release, _ = _blocked(pool)
    queued = pool.submit(1, lambda: "never")
    threading.Timer(0.1, release.set).start()
    pool.shutdown()
    assert queued.cancelled()
    with pytest.raises(RuntimeError, match="shut down"):
        pool.submit(0, lambda: None)
