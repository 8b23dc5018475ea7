"""The supervisor hands an escalation to one agent, then to another; both agent pages follow."""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from .conftest import Ivr, Server, set_status

pytestmark = pytest.mark.browser

SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
WORDS = "my father passed away and I need help with his account"


def test_assign_and_reassign_escalation(
    server: Server, ivr: Ivr, sign_in: Callable[..., Page], tmp_path: Path
) -> None:
    boss = sign_in("super")
    alice = sign_in("alice")
    carol = sign_in("carol")
    # Signed in but away: the supervisor, not the router, decides who takes the case.
    set_status(alice, "away")
    set_status(carol, "away")
    ids = {u["username"]: u["id"] for u in server.api("super").get("/api/users").json()}

    agents = boss.get_by_test_id("agent-row")
    expect(agents.and_(boss.locator(f"[data-agent-id='{ids['alice']}']"))).to_have_attribute(
        "data-status", "away"
    )

    # A caller still in the phone tree shows up live.
    waiting = ivr.start(caller="+15559990000")
    ivr_row = boss.locator(f"[data-testid=ivr-row][data-call-id='{waiting}']")
    expect(ivr_row).to_contain_text("+15559990000")
    expect(ivr_row.get_by_test_id("ivr-time")).to_have_text(re.compile(r"^\d+s$"))

    call_id = ivr.start()
    ivr.verify(call_id)
    queued = ivr.handoff(call_id, key=f'"{WORDS}"', utterance=WORDS)
    assert queued["queue"] == "escalations", queued

    row = boss.locator(f"[data-testid=escalation-row][data-call-id='{call_id}']")
    expect(row.get_by_test_id("escalation-reason")).to_have_text("Not in the script")
    expect(row.get_by_test_id("escalation-utterance")).to_contain_text(WORDS)
    expect(row.get_by_test_id("escalation-customer")).to_contain_text("Jane Doe")
    expect(row.get_by_test_id("escalation-agent-name")).to_have_text("Unassigned")
    expect(row.get_by_test_id("escalation-wait")).to_have_text(re.compile(r"^\d+s$"))
    expect(row.get_by_test_id("escalation-assign")).to_have_text("Assign")
    expect(boss.get_by_test_id("figure-calls")).to_have_text("2")
    expect(boss.locator("[data-testid=figure-reason][data-reason=unscripted]")).to_contain_text("1")

    # The whole case can be read before choosing who takes it.
    row.get_by_test_id("escalation-details").click()
    dialog = boss.get_by_test_id("call-dialog")
    expect(dialog).to_be_visible()
    expect(dialog.get_by_test_id("pop-utterance")).to_contain_text(WORDS)
    expect(dialog.get_by_test_id("ivr-step")).to_have_count(4)
    boss.keyboard.press("Escape")
    expect(dialog).to_be_hidden()

    # Assign to Alice: her page pops the offer with the reason and the caller's own words.
    row.get_by_test_id("escalation-agent-select").select_option(str(ids["alice"]))
    row.get_by_test_id("escalation-assign").click()
    alice_offer = alice.get_by_test_id("offer")
    expect(alice_offer).to_have_attribute("data-call-id", str(call_id))
    expect(alice_offer.get_by_test_id("offer-reason")).to_have_text("Escalated: Not in the script")
    expect(alice_offer.get_by_test_id("offer-utterance")).to_contain_text(WORDS)
    expect(alice.get_by_test_id("pop-utterance")).to_contain_text(WORDS)
    expect(row.get_by_test_id("escalation-agent-name")).to_have_text("Alice Adams")
    expect(row.get_by_test_id("escalation-assign")).to_have_text("Reassign")

    if os.environ.get("TELLONCE_UPDATE_SCREENSHOTS"):
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        boss.screenshot(path=str(tmp_path / "supervisor.png"))
        shutil.copy(tmp_path / "supervisor.png", SCREENSHOTS / "supervisor.png")

    # Reassign to Carol: Alice's offer is withdrawn, Carol's page pops it.
    row.get_by_test_id("escalation-agent-select").select_option(str(ids["carol"]))
    row.get_by_test_id("escalation-assign").click()
    expect(alice_offer).to_be_hidden()
    expect(alice.get_by_test_id("last-call")).to_contain_text("given to another agent")
    carol_offer = carol.get_by_test_id("offer")
    expect(carol_offer).to_have_attribute("data-call-id", str(call_id))
    expect(row.get_by_test_id("escalation-agent-name")).to_have_text("Carol Clark")

    carol.keyboard.press("a")
    expect(carol.get_by_test_id("pop-state")).to_have_text("Connected")
    expect(carol.get_by_test_id("pop-escalation-reason")).to_have_text("Not in the script")
    expect(row).to_have_attribute("data-state", "connected")
    expect(agents.and_(boss.locator(f"[data-agent-id='{ids['carol']}']"))).to_have_attribute(
        "data-status", "busy"
    )
