"""The supervisors' reports: GET /api/reports/experience and /exceptions, as JSON or CSV."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, status
from fastapi.responses import Response

from app.deps import CtxDep, Supervisor, SupervisorOutside, Uow
from app.openapi import refusals
from app.reports import export, service
from app.reports.schemas import (
    DraftQuery,
    ExceptionsOut,
    ExceptionsQuery,
    ExperienceOut,
    ExperienceQuery,
    MarkCreate,
    MarkRead,
)

router = APIRouter(prefix="/api/reports", tags=["reports"])

CSV = "text/csv; charset=utf-8"
YAML = "text/yaml; charset=utf-8"
_CSV_ANSWER: dict[int | str, dict[str, Any]] = {
    200: {"content": {"text/csv": {"schema": {"type": "string"}}}, "description": "CSV"}
}


# SupervisorOutside: the supervisor is read in a short session of its own, and the report's
# reads hold no transaction of the request's (on SQLite, the one every other request waits for).
@router.get("/experience", response_model=ExperienceOut)
async def experience(
    ctx: CtxDep, _: SupervisorOutside, query: Annotated[ExperienceQuery, Query()]
) -> ExperienceOut:
    return await service.experience(ctx, query=query)


@router.get("/experience.csv", response_class=Response, responses=_CSV_ANSWER)
async def experience_csv(
    ctx: CtxDep, _: SupervisorOutside, query: Annotated[ExperienceQuery, Query()]
) -> Response:
    report = await service.experience(ctx, query=query)
    return _csv(export.experience_csv(report), "experience")


@router.get("/exceptions", response_model=ExceptionsOut)
async def exceptions(
    ctx: CtxDep, _: SupervisorOutside, query: Annotated[ExceptionsQuery, Query()]
) -> ExceptionsOut:
    return await service.exceptions(ctx, query=query)


@router.get("/exceptions.csv", response_class=Response, responses=_CSV_ANSWER)
async def exceptions_csv(
    ctx: CtxDep, _: SupervisorOutside, query: Annotated[ExceptionsQuery, Query()]
) -> Response:
    report = await service.exceptions(ctx, query=query)
    return _csv(export.exceptions_csv(report), "exceptions")


@router.get(
    "/exceptions/draft",
    response_class=Response,
    responses={
        200: {"content": {"text/yaml": {"schema": {"type": "string"}}}, "description": "YAML"},
        **refusals(404, 409),
    },
)
async def exceptions_draft(
    ctx: CtxDep, _: SupervisorOutside, query: Annotated[DraftQuery, Query()]
) -> Response:
    """A group of the exceptions report as a draft intent for the flow file (YAML)."""
    name, text = await service.draft_intent(ctx, query=query)
    return Response(
        text,
        media_type=YAML,
        headers={"Content-Disposition": f'attachment; filename="intent-{name}.yaml"'},
    )


@router.post(
    "/exceptions/marks",
    response_model=MarkRead,
    status_code=status.HTTP_201_CREATED,
    responses=refusals(409),
)
async def mark_exception_group(uow: Uow, by: Supervisor, data: MarkCreate) -> MarkRead:
    """Mark a group of the exceptions report "add to the phone tree"."""
    return await service.mark(uow.session, data=data, by=by)


def _csv(body: str, name: str) -> Response:
    return Response(
        body,
        media_type=CSV,
        headers={"Content-Disposition": f'attachment; filename="tellonce-{name}.csv"'},
    )
