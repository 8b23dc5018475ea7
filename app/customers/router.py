"""Customers: created by supervisors, read by whoever handled one of their calls."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, status

from app.auth.service import hash_secret_async
from app.customers import service
from app.customers.schemas import CustomerCreate, CustomerDetail, CustomerRead
from app.deps import CurrentUser, Supervisor, SupervisorOutside, Uow
from app.openapi import refusals

router = APIRouter(prefix="/api/customers", tags=["customers"])
CustomerId = Annotated[int, Path(ge=1, le=2_147_483_647)]


@router.post(
    "", response_model=CustomerRead, status_code=status.HTTP_201_CREATED, responses=refusals(409)
)
async def create_customer(uow: Uow, _: SupervisorOutside, body: CustomerCreate) -> CustomerRead:
    pin_hash = await hash_secret_async(body.pin)
    customer = await service.create(uow.session, data=body, pin_hash=pin_hash)
    return service.to_read(customer)


@router.get("/{customer_id}", response_model=CustomerDetail)
async def get_customer(uow: Uow, user: CurrentUser, customer_id: CustomerId) -> CustomerDetail:
    customer = await service.visible(uow.session, customer_id=customer_id, user=user)
    return await service.detail(uow.session, customer=customer)


@router.post("/{customer_id}/unlock", response_model=CustomerRead)
async def unlock_customer(uow: Uow, by: Supervisor, customer_id: CustomerId) -> CustomerRead:
    """Lift the verification lock that three wrong PINs set (supervisors only)."""
    return service.to_read(await service.unlock(uow.session, customer_id=customer_id, by=by))
