"""The supervisors' reports against a live server: a scripted day whose figures are worked out
by hand, the exceptions report grouping callers' own words, the CSV exports, and the refusals."""

from __future__ import annotations

import asyncio
import csv
import io
import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from support import Api, LiveServer

from app.calls.models import Call, Transfer
from app.calls.states import CallState
from app.context import AppContext
from app.reports import rollup
from ivr.flow import load_flow

DAY = datetime(2026, 11, 10, tzinfo=UTC)
PERIOD = {"from": "2026-11-10T00:00:00+00:00", "to": "2026-11-11T00:00:00+00:00"}


def scripted_call(
    at: datetime,
    *,
    number: str,
    queue: str,
    intent: str | None,
    waited_s: float,
    agent_id: int | None = None,
    handle_s: float | None = None,
    csat: int | None = None,
    repeat: bool | None = None,
    sentiment: str | None = None,
    escalation_reason: str | None = None,
    utterance: str | None = None,
) -> Call:
    """A call handed off at `at`: answered by agent_id after waited_s and wrapped handle_s
    later, or (no agent) abandoned after waited_s."""
    answered = agent_id is not None
    connected = at + timedelta(seconds=waited_s) if answered else None
    ended = (
        connected + timedelta(seconds=handle_s or 0)
        if connected is not None
        else at + timedelta(seconds=waited_s)
    )
    return Call(
        state=CallState.ended if answered else CallState.abandoned,
        caller_number=number,
        language="en",
        intent=intent,
        queue=queue,
        escalation_reason=escalation_reason,
        utterance=utterance,
        collected={},
        rejected_by=[],
        agent_id=agent_id,
        disposition="resolved" if answered else None,
        sentiment=sentiment,
        csat=csat,
        had_to_repeat=repeat,
        created_at=at - timedelta(seconds=40),
        queued_at=at,
        first_queued_at=at,
        waited_s=waited_s,
        connected_at=connected,
        first_connected_at=connected,
        hungup_at=ended,
        ended_at=ended,
    )


async def insert(api: Api, calls: list[Call], transfers: list[tuple[int, int]] = ()) -> list[int]:
    """Write the calls (and transfers: (index of the call, from agent)) to the server's
    database, as a day of the centre would have left them."""
    ctx = AppContext.build(api.live.settings, load_flow(None))
    try:
        async with ctx.transaction() as session:
            session.add_all(calls)
            await session.flush()
            for index, agent in transfers:
                call = calls[index]
                assert call.first_connected_at is not None
                session.add(
                    Transfer(
                        call_id=call.id,
                        from_agent_id=agent,
                        to_queue="billing",
                        to_agent_id=None,
                        note=None,
                        at=call.first_connected_at + timedelta(seconds=60),
                    )
                )
        return [call.id for call in calls]
    finally:
        await ctx.dispose()


async def report(api: Api, path: str, **params: Any) -> dict[str, Any]:
    r = await api.http.get(path, params={**PERIOD, **params}, headers=await api.login("super"))
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


async def scripted_day(api: Api) -> list[int]:
    await api.login("alice")
    await api.login("bob")
    alice, bob = api.ids["alice"], api.ids["bob"]
    h = timedelta(hours=1)
    calls = [
        # 0: billing, answered by Alice after 10 s.
        scripted_call(DAY + 9 * h, number="+15550000001", queue="billing", intent="billing",
                      waited_s=10, agent_id=alice, handle_s=300, csat=5, repeat=False,
                      sentiment="positive"),
        # 1: billing, answered after 30 s; a repeat of call 7 the evening before.
        scripted_call(DAY + 10 * h, number="+15550000002", queue="billing", intent="billing",
                      waited_s=30, agent_id=alice, handle_s=200, csat=3, repeat=True,
                      sentiment="neutral"),
        # 2: billing, the caller gave up after 45 s (called 8 days ago: not a repeat).
        scripted_call(DAY + 11 * h, number="+15550000003", queue="billing", intent="billing",
                      waited_s=45),
        # 3: billing, Bob after 15 s; the same caller and intent as call 0: a repeat.
        scripted_call(DAY + 15 * h, number="+15550000001", queue="billing", intent="billing",
                      waited_s=15, agent_id=bob, handle_s=100, csat=4, repeat=False,
                      sentiment="negative"),
        # 4: cards, Bob after 5 s, transferred once, no survey.
        scripted_call(DAY + 12 * h, number="+15550000004", queue="cards", intent="card_lost",
                      waited_s=5, agent_id=bob, handle_s=400, sentiment="negative"),
        # 5: cards, abandoned after 5 s; a repeat of call 4.
        scripted_call(DAY + 13 * h, number="+15550000004", queue="cards", intent="card_lost",
                      waited_s=5),
        # 6: an unscripted escalation, Alice after 25 s.
        scripted_call(DAY + 14 * h, number="+15550000005", queue="escalations", intent=None,
                      waited_s=25, agent_id=alice, handle_s=500, csat=1, repeat=True,
                      escalation_reason="unscripted", utterance="my late husband's account"),
        # Outside the period: the evening before, the day after, eight days before.
        scripted_call(DAY - timedelta(seconds=1), number="+15550000002", queue="billing",
                      intent="billing", waited_s=99, agent_id=alice, handle_s=60, csat=1),
        scripted_call(DAY + 24 * h, number="+15550000009", queue="billing", intent="billing",
                      waited_s=99),
        scripted_call(DAY - timedelta(days=8), number="+15550000003", queue="billing",
                      intent="billing", waited_s=1, agent_id=bob, handle_s=60),
    ]  # fmt: skip
    return await insert(api, calls, transfers=[(4, bob)])


