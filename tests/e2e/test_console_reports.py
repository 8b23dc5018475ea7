"""The supervisors' experience view: reached from the wall, it shows a period's calls per queue
and per agent, the callers' own words, and its charts, within the Content-Security-Policy."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from datetime import datetime, timedelta

import pytest
from playwright.sync_api import Page, expect

from .conftest import IVR_KEY, Ivr, Server, tellonce_command
from .csp import watch_csp

pytestmark = pytest.mark.browser

WORDS = "my late husband's account"


def answered_call(server: Server, ivr: Ivr, *, csat: int) -> int:
    """A lost-card call that alice answers and wraps, and whose caller answers the survey."""
    alice = server.api("alice")
    assert alice.put("/api/me/status", json={"status": "available"}).status_code == 200
    call_id = ivr.lost_card_call()
    assert alice.post(f"/api/calls/{call_id}/accept").status_code == 200
    ivr.post(f"/api/calls/{call_id}/hangup")
    wrap = {"disposition": "resolved", "sentiment": "positive"}
    assert alice.post(f"/api/calls/{call_id}/wrap", json=wrap).status_code == 200
    ivr.post(f"/api/calls/{call_id}/survey", {"csat": csat, "had_to_repeat": False})
    assert alice.put("/api/me/status", json={"status": "away"}).status_code == 200
    return call_id


def test_the_experience_view_shows_the_days_calls(
    server: Server, ivr: Ivr, open_page: Callable[..., Page]
) -> None:
    answered = answered_call(server, ivr, csat=4)
    gave_up = ivr.lost_card_call()
    ivr.post(f"/api/calls/{gave_up}/hangup")
    escalated = ivr.start()
    ivr.verify(escalated)
    ivr.handoff(escalated, key=f'"{WORDS}"', utterance=WORDS)

    boss = open_page()
    csp = watch_csp(boss)
    boss.goto("/")
    boss.get_by_label("Username").fill("super")
    boss.get_by_label("Password").fill("demo")
    boss.get_by_test_id("signin-submit").click()
    boss.get_by_test_id("reports-link").click()
    expect(boss).to_have_url(f"{server.url}/reports.html")

    expect(boss.get_by_test_id("total-calls")).to_have_text("3")
    cards = boss.locator("[data-testid=by-queue] [data-testid=report-row][data-key=cards]")
    expect(cards).to_contain_text("2")  # calls
    expect(cards).to_contain_text("1 (50%)")  # abandoned
    expect(cards).to_contain_text("4.00 (1)")  # CSAT
    expect(boss.locator("[data-testid=by-queue] [data-key=escalations]")).to_be_visible()
    agents = boss.locator("[data-testid=by-agent] [data-testid=report-row]")
    expect(agents.filter(has_text="Alice")).to_have_count(1)

    group = boss.get_by_test_id("exception-group")
    expect(group).to_have_count(1)
    expect(group.get_by_test_id("exception-example")).to_contain_text(WORDS)

    for chart in ("chart-hours", "chart-reasons", "chart-csat", "chart-moves"):
        canvas = boss.get_by_test_id(chart)
        expect(canvas).to_be_visible()
        box = canvas.bounding_box()
        assert box is not None and box["width"] > 0 and box["height"] > 0, chart
    assert boss.evaluate("typeof window.Chart") == "function"
    # Hour by hour, today: the answered call and the abandoned one, each in its hour; the
    # escalation's reason.
    drawn = "(el) => Chart.getChart(el).data.datasets.map((d) => d.data)"
    answered_by_hour, abandoned_by_hour, _waits = boss.get_by_test_id("chart-hours").evaluate(drawn)
    assert len(answered_by_hour) in (23, 24, 25)  # a local day, summer time changes included
    assert (sum(answered_by_hour), sum(abandoned_by_hour)) == (1, 1)
    labels = "(el) => Chart.getChart(el).data.labels"
    assert boss.get_by_test_id("chart-reasons").evaluate(labels) == ["Not in the script"]

    # A figure opens the calls behind it.
    cards.get_by_test_id("open-calls").click()
    rows = boss.get_by_test_id("call-row")
    expect(rows).to_have_count(2)
    expect(boss.locator(f"[data-testid=call-row][data-call-id='{answered}']")).to_be_visible()
    # And Alice's, the calls she answered in the period.
    agents.filter(has_text="Alice").get_by_test_id("open-calls").click()
    expect(rows).to_have_count(1)
    expect(boss.locator(f"[data-testid=call-row][data-call-id='{answered}']")).to_be_visible()
    # The queue's abandoned calls: the caller who gave up.
    cards.get_by_test_id("open-abandoned").click()
    expect(boss.get_by_test_id("calls-title")).to_have_text("Abandoned calls of Cards")
    expect(rows).to_have_count(1)
    expect(boss.locator(f"[data-testid=call-row][data-call-id='{gave_up}']")).to_be_visible()
    # And every call of the period, from the row for all.
    boss.locator("[data-testid=by-queue] tr.total").get_by_test_id("open-calls").click()
    expect(rows).to_have_count(3)

    # Yesterday had none of them.
    boss.get_by_test_id("period-yesterday").check()
    boss.get_by_test_id("period-show").click()
    expect(boss.get_by_test_id("total-calls")).to_have_text("0")
    expect(boss.get_by_test_id("exceptions-empty")).to_be_visible()

    assert csp.without_policy == []
    assert csp.violations == []


def test_the_experience_view_shows_what_the_simulator_did(
    server: Server, sign_in: Callable[..., Page]
) -> None:
    """`tellonce ivr --calls` places random calls; with no agent signed in, the callers give up
    after a second or so. The view shows the API's figures for today, hour by hour too."""
    ran = subprocess.run(
        [*tellonce_command(), "ivr", "--server", server.url, "--api-key", IVR_KEY, "--calls", "12",
         "--rate", "6", "--patience", "1", "--seed", "7"],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert ran.returncode == 0, ran.stderr
    today = datetime.now().astimezone().replace(hour=0, minute=0, second=0, microsecond=0)
    period = {"from": today.isoformat(), "to": (today + timedelta(days=1)).isoformat()}
    boss_api = server.api("super")
    report = boss_api.get("/api/reports/experience", params=period).json()
    total = report["total"]
    assert total["calls"] > 0 and total["abandoned"] > 0

    boss = sign_in("super")
    boss.get_by_test_id("reports-link").click()
    expect(boss.get_by_test_id("total-calls")).to_have_text(str(total["calls"]))
    for group in report["groups"]:
        row = boss.locator(
            f"[data-testid=by-queue] [data-testid=report-row][data-key={group['key']}]"
        )
        expect(row).to_contain_text(str(group["calls"]))
    drawn = "(el) => Chart.getChart(el).data.datasets.map((d) => d.data)"
    answered, abandoned, _waits = boss.get_by_test_id("chart-hours").evaluate(drawn)
    assert (sum(answered), sum(abandoned)) == (total["answered"], total["abandoned"])
    exceptions = boss_api.get("/api/reports/exceptions", params=period).json()
    expect(boss.get_by_test_id("exception-group")).to_have_count(len(exceptions["groups"]))
