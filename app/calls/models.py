"""Calls and everything that travels with them: IVR steps, notes, transfers, who saw them."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Float, ForeignKey, Index, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from app.calls.states import FINAL_STATES, CallState, check
from app.db import Base, EnumText, utcnow

__all__ = [
    "ESCALATIONS",
    "FINAL_STATES",
    "AskedAgain",
    "Call",
    "CallAgent",
    "CallState",
    "IvrStep",
    "Note",
    "Transfer",
]


ESCALATIONS = "escalations"


class Call(Base):
    __tablename__ = "calls"
    __table_args__ = (
        Index("ix_calls_state_queue", "state", "queue"),
        # The routing loop's sweep of calls whose phone tree fell silent.
        Index("ix_calls_state_ivr_active_at", "state", "ivr_active_at"),
        # The supervisors' reports read a period's calls by it (app/reports/).
        Index("ix_calls_first_queued_at", "first_queued_at"),
        # The calls not rolled up yet (app/reports/rollup.py): the live ones, and those that
        # finished since the last pass; few, whatever the size of the table.
        Index(
            "ix_calls_not_rolled_up",
            "first_queued_at",
            sqlite_where=text("rolled_up = 0"),
            postgresql_where=text("rolled_up = false"),
        ),
        # Of those, the finished ones (a call ends once: wrapped, or abandoned), for the pass
        # that rolls them up.
        Index(
            "ix_calls_finished_not_rolled_up",
            "ended_at",
            sqlite_where=text("rolled_up = 0"),
            postgresql_where=text("rolled_up = false"),
        ),
        # The repeat calls of a period, whose callers are counted from it alone.
        Index(
            "ix_calls_repeats",
            "first_queued_at",
            "queue",
            "agent_id",
            "prev_repeat_at",
            "prev_repeat_in_queue_at",
            "prev_repeat_of_agent_at",
            sqlite_where=text("repeats = 1"),
            postgresql_where=text("repeats = true"),
        ),
        # A caller's earlier calls, for unknown callers (customers' calls: by customer_id).
        Index("ix_calls_caller_number", "caller_number"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    state: Mapped[CallState] = mapped_column(EnumText(CallState), default=CallState.ivr)
    caller_number: Mapped[str] = mapped_column(String(20))
    language: Mapped[str | None] = mapped_column(String(8), default=None)
    customer_id: Mapped[int | None] = mapped_column(
        ForeignKey("customers.id", ondelete="SET NULL"), index=True, default=None
    )
    # The number matched a customer: a hint for the agent, not a verification.
    caller_known: Mapped[bool] = mapped_column(default=False)
    verified: Mapped[bool] = mapped_column(default=False)
    verify_method: Mapped[str | None] = mapped_column(String(32), default=None)
    verified_at: Mapped[datetime | None] = mapped_column(default=None)
    verify_failures: Mapped[int] = mapped_column(default=0)
    intent: Mapped[str | None] = mapped_column(String(64), default=None)
    queue: Mapped[str | None] = mapped_column(String(64), default=None)
    escalation_reason: Mapped[str | None] = mapped_column(String(64), default=None)
    utterance: Mapped[str | None] = mapped_column(Text, default=None)
    collected: Mapped[dict[str, Any]] = mapped_column(default=dict)
    vip: Mapped[bool] = mapped_column(default=False)
    agent_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), index=True, default=None
    )
    offer_expires_at: Mapped[datetime | None] = mapped_column(default=None, index=True)
    # Agents that rejected the call: it goes to others first, and back to one of them only
    # once nobody else can take it and TELLONCE_REOFFER_AFTER_S have passed since rejected_at.
    rejected_by: Mapped[list[Any]] = mapped_column(default=list)
    rejected_at: Mapped[datetime | None] = mapped_column(default=None)
    announced_position: Mapped[int | None] = mapped_column(default=None)
    disposition: Mapped[str | None] = mapped_column(String(16), default=None)
    sentiment: Mapped[str | None] = mapped_column(String(16), default=None)
    csat: Mapped[int | None] = mapped_column(default=None)
    had_to_repeat: Mapped[bool | None] = mapped_column(default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # When it joined its current queue (its place in the queue; kept through a rejection).
    queued_at: Mapped[datetime | None] = mapped_column(default=None)
    first_queued_at: Mapped[datetime | None] = mapped_column(default=None)
    connected_at: Mapped[datetime | None] = mapped_column(default=None)
    first_connected_at: Mapped[datetime | None] = mapped_column(default=None)
    hungup_at: Mapped[datetime | None] = mapped_column(default=None)
    ended_at: Mapped[datetime | None] = mapped_column(default=None)
    # The caller's wait: time queued before each answer, summed over every queue. waited_s
    # holds the periods that ended; while the call waits, waiting_since is now minus the whole
    # wait so far (so the longest wait of a queue is one min()). See wait_s in context.py.
    waited_s: Mapped[float] = mapped_column(Float, default=0.0, server_default=text("0"))
    waiting_since: Mapped[datetime | None] = mapped_column(default=None)
    # The phone tree's last word about the call (its creation, a step, a verification): a call
    # still in the tree after TELLONCE_IVR_SILENCE_S without one is abandoned, since the tree
    # that held it went away (a crash, a lost connection) without hanging up.
    ivr_active_at: Mapped[datetime | None] = mapped_column(default=None)
    # What the call cost the caller beyond its own rows (app/calls/effort.py): offers made to
    # agents, and moves to escalations (the phone tree's handoff there included). effort_score
    # is the score, kept once the call is over, for the customer's history and their sum.
    offers: Mapped[int] = mapped_column(default=0, server_default=text("0"))
    escalations: Mapped[int] = mapped_column(default=0, server_default=text("0"))
    effort_score: Mapped[float | None] = mapped_column(Float, default=None)
    # The customer's earlier call about the same intent within 7 days, and the agent who
    # handled it: offered the call first when available and skilled (routing.match).
    repeat_of: Mapped[int | None] = mapped_column(
        ForeignKey("calls.id", ondelete="SET NULL"), default=None
    )
    prefer_agent_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), default=None
    )

    # The caller took the phone tree's callback offer and hung up: the call keeps its place in
    # its queue and everything collected; the agent who takes it phones callback_number and
    # records when (called_back_at).
    callback_number: Mapped[str | None] = mapped_column(String(20), default=None)
    callback_requested_at: Mapped[datetime | None] = mapped_column(default=None)
    called_back_at: Mapped[datetime | None] = mapped_column(default=None)

    # Counted in the reports' roll-ups (app/reports/rollup.py) once finished. Set then: whether
    # it repeats an earlier call of its caller about the same thing within 7 days, and, if so,
    # when that caller's last repeat call before it was handed off (within a year): of any
    # queue, of its queue, answered by its agent. A period's repeat callers are then its repeat
    # calls with no such call since the period began.
    rolled_up: Mapped[bool] = mapped_column(default=False, server_default=text("false"))
    repeats: Mapped[bool] = mapped_column(default=False, server_default=text("false"))
    prev_repeat_at: Mapped[datetime | None] = mapped_column(default=None)
    prev_repeat_in_queue_at: Mapped[datetime | None] = mapped_column(default=None)
    prev_repeat_of_agent_at: Mapped[datetime | None] = mapped_column(default=None)

    def start_waiting(self, now: datetime) -> None:
        self.waiting_since = now - timedelta(seconds=self.waited_s)

    def stop_waiting(self, now: datetime) -> None:
        """Answered, or the caller hung up: the period that was running ends."""
        if self.waiting_since is not None:
            self.waited_s = max(0.0, (now - self.waiting_since).total_seconds())
            self.waiting_since = None

    def move_to(self, state: CallState) -> None:
        """The one way a call changes state: a move app/calls/states.py does not list is 409."""
        check(self.state, state)
        self.state = state


class CallAgent(Base):
    """Every agent a call was ever offered or assigned to: the agent's right to see it."""

    __tablename__ = "call_agents"

    call_id: Mapped[int] = mapped_column(
        ForeignKey("calls.id", ondelete="CASCADE"), primary_key=True
    )
    agent_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    at: Mapped[datetime] = mapped_column(default=utcnow)


