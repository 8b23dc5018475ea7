"""The exceptions report's groups marked "add to the phone tree", and their draft intents: the
YAML pasted into a copy of the shipped flow passes the real `tellonce flow check`."""

from __future__ import annotations

import asyncio
import re
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml
from support import Api

from ivr.flow import default_flow_path


def _period() -> dict[str, str]:
    now = datetime.now(UTC)
    return {
        "from": (now - timedelta(hours=1)).isoformat(),
        "to": (now + timedelta(hours=1)).isoformat(),
    }


async def _groups(api: Api, period: dict[str, str]) -> list[dict[str, Any]]:
    r = await api.http.get(
        "/api/reports/exceptions", params=period, headers=await api.login("super")
    )
    assert r.status_code == 200, r.text
    groups: list[dict[str, Any]] = r.json()["groups"]
    return groups


async def _callers(api: Api) -> None:
    for words in [
        "my late husband's account",
        "account of my husband who died",
        "the account of my husband, he died last month",
        "I want to change my address",
        "change of address please",
    ]:
        await api.new_call(intent=None, utterance=words)


async def test_a_marked_group_is_listed_as_marked_and_audited(api: Api) -> None:
    await _callers(api)
    period = _period()
    boss = await api.login("super")
    husband, address = await _groups(api, period)
    assert not husband["marked"] and not address["marked"]

    body = {"terms": list(reversed(husband["terms"])), "note": "a bereavement line"}
    r = await api.http.post("/api/reports/exceptions/marks", json=body, headers=boss)
    assert r.status_code == 201, r.text
    mark = r.json()
    assert sorted(mark["terms"]) == sorted(husband["terms"])
    assert mark["marked_by_id"] == api.ids["super"] and mark["note"] == "a bereavement line"

    husband, address = await _groups(api, period)
    assert husband["marked"] and not address["marked"]

    # In any order, the same terms are the same group.
    r = await api.http.post(
        "/api/reports/exceptions/marks", json={"terms": husband["terms"]}, headers=boss
    )
    assert r.status_code == 409, r.text

    r = await api.http.get("/api/audit", params={"action": "exceptions.marked"}, headers=boss)
    assert r.status_code == 200, r.text
    (entry,) = r.json()
    assert entry["actor_id"] == api.ids["super"] and entry["object_id"] == mark["id"]
    assert sorted(entry["details"]["terms"]) == sorted(husband["terms"])


async def test_marks_refusals(api: Api) -> None:
    boss = await api.login("super")
    path = "/api/reports/exceptions/marks"
    assert (await api.http.post(path, json={"terms": ["x"]})).status_code == 401
    r = await api.http.post(path, json={"terms": ["x"]}, headers=await api.login("alice"))
    assert r.status_code == 403
    for body in [{}, {"terms": []}, {"terms": ["Two words"]}, {"terms": ["a"] * 6},
                 {"terms": ["a"], "colour": "red"}, {"terms": ["a"], "note": "n" * 501}]:  # fmt: skip
        r = await api.http.post(path, json=body, headers=boss)
        assert r.status_code == 422, (body, r.text)
        assert isinstance(r.json()["detail"], list)
    r = await api.http.get("/api/audit", params={"action": "exceptions.marked"}, headers=boss)
    assert r.json() == []


async def test_the_draft_intent_pasted_into_the_flow_passes_flow_check(
    api: Api, tmp_path: Path
) -> None:
    await _callers(api)
    period = _period()
    husband = (await _groups(api, period))[0]
    r = await api.http.get(
        "/api/reports/exceptions/draft",
        params={**period, "label": husband["label"]},
        headers=await api.login("super"),
    )
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "text/yaml; charset=utf-8"
    assert "attachment" in r.headers["content-disposition"]
    text = r.text

    ((name, intent),) = yaml.safe_load(text).items()
    assert re.fullmatch(r"[a-z][a-z0-9_]*", name) and "husband" in name
    assert intent["queue"] == "escalations"
    assert set(intent["keywords"]) == {"en", "es"}
    assert "husband" in intent["keywords"]["en"]
    # "account" alone would take the flow's unclear example about a father's account.
    assert "account" not in intent["keywords"]["en"]
    assert '"my late husband\'s account"' in text or "my late husband's account" in text

    # Pasted as it is under `intents:`, and named in the spoken intents, as its comments say.
    flow = default_flow_path().read_text(encoding="utf-8")
    assert flow.count("\nintents:\n") == 1
    flow = flow.replace("\nintents:\n", "\nintents:\n" + text, 1)
    spoken = "intents: [billing, card_lost, loans]"
    assert flow.count(spoken) == 1
    flow = flow.replace(spoken, f"intents: [billing, card_lost, loans, {name}]")
    merged = tmp_path / "flow.yaml"
    merged.write_text(flow, encoding="utf-8")
    check = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "app.cli", "flow", "check", str(merged),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(check.communicate(), timeout=60)
    assert check.returncode == 0, err.decode()
    assert name in out.decode()


async def test_draft_refusals(api: Api) -> None:
    await _callers(api)
    period = _period()
    path = "/api/reports/exceptions/draft"
    params = {**period, "label": "husband account"}
    assert (await api.http.get(path, params=params)).status_code == 401
    r = await api.http.get(path, params=params, headers=await api.login("alice"))
    assert r.status_code == 403
    boss = await api.login("super")
    r = await api.http.get(path, params={**period, "label": "no such group"}, headers=boss)
    assert r.status_code == 404, r.text
    r = await api.http.get(path, params=period, headers=boss)
    assert r.status_code == 422
    assert "label" in r.json()["detail"][0]["loc"]
