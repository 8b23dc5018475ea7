"""The Twilio-style voice webhook against a live server: signed form posts in, TwiML out.

Requests are signed with the platform's own library (twilio's RequestValidator), and every
answer is parsed as XML and checked element by element against what the engine says.
"""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
import time
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from support import DEADLINE, IVR_KEY, Api, LiveServer
from twilio.request_validator import RequestValidator

from ivr.client import IvrClient
from ivr.engine import Engine, Keys, Phase, Verified
from ivr.flow import load_flow
from ivr.simulator import CallRunner, play_keys

REPO = Path(__file__).resolve().parents[2]
TOKEN = "twilio-auth-token-0123456789abcdef"
WEBHOOK = "/voice/twilio"
STATUS = "/voice/twilio/status"
CALLER = "+15551230001"
ENGINE = Engine(load_flow())
# A verified English caller with a lost card. The platform strips the # that ends an entry.
LOST_CARD = ["1", "12345678", "1234", "2"]

Shape = tuple[str, dict[str, str], str | None, list[Any]]


@pytest.fixture
def phone_server(server_factory: Callable[..., LiveServer]) -> LiveServer:
    return server_factory(twilio_auth_token=TOKEN, twilio_hold_s=1)


@pytest.fixture
async def papi(phone_server: LiveServer) -> Any:
    client = Api(phone_server)
    r = await client.http.get("/api/calls", headers=await client.login("super"))
    DEMO_CALLS.update(c["id"] for c in r.json())
    yield client
    await client.http.aclose()


class Phone:
    """The telephony platform's side of one call."""

    def __init__(self, api: Api, caller: str = CALLER) -> None:
        self.api = api
        self.sid = "CA" + uuid.uuid4().hex
        self.caller = caller
        self.validator = RequestValidator(TOKEN)

    async def post(self, path: str, params: dict[str, str], signature: str | None = "sign") -> Any:
        url = self.api.live.base_url + path
        headers = {}
        if signature == "sign":
            signature = self.validator.compute_signature(url, params)
        if signature is not None:
            headers["X-Twilio-Signature"] = signature
        return await self.api.http.post(path, data=params, headers=headers)

    def params(self, **extra: str) -> dict[str, str]:
        return {"CallSid": self.sid, "From": self.caller, "To": "+15550001111", **extra}

    async def turn(self, path: str = WEBHOOK, **extra: str) -> ET.Element:
        r = await self.post(path, self.params(**extra))
        assert r.status_code == 200, r.text
        assert r.headers["content-type"].startswith("text/xml")
        return ET.fromstring(r.text)

    async def hang_up(self, status: str = "completed") -> None:
        r = await self.post(STATUS, self.params(CallStatus=status))
        assert r.status_code == 204, r.text


def shape(element: ET.Element) -> Shape:
    text = (element.text or "").strip() or None
    return (element.tag, dict(element.attrib), text, [shape(child) for child in element])


def says(prompts: list[str], lang: str) -> list[Shape]:
    return [("Say", {"language": lang}, p, []) for p in prompts]


def gather(prompts: list[str], action: str, lang: str = "en-US", **extra: str) -> Shape:
    attrs = {
        "input": "dtmf speech",
        "action": action,
        "method": "POST",
        "finishOnKey": "#",
        "timeout": "5",
        "language": lang,
        "speechTimeout": "auto",
        **extra,
    }
    if attrs["input"] == "dtmf":
        del attrs["speechTimeout"]
    redirect = ("Redirect", {"method": "POST"}, action, [])
    return ("Response", {}, None, [("Gather", attrs, None, says(prompts, lang)), redirect])


def wait(prompts: list[str], action: str, lang: str = "en-US") -> Shape:
    return (
        "Response",
        {},
        None,
        [
            *says(prompts, lang),
            ("Pause", {"length": "1"}, None, []),
            ("Redirect", {"method": "POST"}, action, []),
        ],
    )


