"""`tellonce ivr` against a running server, each call checked through the public API.

The server fixture lives here rather than in a conftest.py: a second non-package conftest
would take the name `conftest` from tests/conftest.py, which other tests import.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator
from typing import Any

import pexpect
import pytest
from ivr_centre import IVR_KEY, TELLONCE, Centre, command_env, start_centre

DEMO_PHONE = "+15551230001"
STRANGER = "+15559990000"


@pytest.fixture(scope="module")
def centre(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Centre]:
    live = start_centre(tmp_path_factory.mktemp("centre"))
    yield live
    live.stop()


def place(centre: Centre, keys: str, caller: str = DEMO_PHONE) -> tuple[dict[str, Any], str]:
    """One scripted call; its context as a supervisor sees it, and what the simulator said."""
    result = centre.ivr("--from", caller, "--keys", keys)
    assert result.returncode == 0, result.stderr
    last = result.stdout.rstrip("\n").splitlines()[-1]
    found = re.fullmatch(r"call_id=(\d+)", last)
    assert found, result.stdout
    return centre.get(f"/api/calls/{found[1]}"), result.stdout


def inputs(call: dict[str, Any]) -> list[tuple[str, str]]:
    return [(step["node"], step["input"]) for step in call["ivr_path"]]


def test_a_verified_caller_with_a_lost_card(centre: Centre) -> None:
    call, said = place(centre, "1,12345678#,1234#,2")
    assert call["state"] == "queued"
    assert call["queue"] == "cards"
    assert call["intent"] == "card_lost"
    assert call["escalation_reason"] is None
    assert call["language"] == "en"
    assert call["identity"]["verified"] is True
    assert call["identity"]["method"] == "account_pin"
    assert call["customer"]["account_number"] == "12345678"
    assert inputs(call) == [
        ("language", "1"),
        ("identify.account", "12345678#"),
        ("identify.pin", "****"),
        ("main", "2"),
    ]
    assert call["ivr_path"][0]["prompt"].startswith("Welcome to Acme Bank.")
    # The PIN is neither echoed nor posted.
    assert "1234#" not in said
    assert "> ****" in said
    lines = said.splitlines()
    assert lines[0] == "Welcome to Acme Bank. For English, press 1. Para español, oprima 2."
    assert "Thank you, you are verified." in lines
    assert lines[-2].startswith("handed off to queue cards, position ")
    position = centre.get(f"/api/calls/{call['id']}/position", username=None)
    assert position["state"] == "queued"
    assert position["queue"] == "cards"
    assert position["position"] >= 1


def test_a_caller_who_fails_verification_three_times(centre: Centre) -> None:
    call, said = place(centre, "2,11111111#,0000#,22222222#,0000#,33333333#,0000#", caller=STRANGER)
    assert call["state"] == "queued"
    assert call["queue"] == "escalations"
    assert call["escalation_reason"] == "verification_failed"
    assert call["intent"] is None
    assert call["language"] == "es"
    assert call["identity"]["verified"] is False
    assert call["customer"] is None
    assert [node for node, _ in inputs(call)] == ["language"] + [
        "identify.account",
        "identify.pin",
    ] * 3
    assert {value for node, value in inputs(call) if node == "identify.pin"} == {"****"}
    assert said.count("Lo siento, esos datos no coinciden con nuestros registros.") == 2
    assert "(verification_failed)" in said


def test_an_unscripted_spoken_request(centre: Centre) -> None:
    words = "my father passed away and I need help with his account"
    call, _ = place(centre, f'1,12345678#,1234#,"{words}"')
    assert call["queue"] == "escalations"
    assert call["escalation_reason"] == "unscripted"
    assert call["intent"] is None
    assert call["utterance"] == words
    assert call["identity"]["verified"] is True
    assert inputs(call)[-1] == ("main", words)


def test_a_clear_spoken_request_goes_to_its_queue(centre: Centre) -> None:
    call, _ = place(centre, '1,12345678#,1234#,"I think my card was stolen"')
    assert (call["queue"], call["intent"]) == ("cards", "card_lost")
    assert call["escalation_reason"] is None
    assert call["utterance"] == "I think my card was stolen"


def test_a_caller_who_presses_0(centre: Centre) -> None:
    call, _ = place(centre, "1,12345678#,1234#,0")
    assert call["queue"] == "escalations"
    assert call["escalation_reason"] == "caller_requested"
    assert call["intent"] is None
    assert call["identity"]["verified"] is True


def test_two_invalid_keys(centre: Centre) -> None:
    call, _ = place(centre, "1,12345678#,1234#,7,9")
    assert (call["queue"], call["escalation_reason"]) == ("escalations", "no_match")


def test_a_hang_up_in_the_tree_is_recorded(centre: Centre) -> None:
    call, said = place(centre, "1,12345678#")
    assert call["state"] == "abandoned"
    assert call["queue"] is None
    assert inputs(call) == [("language", "1"), ("identify.account", "12345678#")]
    assert "(no key left: the caller hangs up)" in said


def test_the_ivr_key_can_be_given_on_the_command_line(centre: Centre) -> None:
    result = centre.ivr("--api-key", IVR_KEY, "--keys", "1,12345678#,1234#,1", api_key=None)
    assert result.returncode == 0, result.stderr
    refused = centre.ivr("--api-key", "not-the-key-0123456789", "--keys", "1", api_key=None)
    assert refused.returncode == 1
    assert "the server refused: POST /api/calls -> 401" in refused.stderr


def test_many_random_calls(centre: Centre) -> None:
    before = len(centre.get("/api/calls"))
    result = centre.ivr(
        "--calls", "12", "--rate", "20", "--seed", "5", "--patience", "0.5", "--poll", "0.2"
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "12/12" in result.stderr  # the progress bar
    assert result.stdout.startswith("12 call(s): ")
    calls = centre.get("/api/calls")
    assert len(calls) == before + 12
    # Nobody answers here: every one of these callers gave up, none is left waiting for ever
    # (calls come newest first; earlier tests' scripted calls stay queued on purpose).
    assert not any(c["state"] in ("ivr", "queued", "offered") for c in calls[:12])
    assert "hung up waiting in" in result.stdout
    # Callers are the demo day's customers, of both languages, and a few strangers.
    assert len({c["caller_number"] for c in calls[:12]}) > 3
    # Random callers who get their details wrong never lock the demo account.
    call, _ = place(centre, "1,12345678#,1234#,3")
    assert call["identity"]["verified"] is True


def test_the_interactive_simulator_in_a_terminal(centre: Centre) -> None:
    child = pexpect.spawn(
        TELLONCE[0],
        [*TELLONCE[1:], "ivr", "--server", centre.url, "--from", DEMO_PHONE, "--poll", "0.2"],
        cwd=str(centre.workdir),
        env=command_env(TELLONCE_IVR_API_KEY=IVR_KEY),
        encoding="utf-8",
        timeout=30,
    )
    child.logfile_read = sys.stdout  # shown by pytest when the test fails
    try:
        child.expect_exact("Para español, oprima 2.")
        child.expect_exact("> ")
        child.sendline("1")
        child.expect_exact("account number")
        child.expect_exact("> ")
        child.sendline("12345678#")
        child.expect_exact("your PIN")
        child.expect_exact("> ")  # shown once the terminal's echo is off
        child.sendline("1234#")
        child.expect_exact("Thank you, you are verified.")
        assert "1234" not in child.before
        child.expect_exact("To speak with a person, press 0.")
        child.expect_exact("> ")
        child.sendline("3")
        child.expect(r"handed off to queue loans, position \d+; call_id=(\d+)\]")
        call_id = int(child.match.group(1))
        child.expect(r"You are number \d+ in line\. You have waited \d+ seconds\.")

        # An agent takes the call: bob, signed in but not taking calls, is given it.
        _, bob = centre.login("bob")
        centre.send("PUT", "/api/me/status", "bob", {"status": "away"})
        centre.send("POST", f"/api/calls/{call_id}/assign", "super", {"agent_id": bob})
        centre.send("POST", f"/api/calls/{call_id}/accept", "bob")
        child.expect_exact("You are now connected with an agent.")
        # Offline once this call is wrapped, so that bob takes no other test's call.
        centre.send("PUT", "/api/me/status", "bob", {"status": "offline"})
        centre.send(
            "POST",
            f"/api/calls/{call_id}/wrap",
            "bob",
            {"disposition": "resolved", "sentiment": "positive"},
        )
        child.expect_exact("The agent has ended the call.")
        child.expect_exact("how satisfied were you")
        child.expect_exact("> ")
        child.sendline("4")
        child.expect_exact("Did you have to repeat anything")
        child.expect_exact("> ")
        child.sendline("2")
        child.expect_exact("Thank you for your answers. Goodbye.")
        child.expect_exact(f"call_id={call_id}")
        child.expect(pexpect.EOF)
    finally:
        child.close(force=True)
    assert child.exitstatus == 0
    call = centre.get(f"/api/calls/{call_id}")
    assert call["state"] == "ended"
    assert (call["queue"], call["intent"]) == ("loans", "loans")
    assert (call["csat"], call["had_to_repeat"]) == (4, False)
    assert ("identify.pin", "****") in inputs(call)
