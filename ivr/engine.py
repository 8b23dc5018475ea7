"""The phone-tree engine: a pure state machine, (state, event) -> prompts, next state, effects.

It does no I/O. A driver (the simulator, a web keypad, a telephony webhook) says the prompts,
carries out the effects and feeds back what comes of them: the caller's answers, the backend's
verification result, the queue status.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from ivr.flow import (
    Action,
    CollectNode,
    DigitsSpec,
    Flow,
    MenuNode,
    Text,
    VerifyNode,
    match_intent,
)

PIN_MASK = "****"
NO_INPUT = "(no input)"
# Spoken answers are "a few words"; a monologue is cut so it fits a step and an utterance.
MAX_WORDS = 500


class Phase(StrEnum):
    TREE = "tree"  # the caller is answering the node's question
    VERIFYING = "verifying"  # waiting for the backend's answer to an account and PIN
    QUEUED = "queued"  # handed off, waiting for an agent
    CONNECTED = "connected"  # talking with an agent
    SURVEY = "survey"  # the call is over; the post-call questions
    DONE = "done"


class Awaiting(StrEnum):
    """What the driver must feed back next."""

    INPUT = "input"  # Keys, Speech or CallerHangup
    VERIFICATION = "verification"  # Verified (or CallerHangup)
    CENTRE = "centre"  # QueueStatus polls (or CallerHangup)
    NOTHING = "nothing"


# Events: what happens to the engine.


@dataclass(frozen=True)
class Keys:
    """Keys pressed: digits, `*` and `#`; "" is silence (the caller pressed nothing)."""

    keys: str


@dataclass(frozen=True)
class Speech:
    text: str


@dataclass(frozen=True)
class Verified:
    verified: bool
    attempts_left: int
    locked: bool = False


@dataclass(frozen=True)
class QueueStatus:
    """The call as the centre sees it (GET /api/calls/{id}/position)."""

    state: str
    position: int | None = None
    wait_s: float | None = None
    # The centre says the caller has waited long enough to be offered a callback.
    callback_offer: bool = False


@dataclass(frozen=True)
class CallerHangup:
    pass


Event = Keys | Speech | Verified | QueueStatus | CallerHangup


# Effects: what the driver must do, in order.


@dataclass(frozen=True)
class RecordStep:
    node: str
    prompt: str
    input: str


@dataclass(frozen=True)
class Verify:
    account_number: str
    pin: str = field(repr=False)


@dataclass(frozen=True)
class Handoff:
    intent: str | None
    collected: Mapping[str, str]
    utterance: str | None
    escalate_reason: str | None


@dataclass(frozen=True)
class Hangup:
    pass


@dataclass(frozen=True)
class RequestCallback:
    """The caller took the callback offer: the call keeps its place; the line ends (no
    hang-up, which would abandon the call)."""

    number: str | None = None  # None: the number the caller called from


@dataclass(frozen=True)
class SubmitSurvey:
    csat: int
    had_to_repeat: bool


Effect = RecordStep | Verify | Handoff | Hangup | RequestCallback | SubmitSurvey


@dataclass(frozen=True)
class State:
    phase: Phase
    node: str
    language: str
    stage: str = ""  # verify: "account" or "pin"; survey: "csat" or "repeat"
    collected: Mapping[str, str] = field(default_factory=dict)
    utterance: str | None = None  # the caller's last spoken words
    invalid: int = 0  # invalid answers in a row at this node (or survey question)
    tries: int = 0  # verification tries used at this node
    account: str | None = None  # typed, waiting for its PIN
    verified: bool = False
    announced: tuple[int, int] | None = None  # (position, wait bucket) last told to the caller
    callback_offered: bool = False  # the caller heard the callback offer while waiting
    callback: bool = False  # the caller took it
    csat: int | None = None

    @property
    def awaiting(self) -> Awaiting:
        return {
            Phase.TREE: Awaiting.INPUT,
            Phase.SURVEY: Awaiting.INPUT,
            Phase.VERIFYING: Awaiting.VERIFICATION,
            Phase.QUEUED: Awaiting.CENTRE,
            Phase.CONNECTED: Awaiting.CENTRE,
            Phase.DONE: Awaiting.NOTHING,
        }[self.phase]

    @property
    def secret(self) -> bool:
        """The answer expected now is a PIN: never echo it, never record it."""
        return self.phase is Phase.TREE and self.stage == "pin"


@dataclass(frozen=True)
class Turn:
    state: State
    prompts: tuple[str, ...] = ()
    effects: tuple[Effect, ...] = ()


class EngineError(RuntimeError):
    """The driver fed an event the engine cannot take in its current phase."""


def parse_digits(keys: str, spec: DigitsSpec | CollectNode) -> str | None:
    """The digits of an entry, or None when it is not an acceptable one.

    The terminator is optional: a real phone tree accepts the entry after a pause too.
    """
    if spec.terminator is not None and keys.endswith(spec.terminator):
        keys = keys[: -len(spec.terminator)]
    if not keys.isdigit() or not keys.isascii():
        return None
    if not spec.min_digits <= len(keys) <= spec.max_digits:
        return None
    return keys


class Engine:
    """The phone tree of one flow. Immutable; one engine serves any number of calls."""

    def __init__(self, flow: Flow) -> None:
        self.flow = flow

    def start(self, language: str | None = None) -> Turn:
        state = State(phase=Phase.TREE, node="", language=language or self.flow.default_language)
        return self._enter(state, self.flow.start, [], [])

    def prompt(self, state: State) -> str:
        """The question the caller is answering now ("" when none)."""
        if state.phase is Phase.SURVEY:
            survey = self.flow.survey
            return self._say(state, survey.csat if state.stage == "csat" else survey.repeat)
        if state.phase is not Phase.TREE:
            return ""
        node = self.flow.nodes[state.node]
        if isinstance(node, VerifyNode):
            spec = node.pin if state.stage == "pin" else node.account
            return self._say(state, spec.prompt)
        return self._say(state, node.prompt)

    def step_name(self, state: State) -> str:
        """The node name recorded in the call's ivr_path for the current question."""
        if state.stage and state.phase is Phase.TREE:
            return f"{state.node}.{state.stage}"
        return state.node

    def advance(self, state: State, event: Event) -> Turn:
        if isinstance(event, CallerHangup):
            return self._caller_hangup(state)
        phase = state.phase
        if phase is Phase.TREE and isinstance(event, Keys | Speech):
            node = self.flow.nodes[state.node]
            if isinstance(event, Keys) and self._asks_for_a_person(state, node, event.keys):
                return self._act(state, self.flow.operator, [], [self._step(state, event)])
            if isinstance(node, MenuNode):
                return self._menu(state, node, event)
            if isinstance(node, CollectNode):
                return self._collect(state, node, event)
            return self._verify_entry(state, node, event)
        if phase is Phase.VERIFYING and isinstance(event, Verified):
            return self._verified(state, event)
        if phase in (Phase.QUEUED, Phase.CONNECTED) and isinstance(event, QueueStatus):
            return self._queue_status(state, event)
        if phase is Phase.QUEUED and isinstance(event, Keys | Speech):
            return self._keys_on_hold(state, event)
        if phase is Phase.SURVEY and isinstance(event, Keys | Speech):
            return self._survey(state, event)
        raise EngineError(f"cannot take {type(event).__name__} while {phase.value}")

    # The tree.

    def _asks_for_a_person(
        self, state: State, node: MenuNode | CollectNode | VerifyNode, keys: str
    ) -> bool:
        """0 (or 0#) reaches a person at every prompt of the tree, unless 0 is an answer there
        (a menu's own option 0, a number question that takes "0")."""
        if keys not in ("0", "0#"):
            return False
        if isinstance(node, MenuNode):
            return "0" not in node.options
        if isinstance(node, CollectNode):
            return node.input == "words" or parse_digits(keys, node) is None
        spec = node.pin if state.stage == "pin" else node.account
        return parse_digits(keys, spec) is None

    def _menu(self, state: State, node: MenuNode, event: Keys | Speech) -> Turn:
        step = self._step(state, event)
        if isinstance(event, Keys):
            key = event.keys
            # "1#" is a caller finishing a menu choice as they finish everything else.
            if key not in node.options and key.endswith("#") and key[:-1] in node.options:
                key = key[:-1]
            if key in node.options:
                return self._act(state, node.options[key], [], [step])
        elif node.spoken is not None and event.text.strip():
            words = _words(event.text)
            state = dataclasses.replace(state, utterance=words)
            match = match_intent(self.flow, words, node.spoken.intents)
            if match.intent is not None:
                return self._act(state, node.spoken.intents[match.intent], [], [step])
            return self._act(state, node.spoken.otherwise, [], [step])
        return self._invalid(state, node.max_invalid, node.on_invalid, [step])

    def _collect(self, state: State, node: CollectNode, event: Keys | Speech) -> Turn:
        step = self._step(state, event)
        value: str | None = None
        if node.input == "words" and isinstance(event, Speech):
            value = _words(event.text) or None
        elif node.input == "digits" and isinstance(event, Keys):
            value = parse_digits(event.keys, node)
        if value is None:
            return self._invalid(state, node.max_invalid, node.on_invalid, [step])
        state = dataclasses.replace(state, collected={**state.collected, node.save_as: value})
        return self._act(state, node.next, [], [step])

    def _invalid(self, state: State, limit: int, on_invalid: Action, effects: list[Effect]) -> Turn:
        invalid = state.invalid + 1
        if invalid >= limit:
            return self._act(state, on_invalid, [], effects)
        state = dataclasses.replace(state, invalid=invalid)
        prompts = [self._say(state, self.flow.messages.invalid), self.prompt(state)]
        return Turn(state, tuple(prompts), tuple(effects))

    def _verify_entry(self, state: State, node: VerifyNode, event: Keys | Speech) -> Turn:
        step = self._step(state, event)
        spec = node.pin if state.stage == "pin" else node.account
        digits = parse_digits(event.keys, spec) if isinstance(event, Keys) else None
        if digits is None:
            # Not an account number or PIN at all (too short, words, silence): asked again,
            # with no try used; `max_invalid` of them in a row end verification.
            invalid = state.invalid + 1
            if invalid >= node.max_invalid:
                return self._act(state, node.on_failure, [], [step])
            state = dataclasses.replace(state, invalid=invalid)
            sorry = self.flow.messages.entry_invalid or self.flow.messages.invalid
            return Turn(state, (self._say(state, sorry), self.prompt(state)), (step,))
        state = dataclasses.replace(state, invalid=0)
        if state.stage == "account":
            state = dataclasses.replace(state, stage="pin", account=digits)
            return Turn(state, (self.prompt(state),), (step,))
        assert state.account is not None
        verify = Verify(account_number=state.account, pin=digits)
        state = dataclasses.replace(state, phase=Phase.VERIFYING, account=None)
        return Turn(state, (), (step, verify))

    def _verified(self, state: State, event: Verified) -> Turn:
        node = self.flow.nodes[state.node]
        assert isinstance(node, VerifyNode)
        state = dataclasses.replace(state, phase=Phase.TREE)
        if event.verified:
            state = dataclasses.replace(state, verified=True)
            prompts = [] if node.success_say is None else [self._say(state, node.success_say)]
            return self._act(state, node.on_success, prompts, [])
        return self._verify_failed(
            state, node, [], locked=event.locked, backend_left=event.attempts_left
        )

    def _verify_failed(
        self,
        state: State,
        node: VerifyNode,
        effects: list[Effect],
        *,
        locked: bool,
        backend_left: int | None,
    ) -> Turn:
        tries = state.tries + 1
        left = node.attempts - tries
        if backend_left is not None:
            # The backend also counts tries (per call and per account); the stricter count wins.
            left = min(left, backend_left)
        state = dataclasses.replace(state, tries=tries, stage="account", account=None)
        if locked or left <= 0:
            return self._act(state, node.on_failure, [], effects)
        prompts = (self._say(state, node.retry_say), self.prompt(state))
        return Turn(state, prompts, tuple(effects))

    def _act(self, state: State, action: Action, prompts: list[str], effects: list[Effect]) -> Turn:
        if action.set_language is not None:
            state = dataclasses.replace(state, language=action.set_language)
        if action.store:
            state = dataclasses.replace(state, collected={**state.collected, **action.store})
        if action.say is not None:
            prompts = [*prompts, self._say(state, action.say)]
        if action.goto is not None:
            return self._enter(state, action.goto, prompts, effects)
        if action.hangup:
            if action.say is None:
                prompts = [*prompts, self._say(state, self.flow.messages.goodbye)]
            state = dataclasses.replace(state, phase=Phase.DONE, stage="")
            return Turn(state, tuple(prompts), (*effects, Hangup()))
        if action.say is None:
            prompts = [*prompts, self._say(state, self.flow.messages.transfer)]
        handoff = Handoff(
            intent=action.intent,
            collected=dict(state.collected),
            utterance=state.utterance,
            escalate_reason=action.escalate,
        )
        state = dataclasses.replace(state, phase=Phase.QUEUED, stage="", announced=None)
        return Turn(state, tuple(prompts), (*effects, handoff))

    def _enter(self, state: State, node_id: str, prompts: list[str], effects: list[Effect]) -> Turn:
        node = self.flow.nodes[node_id]
        stage = "account" if isinstance(node, VerifyNode) else ""
        state = dataclasses.replace(
            state,
            phase=Phase.TREE,
            node=node_id,
            stage=stage,
            invalid=0,
            tries=0,
            account=None,
        )
        return Turn(state, (*prompts, self.prompt(state)), tuple(effects))

    def _step(self, state: State, event: Keys | Speech) -> RecordStep:
        if state.secret:
            shown = PIN_MASK
        elif isinstance(event, Keys):
            shown = event.keys or NO_INPUT
        else:
            shown = _words(event.text) or NO_INPUT
        return RecordStep(node=self.step_name(state), prompt=self.prompt(state), input=shown)

    def _caller_hangup(self, state: State) -> Turn:
        done = dataclasses.replace(state, phase=Phase.DONE, stage="", account=None)
        if state.phase is Phase.CONNECTED:
            # A caller who hangs up on the agent has had the call: ask the survey.
            return self._begin_survey(state, [], [Hangup()])
        if state.phase is Phase.SURVEY:
            return Turn(done)  # the call is already over; an unanswered survey is just dropped
        if state.phase is Phase.DONE:
            raise EngineError("the call is already over")
        return Turn(done, (), (Hangup(),))

    # After the handoff.

    def _queue_status(self, state: State, event: QueueStatus) -> Turn:
        messages = self.flow.messages
        if event.state in ("queued", "offered"):
            if state.phase is Phase.CONNECTED:
                # Back in a queue after talking to someone: a transfer or an escalation.
                state = dataclasses.replace(state, phase=Phase.QUEUED, announced=None)
                return Turn(state, (self._say(state, messages.transfer),))
            prompts: list[str] = []
            if event.position is not None:
                wait = int(event.wait_s or 0)
                # Say the position when it changes, and remind the caller every 30 s of waiting.
                key = (event.position, wait // 30)
                if key != state.announced:
                    text = self._say(state, messages.position)
                    prompts.append(text.format(position=event.position, wait_s=wait))
                    state = dataclasses.replace(state, announced=key)
            if (
                event.callback_offer
                and event.state == "queued"
                and self.flow.callback.enabled
                and not state.callback_offered
            ):
                prompts.append(self._say(state, self.flow.callback.offer))
                state = dataclasses.replace(state, callback_offered=True)
            return Turn(state, tuple(prompts))
        if event.state == "connected":
            if state.phase is Phase.CONNECTED:
                return Turn(state)
            state = dataclasses.replace(state, phase=Phase.CONNECTED)
            return Turn(state, (self._say(state, messages.connected),))
        if event.state in ("wrapup", "ended"):
            return self._begin_survey(state, [self._say(state, messages.call_ended)], [])
        if event.state == "abandoned":
            return Turn(dataclasses.replace(state, phase=Phase.DONE))
        return Turn(state)  # "ivr" or a state this engine does not know: nothing to tell

    def _keys_on_hold(self, state: State, event: Keys | Speech) -> Turn:
        """Keys pressed while waiting: the callback key once the offer was made takes it; any
        other answer is ignored, as a queue asks nothing."""
        offer = self.flow.callback
        if (
            state.callback_offered
            and isinstance(event, Keys)
            and event.keys in (offer.key, offer.key + "#")
        ):
            done = dataclasses.replace(state, phase=Phase.DONE, stage="", callback=True)
            return Turn(done, (self._say(state, offer.accepted),), (RequestCallback(),))
        return Turn(state)

    def _begin_survey(self, state: State, prompts: list[str], effects: list[Effect]) -> Turn:
        state = dataclasses.replace(state, phase=Phase.SURVEY, stage="csat", invalid=0, csat=None)
        return Turn(state, (*prompts, self.prompt(state)), tuple(effects))

    def _survey(self, state: State, event: Keys | Speech) -> Turn:
        answer = event.keys.rstrip("#") if isinstance(event, Keys) else ""
        if state.stage == "csat" and answer in ("1", "2", "3", "4", "5"):
            state = dataclasses.replace(state, stage="repeat", invalid=0, csat=int(answer))
            return Turn(state, (self.prompt(state),))
        if state.stage == "repeat" and answer in ("1", "2") and state.csat is not None:
            done = dataclasses.replace(state, phase=Phase.DONE, stage="")
            survey = SubmitSurvey(csat=state.csat, had_to_repeat=answer == "1")
            return Turn(done, (self._say(state, self.flow.survey.thanks),), (survey,))
        invalid = state.invalid + 1
        if invalid >= 2:
            # A survey is a favour asked of the caller: give up rather than insist.
            done = dataclasses.replace(state, phase=Phase.DONE, stage="")
            return Turn(done, (self._say(state, self.flow.messages.goodbye),))
        state = dataclasses.replace(state, invalid=invalid)
        return Turn(state, (self._say(state, self.flow.messages.invalid), self.prompt(state)))

    def _say(self, state: State, text: Text) -> str:
        return self.flow.text(text, state.language)


def _words(text: str) -> str:
    return " ".join(text.split())[:MAX_WORDS].rstrip()
