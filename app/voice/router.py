"""POST /voice/twilio and /voice/twilio/status: the platform's webhooks, form-encoded, answered
with TwiML. Off (404) unless TELLONCE_TWILIO_AUTH_TOKEN is set; unsigned requests get 403."""

from __future__ import annotations

import logging
import re
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response, status

from app.context import AppContext
from app.deps import CtxDep
from app.errors import Forbidden, Invalid, NotFound
from app.voice import service
from app.voice.twiml import signed

log = logging.getLogger("tellonce.voice")

router = APIRouter(prefix="/voice", tags=["voice"], include_in_schema=False)

CALL_SID = re.compile(r"[A-Za-z0-9_-]{1,64}")
E164 = re.compile(r"\+[1-9][0-9]{6,14}")
# A turn's Digits: keys only, and no more than any question of a phone tree takes.
DIGITS = re.compile(r"[0-9*#]{0,32}")
MAX_SPEECH = 2000
TWIML = "text/xml"


async def _signed_form(ctx: AppContext, request: Request) -> dict[str, str]:
    """The request's form, once its signature is the platform's; else 404 (off) or 403."""
    token = ctx.settings.twilio_auth_token
    if token is None:
        raise NotFound("Not Found")
    form = await request.form()
    params = [(name, value) for name, value in form.multi_items() if isinstance(value, str)]
    if len(params) != len(form.multi_items()):
        raise Forbidden("the request is not signed by the telephony platform")
    public = ctx.settings.public_url
    url = str(request.url)
    if public is not None:
        query = f"?{request.url.query}" if request.url.query else ""
        url = public + request.url.path + query
    if not signed(token.get_secret_value(), url, params, request.headers.get("X-Twilio-Signature")):
        log.warning("voice request refused: bad or missing signature")
        raise Forbidden("the request is not signed by the telephony platform")
    return dict(params)


def _call_sid(form: dict[str, str]) -> str:
    sid = form.get("CallSid", "")
    if not CALL_SID.fullmatch(sid):
        raise Invalid("CallSid must be the platform's call id", loc=("body", "CallSid"))
    return sid


@router.post("/twilio", response_class=Response)
async def voice(
    ctx: CtxDep, request: Request, turn: Annotated[int, Query(ge=0, le=100_000)] = 0
) -> Response:
    form = await _signed_form(ctx, request)
    call_sid = _call_sid(form)
    caller = form.get("From", "")
    if turn == 0 and not E164.fullmatch(caller):
        raise Invalid("From must be an E.164 number (+15551234567)", loc=("body", "From"))
    digits = form.get("Digits") or None
    if digits is not None and not DIGITS.fullmatch(digits):
        raise Invalid("Digits must be keypad keys", loc=("body", "Digits"))
    speech = form.get("SpeechResult") or None
    if speech is not None:
        speech = speech[:MAX_SPEECH]
    twiml = await service.turn(
        ctx,
        call_sid=call_sid,
        turn=turn,
        caller_number=caller,
        digits=digits,
        speech=speech,
        answer_url=(ctx.settings.public_url or "") + request.url.path,
    )
    return Response(twiml, media_type=TWIML)


@router.post("/twilio/status", status_code=status.HTTP_204_NO_CONTENT, response_class=Response)
async def voice_status(ctx: CtxDep, request: Request) -> Response:
    form = await _signed_form(ctx, request)
    await service.status(ctx, call_sid=_call_sid(form), call_status=form.get("CallStatus", ""))
    return Response(status_code=status.HTTP_204_NO_CONTENT)
