"""/openapi.json declares every error a route can answer, each in the shape it is sent in.

Built in process (no server). scripts/fuzz_api.py, run by .ci/run, checks the same against a
live server with schemathesis; this catches a new route that skips the common dependencies.
"""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import SecretStr

from app.config import Settings
from app.main import create_app

ERROR = {"$ref": "#/components/schemas/ErrorOut"}
VALIDATION_ERROR = {"$ref": "#/components/schemas/ValidationErrorOut"}


@pytest.fixture(scope="module")
def schema(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    db = tmp_path_factory.mktemp("openapi") / "t.db"
    settings = Settings(
        database_url=f"sqlite+aiosqlite:///{db}",
        secret_key=SecretStr("x" * 32),
        ivr_api_key=SecretStr("y" * 32),
    )
    document: dict[str, Any] = create_app(settings).openapi()
    return document


def _operations(schema: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method.upper(), path, operation)
        for path, operations in schema["paths"].items()
        if path.startswith("/api/")
        for method, operation in operations.items()
    ]


def _body_schema(answer: dict[str, Any]) -> Any:
    return answer["content"]["application/json"]["schema"]


def test_every_api_route_declares_its_credential_database_and_id_refusals(
    schema: dict[str, Any],
) -> None:
    missing = []
    for method, path, operation in _operations(schema):
        answers = operation["responses"]
        expected = {"503"}
        if path != "/api/auth/token":
            expected |= {"401", "403"}
        if "{" in path:
            expected.add("404")
        if "requestBody" in operation:
            expected |= {"400", "408", "413", "422"}
        missing += [f"{method} {path}: {code}" for code in sorted(expected - set(answers))]
    assert not missing, "undeclared refusals:\n" + "\n".join(missing)


def test_every_error_answer_has_the_shape_it_is_sent_in(schema: dict[str, Any]) -> None:
    wrong = []
    for method, path, operation in _operations(schema):
        for code, answer in operation["responses"].items():
            if not code.startswith(("4", "5")):
                continue
            want = VALIDATION_ERROR if code == "422" else ERROR
            if _body_schema(answer) != want:
                wrong.append(f"{method} {path} {code}: {_body_schema(answer)}")
    assert not wrong, "\n".join(wrong)
    problem = schema["components"]["schemas"]["Problem"]
    assert set(problem["required"]) == {"loc", "msg", "type"}


def test_the_routes_that_refuse_on_state_declare_409(schema: dict[str, Any]) -> None:
    paths = schema["paths"]
    for path in [
        "/api/calls/{call_id}/accept",
        "/api/calls/{call_id}/wrap",
        "/api/calls/{call_id}/handoff",
        "/api/calls/{call_id}/assign",
        "/api/users",
        "/api/customers",
    ]:
        assert "409" in paths[path]["post"]["responses"], path
    assert "401" in paths["/api/auth/token"]["post"]["responses"]
