"""The threads that run argon2, with the phone tree's PIN checks taken before anything waiting."""

from __future__ import annotations

import asyncio
import enum
import functools
import itertools
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, TypeVar

T = TypeVar("T")


class Priority(enum.IntEnum):
    """Lower goes first."""

    PIN = 0  # a caller waits on the line for the answer
    PEOPLE = 1  # sign-ins, and the hashes of new users and customers


class HashingThreads:
    """A fixed number of threads that take argon2 work by priority, then in order of arrival.

    A PIN check waits only for the hashes already running, never for a queue of sign-ins: a
    flood of them cannot starve the phone tree, and argon2 still takes no more threads (so no
    more cores) than it is given. The queue of sign-ins itself is bounded before it gets here
    (TELLONCE_SIGNIN_MAX_PENDING, app/auth/throttle.py).
    """

    def __init__(self, threads: int, *, name: str = "argon2") -> None:
        self.threads = threads
        self._jobs: queue.PriorityQueue[tuple[int, int, Callable[[], Any], Future[Any]]] = (
            queue.PriorityQueue()
        )
        self._arrivals = itertools.count()
        for number in range(threads):
            # Daemon threads: idle ones wait on the queue and must not hold the process at exit.
            threading.Thread(target=self._work, name=f"{name}-{number}", daemon=True).start()

    def submit(self, priority: Priority, fn: Callable[..., T], *args: Any) -> Future[T]:
        future: Future[T] = Future()
        self._jobs.put((priority, next(self._arrivals), functools.partial(fn, *args), future))
        return future

    async def run(self, priority: Priority, fn: Callable[..., T], *args: Any) -> T:
        """fn(*args) on these threads, awaited; cancelling the wait drops a job not yet begun."""
        return await asyncio.wrap_future(self.submit(priority, fn, *args))

    def _work(self) -> None:
        while True:
            _, _, job, future = self._jobs.get()
            if not future.set_running_or_notify_cancel():
                continue
            try:
                result = job()
            except BaseException as exc:
                future.set_exception(exc)
            else:
                future.set_result(result)
