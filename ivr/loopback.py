"""`tellonce ivr --twilio`: a caller that drives the voice webhook as the telephony platform
would, with signed form posts, following the TwiML it gets back. No account, one machine."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import secrets
import xml.etree.ElementTree as ET
from collections.abc import Callable
from urllib.parse import urljoin, urlsplit

import httpx

from ivr.client import ApiError
from ivr.engine import PIN_MASK, Keys, Speech

WEBHOOK = "/voice/twilio"
STATUS = "/voice/twilio/status"
# A caller stuck in a looping tree gives up; no real call goes round this often.
MAX_REQUESTS = 200

Say = Callable[[str], None]


def sign(token: str, url: str, params: dict[str, str]) -> str:
    """The platform's X-Twilio-Signature of a form post to url."""
    text = url + "".join(name + params[name] for name in sorted(params))
    return base64.b64encode(hmac.new(token.encode(), text.encode(), hashlib.sha1).digest()).decode()


class LoopbackCall:
    """One call, from the platform's side: posts to `server`, signed for `public_url`."""

    def __init__(
        self,
        server: str,
        token: str,
        caller_number: str,
        *,
        public_url: str | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.server = server.rstrip("/")
        self.public = (public_url or server).rstrip("/")
        self.token = token
        self.sid = "CA" + secrets.token_hex(16)
        self.params = {
            "CallSid": self.sid,
            "AccountSid": "AC" + "0" * 32,
            "From": caller_number,
            "To": "+15550000000",
            "Direction": "inbound",
        }
        self.http = httpx.AsyncClient(timeout=30.0, transport=transport)

    async def aclose(self) -> None:
        await self.http.aclose()

    def _path(self, url: str) -> str:
        """What follows the public base URL in a URL the webhook gave (or a path of it)."""
        absolute = urljoin(self.public + "/", url)
        if absolute.startswith(self.public + "/"):
            return absolute[len(self.public) :]
        parts = urlsplit(absolute)
        return parts.path + (f"?{parts.query}" if parts.query else "")

    async def post(self, url: str, extra: dict[str, str]) -> str:
        path = self._path(url)
        params = {**self.params, **extra}
        headers = {"X-Twilio-Signature": sign(self.token, self.public + path, params)}
        response = await self.http.post(self.server + path, data=params, headers=headers)
        if response.is_error:
            try:
                detail = response.json().get("detail", response.text)
            except (ValueError, AttributeError):
                detail = response.text
            raise ApiError("POST", path.split("?")[0], response.status_code, detail)
        return response.text

    async def hang_up(self) -> None:
        await self.post(STATUS, {"CallStatus": "completed"})


async def play(
    call: LoopbackCall, answers: list[Keys | Speech], out: Say, *, hold_s: float = 0.0
) -> None:
    """Answer each Gather with the next answer; with none left, hang up. Stay on hold at most
    hold_s seconds (0: stop at the first pause, leaving the call queued); stop at a Dial."""
    pending = list(answers)
    url, extra = WEBHOOK, {"CallStatus": "ringing"}
    held = 0.0
    for _ in range(MAX_REQUESTS):
        root = ET.fromstring(await call.post(url, extra))
        extra = {"CallStatus": "in-progress"}
        next_url: str | None = None
        for verb in root:
            if verb.tag == "Say":
                out(verb.text or "")
            elif verb.tag == "Gather":
                for said in verb.iter("Say"):
                    out(said.text or "")
                if not pending:
                    out("(no key left: the caller hangs up)")
                    await call.hang_up()
                    return
                answer = pending.pop(0)
                secret = verb.get("input") == "dtmf"
                if isinstance(answer, Speech):
                    out(PIN_MASK if secret else f'> "{answer.text}"')
                    extra["SpeechResult"] = answer.text
                else:
                    out(f"> {PIN_MASK if secret else answer.keys or '(silence)'}")
                    # The platform keeps the key that ends an entry to itself.
                    finish = verb.get("finishOnKey") or ""
                    keys = (
                        answer.keys[: -len(finish)]
                        if finish and answer.keys.endswith(finish)
                        else answer.keys
                    )
                    extra["Digits"] = keys
                next_url = verb.get("action")
                break
            elif verb.tag == "Pause":
                length = float(verb.get("length") or 1)
                if held + length > hold_s:
                    out("(on hold: the caller stops listening; the call stays queued)")
                    return
                held += length
                await asyncio.sleep(length)
            elif verb.tag == "Redirect":
                next_url = verb.text
                break
            elif verb.tag == "Dial":
                target = "".join(
                    ("client:" if child.tag == "Client" else "") + (child.text or "")
                    for child in verb
                )
                out(f"(put through to {target or verb.text or 'nobody'})")
                return
            elif verb.tag == "Hangup":
                out("(the centre hung up)")
                return
        if next_url is None:
            out("(the call ended)")
            return
        url = next_url
    out("(the tree went round too long: the caller hangs up)")
    await call.hang_up()
