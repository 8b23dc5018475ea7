"""One app's metrics: its own registry, the counters services bump after their commit, and the
figures read from the database at each scrape."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from app.calls.states import CallState
from app.db import utcnow
from app.metrics import repository
from app.realtime import repository as outbox
from app.users.models import AgentStatus

if TYPE_CHECKING:
    from app.context import AppContext
    from app.uow import UnitOfWork

# An escalation's reason is any short word the phone tree or an agent gives: past this many
# distinct ones, the rest are counted as "other", so that no client can grow the series at will.
MAX_REASONS = 50
OTHER = "other"
OFFER_OUTCOMES = ("made", "accepted", "rejected", "expired", "withdrawn")


@dataclass
class Snapshot:
    """What the database said at one scrape."""

    calls: dict[str, int] = field(default_factory=dict)
    waiting: dict[str, int] = field(default_factory=dict)
    longest_wait_s: dict[str, float] = field(default_factory=dict)
    agents: dict[str, int] = field(default_factory=dict)
    outbox_lag: int = 0
    websockets: int = 0


class LiveFigures(Collector):
    """Yields the figures of the snapshot taken just before the registry is rendered; they are
    read per scrape, not kept up to date between scrapes."""

    def __init__(self) -> None:
        self.snapshot = Snapshot()

    def collect(self) -> Iterator[Metric]:
        snap = self.snapshot
        calls = GaugeMetricFamily(
            "tellonce_calls",
            "Calls still going (not ended or abandoned), by state",
            labels=["state"],
        )
        for state, n in sorted(snap.calls.items()):
            calls.add_metric([state], n)
        yield calls
        waiting = GaugeMetricFamily(
            "tellonce_queue_waiting", "Calls queued, waiting for an agent", labels=["queue"]
        )
        longest = GaugeMetricFamily(
            "tellonce_queue_longest_wait_seconds",
            "How long the longest waiting call of the queue has waited in all (0: none waits)",
            labels=["queue"],
        )
        for queue in sorted(snap.waiting):
            waiting.add_metric([queue], snap.waiting[queue])
            longest.add_metric([queue], snap.longest_wait_s.get(queue, 0.0))
        yield waiting
        yield longest
        agents = GaugeMetricFamily("tellonce_agents", "Agents by status", labels=["status"])
        for status, n in sorted(snap.agents.items()):
            agents.add_metric([status], n)
        yield agents
        yield GaugeMetricFamily(
            "tellonce_websocket_connections",
            "Authenticated websockets open on this instance",
            value=snap.websockets,
        )
        yield GaugeMetricFamily(
            "tellonce_outbox_lag_events",
            "Events committed (by any instance) that this instance's hub has not sent yet",
            value=snap.outbox_lag,
        )


class Metrics:
    """The series of one app (one instance): a registry of its own, never the global default,
    so that apps made side by side in one process keep theirs apart."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.offers = Counter(
            "tellonce_offers",
            "Offers of calls to agents: made, and how they ended",
            ["outcome"],
            registry=self.registry,
        )
        for outcome in OFFER_OUTCOMES:
            self.offers.labels(outcome)
        self.escalations = Counter(
            "tellonce_escalations",
            "Moves of calls into the escalations queue, by escalation reason",
            ["reason"],
            registry=self.registry,
        )
        self._reasons: set[str] = set()
        self.requests = Histogram(
            "tellonce_http_request_duration_seconds",
            "Time to answer HTTP requests, per method and route template",
            ["method", "route"],
            registry=self.registry,
        )
        self.live = LiveFigures()
        self.registry.register(self.live)

    def offered(self, outcome: str) -> None:
        self.offers.labels(outcome).inc()

    def escalated(self, reason: str) -> None:
        if reason not in self._reasons:
            if len(self._reasons) >= MAX_REASONS:
                reason = OTHER
            else:
                self._reasons.add(reason)
        self.escalations.labels(reason).inc()

    def render(self, snapshot: Snapshot) -> bytes:
        self.live.snapshot = snapshot
        return generate_latest(self.registry)


def count_offer(uow: UnitOfWork, outcome: str) -> None:
    """Count an offer's outcome once the unit of work commits (a rollback counts nothing)."""
    metrics = uow.ctx.metrics
    if metrics is not None:
        uow.after_commit(lambda: metrics.offered(outcome))


def count_escalation(uow: UnitOfWork, reason: str | None) -> None:
    metrics = uow.ctx.metrics
    if metrics is not None:
        uow.after_commit(lambda: metrics.escalated(reason or "unknown"))


async def snapshot(ctx: AppContext, *, now: datetime | None = None) -> Snapshot:
    """The figures of this scrape: live calls and agents from the database, the rest from this
    instance's hub."""
    now = now or utcnow()
    snap = Snapshot(
        calls={state.value: 0 for state in repository.LIVE_STATES},
        waiting={queue: 0 for queue in ctx.flow.queues},
        longest_wait_s={queue: 0.0 for queue in ctx.flow.queues},
        agents={status.value: 0 for status in AgentStatus},
    )
    async with ctx.reading() as session:
        rows = await repository.live_calls(session)
        snap.agents.update(await repository.agents_by_status(session))
        latest = await outbox.latest_seq(session)
    for state, queue, n, since in rows:
        snap.calls[state] = snap.calls.get(state, 0) + n
        if state == CallState.queued and queue is not None:
            snap.waiting[queue] = snap.waiting.get(queue, 0) + n
            if since is not None:
                waited = max(0.0, (now - since).total_seconds())
                snap.longest_wait_s[queue] = max(snap.longest_wait_s.get(queue, 0.0), waited)
    hub = ctx.hub
    if hub is not None:
        snap.websockets = hub.connection_count
        snap.outbox_lag = max(0, latest - hub.sent_seq)
    return snap
