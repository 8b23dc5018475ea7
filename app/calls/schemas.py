"""Wire schemas of calls: the IVR's inputs, the agents' actions and the call context."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from app.calls.states import CallState
from app.customers.schemas import CustomerBrief
from app.promises.schemas import PromiseIn, PromiseOut
from app.users.schemas import Person
from app.validation import E164, Id, Text, Word

Short = Annotated[str, StringConstraints(strip_whitespace=True, max_length=200)]
StepText = Annotated[str, StringConstraints(max_length=2000)]
Input = Annotated[str, StringConstraints(max_length=500)]
Utterance = Annotated[str, StringConstraints(strip_whitespace=True, max_length=2000)]
Key = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.-]{1,64}$")]
Value = Annotated[str, StringConstraints(max_length=500)]
NodeName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.:-]{1,64}$")]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


# --- IVR inputs ---------------------------------------------------------------------------


class CallCreate(Strict):
    caller_number: E164
    # Checked against the loaded phone tree's languages in the service.
    language: Annotated[str, StringConstraints(pattern=r"^[a-z]{2}(-[A-Za-z]{2})?$")] | None = None


class CallCreated(BaseModel):
    id: int
    state: CallState
    caller_known: bool


class VerifyIn(Strict):
    # Digits of any length are a try (a short account number is a wrong one, as the caller
    # would expect it to count); anything but digits is not keypad input and is refused.
    account_number: Annotated[str, StringConstraints(pattern=r"^[0-9]{1,16}$")]
    pin: Annotated[str, StringConstraints(pattern=r"^[0-9]{1,12}$")]


class VerifyOut(BaseModel):
    verified: bool
    attempts_left: int
    locked: bool


class StepIn(Strict):
    node: NodeName
    prompt: StepText
    input: Input | None = None


class HandoffIn(Strict):
    intent: Word | None = None
    collected: dict[Key, Value] = Field(default_factory=dict, max_length=50)
    utterance: Utterance | None = None
    escalate_reason: Word | None = None


class QueuedOut(BaseModel):
    id: int
    state: CallState
    queue: str
    position: int


class SurveyIn(Strict):
    csat: Annotated[int, Field(ge=1, le=5)]
    had_to_repeat: bool


class PositionOut(BaseModel):
    state: CallState
    queue: str | None
    position: int | None
    wait_s: float | None
    # The phone tree may offer the caller a callback now (POST /api/calls/{id}/callback); and
    # in how many seconds it may (0 now; null: no offer is coming, as callbacks are off, one
    # was asked for already, or the call does not wait in a queue).
    callback_offer: bool = False
    callback_offer_in_s: float | None = None


class CallbackIn(Strict):
    # The number to call back; null: the number the caller called from.
    number: E164 | None = None


# --- agent and supervisor inputs ------------------------------------------------------------


class NoteIn(Strict):
    text: Text


class TransferIn(Strict):
    queue: Word | None = None
    agent_id: Id | None = None
    note: Annotated[str, StringConstraints(strip_whitespace=True, max_length=4000)] | None = None

    @model_validator(mode="after")
    def _one_target(self) -> TransferIn:
        if (self.queue is None) == (self.agent_id is None):
            raise ValueError("give exactly one of queue or agent_id")
        return self


class EscalateIn(Strict):
    reason: Word


class WrapIn(Strict):
    disposition: Literal["resolved", "follow_up", "unresolved"]
    sentiment: Literal["positive", "neutral", "negative"]
    notes: Annotated[str, StringConstraints(strip_whitespace=True, max_length=4000)] | None = None
    # What was promised and by when: only with disposition follow_up.
    promise: PromiseIn | None = None

    @model_validator(mode="after")
    def _promise_follows_up(self) -> WrapIn:
        if self.promise is not None and self.disposition != "follow_up":
            raise ValueError("a promise goes with the disposition follow_up")
        return self


class AskedAgainIn(Strict):
    # A key of the call's collected answers, or "identity".
    field: Key


class AssignIn(Strict):
    agent_id: Id


# --- the call context -----------------------------------------------------------------------


class Identity(BaseModel):
    verified: bool
    method: Literal["account_pin"] | None
    verified_at: datetime | None


class StepOut(BaseModel):
    node: str
    prompt: str
    input: str | None
    at: datetime


class NoteOut(BaseModel):
    author: Person | None
    text: str
    at: datetime


class TransferOut(BaseModel):
    from_agent: Person | None
    to_queue: str | None
    to_agent: Person | None
    note: str | None
    at: datetime
    # The supervisor who moved the call (assigned, reassigned, moved to a queue); null when
    # the agent who had it transferred it.
    by: Person | None = None


class HistoryItem(BaseModel):
    id: int
    started_at: datetime
    intent: str | None
    # Where it went and, for an escalated call (often with no intent), why.
    queue: str | None = None
    escalation_reason: str | None = None
    disposition: str | None
    sentiment: str | None
    csat: int | None
    # The call's effort score (null for calls from before scores were kept), and its last note
    # cut to HistoryItem.NOTE_CHARS: the earlier notes up front; the whole call is one
    # GET /api/calls/{id} away for the agent serving the customer.
    effort: float | None = None
    last_note: NoteOut | None = None


class Effort(BaseModel):
    """What the call cost the caller (app/calls/effort.py has the score's formula)."""

    ivr_seconds: float
    ivr_retries: int
    wait_seconds: float
    offers: int
    transfers: int
    escalations: int
    asked_again: int
    score: float


class AskedAgainOut(BaseModel):
    field: str
    agent_id: int | None
    at: datetime


class Callback(BaseModel):
    """The caller took the phone tree's callback offer and hung up; the call kept its place."""

    number: str
    requested_at: datetime
    # When the agent who took the call recorded phoning the caller back (null until then).
    called_back_at: datetime | None = None


class CallContext(BaseModel):
    id: int
    state: CallState
    caller_number: str
    language: str | None
    customer: CustomerBrief | None
    identity: Identity
    intent: str | None
    queue: str | None
    escalation_reason: str | None
    utterance: str | None
    collected: dict[str, Any]
    ivr_path: list[StepOut]
    notes: list[NoteOut]
    transfers: list[TransferOut]
    history: list[HistoryItem]
    agent_id: int | None
    created_at: datetime
    queued_at: datetime | None
    connected_at: datetime | None
    ended_at: datetime | None
    # Additions (docs/API.md): what the call cost the caller, for the next agent to see.
    disposition: str | None = None
    sentiment: str | None = None
    csat: int | None = None
    had_to_repeat: bool | None = None
    offer_expires_at: datetime | None = None
    # The caller's wait: time queued before each answer, summed over every queue, up to now
    # while the call waits (then waiting_since is when that wait began, for a live count).
    wait_s: float | None = None
    waiting_since: datetime | None = None
    # What the call cost the caller; each time an agent asked for something the phone tree had
    # collected; the customer's earlier call about the same intent within 7 days; the
    # customer's promises, open ones first (at most context.PROMISES).
    effort: Effort | None = None
    asked_again: list[AskedAgainOut] = []
    repeat_of: int | None = None
    promises: list[PromiseOut] = []
    # The caller asked to be called back instead of holding (null when not).
    callback: Callback | None = None


class EscalationOut(CallContext):
    reason: str | None
    agent: Person | None


# Why callers wait in a queue: nobody with its skill is signed in; everyone who has it is on a
# call, wrapping up or away; or the agents available rejected the calls (they come back to
# them after TELLONCE_REOFFER_AFTER_S).
WaitReason = Literal["no_agents", "all_busy", "rejected"]


class QueueStats(BaseModel):
    name: str
    waiting: int
    longest_wait_s: float
    agents_available: int
    agents_signed_in: int
    # Why its callers wait (null when none does).
    reason: WaitReason | None = None
