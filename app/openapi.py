"""Every error answer of every route in the OpenAPI document.

The refusals any route can give follow from what it depends on (a credential, the database, an
id in its path, input to validate, a body); those only some routes give (409, 429...) are
declared on the route with refusals().
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

from fastapi import APIRouter, FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from pydantic import BaseModel


class ErrorOut(BaseModel):
    """Every error but a validation error."""

    detail: str


class Problem(BaseModel):
    loc: list[str | int]
    msg: str
    type: str


class ValidationErrorOut(BaseModel):
    """Every 422, the framework's and Tellonce's own: one item per problem."""

    detail: list[Problem]


WHY: dict[int, str] = {
    400: "The body could not be read at all (not UTF-8, say).",
    401: "No credential, or a bad or expired one.",
    403: "The right credential for the wrong role: a user token on an IVR route, the IVR key "
    "or an agent on a route that is not theirs.",
    404: "No such object, or one the caller may not see.",
    408: "The body did not arrive in time.",
    409: "The object is not in a state that allows this.",
    413: "The body is larger than the server takes.",
    422: "Malformed input, or a value that names nothing here.",
    429: "Too many tries: wait for the number of seconds in Retry-After.",
    503: "The database was out of reach, or the server too busy: nothing was changed; try "
    "again after Retry-After.",
}


def refusals(*codes: int) -> dict[int | str, dict[str, Any]]:
    """The `responses` of a route for the refusals only it gives."""
    return {code: _answer(code) for code in codes}


def _answer(code: int) -> dict[str, Any]:
    model = ValidationErrorOut if code == 422 else ErrorOut
    return {"model": model, "description": WHY[code]}


def _calls(dependant: Dependant) -> Iterator[Callable[..., Any]]:
    for sub in dependant.dependencies:
        if sub.call is not None:
            yield sub.call
        yield from _calls(sub)


def _has_input(dependant: Dependant) -> bool:
    if dependant.path_params or dependant.query_params or dependant.body_params:
        return True
    return any(_has_input(sub) for sub in dependant.dependencies)


def document_errors(
    app: FastAPI,
    routers: Iterable[APIRouter],
    *,
    credential: object,
    database: Callable[..., Any],
) -> None:
    """Add to the OpenAPI document of the routers' routes the refusals their dependencies imply
    (FastAPI's documented way of extending the document: replacing app.openapi). credential and
    database are the dependency callables that read the bearer token and open the unit of work.
    """
    routes = [r for router in routers for r in router.routes if isinstance(r, APIRoute)]
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        document = build()
        schemas = document.setdefault("components", {}).setdefault("schemas", {})
        for model in (ErrorOut, Problem, ValidationErrorOut):
            schemas[model.__name__] = model.model_json_schema(ref_template=_REF)
        for route in routes:
            if not route.include_in_schema:
                continue
            codes = _implied(route, credential=credential, database=database)
            for method in route.methods or ():
                answers = document["paths"][route.path_format][method.lower()]["responses"]
                for code in codes:
                    answers.setdefault(str(code), _documented(code))
                if "422" in answers:
                    answers["422"] = _documented(422)
        app.openapi_schema = document
        return document

    app.openapi = openapi  # type: ignore[method-assign]


_REF = "#/components/schemas/{model}"


def _documented(code: int) -> dict[str, Any]:
    model = ValidationErrorOut if code == 422 else ErrorOut
    ref = {"$ref": _REF.format(model=model.__name__)}
    return {"description": WHY[code], "content": {"application/json": {"schema": ref}}}


def _implied(route: APIRoute, *, credential: object, database: Callable[..., Any]) -> list[int]:
    calls = set(_calls(route.dependant))
    implied: list[int] = []
    if credential in calls:
        implied += [401, 403]
    if route.dependant.path_params:
        implied.append(404)
    if route.body_field is not None:
        implied += [400, 408, 413]
    if _has_input(route.dependant):
        implied.append(422)
    if database in calls:
        implied.append(503)
    return implied
