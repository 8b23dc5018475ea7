"""The bound on a call's context: what may change after the last addition that was checked."""

from __future__ import annotations

from datetime import UTC, datetime

from app.calls.bounds import SLACK_BYTES
from app.calls.schemas import CallContext, HistoryItem, Identity
from app.calls.states import CallState
from app.customers.schemas import CustomerBrief

BIG_ID = 2_147_483_647
WHEN = datetime(2026, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)
WORD = "w" * 64  # an intent, a queue or a reason: a Word of the schemas
NAME = "\U0001f4b3" * 128  # a customer's name at its longest, four bytes a character


def test_the_fields_outside_the_checked_lists_at_their_largest_fit_the_slack() -> None:
    """Every addition (a step, a note, a transfer) is checked against the budget with the whole
    context; what can grow after it without a check is the customer (bound by a verification),
    the customer's five earlier calls, and the call's own single fields. All of that at its
    largest fits SLACK_BYTES, so no event carries more than the budget plus SLACK_BYTES."""
    largest = CallContext(
        id=BIG_ID,
        state=CallState.abandoned,
        caller_number="+" + "9" * 15,
        language="es-MX",
        customer=CustomerBrief(
            id=BIG_ID,
            name=NAME,
            account_number="9" * 8,
            segment="at_risk",
            phone_numbers=["+" + "9" * 15] * 10,
            locked=False,
        ),
        identity=Identity(verified=False, method="account_pin", verified_at=WHEN),
        intent=WORD,
        queue=WORD,
        escalation_reason=WORD,
        utterance=None,
        collected={},
        ivr_path=[],
        notes=[],
        transfers=[],
        history=[
            HistoryItem(
                id=BIG_ID,
                started_at=WHEN,
                intent=WORD,
                queue=WORD,
                escalation_reason=WORD,
                disposition="unresolved",
                sentiment="negative",
                csat=5,
            )
        ]
        * 5,
        agent_id=BIG_ID,
        created_at=WHEN,
        queued_at=WHEN,
        connected_at=WHEN,
        ended_at=WHEN,
        disposition="unresolved",
        sentiment="negative",
        csat=5,
        had_to_repeat=False,
        offer_expires_at=WHEN,
        wait_s=8_640_000.5,
        waiting_since=WHEN,
    )
    size = len(largest.model_dump_json().encode())
    assert size <= SLACK_BYTES
