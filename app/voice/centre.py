"""The centre as the phone tree's driver sees it (ivr.driver.Centre), in-process.

Each operation is the service function behind the IVR route of the same name, in a unit of work
of its own as that route's request would have: the same checks, changes and events, and a
refusal as the same ApiError the simulator's HTTP client raises.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager

from pydantic import ValidationError

from app.calls import bounds, service
from app.calls.schemas import CallbackIn, CallCreate, HandoffIn, StepIn, SurveyIn, VerifyIn
from app.context import AppContext
from app.errors import TellonceError
from app.uow import UnitOfWork, unit_of_work
from ivr.client import ApiError, CallCreated, HandoffResult, Position, VerifyResult


class ServiceCentre:
    def __init__(self, ctx: AppContext) -> None:
        self.ctx = ctx

    @asynccontextmanager
    async def _unit(self, method: str, path: str) -> AsyncIterator[UnitOfWork]:
        try:
            async with unit_of_work(self.ctx) as uow:
                yield uow
        except TellonceError as exc:
            raise ApiError(method, path, exc.status_code, exc.detail) from None
        except ValidationError as exc:
            raise ApiError(method, path, 422, exc.errors(include_url=False)) from None

    async def create_call(self, caller_number: str, language: str | None = None) -> CallCreated:
        async with self._unit("POST", "/api/calls") as uow:
            data = CallCreate(caller_number=caller_number, language=language)
            call = await service.create(uow, data=data)
            created = CallCreated(id=str(call.id), state=call.state, caller_known=call.caller_known)
        return created

    async def verify(self, call_id: str, account_number: str, pin: str) -> VerifyResult:
        async with self._unit("POST", f"/api/calls/{call_id}/verify") as uow:
            data = VerifyIn(account_number=account_number, pin=pin)
            out = await service.verify(uow, call_id=int(call_id), data=data)
        return VerifyResult(
            verified=out.verified, attempts_left=out.attempts_left, locked=out.locked
        )

    async def record_step(self, call_id: str, node: str, prompt: str, input: str) -> None:
        async with self._unit("POST", f"/api/calls/{call_id}/steps") as uow:
            data = StepIn(node=node, prompt=prompt, input=input)
            call = await service.get_locked(uow, int(call_id))
            await service.add_step(uow, call=call, data=data)

    async def handoff(
        self,
        call_id: str,
        *,
        intent: str | None,
        collected: Mapping[str, str],
        utterance: str | None,
        escalate_reason: str | None,
    ) -> HandoffResult:
        async with self._unit("POST", f"/api/calls/{call_id}/handoff") as uow:
            data = HandoffIn(
                intent=intent,
                collected=dict(collected),
                utterance=utterance,
                escalate_reason=escalate_reason,
            )
            bounds.check_handoff(uow.ctx.settings, data)
            call = await service.get_locked(uow, int(call_id))
            out = await service.handoff(uow, call=call, data=data)
        return HandoffResult(
            id=str(out.id), state=out.state, queue=out.queue, position=out.position
        )

    async def hangup(self, call_id: str) -> None:
        async with self._unit("POST", f"/api/calls/{call_id}/hangup") as uow:
            call = await service.get_locked(uow, int(call_id))
            await service.hangup(uow, call=call)

    async def request_callback(self, call_id: str, number: str | None = None) -> None:
        async with self._unit("POST", f"/api/calls/{call_id}/callback") as uow:
            data = CallbackIn(number=number)
            call = await service.get_locked(uow, int(call_id))
            await service.request_callback(uow, call=call, data=data)

    async def survey(self, call_id: str, csat: int, had_to_repeat: bool) -> None:
        async with self._unit("POST", f"/api/calls/{call_id}/survey") as uow:
            data = SurveyIn(csat=csat, had_to_repeat=had_to_repeat)
            call = await service.get_locked(uow, int(call_id))
            await service.survey(uow, call=call, data=data)

    async def position(self, call_id: str) -> Position:
        async with self._unit("GET", f"/api/calls/{call_id}/position") as uow:
            call = await service.get_locked(uow, int(call_id))
            out = await service.position(uow, call=call)
        return Position(
            state=out.state,
            queue=out.queue,
            position=out.position,
            wait_s=out.wait_s,
            callback_offer=out.callback_offer,
            callback_offer_in_s=out.callback_offer_in_s,
        )
