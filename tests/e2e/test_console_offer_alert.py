"""An offer reaches an agent who looks elsewhere: a chime and a desktop notification; missed,
the page says why the agent is now away and how to come back with one key."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from playwright.sync_api import Page, expect

from .conftest import Ivr, set_status

pytestmark = pytest.mark.browser

# What the page asks of the browser, recorded: the desktop notifications it shows and the tones
# it plays (an oscillator each).
RECORD = """
window.__notifications = [];
window.__tones = 0;
const RealNotification = window.Notification;
window.Notification = class extends RealNotification {
  constructor(title, options) {
    super(title, options);
    window.__notifications.push({ title, body: options && options.body });
  }
};
const realOscillator = AudioContext.prototype.createOscillator;
AudioContext.prototype.createOscillator = function () {
  window.__tones += 1;
  return realOscillator.call(this);
};
"""


@pytest.mark.parametrize("server_env", [{"TELLONCE_OFFER_TIMEOUT_S": "3"}], indirect=True)
def test_an_offer_chimes_and_notifies_and_a_missed_one_is_explained(
    ivr: Ivr, sign_in: Callable[..., Page]
) -> None:
    alice = sign_in("alice")
    alice.context.grant_permissions(["notifications"])
    alice.add_init_script(RECORD)
    alice.reload()
    expect(alice.get_by_test_id("connection-indicator")).to_have_attribute("data-state", "live")
    set_status(alice, "available")
    # Alice looks at another window.
    alice.evaluate("window.dispatchEvent(new Event('blur'))")
    alice.evaluate("Object.defineProperty(document, 'hasFocus', { value: () => false })")

    ivr.lost_card_call()
    expect(alice.get_by_test_id("offer")).to_be_visible()
    alice.wait_for_function("window.__tones > 0")
    notes = alice.evaluate("window.__notifications")
    assert notes == [{"title": "Incoming call: Jane Doe", "body": "Lost or stolen card"}]

    # Nobody answers: she is set away, and the page says why and how to come back.
    expect(alice.get_by_test_id("status-current")).to_have_attribute("data-status", "away")
    hint = alice.get_by_test_id("idle-hint")
    expect(hint).to_contain_text("You missed a call from Jane Doe")
    expect(hint).to_contain_text("Press Alt+1 to be Available again")
    alice.keyboard.press("Alt+1")
    expect(alice.get_by_test_id("status-current")).to_have_attribute("data-status", "available")
    expect(hint).not_to_contain_text("You missed a call")
