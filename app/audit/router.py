"""The audit trail, for supervisors."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from app.audit import service
from app.audit.schemas import AuditEntryRead, AuditQuery
from app.deps import Supervisor, Uow

router = APIRouter(prefix="/api", tags=["audit"])


@router.get("/audit", response_model=list[AuditEntryRead])
async def list_audit(
    uow: Uow, _: Supervisor, query: Annotated[AuditQuery, Query()]
) -> list[AuditEntryRead]:
    return await service.list_entries(uow.session, query=query)