async def test_the_figures_of_a_scripted_day_are_those_worked_out_by_hand(api: Api) -> None:
    await scripted_day(api)
    body = await report(api, "/api/reports/experience", group_by="queue")
    assert (body["from"], body["to"]) == ("2026-11-10T00:00:00Z", "2026-11-11T00:00:00Z")
    assert body["service_level_s"] == 20
    total = body["total"]
    # Calls 0 to 6; 0, 1, 3, 4 and 6 answered; 2 and 5 abandoned.
    assert (total["calls"], total["answered"], total["abandoned"]) == (7, 5, 2)
    assert total["abandon_rate"] == round(2 / 7, 4)
    # Answered within 20 s: calls 0 (10 s), 3 (15 s), 4 (5 s), of the 7 answered or abandoned.
    assert total["service_level"] == round(3 / 7, 4)
    # Waits of the answered: 5, 10, 15, 25, 30: the 3rd and the 5th of 5 (nearest rank).
    assert (total["wait_p50_s"], total["wait_p90_s"]) == (15, 30)
    # Handle times 100, 200, 300, 400, 500; abandoned after 45 and 5 s.
    assert (total["handle_p50_s"], total["abandon_p50_s"]) == (300, 5)
    # CSAT 5, 3, 4 and 1; "had to repeat" said by calls 1 and 6.
    assert (total["csat_mean"], total["csat_count"]) == (3.25, 4)
    assert total["csat_distribution"] == {"1": 1, "2": 0, "3": 1, "4": 1, "5": 1}
    assert total["had_to_repeat"] == 2
    assert total["had_to_repeat_per_100"] == round(200 / 7, 2)
    assert total["transfers_per_100"] == round(100 / 7, 2)
    assert total["escalations_per_100"] == round(100 / 7, 2)
    assert total["asked_again_per_100"] == 0
    # Repeats: call 3 (of 0), 1 (of the evening before's), 5 (of 4); three callers.
    assert (total["repeat_calls"], total["repeat_callers"]) == (3, 3)
    assert total["sentiment"] == {"positive": 1, "neutral": 1, "negative": 2}

    groups = {g["key"]: g for g in body["groups"]}
    assert [g["key"] for g in body["groups"]] == ["billing", "cards", "escalations"]
    billing, cards = groups["billing"], groups["cards"]
    assert (billing["calls"], billing["answered"], billing["abandoned"]) == (4, 3, 1)
    assert billing["service_level"] == 0.5 and billing["abandon_rate"] == 0.25
    assert billing["csat_mean"] == 4.0 and billing["repeat_callers"] == 2
    assert (billing["wait_p50_s"], billing["wait_p90_s"]) == (15, 30)
    assert (cards["calls"], cards["service_level"], cards["transfers_per_100"]) == (2, 0.5, 50)
    assert cards["csat_mean"] is None and cards["csat_count"] == 0
    assert groups["escalations"]["escalations_per_100"] == 100

    by_agent = await report(api, "/api/reports/experience", group_by="agent")
    agents = {g["key"]: g for g in by_agent["groups"]}
    # The abandoned calls had no agent: in the total only.
    assert set(agents) == {api.ids["alice"], api.ids["bob"]}
    alice, bob = agents[api.ids["alice"]], agents[api.ids["bob"]]
    assert (alice["name"], alice["calls"], alice["csat_mean"]) == ("Alice Adams", 3, 3.0)
    assert (bob["calls"], bob["transfers"], bob["sentiment"]["negative"]) == (2, 1, 2)
    assert by_agent["total"] == total