def engine_turns(keys: list[str]) -> list[list[str]]:
    """What the engine says on each turn of this call, the verification succeeding."""
    turn = ENGINE.start()
    said = [list(turn.prompts)]
    for key in keys:
        turn = ENGINE.advance(turn.state, Keys(key))
        prompts = list(turn.prompts)
        if turn.state.phase is Phase.VERIFYING:
            turn = ENGINE.advance(turn.state, Verified(True, 3))
            prompts += turn.prompts
        said.append(prompts)
    return said


def action(n: int) -> str:
    return f"{WEBHOOK}?turn={n}"


async def calls_of(api: Api, caller: str = CALLER) -> list[dict[str, Any]]:
    """The calls from this number that the test made (the demo data has some before)."""
    r = await api.http.get("/api/calls", headers=await api.login("super"))
    assert r.status_code == 200, r.text
    return [c for c in r.json() if c["caller_number"] == caller and c["id"] not in DEMO_CALLS]


DEMO_CALLS: set[int] = set()


async def play(phone: Phone, keys: list[str]) -> list[ET.Element]:
    """Greeting, then one turn per key; every answer as the platform got it."""
    answers = [await phone.turn()]
    for n, key in enumerate(keys, start=1):
        answers.append(await phone.turn(f"{WEBHOOK}?turn={n}", Digits=key))
    return answers


async def test_a_whole_call_from_greeting_to_handoff_to_an_agent_on_the_phone(papi: Api) -> None:
    r = await papi.post(
        "/api/users",
        "super",
        {
            "username": "dana",
            "password": "dana-password-1",
            "role": "agent",
            "skills": ["cards"],
            "phone": "client:dana",
        },
    )
    assert r.status_code == 201, r.text
    assert r.json()["phone"] == "client:dana"
    phone = Phone(papi)
    answers = await play(phone, LOST_CARD)
    expected = engine_turns(LOST_CARD)
    # The language menu: one key, no # needed; then the English questions.
    assert shape(answers[0]) == gather(expected[0], action(1), numDigits="1")
    assert shape(answers[1]) == gather(expected[1], action(2))
    # The PIN: keys only, never sent to speech recognition, and never said back.
    assert shape(answers[2]) == gather(expected[2], action(3), input="dtmf")
    assert shape(answers[3]) == gather(expected[3], action(4))
    assert shape(answers[4]) == wait(expected[4], action(5))
    assert all("1234" not in ET.tostring(a, encoding="unicode") for a in answers[3:])

    (call,) = await calls_of(papi)
    assert call["state"] == "queued" and call["queue"] == "cards"
    assert call["identity"]["verified"] is True
    # Waiting: the position, said once; the next look says nothing new.
    position = ENGINE.flow.text(ENGINE.flow.messages.position, "en")
    answer = await phone.turn(action(5))
    assert shape(answer) == wait([position.format(position=1, wait_s=0)], action(6))
    answer = await phone.turn(action(6))
    assert shape(answer) == wait([], action(7))

    await papi.login("dana", "dana-password-1")
    assert (await papi.set_status("dana", "available"))["status"] in ("available", "offered")
    r = await papi.post(f"/api/calls/{call['id']}/accept", "dana")
    assert r.status_code == 200, r.text
    answer = await phone.turn(action(7))
    connected = ENGINE.flow.text(ENGINE.flow.messages.connected, "en")
    assert shape(answer) == (
        "Response",
        {},
        None,
        [
            *says([connected], "en-US"),
            ("Dial", {}, None, [("Client", {}, "dana", [])]),
        ],
    )
    # The caller hangs up after talking: the call and the agent go to wrap-up.
    await phone.hang_up()
    assert (await papi.call(call["id"]))["state"] == "wrapup"


