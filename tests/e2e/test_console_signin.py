"""Sign-in: wrong password, then each role lands on its own page."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from playwright.sync_api import Page, expect

pytestmark = pytest.mark.browser


def test_wrong_password_then_agent_page(open_page: Callable[..., Page]) -> None:
    page = open_page()
    page.goto("/")
    page.get_by_label("Username").fill("alice")
    page.get_by_label("Password").fill("wrong")
    page.get_by_label("Password").press("Enter")
    expect(page.get_by_test_id("signin-error")).to_have_text("Wrong username or password.")
    page.get_by_label("Password").fill("demo")
    page.get_by_test_id("signin-submit").click()
    expect(page).to_have_url(re.compile(r"/agent\.html$"))
    expect(page.get_by_test_id("agent-name")).to_have_text("Alice Adams")
    # The token stays with the tab: a reload keeps the agent signed in.
    page.reload()
    expect(page.get_by_test_id("connection-indicator")).to_have_attribute("data-state", "live")
    page.get_by_test_id("signout").click()
    expect(page.get_by_test_id("signin-form")).to_be_visible()
    expect(page.get_by_test_id("signin-notice")).to_have_text("You are signed out.")


def test_supervisor_lands_on_supervisor_page(sign_in: Callable[..., Page]) -> None:
    page = sign_in("super")
    expect(page).to_have_url(re.compile(r"/supervisor\.html$"))
    expect(page.get_by_test_id("queue-row")).to_have_count(4)
    # An agent page asked for by a supervisor sends them back to their own.
    page.goto("/agent.html")
    expect(page).to_have_url(re.compile(r"/supervisor\.html$"))
