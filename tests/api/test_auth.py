"""Auth and roles, exactly as the contract puts them: 401, 403, 404 and the IVR key."""

from __future__ import annotations

import pytest
from support import IVR_KEY, Api


async def test_token_for_good_credentials(api: Api) -> None:
    r = await api.http.post("/api/auth/token", data={"username": "alice", "password": "demo"})
    assert r.status_code == 200
    body = r.json()
    assert body["token_type"] == "bearer"
    assert body["access_token"]
    assert body["user"] == {
        "id": body["user"]["id"],
        "username": "alice",
        "display_name": "Alice Adams",
        "role": "agent",
    }
    assert "password" not in r.text and "hash" not in r.text


@pytest.mark.parametrize(
    ("username", "password"), [("alice", "wrong"), ("nobody", "demo"), ("alice", "")]
)
async def test_bad_credentials_are_401(api: Api, username: str, password: str) -> None:
    r = await api.http.post("/api/auth/token", data={"username": username, "password": password})
    assert r.status_code in (401, 422)
    assert "detail" in r.json()


async def test_token_form_fields_are_required(api: Api) -> None:
    r = await api.http.post("/api/auth/token", data={"username": "alice"})
    assert r.status_code == 422


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/me"),
        ("GET", "/api/users"),
        ("GET", "/api/calls"),
        ("GET", "/api/queues"),
        ("GET", "/api/agents"),
        ("POST", "/api/calls"),
        ("GET", "/api/customers/1"),
        ("GET", "/api/escalations"),
    ],
)
async def test_no_or_bad_token_is_401(api: Api, method: str, path: str) -> None:
    r = await api.http.request(method, path)
    assert r.status_code == 401
    r = await api.http.request(method, path, headers={"Authorization": "Bearer not-a-token"})
    assert r.status_code == 401


async def test_agent_on_supervisor_route_is_403(api: Api) -> None:
    alice = await api.login("alice")
    for method, path, body in [
        ("GET", "/api/users", None),
        ("POST", "/api/users", {"username": "x1", "password": "pw12", "role": "agent"}),
        ("POST", "/api/customers", {"name": "X", "account_number": "99999999", "pin": "1234"}),
        ("GET", "/api/escalations", None),
        ("POST", "/api/calls/1/assign", {"agent_id": 1}),
    ]:
        r = await api.http.request(method, path, json=body, headers=alice)
        assert r.status_code == 403, (path, r.text)


async def test_ivr_key_only_on_ivr_routes(api: Api) -> None:
    for method, path in [("GET", "/api/me"), ("GET", "/api/users"), ("GET", "/api/calls")]:
        r = await api.http.request(method, path, headers=api.ivr)
        assert r.status_code == 403, path
    r = await api.http.post("/api/calls", json={"caller_number": "+15551230001"}, headers=api.ivr)
    assert r.status_code == 201


async def test_user_token_on_ivr_route_is_403(api: Api) -> None:
    for user in ("alice", "super"):
        headers = await api.login(user)
        r = await api.http.post(
            "/api/calls", json={"caller_number": "+15551230001"}, headers=headers
        )
        assert r.status_code == 403


async def test_agent_cannot_see_a_call_never_theirs(api: Api) -> None:
    call_id = await api.new_call()
    r = await api.http.get(f"/api/calls/{call_id}", headers=await api.login("bob"))
    assert r.status_code == 404
    assert "customer" not in r.text
    customer_id = (await api.call(call_id))["customer"]["id"]
    r = await api.http.get(f"/api/customers/{customer_id}", headers=await api.login("bob"))
    assert r.status_code == 404
    assert "Jane" not in r.text


async def test_expired_token_is_401(api: Api) -> None:
    from app.auth.service import create_token

    token = create_token(
        api.live.settings.secret_key.get_secret_value(), user_id=1, role="supervisor", ttl_s=-10
    )  # type: ignore[union-attr]
    r = await api.http.get("/api/me", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 401


async def test_token_signed_with_another_key_is_401(api: Api) -> None:
    from app.auth.service import create_token

    token = create_token(
        "another-secret-key-of-enough-length!!", user_id=1, role="supervisor", ttl_s=60
    )
    r = await api.http.get("/api/me", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 401


@pytest.mark.parametrize("scheme", ["Basic", "Token", ""])
async def test_a_token_under_another_scheme_is_401(api: Api, scheme: str) -> None:
    r = await api.http.get("/api/calls", headers={"Authorization": f"{scheme} {IVR_KEY}".strip()})
    assert r.status_code == 401
    r = await api.http.post(
        "/api/calls", json={"caller_number": "+15550001111"}, headers={"Authorization": scheme}
    )
    assert r.status_code == 401


async def test_the_api_documents_the_bearer_scheme_on_every_protected_route(api: Api) -> None:
    spec = (await api.http.get("/openapi.json")).json()
    scheme = spec["components"]["securitySchemes"]["HTTPBearer"]
    assert scheme["type"] == "http" and scheme["scheme"] == "bearer"
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            needs_token = path.startswith("/api/") and path != "/api/auth/token"
            assert (operation.get("security") == [{"HTTPBearer": []}]) == needs_token, (
                method,
                path,
            )
