"""The call's states and the only moves between them.

Every change of a call's state goes through `move` (Call.move_to): a move the table does not
list is refused with 409, whichever route or background task asked for it.
"""

from __future__ import annotations

import enum

from app.errors import Conflict


class CallState(enum.StrEnum):
    ivr = "ivr"
    queued = "queued"
    offered = "offered"
    connected = "connected"
    wrapup = "wrapup"
    ended = "ended"
    abandoned = "abandoned"


S = CallState

# state -> the states a call in it may move to, and why.
TRANSITIONS: dict[CallState, frozenset[CallState]] = {
    # Handed off to a queue; or the caller hung up in the phone tree.
    S.ivr: frozenset({S.queued, S.abandoned}),
    # Offered to an agent (routing or a supervisor's assignment); or the caller hung up.
    S.queued: frozenset({S.offered, S.abandoned}),
    # Accepted; back to the queue (rejected, timed out); offered to another agent (a
    # supervisor's reassignment); or the caller hung up while it rang.
    S.offered: frozenset({S.connected, S.queued, S.offered, S.abandoned}),
    # The caller hung up (wrap-up); the agent wrapped; transferred or escalated to a queue;
    # transferred to an agent.
    S.connected: frozenset({S.wrapup, S.ended, S.queued, S.offered}),
    # The agent wraps after the caller hung up.
    S.wrapup: frozenset({S.ended}),
    S.ended: frozenset(),
    S.abandoned: frozenset(),
}

FINAL_STATES = frozenset(s for s, moves in TRANSITIONS.items() if not moves)
# A call waiting for, ringing at or talking to an agent.
ACTIVE_STATES = frozenset({S.queued, S.offered, S.connected})


def allowed(current: CallState, target: CallState) -> bool:
    return target in TRANSITIONS[current]


def check(current: CallState, target: CallState) -> None:
    """Refuse a move the table does not list: 409, the call as it was."""
    if not allowed(current, target):
        raise Conflict(f"the call is {current.value}: it cannot become {target.value}")
