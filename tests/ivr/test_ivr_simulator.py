"""The simulator's drivers against an in-memory stand-in of the IVR routes.

The stand-in checks only what the simulator must get right (order, bodies, the PIN); the
live tests (test_ivr_live.py) run the same drivers against the real server.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import os
import random
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from ivr.client import ApiError, IvrClient
from ivr.engine import Engine, Keys, Phase, Speech, State
from ivr.flow import load_flow
from ivr.simulator import (
    Caller,
    CallRunner,
    LineReader,
    ProgressBar,
    interactive,
    parse_answer,
    parse_keys,
    place_calls,
    play_keys,
    play_random,
    random_answer,
    random_callers,
    random_persona,
    random_survey_answer,
)

ACME = Engine(load_flow())
BRANCH = Engine(load_flow(Path(__file__).parent / "flows" / "branch.yaml"))


class FakeCentre:
    """The contract's IVR routes, in memory: enough to see what the simulator sends."""

    def __init__(self, positions: list[dict[str, Any]] | None = None) -> None:
        self.requests: list[tuple[str, str, Any]] = []
        self.calls = 0
        self.positions = list(positions or [])

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)

    def handle(self, request: httpx.Request) -> httpx.Response:
        assert request.headers["authorization"] == "Bearer ivr-key"
        body: Any = json.loads(request.content) if request.content else None
        path = request.url.path
        self.requests.append((request.method, path, body))
        if path == "/api/calls":
            self.calls += 1
            return httpx.Response(
                201, json={"id": self.calls, "state": "ivr", "caller_known": False}
            )
        action = path.rsplit("/", 1)[-1]
        if action == "verify":
            ok = body == {"account_number": "12345678", "pin": "1234"}
            return httpx.Response(200, json={"verified": ok, "attempts_left": 2, "locked": False})
        if action == "steps":
            return httpx.Response(201, json={})
        if action == "handoff":
            queue = ACME.flow.queue_for(body["intent"]) or "escalations"
            if body["escalate_reason"]:
                queue = "escalations"
            return httpx.Response(
                200, json={"id": 1, "state": "queued", "queue": queue, "position": 1}
            )
        if action == "position":
            # Scripted positions first; then nobody ever answers.
            waiting = {"state": "queued", "queue": "cards", "position": 1, "wait_s": 0.0}
            return httpx.Response(200, json=self.positions.pop(0) if self.positions else waiting)
        if action in ("hangup", "survey"):
            return httpx.Response(200, json={})
        return httpx.Response(404, json={"detail": "Not Found"})

    def sent(self, action: str) -> list[Any]:
        return [body for _, path, body in self.requests if path.endswith(action)]

    @property
    def route_order(self) -> list[str]:
        return [path.rsplit("/", 1)[-1] for _, path, _ in self.requests]


def client_for(centre: FakeCentre) -> IvrClient:
    return IvrClient("http://centre.test", "ivr-key", transport=centre.transport())


async def scripted(
    centre: FakeCentre, keys: str, engine: Engine = ACME
) -> tuple[CallRunner, list[str]]:
    lines: list[str] = []
    async with client_for(centre) as client:
        runner = CallRunner(engine, client, "+15551230001", say=lines.append)
        await play_keys(runner, parse_keys(keys), lines.append)
    return runner, lines


async def test_the_contracts_example_call() -> None:
    centre = FakeCentre()
    runner, lines = await scripted(centre, "1,12345678#,1234#,2")
    assert runner.call_id == "1"
    # Each answer is posted as it is given; the call exists from the first answer on.
    assert centre.route_order == ["calls", "steps", "steps", "steps", "verify", "steps", "handoff"]
    assert centre.sent("/api/calls") == [{"caller_number": "+15551230001", "language": "en"}]
    assert [s["input"] for s in centre.sent("steps")] == ["1", "12345678#", "****", "2"]
    assert centre.sent("handoff") == [
        {"intent": "card_lost", "collected": {}, "utterance": None, "escalate_reason": None}
    ]
    assert lines[0].startswith("Welcome to Acme Bank.")
    assert "> ****" in lines
    assert not any("1234#" in line for line in lines)
    assert lines[-1] == "handed off to queue cards, position 1"


async def test_the_call_is_created_in_the_chosen_language() -> None:
    centre = FakeCentre()
    await scripted(centre, "2,12345678#,1234#,0")
    assert centre.sent("/api/calls")[0]["language"] == "es"
    assert centre.sent("handoff")[0]["escalate_reason"] == "caller_requested"