class IvrStep(Base):
    __tablename__ = "ivr_steps"

    id: Mapped[int] = mapped_column(primary_key=True)
    call_id: Mapped[int] = mapped_column(ForeignKey("calls.id", ondelete="CASCADE"), index=True)
    node: Mapped[str] = mapped_column(String(64))
    prompt: Mapped[str] = mapped_column(Text)
    input: Mapped[str | None] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column(default=utcnow)


class Note(Base):
    __tablename__ = "notes"

    id: Mapped[int] = mapped_column(primary_key=True)
    call_id: Mapped[int] = mapped_column(ForeignKey("calls.id", ondelete="CASCADE"), index=True)
    author_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    text: Mapped[str] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column(default=utcnow)


class Transfer(Base):
    __tablename__ = "transfers"

    id: Mapped[int] = mapped_column(primary_key=True)
    call_id: Mapped[int] = mapped_column(ForeignKey("calls.id", ondelete="CASCADE"), index=True)
    from_agent_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    to_queue: Mapped[str | None] = mapped_column(String(64))
    to_agent_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    # The supervisor who moved the call (an assignment, a reassignment, a move to a queue);
    # null for an agent's own transfer.
    by_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), default=None
    )
    note: Mapped[str | None] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column(default=utcnow)


class AskedAgain(Base):
    """An agent had to ask the caller for something the phone tree had collected already."""

    __tablename__ = "asked_again"

    id: Mapped[int] = mapped_column(primary_key=True)
    call_id: Mapped[int] = mapped_column(ForeignKey("calls.id", ondelete="CASCADE"), index=True)
    # A key of the call's collected answers, or "identity".
    field: Mapped[str] = mapped_column(String(64))
    agent_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    at: Mapped[datetime] = mapped_column(default=utcnow)
