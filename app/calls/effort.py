"""What a call cost the caller, from facts the system holds, and the one score made of them."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from datetime import datetime

from app.calls.models import ESCALATIONS, Call
from app.calls.schemas import Effort, StepOut, TransferOut
from app.calls.states import CallState

# The score's weights (docs/API.md, "Caller effort"): a minute in the tree or in a queue counts
# 1; each answer the tree had to ask again 1; each offer beyond the first (an agent who did not
# answer) 0.5; each transfer and each escalation 2; each time an agent asked for something the
# tree had collected 3: the product's own promise, broken.
PER_MINUTE = 1.0
PER_RETRY = 1.0
PER_EXTRA_OFFER = 0.5
PER_TRANSFER = 2.0
PER_ESCALATION = 2.0
PER_ASKED_AGAIN = 3.0
# The phone tree gave up on the caller's answers: its last answer was a wrong one too.
GAVE_UP = ("no_match",)


def ivr_seconds(call: Call, now: datetime) -> float:
    """From the call's creation to its handoff, or to the hang-up of a caller who left in the
    tree, or to now while in it."""
    end = call.first_queued_at
    if end is None:
        end = now if call.state == CallState.ivr else (call.hungup_at or call.ended_at or now)
    return max(0.0, round((end - call.created_at).total_seconds(), 1))


def ivr_retries(call: Call, steps: Sequence[StepOut]) -> int:
    """Answers the tree had to ask for again: a step followed by another at the same node (an
    invalid key or entry), the last answer when the tree gave up (`no_match`), and each wrong
    account number and PIN pair."""
    repeated = sum(1 for a, b in itertools.pairwise(steps) if a.node == b.node)
    gave_up = 1 if steps and call.escalation_reason in GAVE_UP and call.first_queued_at else 0
    return repeated + gave_up + call.verify_failures


def compute(
    call: Call,
    *,
    steps: Sequence[StepOut],
    transfers: Sequence[TransferOut],
    asked_again: int,
    wait_s: float | None,
    now: datetime,
) -> Effort:
    moves = sum(1 for t in transfers if t.to_queue != ESCALATIONS)
    figures = Effort(
        ivr_seconds=ivr_seconds(call, now),
        ivr_retries=ivr_retries(call, steps),
        wait_seconds=wait_s or 0.0,
        offers=call.offers,
        transfers=moves,
        escalations=call.escalations,
        asked_again=asked_again,
        score=0.0,
    )
    figures.score = score(figures)
    return figures


def score(e: Effort) -> float:
    return round(
        PER_MINUTE * (e.ivr_seconds + e.wait_seconds) / 60
        + PER_RETRY * e.ivr_retries
        + PER_EXTRA_OFFER * max(0, e.offers - 1)
        + PER_TRANSFER * e.transfers
        + PER_ESCALATION * e.escalations
        + PER_ASKED_AGAIN * e.asked_again,
        1,
    )