async def test_an_empty_period_has_no_rates(api: Api) -> None:
    body = await report(api, "/api/reports/experience")
    assert body["groups"] == []
    total = body["total"]
    assert total["calls"] == 0
    for name in (
        "abandon_rate",
        "service_level",
        "wait_p50_s",
        "csat_mean",
        "had_to_repeat_per_100",
    ):
        assert total[name] is None, name


async def test_a_call_through_the_api_counts(api: Api) -> None:
    """A call handed off, answered, wrapped and rated now is in today's report."""
    await api.set_status("alice", "available")
    call_id = await api.new_call(intent="billing")
    assert (await api.post(f"/api/calls/{call_id}/accept", "alice")).status_code == 200
    r = await api.post(f"/api/calls/{call_id}/asked-again", "alice", {"field": "identity"})
    assert r.status_code == 201, r.text
    r = await api.post(
        f"/api/calls/{call_id}/wrap", "alice", {"disposition": "resolved", "sentiment": "positive"}
    )
    assert r.status_code == 200, r.text
    r = await api.post(f"/api/calls/{call_id}/survey", None, {"csat": 4, "had_to_repeat": True})
    assert r.status_code == 200, r.text
    now = datetime.now(UTC)
    period = {
        "from": (now - timedelta(hours=1)).isoformat(),
        "to": (now + timedelta(hours=1)).isoformat(),
    }
    r = await api.http.get(
        "/api/reports/experience", params={**period, "group_by": "agent"},
        headers=await api.login("super"),
    )  # fmt: skip
    assert r.status_code == 200, r.text
    (group,) = r.json()["groups"]
    assert (group["key"], group["calls"], group["answered"]) == (api.ids["alice"], 1, 1)
    assert (group["csat_mean"], group["had_to_repeat"], group["service_level"]) == (4, 1, 1)
    assert (group["asked_again"], group["asked_again_per_100"]) == (1, 100)


