"""The API reference at /docs works with no internet (nothing on it comes from another host) and
under the Content-Security-Policy, which allows no inline script."""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Page, Route, expect

from .conftest import Server
from .csp import watch_csp

pytestmark = pytest.mark.browser


def test_the_api_reference_renders_offline(server: Server, open_page: Callable[..., Page]) -> None:
    page = open_page()
    csp = watch_csp(page)
    own = urlsplit(server.url).netloc
    elsewhere: list[str] = []

    def offline(route: Route) -> None:
        if urlsplit(route.request.url).netloc == own:
            route.continue_()
        else:  # as on a call-centre floor with no internet
            elsewhere.append(route.request.url)
            route.abort()

    page.route("**/*", offline)
    page.goto("/docs")
    expect(page.locator(".swagger-ui .info .title")).to_contain_text("Tellonce")
    expect(page.locator(".opblock-summary-path[data-path='/api/calls']").first).to_be_visible()
    icon = page.locator("link[rel='shortcut icon'], link[rel='icon']").first
    assert urlsplit(icon.get_attribute("href") or "").netloc in ("", own)
    assert elsewhere == []
    # Swagger UI, started from a script file, draws the whole page within the policy.
    expect(page.locator(".opblock-summary-path[data-path='/api/calls']").first).to_be_visible()
    page.locator(".opblock-summary-path[data-path='/api/calls']").first.click()
    expect(page.locator(".opblock-body").first).to_be_visible()
    assert csp.documents and csp.without_policy == []
    assert csp.violations == []
