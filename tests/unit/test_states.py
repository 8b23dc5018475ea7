"""The call's states: every pair of states is either a listed move or refused with 409."""

from __future__ import annotations

import itertools

import pytest

from app.calls.models import Call
from app.calls.states import ACTIVE_STATES, FINAL_STATES, TRANSITIONS, CallState, allowed
from app.errors import Conflict

S = CallState
# What the contract's lifecycle allows, written out pair by pair (from, to).
LEGAL = {
    (S.ivr, S.queued),  # handoff
    (S.ivr, S.abandoned),  # hung up in the phone tree
    (S.queued, S.offered),  # routing, or a supervisor's assignment
    (S.queued, S.abandoned),  # hung up while waiting
    (S.offered, S.connected),  # accepted
    (S.offered, S.queued),  # rejected, or the offer timed out
    (S.offered, S.offered),  # reassigned by a supervisor
    (S.offered, S.abandoned),  # hung up while it rang
    (S.connected, S.wrapup),  # the caller hung up
    (S.connected, S.ended),  # the agent wrapped
    (S.connected, S.queued),  # transferred or escalated to a queue
    (S.connected, S.offered),  # transferred to an agent
    (S.wrapup, S.ended),  # wrapped after the caller hung up
}


@pytest.mark.parametrize(
    ("current", "target"),
    list(itertools.product(CallState, CallState)),
    ids=lambda s: s.value,
)
def test_every_pair_is_a_listed_move_or_a_409(current: CallState, target: CallState) -> None:
    call = Call(state=current)
    if (current, target) in LEGAL:
        call.move_to(target)
        assert call.state == target
    else:
        with pytest.raises(Conflict) as refused:
            call.move_to(target)
        assert refused.value.status_code == 409
        assert current.value in refused.value.detail
        assert call.state == current


def test_the_table_is_the_contracts_lifecycle() -> None:
    assert {(a, b) for a, moves in TRANSITIONS.items() for b in moves} == LEGAL
    assert set(TRANSITIONS) == set(CallState)


def test_final_states_have_no_way_out_and_active_ones_have_an_agent_or_a_queue() -> None:
    assert {S.ended, S.abandoned} == FINAL_STATES
    assert all(not allowed(final, s) for final in FINAL_STATES for s in CallState)
    assert {S.queued, S.offered, S.connected} == ACTIVE_STATES
