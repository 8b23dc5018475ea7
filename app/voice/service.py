"""The webhook's turns: the platform's request in, the engine's turn out as TwiML.

A turn claims its number on the call's voice session first, then runs the engine's effects
through the same driver as the simulator (ivr.driver), then keeps the new state and the
answer. A retried request of a turn finds it claimed and gets the kept answer: no second call,
no second step.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlalchemy.exc import IntegrityError

from app.context import AppContext
from app.db import utcnow
from app.errors import NotFound
from app.voice import repository
from app.voice.centre import ServiceCentre
from app.voice.models import VoiceSession
from app.voice.twiml import Dial, Gather, Next, Wait, render
from ivr.client import ApiError
from ivr.driver import CallRunner, dump_state, load_state
from ivr.engine import (
    Awaiting,
    CallerHangup,
    Engine,
    EngineError,
    Event,
    Keys,
    MenuNode,
    Phase,
    QueueStatus,
    Speech,
    State,
)

log = logging.getLogger("tellonce.voice")

# The platform's CallStatus values that mean the caller's leg is over.
ENDED = frozenset({"completed", "busy", "failed", "no-answer", "canceled"})


@dataclass(frozen=True)
class Claim:
    """What a turn needs of the session it claimed."""

    caller_number: str
    call_id: int | None
    state: State | None  # None: the call's first turn
    twiml: str | None  # the answer of the turn before, put back if this one fails


@dataclass(frozen=True)
class Answer:
    """Where the next request of the call is sent: the webhook's URL with ?turn=N."""

    url: str

    def turn(self, n: int) -> str:
        return f"{self.url}?turn={n}"


async def turn(
    ctx: AppContext,
    *,
    call_sid: str,
    turn: int,
    caller_number: str,
    digits: str | None,
    speech: str | None,
    answer_url: str,
) -> str:
    """The TwiML for the request of `turn` of the call `call_sid`."""
    to = Answer(answer_url)
    for attempt in (1, 2):
        try:
            claimed = await _claim(ctx, call_sid=call_sid, turn=turn, caller_number=caller_number)
            break
        except IntegrityError:
            # The first request of a call and its retry, at once: the other made the session.
            if attempt == 2:
                raise
    if isinstance(claimed, str):
        log.info("voice turn replayed", extra={"call_sid": call_sid, "turn": turn})
        return claimed
    if claimed is None:
        # Claimed by a request still working: look again in a moment, as the same turn.
        return render([], ctx.flow.default_language, Wait(to.turn(turn), 1))
    engine = Engine(ctx.flow)
    prompts: list[str] = []
    centre = ServiceCentre(ctx)
    runner: CallRunner | None = None
    try:
        if claimed.state is None:
            runner = CallRunner(engine, centre, claimed.caller_number, say=prompts.append)
            await runner.start()
        else:
            runner = CallRunner.resume(
                engine,
                centre,
                claimed.caller_number,
                state=claimed.state,
                call_id=None if claimed.call_id is None else str(claimed.call_id),
                say=prompts.append,
            )
            event = await _event(runner, centre, digits=digits, speech=speech)
            if event is not None:
                await runner.send(event)
        state = runner.state
        then = await _next(ctx, engine, runner, to.turn(turn + 1))
    except (ApiError, EngineError) as exc:
        # The centre refused (the call was abandoned meanwhile, a bound was reached): the
        # caller cannot go on, so the call ends politely rather than with the platform's error.
        log.warning(
            "voice turn refused",
            extra={"call_sid": call_sid, "turn": turn, "error": type(exc).__name__},
        )
        base = claimed.state
        language = base.language if base is not None else ctx.flow.default_language
        state = State(phase=Phase.DONE, node=base.node if base else "", language=language)
        prompts = [ctx.flow.text(ctx.flow.messages.goodbye, language)]
        then = None
    except BaseException:
        # Not the centre's answer but a failure (the database went away): the turn is given
        # back, so that the platform's retry runs it rather than waiting for it for ever.
        made = None if runner is None or runner.call_id is None else int(runner.call_id)
        await _release(ctx, call_sid=call_sid, turn=turn, twiml=claimed.twiml, call_id=made)
        raise
    twiml = render(prompts, state.language, then)
    call_id = None if runner is None or runner.call_id is None else int(runner.call_id)
    await _keep(ctx, call_sid=call_sid, state=state, call_id=call_id, twiml=twiml)
    return twiml


async def _claim(
    ctx: AppContext, *, call_sid: str, turn: int, caller_number: str
) -> Claim | str | None:
    """The turn's claim; or the TwiML kept for it (a retry); or None, still being worked out."""
    async with ctx.transaction() as session:
        voice = await repository.get(session, call_sid, lock=True)
        if voice is None:
            if turn != 0:
                raise NotFound("no such call")
            voice = VoiceSession(
                call_sid=call_sid, caller_number=caller_number, state="", turn=0, twiml=None
            )
            repository.add(session, voice)
        elif turn != voice.turn:
            return voice.twiml
        previous = voice.twiml
        voice.turn = turn + 1
        voice.twiml = None
        voice.updated_at = utcnow()
        return Claim(
            caller_number=voice.caller_number,
            call_id=voice.call_id,
            state=load_state(voice.state) if voice.state else None,
            twiml=previous,
        )


