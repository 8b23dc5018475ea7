"""Sign-out ends the token on the server; a tab that a newer one replaced stops and says so."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest
from playwright.sync_api import Page, expect

from .conftest import Server

pytestmark = pytest.mark.browser


def token_of(page: Page) -> str:
    token: str = page.evaluate("JSON.parse(sessionStorage.getItem('tellonce.session')).token")
    return token


def test_sign_out_ends_the_token_and_takes_the_agent_off_the_phones(
    sign_in: Callable[..., Page], server: Server
) -> None:
    page = sign_in("alice")
    page.get_by_test_id("status-available").click()
    expect(page.get_by_test_id("status-available")).to_have_attribute("aria-pressed", "true")
    token = token_of(page)
    page.get_by_test_id("signout").click()
    expect(page.get_by_test_id("signin-notice")).to_have_text("You are signed out.")
    r = httpx.get(f"{server.url}/api/me", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 401
    with server.api("super") as boss:
        users = {u["username"]: u for u in boss.get("/api/users").json()}
    assert users["alice"]["status"] == "offline"


@pytest.mark.parametrize("server_env", [{"TELLONCE_WS_PER_USER": "1"}], indirect=True)
def test_a_tab_replaced_by_a_newer_one_stops_and_says_so(sign_in: Callable[..., Page]) -> None:
    older = sign_in("alice")
    newer = sign_in("alice")
    indicator = older.get_by_test_id("connection-indicator")
    expect(indicator).to_have_attribute("data-state", "replaced")
    expect(older.get_by_test_id("connection-banner")).to_contain_text("a newer one took")
    # It does not reconnect by itself, which would close the newer tab's socket in turn: that
    # one goes on receiving (its own status change comes back as an event).
    newer.get_by_test_id("status-away").click()
    expect(newer.get_by_test_id("status-away")).to_have_attribute("aria-pressed", "true")
    expect(newer.get_by_test_id("connection-indicator")).to_have_attribute("data-state", "live")
    expect(indicator).to_have_attribute("data-state", "replaced")
    # The user chooses: this page again, and the other one stops.
    older.get_by_test_id("reconnect-now").click()
    expect(indicator).to_have_attribute("data-state", "live")
    expect(newer.get_by_test_id("connection-indicator")).to_have_attribute("data-state", "replaced")
