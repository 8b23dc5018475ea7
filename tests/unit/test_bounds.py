"""The bound on a call's context: what may change after the last addition that was checked."""

from __future__ import annotations

from datetime import UTC, date, datetime

from app.calls.bounds import SLACK_BYTES
from app.calls.context import NOTE_PREVIEW_CHARS, PROMISES
from app.calls.schemas import CallContext, Effort, HistoryItem, Identity, NoteOut, Person
from app.calls.states import CallState
from app.customers.schemas import CustomerBrief, CustomerEffort
from app.promises.schemas import PromiseOut

BIG_ID = 2_147_483_647
WHEN = datetime(2026, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)
WORD = "w" * 64  # an intent, a queue or a reason: a Word of the schemas
NAME = "\U0001f4b3" * 128  # a customer's name at its longest, four bytes a character
BIG = 8_640_000.5
PERSON = Person(id=BIG_ID, display_name=NAME)


def test_the_fields_outside_the_checked_lists_at_their_largest_fit_the_slack() -> None:
    """Every addition (a step, a note, a transfer) is checked against the budget with the whole
    context; what can grow after it without a check is the customer (bound by a verification)
    with their effort, the customer's five earlier calls with their last notes cut short, the
    customer's promises (at most PROMISES), and the call's own single fields and effort. All of
    that at its largest fits SLACK_BYTES, so no event carries more than the budget plus
    SLACK_BYTES."""
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
            effort=CustomerEffort(calls=BIG_ID, score=BIG),
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
                effort=BIG,
                last_note=NoteOut(author=PERSON, text="\U0001f4b3" * NOTE_PREVIEW_CHARS, at=WHEN),
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
        wait_s=BIG,
        waiting_since=WHEN,
        effort=Effort(
            ivr_seconds=BIG,
            ivr_retries=BIG_ID,
            wait_seconds=BIG,
            offers=BIG_ID,
            transfers=BIG_ID,
            escalations=BIG_ID,
            asked_again=BIG_ID,
            score=BIG,
        ),
        asked_again=[],
        repeat_of=BIG_ID,
        promises=[
            PromiseOut(
                id=BIG_ID,
                customer_id=BIG_ID,
                call_id=BIG_ID,
                text="\U0001f4b3" * 300,
                due=date(9999, 12, 31),
                made_by=PERSON,
                made_at=WHEN,
                kept_at=WHEN,
                kept_by=PERSON,
                overdue=False,
            )
        ]
        * PROMISES,
    )
    size = len(largest.model_dump_json().encode())
    assert size <= SLACK_BYTES
