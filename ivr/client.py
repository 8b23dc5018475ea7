"""An httpx client of the contract's IVR routes, authenticated with the IVR key (role `ivr`)."""

from __future__ import annotations

from collections.abc import Mapping
from types import TracebackType
from typing import Any

import httpx
from pydantic import BaseModel, ConfigDict, field_validator


class ApiError(RuntimeError):
    """The backend answered with an error status."""

    def __init__(self, method: str, path: str, status: int, detail: object) -> None:
        self.status = status
        self.detail = detail
        super().__init__(f"{method} {path} -> {status}: {detail}")


class _Reply(BaseModel):
    # The server may add fields; the client reads only what the contract names.
    model_config = ConfigDict(extra="ignore")


class _WithId(_Reply):
    id: str

    @field_validator("id", mode="before")
    @classmethod
    def _id_as_text(cls, value: object) -> object:
        return str(value) if isinstance(value, int) else value


class CallCreated(_WithId):
    state: str
    caller_known: bool


class VerifyResult(_Reply):
    verified: bool
    attempts_left: int
    locked: bool


class HandoffResult(_WithId):
    state: str
    queue: str
    position: int | None = None


class Position(_Reply):
    state: str
    queue: str | None = None
    position: int | None = None
    wait_s: float | None = None
    callback_offer: bool = False
    callback_offer_in_s: float | None = None


class IvrClient:
    """The public IVR routes of one Tellonce server. Use as an async context manager."""

    def __init__(
        self,
        server: str,
        api_key: str,
        *,
        timeout: float = 15.0,
        transport: httpx.AsyncBaseTransport | None = None,
        max_connections: int = 100,
    ) -> None:
        self._http = httpx.AsyncClient(
            base_url=server.rstrip("/"),
            headers={"Authorization": f"Bearer {api_key}"},
            timeout=timeout,
            transport=transport,
            limits=httpx.Limits(max_connections=max_connections),
        )

    async def __aenter__(self) -> IvrClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def create_call(self, caller_number: str, language: str | None = None) -> CallCreated:
        body: dict[str, Any] = {"caller_number": caller_number}
        if language is not None:
            body["language"] = language
        return CallCreated.model_validate(await self._send("POST", "/api/calls", body))

    async def verify(self, call_id: str, account_number: str, pin: str) -> VerifyResult:
        body = {"account_number": account_number, "pin": pin}
        return VerifyResult.model_validate(
            await self._send("POST", f"/api/calls/{call_id}/verify", body)
        )

    async def record_step(self, call_id: str, node: str, prompt: str, input: str) -> None:
        body = {"node": node, "prompt": prompt, "input": input}
        await self._send("POST", f"/api/calls/{call_id}/steps", body)

    async def handoff(
        self,
        call_id: str,
        *,
        intent: str | None,
        collected: Mapping[str, str],
        utterance: str | None,
        escalate_reason: str | None,
    ) -> HandoffResult:
        body = {
            "intent": intent,
            "collected": dict(collected),
            "utterance": utterance,
            "escalate_reason": escalate_reason,
        }
        return HandoffResult.model_validate(
            await self._send("POST", f"/api/calls/{call_id}/handoff", body)
        )

    async def hangup(self, call_id: str) -> None:
        await self._send("POST", f"/api/calls/{call_id}/hangup", None)

    async def request_callback(self, call_id: str, number: str | None = None) -> None:
        await self._send("POST", f"/api/calls/{call_id}/callback", {"number": number})

    async def survey(self, call_id: str, csat: int, had_to_repeat: bool) -> None:
        body = {"csat": csat, "had_to_repeat": had_to_repeat}
        await self._send("POST", f"/api/calls/{call_id}/survey", body)

    async def position(self, call_id: str) -> Position:
        return Position.model_validate(await self._send("GET", f"/api/calls/{call_id}/position"))

    async def _send(self, method: str, path: str, body: object = None) -> Any:
        response = await self._http.request(method, path, json=body)
        if response.is_error:
            try:
                detail = response.json().get("detail", response.text)
            except (ValueError, AttributeError):
                detail = response.text
            raise ApiError(method, path, response.status_code, detail)
        if not response.content:
            return None
        return response.json()
