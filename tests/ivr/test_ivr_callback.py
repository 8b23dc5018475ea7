"""`tellonce ivr --keys` takes the callback offer while waiting, against a running server."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from ivr_centre import Centre, start_centre

DEMO_PHONE = "+15551230001"


@pytest.fixture(scope="module")
def centre(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Centre]:
    live = start_centre(tmp_path_factory.mktemp("centre"), TELLONCE_CALLBACK_OFFER_AFTER_S="1")
    yield live
    live.stop()


def test_a_key_left_after_the_handoff_takes_the_callback_offer(centre: Centre) -> None:
    result = centre.ivr("--from", DEMO_PHONE, "--poll", "0.2", "--keys", "1,12345678#,1234#,2,1")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.rstrip("\n").splitlines()
    found = re.fullmatch(r"call_id=(\d+)", lines[-1])
    assert found, result.stdout
    assert any(line.startswith("You can keep your place in line") for line in lines), lines
    assert "> 1" in lines[lines.index(next(x for x in lines if x.startswith("You can keep"))) :]
    assert "Thank you. You keep your place in line, and an agent will call you back. Goodbye." in (
        lines
    )
    assert lines[-2] == "callback requested: the call keeps its place in queue cards"
    call = centre.get(f"/api/calls/{found[1]}")
    # Not abandoned: still waiting, with everything the tree collected, to be called back.
    assert call["state"] == "queued" and call["queue"] == "cards"
    assert call["identity"]["verified"] is True and call["intent"] == "card_lost"
    assert call["callback"]["number"] == DEMO_PHONE
    assert call["callback"]["called_back_at"] is None
    assert [step["node"] for step in call["ivr_path"]][-1] == "main"


def test_without_keys_left_the_caller_is_only_handed_off(centre: Centre) -> None:
    result = centre.ivr("--from", DEMO_PHONE, "--keys", "1,12345678#,1234#,2")
    assert result.returncode == 0, result.stderr
    call_id = result.stdout.rstrip("\n").splitlines()[-1].removeprefix("call_id=")
    assert centre.get(f"/api/calls/{call_id}")["callback"] is None
