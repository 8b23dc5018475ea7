"""Fixtures of the many-instance tests: a cluster of `tellonce serve` processes, a Redis."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from support import PG_URL, reset_postgres

from .cluster import Cluster, RedisServer, server_env, start_instance, wait_ready

REDIS_URL = "redis://127.0.0.1:6379/0"

ClusterFactory = Callable[..., Awaitable[Cluster]]


@pytest.fixture
async def cluster_factory(tmp_path: Path) -> AsyncIterator[ClusterFactory]:
    """Start `count` instances at once on an emptied database; the first loads the demo data.

    Starting them together on an empty schema is on purpose: only one may migrate it.
    """
    clusters: list[Cluster] = []

    async def make(count: int = 3, *, redis_url: str = REDIS_URL, **settings: Any) -> Cluster:
        await asyncio.to_thread(reset_postgres, PG_URL)
        env = server_env(PG_URL, redis_url, **settings)
        cluster = Cluster(
            [start_instance(f"i{n}", env, tmp_path, demo=n == 0) for n in range(count)],
            env,
            tmp_path,
        )
        clusters.append(cluster)
        await asyncio.gather(*(wait_ready(i) for i in cluster.instances))
        return cluster

    try:
        yield make
    finally:
        for cluster in clusters:
            await cluster.aclose()
            for instance in cluster.processes:
                instance.stop()
                # Shown only when the test fails.
                print(f"--- {instance.log_path.name} (exit {instance.proc.returncode}) ---")
                print(instance.log_tail())


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    """A Redis of this test's own: restarting the machine's shared one would break other runs."""
    server = RedisServer(tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.kill()