async def test_spoken_words_travel_as_the_utterance() -> None:
    centre = FakeCentre()
    _, lines = await scripted(centre, '1,12345678#,1234#,"my cat ate my statement, twice"')
    assert centre.sent("handoff")[0] == {
        "intent": "billing",
        "collected": {},
        "utterance": "my cat ate my statement, twice",
        "escalate_reason": None,
    }
    assert '> "my cat ate my statement, twice"' in lines


async def test_no_key_left_means_the_caller_hangs_up() -> None:
    centre = FakeCentre()
    runner, lines = await scripted(centre, "1,12345678#")
    assert centre.route_order == ["calls", "steps", "steps", "hangup"]
    assert lines[-2:] == ["(no key left: the caller hangs up)", "the call ended in the phone tree"]
    assert runner.hung_up


async def test_hanging_up_before_any_answer_still_records_the_call() -> None:
    centre = FakeCentre()
    runner, _ = await scripted(centre, "")
    assert centre.route_order == ["calls", "hangup"]
    assert runner.call_id == "1"


async def test_a_tree_that_does_not_ask_the_language_creates_the_call_at_once() -> None:
    centre = FakeCentre()
    async with client_for(centre) as client:
        runner = CallRunner(BRANCH, client, "+15550000000")
        await runner.start()
    assert centre.route_order == ["calls"]
    assert centre.sent("/api/calls") == [{"caller_number": "+15550000000", "language": "en"}]


async def test_collected_answers_are_handed_off() -> None:
    centre = FakeCentre()
    _, lines = await scripted(centre, '1,2,4321#,"left it on the train"', engine=BRANCH)
    assert centre.sent("handoff")[0]["collected"] == {
        "stolen": "no",
        "card_last4": "4321",
        "story": "left it on the train",
    }
    assert lines[-1].startswith("handed off to queue cards")


async def test_three_failed_verifications_post_three_tries() -> None:
    centre = FakeCentre()
    _, lines = await scripted(centre, "1,11111111#,0000#,22222222#,0000#,33333333#,0000#")
    assert len(centre.sent("verify")) == 3
    assert centre.sent("handoff")[0]["escalate_reason"] == "verification_failed"
    assert lines[-1] == "handed off to queue escalations (verification_failed), position 1"


async def test_a_refusal_from_the_server_is_an_api_error() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        return httpx.Response(403, json={"detail": "not the IVR key"})

    async with IvrClient("http://centre.test", "bad", transport=httpx.MockTransport(refuse)) as c:
        with pytest.raises(ApiError) as caught:
            await c.create_call("+15550000000")
    assert caught.value.status == 403
    assert "POST /api/calls -> 403: not the IVR key" in str(caught.value)


def test_parse_keys() -> None:
    assert parse_keys("1,12345678#,1234#,2") == [
        Keys("1"),
        Keys("12345678#"),
        Keys("1234#"),
        Keys("2"),
    ]
    assert parse_keys(' 1 , "I lost, or lent, my card" ,*') == [
        Keys("1"),
        Speech("I lost, or lent, my card"),
        Keys("*"),
    ]
    assert parse_keys("1,,2") == [Keys("1"), Keys(""), Keys("2")]
    assert parse_keys("") == []
    with pytest.raises(ValueError, match="answer 2"):
        parse_keys("1,hello")
    with pytest.raises(ValueError, match="not closed"):
        parse_keys('1,"hello')


def test_parse_answer() -> None:
    assert parse_answer("1") == Keys("1")
    assert parse_answer(" 1234 5678 # ") == Keys("12345678#")
    assert parse_answer("") == Keys("")
    assert parse_answer("I lost my card") == Speech("I lost my card")
    assert parse_answer('"1"') == Speech("1")


JANE = Caller(number="+15551230001", account="12345678", pin="1234", language="en")


