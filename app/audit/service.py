"""The audit trail: entries written in the transaction of the change they record (a failed
sign-in, whose request is rolled back, in one of its own), read by supervisors, pruned by age.

A hook is one call, e.g. `audit.user_changed(uow.session, user, by=supervisor,
action="user.disabled")`. No entry ever holds a password, a PIN, a token or a key.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from app import logs
from app.audit import repository
from app.audit.models import Actor, AuditEntry
from app.audit.schemas import AuditEntryRead, AuditQuery
from app.db import DbSession, utcnow

if TYPE_CHECKING:
    from app.calls.models import Call
    from app.context import AppContext
    from app.customers.models import Customer
    from app.users.models import User

log = logging.getLogger("tellonce.audit")

PRUNE_BATCH = 2000
# Longer usernames than the rule allows are cut: what was tried is kept, bounded.
USERNAME_KEPT = 64


def record(
    session: DbSession,
    *,
    by: User | Actor,
    action: str,
    object_type: str | None = None,
    object_id: int | None = None,
    call_id: int | None = None,
    user_id: int | None = None,
    details: dict[str, Any] | None = None,
) -> AuditEntry:
    """Add an entry to the session's transaction: it commits, or rolls back, with the change."""
    actor, actor_id = (by, None) if isinstance(by, Actor) else (Actor.user, by.id)
    entry = AuditEntry(
        at=utcnow(),
        actor=actor,
        actor_id=actor_id,
        action=action,
        object_type=object_type,
        object_id=object_id,
        call_id=call_id,
        user_id=user_id,
        request_id=logs.request_id.get(),
        details=details or {},
    )
    repository.add(session, entry)
    return entry


# --- one helper per kind of change, so that each hook in a service is one line ----------------


def call_moved(
    session: DbSession,
    call: Call,
    *,
    by: User,
    from_agent_id: int | None,
    to_queue: str | None,
    to_agent: User | None,
) -> None:
    """A supervisor's assignment (to an agent) or move (to a queue), before the call changes."""
    record(
        session,
        by=by,
        action="call.assigned" if to_agent is not None else "call.moved",
        object_type="call",
        object_id=call.id,
        call_id=call.id,
        user_id=to_agent.id if to_agent is not None else from_agent_id,
        details={
            "state": call.state.value,
            "from_queue": call.queue,
            "from_agent_id": from_agent_id,
            "to_queue": to_queue,
            "to_agent_id": to_agent.id if to_agent is not None else None,
        },
    )


def transferred(
    session: DbSession, call: Call, *, by: User, to_queue: str | None, to_agent: User | None
) -> None:
    """An agent's transfer, to a queue or to another agent."""
    record(
        session,
        by=by,
        action="call.transferred",
        object_type="call",
        object_id=call.id,
        call_id=call.id,
        user_id=to_agent.id if to_agent is not None else None,
        details={
            "from_queue": call.queue,
            "to_queue": to_queue,
            "to_agent_id": to_agent.id if to_agent is not None else None,
        },
    )


def escalated(session: DbSession, call: Call, *, by: User | Actor, reason: str | None) -> None:
    """A call sent to escalations: by its agent, or by the phone tree at the handoff."""
    record(
        session,
        by=by,
        action="call.escalated",
        object_type="call",
        object_id=call.id,
        call_id=call.id,
        details={"reason": reason, "intent": call.intent},
    )


def status_forced(
    session: DbSession,
    agent: User,
    *,
    was: str,
    reason: str,
    call: Call | None = None,
    by: User | None = None,
) -> None:
    """An agent's status changed by something other than the agent: an offer that timed out
    (the system), a caller who hung up while it rang (the phone tree), a supervisor's move."""
    actor: User | Actor = (
        by if by is not None else (Actor.ivr if reason == "abandoned" else Actor.system)
    )
    record(
        session,
        by=actor,
        action="agent.status_forced",
        object_type="user",
        object_id=agent.id,
        call_id=call.id if call is not None else None,
        user_id=agent.id,
        details={"from": str(was), "to": agent.status.value, "reason": reason},
    )


def customer_locked(session: DbSession, customer: Customer, *, call: Call, failures: int) -> None:
    """Wrong PINs locked the account (the phone tree's verification)."""
    until = customer.locked_until.isoformat() if customer.locked_until else None
    record(
        session,
        by=Actor.ivr,
        action="customer.locked",
        object_type="customer",
        object_id=customer.id,
        call_id=call.id,
        details={"account_number": customer.account_number, "failures": failures, "until": until},
    )


def customer_unlocked(
    session: DbSession, customer: Customer, *, by: User, was_locked_until: datetime
) -> None:
    """A supervisor lifted a verification lock."""
    record(
        session,
        by=by,
        action="customer.unlocked",
        object_type="customer",
        object_id=customer.id,
        details={
            "account_number": customer.account_number,
            "was_locked_until": was_locked_until.isoformat(),
        },
    )


def user_changed(
    session: DbSession, user: User, *, by: User | Actor, action: str, **details: Any
) -> None:
    """A change to a login: "user.created", and e.g. "user.disabled", "user.enabled",
    "auth.signed_out". details: what changed (never a password)."""
    record(
        session,
        by=by,
        action=action,
        object_type="user",
        object_id=user.id,
        user_id=user.id,
        details={"username": user.username, **details},
    )


def user_created(session: DbSession, user: User, *, by: User | None) -> None:
    """by: the supervisor; None from the command line."""
    user_changed(
        session,
        user,
        by=by if by is not None else Actor.system,
        action="user.created",
        role=user.role.value,
        skills=list(user.skills),
    )


async def sign_in_failed(ctx: AppContext, *, username: str, user_id: int | None) -> None:
    """A wrong username or password, in a transaction of its own (the request's is rolled back
    with its 401): the name tried and the client's address, never the password. Call it with
    no transaction of the request open (on SQLite the two would wait for each other)."""
    client = logs.client_addr.get()
    async with ctx.transaction() as session:
        record(
            session,
            by=Actor.anonymous,
            action="auth.sign_in_failed",
            user_id=user_id,
            details={"username": username[:USERNAME_KEPT], "client": client},
        )
    log.warning("sign-in failed", extra={"username": username[:USERNAME_KEPT], "client": client})


# --- reading and pruning ----------------------------------------------------------------------


async def list_entries(session: DbSession, *, query: AuditQuery) -> list[AuditEntryRead]:
    found = await repository.listed(
        session,
        since=query.from_,
        until=query.to,
        action=query.action,
        user_id=query.user_id,
        call_id=query.call_id,
        before_id=query.before_id,
        limit=query.limit,
    )
    return [AuditEntryRead.model_validate(e) for e in found]


async def prune(ctx: AppContext, *, now: datetime) -> int:
    """Delete entries older than TELLONCE_AUDIT_RETENTION_DAYS, a batch per transaction, so
    that a large backlog never holds the database for long; how many."""
    before = now - timedelta(days=ctx.settings.audit_retention_days)
    deleted = 0
    while True:
        async with ctx.transaction() as session:
            n = await repository.delete_older(session, before=before, limit=PRUNE_BATCH)
        deleted += n
        if n < PRUNE_BATCH:
            return deleted
