"""The driver shared by every phone front end: runs the engine's effects against the centre.

The simulator's centre is the HTTP API (ivr.client.IvrClient); the telephony webhook's is the
same service functions in-process (app/voice/centre.py). Both go through CallRunner, so a flow
file yields the same call whichever way the caller comes in.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import asdict
from typing import Protocol

from ivr.client import CallCreated, HandoffResult, Position, VerifyResult
from ivr.engine import (
    Effect,
    Engine,
    Event,
    Handoff,
    Hangup,
    MenuNode,
    Phase,
    RecordStep,
    RequestCallback,
    State,
    SubmitSurvey,
    Turn,
    Verified,
    Verify,
)
from ivr.flow import Flow

Say = Callable[[str], None]


class Centre(Protocol):
    """The contract's IVR routes, as IvrClient offers them."""

    async def create_call(self, caller_number: str, language: str | None = None) -> CallCreated: ...

    async def verify(self, call_id: str, account_number: str, pin: str) -> VerifyResult: ...

    async def record_step(self, call_id: str, node: str, prompt: str, input: str) -> None: ...

    async def handoff(
        self,
        call_id: str,
        *,
        intent: str | None,
        collected: Mapping[str, str],
        utterance: str | None,
        escalate_reason: str | None,
    ) -> HandoffResult: ...

    async def hangup(self, call_id: str) -> None: ...

    async def request_callback(self, call_id: str, number: str | None = None) -> None: ...

    async def survey(self, call_id: str, csat: int, had_to_repeat: bool) -> None: ...

    async def position(self, call_id: str) -> Position: ...


class CallRunner:
    """One call: runs the engine's effects against the backend and feeds the results back."""

    def __init__(
        self,
        engine: Engine,
        client: Centre,
        caller_number: str,
        say: Say | None = None,
        *,
        state: State | None = None,
        call_id: str | None = None,
    ) -> None:
        self.engine = engine
        self.client = client
        self.caller_number = caller_number
        self.say: Say = say or (lambda _: None)
        self.call_id = call_id
        self.handoff: HandoffResult | None = None
        self.escalate_reason: str | None = None
        self.hung_up = False
        self.connected = False  # an agent answered at some point
        self.callback = False  # the caller took the callback offer
        self._state = state

    @classmethod
    def resume(
        cls,
        engine: Engine,
        client: Centre,
        caller_number: str,
        *,
        state: State,
        call_id: str | None,
        say: Say | None = None,
    ) -> CallRunner:
        """A call begun by an earlier request, from the state that request kept."""
        return cls(engine, client, caller_number, say, state=state, call_id=call_id)

    @property
    def state(self) -> State:
        if self._state is None:
            raise RuntimeError("the call has not started")
        return self._state

    async def start(self) -> None:
        turn = self.engine.start()
        if not _asks_language_first(self.engine.flow):
            await self._call(turn.state)
        await self._apply(turn)

    async def send(self, event: Event) -> None:
        await self._apply(self.engine.advance(self.state, event))

    async def _apply(self, turn: Turn) -> None:
        while True:
            self._state = turn.state
            if turn.state.phase in (Phase.CONNECTED, Phase.SURVEY):
                self.connected = True
            for prompt in turn.prompts:
                self.say(prompt)
            feedback: Event | None = None
            for effect in turn.effects:
                feedback = await self._do(effect, turn.state) or feedback
            if feedback is None:
                return
            turn = self.engine.advance(turn.state, feedback)

    async def _do(self, effect: Effect, state: State) -> Event | None:
        call_id = await self._call(state)
        if isinstance(effect, RecordStep):
            await self.client.record_step(call_id, effect.node, effect.prompt, effect.input)
        elif isinstance(effect, Verify):
            result = await self.client.verify(call_id, effect.account_number, effect.pin)
            return Verified(result.verified, result.attempts_left, result.locked)
        elif isinstance(effect, Handoff):
            self.escalate_reason = effect.escalate_reason
            self.handoff = await self.client.handoff(
                call_id,
                intent=effect.intent,
                collected=effect.collected,
                utterance=effect.utterance,
                escalate_reason=effect.escalate_reason,
            )
        elif isinstance(effect, Hangup):
            self.hung_up = True
            await self.client.hangup(call_id)
        elif isinstance(effect, RequestCallback):
            # No hang-up after it: the call waits on, keeping its place, for an agent to call.
            self.callback = True
            await self.client.request_callback(call_id, effect.number)
        elif isinstance(effect, SubmitSurvey):
            await self.client.survey(call_id, effect.csat, effect.had_to_repeat)
        return None

    async def _call(self, state: State) -> str:
        if self.call_id is None:
            # The centre learns the language only when the call is created, so a tree that
            # asks it first creates the call with the first answer (even a hang-up).
            created = await self.client.create_call(self.caller_number, state.language)
            self.call_id = created.id
        return self.call_id


def _asks_language_first(flow: Flow) -> bool:
    node = flow.nodes[flow.start]
    return isinstance(node, MenuNode) and any(
        action.set_language is not None for action in node.options.values()
    )


def dump_state(state: State) -> str:
    """The engine's state as JSON, for a driver that keeps a call between requests."""
    return json.dumps(asdict(state), separators=(",", ":"))


def load_state(text: str) -> State:
    data = json.loads(text)
    announced = data.get("announced")
    return State(
        **{
            **data,
            "phase": Phase(data["phase"]),
            "collected": dict(data.get("collected") or {}),
            "announced": tuple(announced) if announced is not None else None,
        }
    )