async def test_many_random_calls_all_reach_an_end() -> None:
    centre = FakeCentre()
    stream = io.StringIO()
    async with client_for(centre) as client:
        report = await place_calls(
            ACME,
            client,
            calls=60,
            rate=10_000,
            rng=random.Random(7),
            callers=[JANE],
            patience_s=0.0,  # nobody answers here: every caller in a queue gives up at once
            poll_s=0.0,
            progress=ProgressBar(60, stream),
        )
    assert report.done == 60
    assert report.errors == []
    assert centre.calls == 60
    # Every caller hangs up: in the tree, or tired of waiting after the handoff.
    assert len(centre.sent("hangup")) == 60
    # A realistic mix: most callers get through to a scripted queue, some reach a person.
    waited = report.outcomes
    assert waited["hung up waiting in cards"] + waited["hung up waiting in billing"] > 20
    assert waited["hung up waiting in escalations"] > 0
    assert all(step["input"] != "1234#" for step in centre.sent("steps"))
    # The demo account is only ever tried with its right PIN: random load never locks it.
    assert all(
        v["pin"] == "1234" for v in centre.sent("verify") if v["account_number"] == "12345678"
    )
    progress = stream.getvalue().splitlines()
    assert progress[-1].startswith("[" + "#" * 30 + "] 60/60")
    assert 2 <= len(progress) <= 11


def test_callers_have_patience_with_a_long_tail_and_most_answer_the_survey() -> None:
    rng = random.Random(3)
    people = [random_persona(rng, patience_s=60.0) for _ in range(2000)]
    patience = sorted(p.patience_s for p in people)
    assert 50 < patience[1000] < 70  # the median asked for
    assert patience[100] < 30 and patience[1900] > 120  # a realistic spread both ways
    assert 0.75 < sum(p.answers_survey for p in people) / len(people) < 0.85
    csat = Counter(random_survey_answer(State(Phase.SURVEY, "", "en", stage="csat"), rng).keys
                   for _ in range(1000))  # fmt: skip
    assert set(csat) == set("12345") and csat["5"] > csat["1"]


async def test_a_served_caller_answers_the_survey_and_a_waiting_one_gives_up() -> None:
    served = FakeCentre(
        positions=[
            {"state": "queued", "queue": "cards", "position": 1, "wait_s": 1.0},
            {"state": "connected", "queue": "cards", "position": None, "wait_s": 2.0},
            {"state": "ended", "queue": "cards", "position": None, "wait_s": 2.0},
        ]
    )
    client = IvrClient("http://centre.test", "ivr-key", transport=served.transport())
    async with client:
        # Seed 4: a caller who answers the survey; patience enough to wait for the agent.
        runner = CallRunner(ACME, client, JANE.number)
        await play_random(runner, random.Random(4), JANE, patience_s=1e6, poll_s=0.0)
    assert runner.connected and len(served.sent("survey")) == 1
    assert served.sent("hangup") == []

    nobody = FakeCentre()
    client = IvrClient("http://centre.test", "ivr-key", transport=nobody.transport())
    async with client:
        runner = CallRunner(ACME, client, JANE.number)
        await play_random(runner, random.Random(4), JANE, patience_s=0.0, poll_s=0.0)
    assert not runner.connected and len(nobody.sent("hangup")) == 1
    assert nobody.sent("survey") == []


def test_a_demo_day_draws_customers_of_both_languages_and_a_few_strangers() -> None:
    from app.demo import CUSTOMERS

    callers = random_callers(CUSTOMERS, random.Random(1))
    languages = Counter(c.language for c in callers)
    assert languages["en"] > 0 and languages["es"] > 0 and languages[None] == 3
    assert {c.number for c in callers} >= {"+15551230001", "+34600123456"}
    # A Spanish customer picks Spanish at the language question.
    victor = next(c for c in callers if c.account == "23456789")
    state = ACME.start().state
    answer = random_answer(
        ACME, state, random_persona(random.Random(1)), random.Random(1),
        account=victor.account, pin=victor.pin, language=victor.language,
    )  # fmt: skip
    assert answer == Keys("2")