async def test_callers_words_are_grouped_by_what_they_share(api: Api) -> None:
    words = [
        "my late husband's account",
        "account of my husband who died",
        "I want a mortgage",
        "a mortgage please",
        "The account of my husband, he died last month",
    ]
    ids = [await api.new_call(intent=None, utterance=w) for w in words]
    # A scripted call with words is no exception; no_match exits are.
    await api.new_call(intent="billing", utterance="my husband's account")
    nomatch = await api.new_call(
        intent=None, utterance="husband account", escalate_reason="no_match"
    )
    now = datetime.now(UTC)
    period = {
        "from": (now - timedelta(hours=1)).isoformat(),
        "to": (now + timedelta(hours=1)).isoformat(),
    }
    r = await api.http.get(
        "/api/reports/exceptions", params=period, headers=await api.login("super")
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["utterances"] == 6
    first, second = body["groups"]
    assert first["count"] == 4
    assert sorted(first["call_ids"]) == sorted([ids[0], ids[1], ids[4], nomatch])
    assert set(first["terms"]) >= {"husband", "account"}
    assert first["examples"][0] == "husband account"  # newest first
    assert first["queues"] == {"escalations": 4} and first["resolutions"] == {"open": 4}
    assert second["count"] == 2 and sorted(second["call_ids"]) == sorted(ids[2:4])
    assert second["label"] == "mortgage"


async def test_csv_exports(api: Api) -> None:
    ids = await scripted_day(api)
    await insert(api, [scripted_call(DAY + timedelta(hours=16), number="+15550000006",
                                     queue="escalations", intent=None, waited_s=3,
                                     escalation_reason="no_match",
                                     utterance="=HYPERLINK(\"http://x\") mortgage")])  # fmt: skip
    headers = await api.login("super")
    r = await api.http.get("/api/reports/experience.csv", params=PERIOD, headers=headers)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "text/csv; charset=utf-8"
    assert "attachment" in r.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert [row["key"] for row in rows] == ["total", "billing", "cards", "escalations"]
    total = rows[0]
    assert (total["calls"], total["service_level"], total["csat_mean"]) == ("8", "0.375", "3.25")
    assert total["csat_distribution_5"] == "1" and total["abandon_p50_s"] == "5.0"
    assert rows[2]["csat_mean"] == ""  # cards: null, no answers

    r = await api.http.get("/api/reports/exceptions.csv", params=PERIOD, headers=headers)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert [(row["count"], row["call_ids"]) for row in rows] == [
        ("1", str(ids[6])),
        ("1", rows[1]["call_ids"]),
    ]
    # The caller's words are not a formula to a spreadsheet.
    assert rows[1]["examples"] == '\'=HYPERLINK("http://x") mortgage'


async def test_refusals(api: Api) -> None:
    boss = await api.login("super")
    for path in ("/api/reports/experience", "/api/reports/exceptions.csv"):
        r = await api.http.get(path, params=PERIOD)
        assert r.status_code == 401
        r = await api.http.get(path, params=PERIOD, headers=await api.login("alice"))
        assert r.status_code == 403
        for params, loc in [
            ({"to": PERIOD["to"]}, "from"),
            ({**PERIOD, "from": "2026-11-10T00:00:00"}, "from"),  # no time zone
            ({**PERIOD, "to": PERIOD["from"]}, None),
            ({**PERIOD, "to": "2027-03-01T00:00:00Z"}, "to"),  # longer than 92 days
            ({**PERIOD, "group_by": "day"}, "group_by"),
            ({**PERIOD, "colour": "red"}, "colour"),
        ]:
            if "group_by" in params and "exceptions" in path:
                continue
            r = await api.http.get(path, params=params, headers=boss)
            assert r.status_code == 422, (params, r.text)
            (problem,) = r.json()["detail"]
            assert problem["loc"][0] == "query"
            if loc is not None:
                assert loc in problem["loc"], problem


async def roll_up(api: Api) -> int:
    """What the server's own pass does every TELLONCE_REPORT_ROLLUP_S, now."""
    ctx = AppContext.build(api.live.settings, load_flow(None))
    try:
        return await rollup.roll_up_all(ctx)
    finally:
        await ctx.dispose()


def random_calls(rng: random.Random, agents: list[int], n: int) -> list[Call]:
    """n calls over three days from a few callers: answered or abandoned, surveyed or not,
    escalated or not, some still waiting or talking; waits off any bucket's bound."""
    calls = []
    for _ in range(n):
        at = DAY - timedelta(days=1) + timedelta(seconds=rng.uniform(0, 3 * 86400))
        queue, intent = rng.choice([("billing", "billing"), ("cards", "card_lost"),
                                    ("escalations", None)])  # fmt: skip
        answered = rng.random() < 0.8
        call = scripted_call(
            at,
            number=f"+1555000{rng.randrange(40):04d}",
            queue=queue,
            intent=intent,
            waited_s=rng.choice([rng.uniform(0, 9), rng.uniform(0, 200), rng.uniform(0, 4000)]),
            agent_id=rng.choice(agents) if answered else None,
            handle_s=rng.uniform(5, 900),
            csat=rng.choice([None, 1, 2, 3, 4, 5]) if answered else None,
            repeat=rng.choice([None, False, True]),
            sentiment=rng.choice([None, "positive", "neutral", "negative"]) if answered else None,
            escalation_reason=rng.choice(["unscripted", "no_match"]) if intent is None else None,
        )
        if rng.random() < 0.05:  # still waiting
            call.state, call.ended_at, call.hungup_at = CallState.queued, None, None
            call.connected_at = call.first_connected_at = call.agent_id = None
        calls.append(call)
    return calls


def repeats_one(call: Call, calls: list[Call]) -> bool:
    """By hand: an earlier call of the same number about the same thing within 7 days."""
    assert call.first_queued_at is not None
    return any(
        other.caller_number == call.caller_number
        and (other.intent or other.queue) == (call.intent or call.queue)
        and other.first_queued_at is not None
        and timedelta(0) < call.first_queued_at - other.first_queued_at <= timedelta(days=7)
        for other in calls
    )


PERIODS = [
    ("a day", DAY, DAY + timedelta(days=1)),
    ("three whole days", DAY - timedelta(days=1), DAY + timedelta(days=2)),
    ("from half past eight to a quarter past two, two days later",
     DAY - timedelta(hours=15, minutes=30), DAY + timedelta(days=1, hours=14, minutes=15)),
    ("working hours", DAY + timedelta(hours=9), DAY + timedelta(hours=17)),
    ("from eight in the evening to three in the morning, two days later",
     DAY + timedelta(hours=20), DAY + timedelta(days=2, hours=3)),
    ("within one hour", DAY + timedelta(hours=10, minutes=5), DAY + timedelta(hours=10, minutes=40)),
]  # fmt: skip


@pytest.fixture
def quiet_rollups(server_factory: Any) -> LiveServer:
    """A server whose own roll-up pass waits an hour after its first: the test rolls up."""
    live: LiveServer = server_factory(report_rollup_s=3600)
    return live


@pytest.fixture
async def rapi(quiet_rollups: LiveServer) -> Any:
    client = Api(quiet_rollups)
    yield client
    await client.http.aclose()


async def test_the_roll_ups_give_the_figures_the_calls_give(rapi: Api) -> None:
    """Every report over every kind of period is the same read call by call and from the
    roll-ups, whatever the period's edges; and a survey after the roll-up counts."""
    api = rapi
    for name in ("alice", "bob", "carol"):
        await api.login(name)
    agents = [api.ids[name] for name in ("alice", "bob", "carol")]
    calls = random_calls(random.Random(19), agents, 400)
    ids = await insert(api, calls, transfers=[(i, agents[0]) for i, c in enumerate(calls)
                                              if c.agent_id is not None and i % 7 == 0])  # fmt: skip
    headers = await api.login("super")

    async def reports() -> dict[tuple[str, str, str], Any]:
        found = {}
        for name, start, end in PERIODS:
            for by in ("queue", "agent"):
                params = {"from": start.isoformat(), "to": end.isoformat(), "group_by": by}
                for path in ("/api/reports/experience", "/api/reports/experience.csv"):
                    r = await api.http.get(path, params=params, headers=headers)
                    assert r.status_code == 200, r.text
                    found[(name, by, path)] = r.json() if path.endswith("experience") else r.text
        return found

    before = await reports()
    assert before[("a day", "queue", "/api/reports/experience")]["total"]["repeat_callers"] > 0
    for name, start, end in PERIODS:
        inside = [c for c in calls if start <= c.first_queued_at < end]
        total = before[(name, "agent", "/api/reports/experience")]["total"]
        assert (total["calls"], total["answered"], total["abandoned"], total["csat_count"]) == (
            len(inside),
            sum(c.first_connected_at is not None for c in inside),
            sum(c.state == CallState.abandoned for c in inside),
            sum(c.csat is not None for c in inside),
        ), name
        hours = before[(name, "queue", "/api/reports/experience")]["by_hour"]
        assert sum(h["calls"] for h in hours) == len(inside)
        repeats = [c for c in inside if repeats_one(c, calls)]
        assert (total["repeat_calls"], total["repeat_callers"]) == (
            len(repeats),
            len({c.caller_number for c in repeats}),
        ), name
    # Every finished call is rolled up once, by one of two passes at once (two instances'), and
    # the waiting ones stay as they are.
    finished = sum(1 for c in calls if c.state != CallState.queued)
    assert sum(await asyncio.gather(roll_up(api), roll_up(api))) == finished
    assert await roll_up(api) == 0
    after = await reports()
    for key, report in before.items():
        assert after[key] == report, key

    # A survey answered after its call was rolled up is in the figures at once.
    day = before[("a day", "agent", "/api/reports/experience")]
    i = next(i for i, c in enumerate(calls) if c.csat is None and c.state == CallState.ended
             and DAY <= c.first_queued_at < DAY + timedelta(days=1))  # fmt: skip
    r = await api.post(f"/api/calls/{ids[i]}/survey", None, {"csat": 5, "had_to_repeat": True})
    assert r.status_code == 200, r.text
    params = {"from": DAY.isoformat(), "to": (DAY + timedelta(days=1)).isoformat()}
    r = await api.http.get("/api/reports/experience", params={**params, "group_by": "agent"},
                           headers=headers)  # fmt: skip
    now = r.json()
    assert now["total"]["csat_count"] == day["total"]["csat_count"] + 1
    assert now["total"]["had_to_repeat"] == day["total"]["had_to_repeat"] + 1
    fives = {g["key"]: g["csat_distribution"]["5"] for g in day["groups"]}
    assert {g["key"]: g["csat_distribution"]["5"] for g in now["groups"]} == {
        **fives,
        calls[i].agent_id: fives[calls[i].agent_id] + 1,
    }
