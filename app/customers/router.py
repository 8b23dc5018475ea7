"""Customers: created by supervisors, read by whoever handled one of their calls."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, status

from app.customers import service
from app.customers.schemas import CustomerCreate, CustomerDetail, CustomerRead
from app.deps import CurrentUser, SessionDep, Supervisor, TransactionRoute
from app.errors import NotFound

router = APIRouter(prefix="/api/customers", tags=["customers"], route_class=TransactionRoute)
CustomerId = Annotated[int, Path(ge=1, le=2_147_483_647)]


@router.post("", response_model=CustomerRead, status_code=status.HTTP_201_CREATED)
async def create_customer(session: SessionDep, _: Supervisor, body: CustomerCreate) -> CustomerRead:
    return service.to_read(await service.create(session, data=body))


@router.get("/{customer_id}", response_model=CustomerDetail)
async def get_customer(
    session: SessionDep, user: CurrentUser, customer_id: CustomerId
) -> CustomerDetail:
    customer = await service.get(session, customer_id=customer_id)
    if customer is None or not await service.visible_to(session, customer=customer, user=user):
        raise NotFound("customer not found")
    return await service.detail(session, customer=customer)