async def test_a_replayed_webhook_makes_no_second_call_and_no_second_step(papi: Api) -> None:
    phone = Phone(papi)
    first = await phone.turn()
    again = await phone.turn()
    assert shape(again) == shape(first)
    one = await phone.turn(action(1), Digits="1")
    one_again = await phone.turn(action(1), Digits="1")
    assert shape(one_again) == shape(one)
    # A retry of an older turn, after a newer one, still gets that turn's answer again.
    two = await phone.turn(action(2), Digits="12345678")
    assert shape(await phone.turn(action(2), Digits="12345678")) == shape(two)
    (call,) = await calls_of(papi)
    steps = (await papi.call(call["id"]))["ivr_path"]
    assert [(s["node"], s["input"]) for s in steps] == [
        ("language", "1"),
        ("identify.account", "12345678"),
    ]


@pytest.mark.parametrize("signature", [None, "", "bad", "other-url"])
async def test_unsigned_or_badly_signed_requests_get_403_and_change_nothing(
    papi: Api, signature: str | None
) -> None:
    phone = Phone(papi)
    await phone.turn()
    await phone.turn(action(1), Digits="1")
    (call,) = await calls_of(papi)
    params = phone.params(Digits="12345678")
    if signature == "other-url":
        # Signed, but for another URL: a turn that is not this one.
        signature = phone.validator.compute_signature(papi.live.base_url + action(9), params)
    r = await phone.post(action(2), params, signature=signature)
    assert r.status_code == 403
    assert r.json() == {"detail": "the request is not signed by the telephony platform"}
    r = await phone.post(STATUS, phone.params(CallStatus="completed"), signature=signature)
    assert r.status_code == 403
    assert (await papi.call(call["id"]))["ivr_path"] == (await papi.call(call["id"]))["ivr_path"]
    assert len((await papi.call(call["id"]))["ivr_path"]) == 1
    assert (await papi.call(call["id"]))["state"] == "ivr"
    # The call goes on where it was: the signed request of that turn is taken.
    answer = await phone.turn(action(2), Digits="12345678")
    assert shape(answer) == gather(engine_turns(LOST_CARD)[2], action(3), input="dtmf")


async def test_the_webhook_is_off_without_an_auth_token(api: Api) -> None:
    phone = Phone(api)
    r = await phone.post(WEBHOOK, phone.params())
    assert r.status_code == 404
    r = await phone.post(STATUS, phone.params(CallStatus="completed"))
    assert r.status_code == 404


async def test_hanging_up_in_the_tree_abandons_the_call(papi: Api) -> None:
    phone = Phone(papi)
    await play(phone, ["1", "12345678"])
    (call,) = await calls_of(papi)
    await phone.hang_up()
    await phone.hang_up()  # the platform's retry changes nothing more
    assert (await papi.call(call["id"]))["state"] == "abandoned"
    # A late turn of the call gets a hang-up, not a new question.
    answer = await phone.turn(action(3), Digits="1234")
    assert shape(answer) == ("Response", {}, None, [("Hangup", {}, None, [])])


async def test_hanging_up_in_the_queue_abandons_the_call(papi: Api) -> None:
    phone = Phone(papi)
    await play(phone, LOST_CARD)
    (call,) = await calls_of(papi)
    assert call["state"] == "queued"
    await phone.hang_up("no-answer")
    assert (await papi.call(call["id"]))["state"] == "abandoned"


async def test_the_same_flow_gives_the_same_call_context_as_the_simulator(papi: Api) -> None:
    async with IvrClient(papi.live.base_url, IVR_KEY) as client:
        runner = CallRunner(ENGINE, client, "+15551230002")
        await play_keys(runner, [Keys(k) for k in LOST_CARD], lambda _: None)
    simulated = await papi.call(int(runner.call_id or 0))
    await play(Phone(papi, "+15551230002"), LOST_CARD)
    by_phone = [c for c in await calls_of(papi, "+15551230002") if c["id"] != simulated["id"]]
    (phoned,) = by_phone
    phoned = await papi.call(phoned["id"])
    same = ("language", "intent", "queue", "escalation_reason", "utterance", "collected")
    for name in same:
        assert phoned[name] == simulated[name], name
    assert phoned["customer"] == simulated["customer"]
    assert phoned["identity"]["verified"] and simulated["identity"]["verified"]
    trail = [
        [(s["node"], s["prompt"], s["input"]) for s in c["ivr_path"]] for c in (phoned, simulated)
    ]
    assert trail[0] == trail[1]


