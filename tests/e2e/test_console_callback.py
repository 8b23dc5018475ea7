"""A caller who asked to be called back: the agent sees the number and records the call back."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
from playwright.sync_api import Page, expect

from .conftest import Ivr, Server, set_status

pytestmark = pytest.mark.browser

DEADLINE_S = 10.0


@pytest.mark.parametrize("server_env", [{"TELLONCE_CALLBACK_OFFER_AFTER_S": "1"}], indirect=True)
def test_the_agent_sees_call_back_with_the_number_and_records_it(
    server: Server, ivr: Ivr, sign_in: Callable[..., Page]
) -> None:
    call_id = ivr.lost_card_call(collected={"card_last4": "4242"})
    deadline = time.monotonic() + DEADLINE_S
    while not ivr.http.get(f"/api/calls/{call_id}/position").json()["callback_offer"]:
        assert time.monotonic() < deadline, "no callback offer came"
        time.sleep(0.1)  # the interval between two looks at the position, not a wait
    ivr.post(f"/api/calls/{call_id}/callback", {"number": "+15557654321"})

    alice = sign_in("alice")
    set_status(alice, "available")
    pop = alice.get_by_test_id("screen-pop")
    expect(pop).to_have_attribute("data-call-id", str(call_id))
    callback = pop.get_by_test_id("pop-callback")
    expect(callback).to_contain_text("Call back")
    number = callback.get_by_test_id("pop-callback-number")
    expect(number).to_have_text("+15557654321")
    expect(number).to_have_attribute("href", "tel:+15557654321")
    # Everything the phone tree collected is there too.
    expect(pop).to_contain_text("4242")
    alice.get_by_test_id("offer-accept").click()
    expect(pop).to_have_attribute("data-state", "connected")
    callback.get_by_test_id("pop-called-back").click()
    expect(callback.get_by_test_id("pop-called-back-at")).to_contain_text("Called back at")
    expect(callback.get_by_test_id("pop-called-back")).to_have_count(0)
    with server.api("super") as sup:
        context = sup.get(f"/api/calls/{call_id}").json()
    assert context["state"] == "connected"
    assert context["callback"]["called_back_at"] is not None
