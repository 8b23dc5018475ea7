"""The hashing threads on their own: PIN checks first, then arrival order; results, errors and
cancelled jobs."""

from __future__ import annotations

import threading
from concurrent.futures import wait

import pytest

from app.auth.hashing import HashingThreads, Priority

DEADLINE_S = 10.0


def held_pool(threads: int) -> tuple[HashingThreads, threading.Event, list[str]]:
    """A pool whose threads are all busy until the event is set; the jobs' tags, in order."""
    pool = HashingThreads(threads, name="test-argon2")
    release, began = threading.Event(), threading.Semaphore(0)
    order: list[str] = []

    def held() -> None:
        began.release()
        release.wait(DEADLINE_S)

    for _ in range(threads):
        pool.submit(Priority.PEOPLE, held)
    for _ in range(threads):
        assert began.acquire(timeout=DEADLINE_S)
    return pool, release, order


def test_pin_checks_go_before_every_waiting_job() -> None:
    pool, release, order = held_pool(1)
    tags = ["sign-in-0", "sign-in-1", "pin-0", "sign-in-2", "pin-1", "sign-in-3"]
    futures = [
        pool.submit(Priority.PIN if tag.startswith("pin") else Priority.PEOPLE, order.append, tag)
        for tag in tags
    ]
    release.set()
    done, _ = wait(futures, timeout=DEADLINE_S)
    assert len(done) == len(futures)
    assert order == ["pin-0", "pin-1", "sign-in-0", "sign-in-1", "sign-in-2", "sign-in-3"]


def test_a_cancelled_job_that_has_not_begun_never_runs() -> None:
    pool, release, order = held_pool(1)
    dropped = pool.submit(Priority.PEOPLE, order.append, "dropped")
    kept = pool.submit(Priority.PEOPLE, order.append, "kept")
    assert dropped.cancel()
    release.set()
    assert kept.result(DEADLINE_S) is None
    assert order == ["kept"]


async def test_run_gives_the_result_or_the_error() -> None:
    pool = HashingThreads(2, name="test-argon2")
    assert await pool.run(Priority.PIN, pow, 2, 10) == 1024
    with pytest.raises(ZeroDivisionError):
        await pool.run(Priority.PEOPLE, divmod, 1, 0)