async def test_behind_a_proxy_the_public_url_is_what_is_signed(
    server_factory: Callable[..., LiveServer],
) -> None:
    public = "https://phones.example.com/tellonce"
    live = server_factory(twilio_auth_token=TOKEN, public_url=public + "/")
    api = Api(live)
    try:
        phone = Phone(api)
        params = phone.params()
        # Signed for the URL the server sees: not what the platform called, so refused.
        r = await phone.post(WEBHOOK, params)
        assert r.status_code == 403
        signature = phone.validator.compute_signature(public + WEBHOOK, params)
        r = await phone.post(WEBHOOK, params, signature=signature)
        assert r.status_code == 200, r.text
        # The next turns are asked for at the public URL too.
        first = engine_turns([])[0]
        assert shape(ET.fromstring(r.text)) == gather(first, public + action(1), numDigits="1")
    finally:
        await api.http.aclose()


def loopback(live: LiveServer, *args: str, token: str = TOKEN) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TELLONCE_")}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH")) if p)
    env["TELLONCE_TWILIO_AUTH_TOKEN"] = token
    command = [sys.executable, "-c", "import sys; from app.cli import main; sys.exit(main())"]
    return subprocess.run(
        [*command, "ivr", "--twilio", "--server", live.base_url, *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )


async def test_the_loopback_caller_drives_the_webhook_as_the_platform_would(papi: Api) -> None:
    result = await asyncio.to_thread(
        loopback, papi.live, "--from", CALLER, "--keys", "1,12345678#,1234#,2"
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    expected = engine_turns(LOST_CARD)
    assert lines[: len(expected[0])] == expected[0]
    assert "> ****" in lines and "1234" not in result.stdout.replace("12345678", "")
    assert re.fullmatch(r"call_sid=CA[0-9a-f]{32}", lines[-1])
    (call,) = await calls_of(papi)
    call = await papi.call(call["id"])
    assert call["state"] == "queued" and call["intent"] == "card_lost"
    assert [s["input"] for s in call["ivr_path"]] == ["1", "12345678", "****", "2"]


async def test_the_loopback_caller_with_the_wrong_token_is_refused(papi: Api) -> None:
    result = await asyncio.to_thread(
        loopback, papi.live, "--keys", "1", token="not-the-token-0123456789"
    )
    assert result.returncode == 1
    assert "403" in result.stderr and "not-the-token" not in result.stderr
    assert await calls_of(papi) == []


async def test_a_turn_that_fails_is_given_back_for_the_platforms_retry(
    papi: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    from app.voice.centre import ServiceCentre

    phone = Phone(papi)
    await phone.turn()
    record_step = ServiceCentre.record_step
    failed: list[str] = []

    async def fail_once(self: ServiceCentre, *args: Any) -> None:
        if not failed:
            failed.append("once")
            raise ConnectionError("the database went away")
        await record_step(self, *args)

    # The server runs in this process (tests/support.py): the fault reaches its next turn.
    monkeypatch.setattr(ServiceCentre, "record_step", fail_once)
    r = await phone.post(action(1), phone.params(Digits="1"))
    assert r.status_code >= 500 and failed
    answer = await phone.turn(action(1), Digits="1")
    assert shape(answer) == gather(engine_turns(LOST_CARD)[1], action(2))
    (call,) = await calls_of(papi)
    assert [s["input"] for s in (await papi.call(call["id"]))["ivr_path"]] == ["1"]


async def test_with_an_agent_who_takes_no_phone_calls_the_wrap_brings_the_survey(
    papi: Api,
) -> None:
    phone = Phone(papi)
    await play(phone, LOST_CARD)
    (call,) = await calls_of(papi)
    await papi.set_status("alice", "available")
    r = await papi.post(f"/api/calls/{call['id']}/accept", "alice")
    assert r.status_code == 200, r.text
    flow = ENGINE.flow
    answer = await phone.turn(action(5))
    assert shape(answer) == wait([flow.text(flow.messages.connected, "en")], action(6))
    r = await papi.post(
        f"/api/calls/{call['id']}/wrap",
        "alice",
        {"disposition": "resolved", "sentiment": "positive"},
    )
    assert r.status_code == 200, r.text
    answer = await phone.turn(action(6))
    ended = [flow.text(flow.messages.call_ended, "en"), flow.text(flow.survey.csat, "en")]
    assert shape(answer) == gather(ended, action(7), numDigits="1")
    answer = await phone.turn(action(7), Digits="5")
    assert shape(answer) == gather([flow.text(flow.survey.repeat, "en")], action(8), numDigits="1")
    answer = await phone.turn(action(8), Digits="2")
    thanks = flow.text(flow.survey.thanks, "en")
    assert shape(answer) == (
        "Response",
        {},
        None,
        [*says([thanks], "en-US"), ("Hangup", {}, None, [])],
    )
    call = await papi.call(call["id"])
    assert call["state"] == "ended"
    assert call["csat"] == 5 and call["had_to_repeat"] is False
    # The platform's callback after the last turn changes nothing more.
    await phone.hang_up()
    assert (await papi.call(call["id"]))["state"] == "ended"


async def test_spanish_callers_hear_spanish_and_spoken_answers_feed_the_engine(papi: Api) -> None:
    phone = Phone(papi)
    answers = await play(phone, ["2", "12345678", "1234"])
    turn = ENGINE.advance(ENGINE.start().state, Keys("2"))
    assert shape(answers[1]) == gather(list(turn.prompts), action(2), lang="es-MX")
    words = "perdí mi tarjeta"
    answer = await phone.turn(action(4), SpeechResult=words)
    assert [verb.tag for verb in answer] == ["Say", "Pause", "Redirect"]
    assert answer[0].get("language") == "es-MX"
    (call,) = await calls_of(papi)
    call = await papi.call(call["id"])
    assert call["language"] == "es" and call["utterance"] == words
    assert call["ivr_path"][-1]["input"] == words


async def test_a_waiting_caller_takes_the_callback_offer_by_phone(
    server_factory: Callable[..., LiveServer],
) -> None:
    """Past TELLONCE_CALLBACK_OFFER_AFTER_S the hold offers a callback and listens for its key;
    pressing it ends the line with the call still queued in its place, marked to call back."""
    live = server_factory(twilio_auth_token=TOKEN, twilio_hold_s=1, callback_offer_after_s=1)
    api = Api(live)
    try:
        r = await api.http.get("/api/calls", headers=await api.login("super"))
        DEMO_CALLS.update(c["id"] for c in r.json())
        phone = Phone(api)
        answers = await play(phone, LOST_CARD)
        offer = ENGINE.flow.text(ENGINE.flow.callback.offer, "en")
        turn = len(LOST_CARD) + 1
        deadline = time.monotonic() + DEADLINE
        while True:
            answer = await phone.turn(action(turn))
            turn += 1
            if offer in ET.tostring(answer, encoding="unicode"):
                break
            assert time.monotonic() < deadline, "no callback offer"
        (gathering, redirect) = list(answer)
        assert gathering.tag == "Gather" and redirect.tag == "Redirect"
        assert gathering.attrib["input"] == "dtmf" and gathering.attrib["numDigits"] == "1"
        assert gathering.attrib["action"] == action(turn)
        answer = await phone.turn(action(turn), Digits=ENGINE.flow.callback.key)
        assert [child.tag for child in answer][-1] == "Hangup", ET.tostring(answer)
        await phone.hang_up()
        (call,) = await calls_of(api)
        assert call["state"] == "queued" and call["callback"]["number"] == CALLER
        assert answers  # the tree's turns came first
    finally:
        await api.http.aclose()
