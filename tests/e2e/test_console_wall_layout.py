"""The wall uses the screen: at 1280x720 and at 1920x1080 (the text grows with the width) four
escalations or more show at once in a column that runs the whole height."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from playwright.sync_api import Page, expect

from .conftest import Ivr

pytestmark = pytest.mark.browser

WORDS = ["my late husband's account", "a fee I do not understand", "the app crashed twice",
         "someone used my card abroad", "a letter for my landlord", "change my address"]  # fmt: skip


def visible_rows(page: Page) -> int:
    """Escalation rows wholly inside both the window and their panel's visible area."""
    return int(
        page.evaluate(
            """() => {
              const panel = document.querySelector('.esc-panel').getBoundingClientRect();
              return [...document.querySelectorAll('[data-testid=escalation-row]')].filter((row) => {
                const r = row.getBoundingClientRect();
                return r.top >= panel.top && r.bottom <= Math.min(panel.bottom, innerHeight);
              }).length;
            }"""
        )
    )


@pytest.mark.parametrize(("width", "height", "at_least"), [(1280, 720, 4), (1920, 1080, 4)])
def test_escalations_fill_the_height_of_the_wall(
    ivr: Ivr, sign_in: Callable[..., Page], width: int, height: int, at_least: int
) -> None:
    for words in WORDS:
        call_id = ivr.start()
        ivr.handoff(call_id, key=f'"{words}"', utterance=words)
    boss = sign_in("super", viewport={"width": width, "height": height})
    expect(boss.get_by_test_id("escalation-row")).to_have_count(len(WORDS))
    assert visible_rows(boss) >= at_least
    # The escalations' column runs from under the figures to the bottom of the window.
    panel = boss.locator(".esc-panel").bounding_box()
    assert panel is not None and panel["y"] + panel["height"] >= height * 0.95