async def test_a_failing_call_is_counted_and_the_others_go_on() -> None:
    centre = FakeCentre()
    handle = centre.handle

    def sometimes_refuse(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/api/calls" and centre.calls == 2:
            centre.calls += 1
            return httpx.Response(503, json={"detail": "busy"})
        return handle(request)

    client = IvrClient(
        "http://centre.test", "ivr-key", transport=httpx.MockTransport(sometimes_refuse)
    )
    async with client:
        report = await place_calls(
            ACME,
            client,
            calls=5,
            rate=10_000,
            rng=random.Random(1),
            callers=[JANE],
            patience_s=0.0,
            poll_s=0.0,
        )
    assert report.outcomes["error"] == 1
    assert report.done == 5
    assert "503" in report.errors[0]


@pytest.fixture
def pipe() -> Iterator[tuple[int, int]]:
    read_fd, write_fd = os.pipe()
    yield read_fd, write_fd
    os.close(read_fd)
    with contextlib.suppress(OSError):  # a test may have closed it to mean end of input
        os.close(write_fd)


async def test_interactive_call_from_menu_to_survey(pipe: tuple[int, int]) -> None:
    read_fd, write_fd = pipe
    centre = FakeCentre(
        positions=[
            {"state": "queued", "queue": "cards", "position": 2, "wait_s": 1.0},
            {"state": "queued", "queue": "cards", "position": 1, "wait_s": 4.0},
            {"state": "connected", "queue": "cards", "position": None, "wait_s": 6.0},
            {"state": "ended", "queue": "cards", "position": None, "wait_s": 6.0},
        ]
    )
    lines: list[str] = []
    survey_question = ACME.flow.text(ACME.flow.survey.csat, "en")

    def out(line: str) -> None:
        lines.append(line)
        # The caller answers the survey once they hear it (typed earlier, it would be taken
        # as noise on hold).
        if line == survey_question:
            os.write(write_fd, b"5\n2\n")

    os.write(write_fd, b"1\n12345678#\n1234#\nI lost my card\n")
    async with client_for(centre) as client:
        runner = CallRunner(ACME, client, "+15551230001", say=out)
        with LineReader(read_fd) as reader:
            await asyncio.wait_for(interactive(runner, reader, out, poll_s=0.01), 10)
    assert centre.sent("handoff")[0]["intent"] == "card_lost"
    assert centre.sent("handoff")[0]["utterance"] == "I lost my card"
    assert centre.sent("survey") == [{"csat": 5, "had_to_repeat": False}]
    assert "[handed off to queue cards, position 1; call_id=1]" in lines
    assert "You are number 2 in line. You have waited 1 seconds." in lines
    assert "You are number 1 in line. You have waited 4 seconds." in lines
    assert "You are now connected with an agent." in lines
    assert "The agent has ended the call." in lines
    assert lines[-2:] == ["Thank you for your answers. Goodbye.", "call_id=1"]


async def test_interactive_hang_up_while_on_hold(pipe: tuple[int, int]) -> None:
    read_fd, write_fd = pipe
    centre = FakeCentre(
        positions=[{"state": "queued", "queue": "loans", "position": 1, "wait_s": 0.0}] * 1000
    )
    lines: list[str] = []

    def out(line: str) -> None:
        lines.append(line)
        if line.startswith("You are number 1"):
            os.write(write_fd, b"hello?\n/hangup\n")

    os.write(write_fd, b"1\n12345678#\n1234#\n3\n")
    async with client_for(centre) as client:
        runner = CallRunner(ACME, client, "+15551230001", say=out)
        with LineReader(read_fd) as reader:
            await asyncio.wait_for(interactive(runner, reader, out, poll_s=0.01), 10)
    assert centre.route_order[-1] == "hangup"
    assert centre.sent("survey") == []
    assert "(you are on hold; type /hangup to hang up)" in lines


async def test_interactive_end_of_input_hangs_up(pipe: tuple[int, int]) -> None:
    read_fd, write_fd = pipe
    os.write(write_fd, b"1\n")
    os.close(write_fd)
    centre = FakeCentre()
    lines: list[str] = []
    async with client_for(centre) as client:
        runner = CallRunner(ACME, client, "+15551230001", say=lines.append)
        with LineReader(read_fd) as reader:
            await asyncio.wait_for(interactive(runner, reader, lines.append), 10)
    assert centre.route_order == ["calls", "steps", "hangup"]
    assert lines[-2:] == ["the call ended in the phone tree", "call_id=1"]


async def test_interactive_input_from_a_file(tmp_path: Path) -> None:
    """A regular file cannot be watched by the event loop: the reader falls back to a thread."""
    answers = tmp_path / "answers.txt"
    answers.write_text("2\n12345678#\n1234#\n0\n/hangup\n", encoding="utf-8")
    centre = FakeCentre(
        positions=[{"state": "queued", "queue": "escalations", "position": 1, "wait_s": 0.0}]
    )
    lines: list[str] = []
    async with client_for(centre) as client:
        runner = CallRunner(ACME, client, "+15551230001", say=lines.append)
        with answers.open("rb") as file, LineReader(file.fileno()) as reader:
            await asyncio.wait_for(interactive(runner, reader, lines.append, poll_s=5), 10)
    assert centre.sent("/api/calls")[0]["language"] == "es"
    assert centre.sent("handoff")[0]["escalate_reason"] == "caller_requested"
    assert centre.route_order[-1] == "hangup"
    assert "Usted es el número 1 en la fila. Ha esperado 0 segundos." in lines