async def _release(
    ctx: AppContext, *, call_sid: str, turn: int, twiml: str | None, call_id: int | None
) -> None:
    """Give a failed turn back; a call it made stays the session's, so a retry makes none."""
    try:
        async with ctx.transaction() as session:
            voice = await repository.get(session, call_sid, lock=True)
            if voice is not None and voice.turn == turn + 1 and voice.twiml is None:
                voice.turn = turn
                voice.twiml = twiml
                voice.call_id = call_id if call_id is not None else voice.call_id
    except Exception:
        log.warning("voice turn not given back", extra={"call_sid": call_sid, "turn": turn})


async def _keep(
    ctx: AppContext, *, call_sid: str, state: State, call_id: int | None, twiml: str
) -> None:
    async with ctx.transaction() as session:
        voice = await repository.get(session, call_sid, lock=True)
        if voice is None:
            return
        voice.state = dump_state(state)
        voice.call_id = call_id if call_id is not None else voice.call_id
        voice.twiml = twiml
        voice.updated_at = utcnow()


async def _event(
    runner: CallRunner, centre: ServiceCentre, *, digits: str | None, speech: str | None
) -> Event | None:
    """What the request brings the engine: the caller's answer, or the centre's news."""
    awaiting = runner.state.awaiting
    if awaiting is Awaiting.INPUT:
        if digits:
            return Keys(digits)
        if speech and speech.strip():
            return Speech(speech)
        return Keys("")
    if awaiting is Awaiting.CENTRE and runner.call_id is not None:
        if digits and runner.state.phase is Phase.QUEUED:
            return Keys(digits)  # a key pressed on hold: the callback offer's, or ignored
        status = await centre.position(runner.call_id)
        return QueueStatus(status.state, status.position, status.wait_s, status.callback_offer)
    return None


async def _next(ctx: AppContext, engine: Engine, runner: CallRunner, next_url: str) -> Next:
    state = runner.state
    if state.awaiting is Awaiting.INPUT:
        return Gather(
            action=next_url,
            language=state.language,
            keys_only=state.secret,
            num_digits=1 if _one_key_menu(engine, state) else None,
        )
    if state.awaiting is Awaiting.CENTRE:
        if state.phase is Phase.CONNECTED and runner.call_id is not None:
            async with ctx.reading() as session:
                phone = await repository.agent_phone(session, int(runner.call_id))
            if phone is not None:
                return Dial(phone)
        if state.phase is Phase.QUEUED and state.callback_offered:
            # Offered a callback: the hold listens for its key, then looks again.
            return Gather(
                action=next_url,
                language=state.language,
                keys_only=True,
                num_digits=1,
                timeout_s=ctx.settings.twilio_hold_s,
            )
        # Waiting (or with an agent who takes no phone calls here): hold, then look again.
        return Wait(next_url, ctx.settings.twilio_hold_s)
    return None


def _one_key_menu(engine: Engine, state: State) -> bool:
    if state.phase is Phase.SURVEY:
        return True
    node = engine.flow.nodes.get(state.node)
    return (
        isinstance(node, MenuNode)
        and node.spoken is None
        and all(len(key) == 1 for key in node.options)
    )


async def status(ctx: AppContext, *, call_sid: str, call_status: str) -> None:
    """The platform's status callback: a caller gone in the tree or the queue hangs up the call
    as POST /api/calls/{id}/hangup does (abandoned, or wrapup when connected)."""
    if call_status not in ENDED:
        return
    async with ctx.transaction() as session:
        voice = await repository.get(session, call_sid, lock=True)
        if voice is None or not voice.state:
            return
        state = load_state(voice.state)
        if state.phase is Phase.DONE:
            return
        caller_number, call_id = voice.caller_number, voice.call_id
        # Claim the call's end: a retried callback, or a turn racing it, finds the call over.
        voice.turn += 1
        voice.state = dump_state(_done(state))
        voice.twiml = render([], state.language, None)
        voice.updated_at = utcnow()
    runner = CallRunner.resume(
        Engine(ctx.flow),
        ServiceCentre(ctx),
        caller_number,
        state=state,
        call_id=None if call_id is None else str(call_id),
    )
    try:
        await runner.send(CallerHangup())
    except (ApiError, EngineError) as exc:
        # The call was over already (a wrap, the silence timeout): nothing left to end.
        log.info("voice hang-up refused", extra={"call_sid": call_sid, "error": type(exc).__name__})
    if runner.call_id is not None and call_id is None:
        await _keep(
            ctx,
            call_sid=call_sid,
            state=_done(state),
            call_id=int(runner.call_id),
            twiml=render([], state.language, None),
        )
    log.info("voice call ended", extra={"call_sid": call_sid, "status": call_status})


def _done(state: State) -> State:
    return State(phase=Phase.DONE, node=state.node, language=state.language)
