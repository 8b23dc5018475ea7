"""GET /metrics against a live server: parsed with prometheus_client's own parser, its figures
follow a call as it moves; a scraper needs TELLONCE_METRICS_TOKEN."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from prometheus_client.parser import text_string_to_metric_families
from support import Api, LiveServer, Ws

TOKEN = "scrape-" + "m" * 24


async def scrape(api: Api) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    r = await api.http.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain")
    samples = {}
    for family in text_string_to_metric_families(r.text):
        for s in family.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return samples


def value(samples: dict[Any, float], name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


async def test_metrics_follow_a_call_from_the_phone_tree_to_an_agent(
    server_factory: Callable[..., LiveServer],
) -> None:
    live = server_factory(metrics_token=TOKEN)
    api = Api(live)
    try:
        start = await scrape(api)
        assert value(start, "tellonce_queue_waiting", queue="cards") == 0
        assert value(start, "tellonce_outbox_lag_events") == 0

        call_id = await api.new_call(handoff=False)
        s = await scrape(api)
        assert (
            value(s, "tellonce_calls", state="ivr")
            == value(start, "tellonce_calls", state="ivr") + 1
        )

        r = await api.post(
            f"/api/calls/{call_id}/handoff",
            None,
            {"intent": "card_lost", "collected": {}, "utterance": None, "escalate_reason": None},
        )
        assert r.status_code == 200, r.text
        s = await scrape(api)
        assert value(s, "tellonce_calls", state="ivr") == value(
            start, "tellonce_calls", state="ivr"
        )
        assert value(s, "tellonce_calls", state="queued") == 1
        assert value(s, "tellonce_queue_waiting", queue="cards") == 1
        assert value(s, "tellonce_queue_longest_wait_seconds", queue="cards") >= 0
        assert ("tellonce_queue_longest_wait_seconds", (("queue", "cards"),)) in s

        await api.set_status("alice", "available")
        s = await scrape(api)
        assert value(s, "tellonce_queue_waiting", queue="cards") == 0
        assert value(s, "tellonce_calls", state="offered") == 1
        assert value(s, "tellonce_agents", status="offered") == 1
        made = value(s, "tellonce_offers_total", outcome="made")
        assert made == value(start, "tellonce_offers_total", outcome="made") + 1

        r = await api.post(f"/api/calls/{call_id}/accept", "alice")
        assert r.status_code == 200, r.text
        s = await scrape(api)
        assert value(s, "tellonce_calls", state="offered") == 0
        assert value(s, "tellonce_calls", state="connected") == 1
        assert value(s, "tellonce_agents", status="busy") == 1
        assert value(s, "tellonce_offers_total", outcome="accepted") == 1
        assert value(s, "tellonce_offers_total", outcome="rejected") == 0

        await api.new_call(intent=None, utterance="my late husband's account")
        s = await scrape(api)
        assert value(s, "tellonce_escalations_total", reason="unscripted") == 1
        assert value(s, "tellonce_queue_waiting", queue="escalations") == 1

        # Latency per route template: the call's id never makes a series of its own.
        accept = "/api/calls/{call_id}/accept"
        assert (
            value(s, "tellonce_http_request_duration_seconds_count", method="POST", route=accept)
            == 1
        )
        assert not [k for k in s if f"/api/calls/{call_id}/" in dict(k[1]).get("route", "")]
        # This process runs other apps too: none of their series, none of the default registry's.
        assert not [k for k in s if k[0].startswith(("python_", "process_"))]
        assert value(s, "tellonce_outbox_lag_events") == 0
        assert TOKEN not in str(s)
    finally:
        await api.http.aclose()


async def test_websocket_connections_are_counted(
    server_factory: Callable[..., LiveServer],
) -> None:
    live = server_factory(metrics_token=TOKEN)
    api = Api(live)
    try:
        assert value(await scrape(api), "tellonce_websocket_connections") == 0
        await api.login("super")
        sock = await Ws(live.ws_url, api.tokens["super"]).connect()
        try:
            assert value(await scrape(api), "tellonce_websocket_connections") == 1
        finally:
            await sock.close()
    finally:
        await api.http.aclose()


async def test_a_scraper_needs_the_metrics_token(server_factory: Callable[..., LiveServer]) -> None:
    live = server_factory(metrics_token=TOKEN)
    api = Api(live)
    try:
        assert (await api.http.get("/metrics")).status_code == 401
        wrong = await api.http.get("/metrics", headers={"Authorization": "Bearer " + "x" * 31})
        assert wrong.status_code == 401
        assert wrong.json() == {
            "detail": "a bearer token equal to TELLONCE_METRICS_TOKEN is needed"
        }
        # A supervisor's token is not a scraper's.
        r = await api.http.get("/metrics", headers=await api.login("super"))
        assert r.status_code == 401
    finally:
        await api.http.aclose()


async def test_without_a_metrics_token_there_are_no_metrics(api: Api) -> None:
    r = await api.http.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert r.status_code == 404
    assert "TELLONCE_METRICS_TOKEN" in r.json()["detail"]
