"""The demo data set: the contract's logins and customer, a dozen more customers, some history."""

from __future__ import annotations

from datetime import timedelta

from app.auth.service import hash_secret_async
from app.calls import repository as call_repository
from app.calls.models import Call
from app.calls.states import CallState
from app.customers import repository as customer_repository
from app.customers import service as customers
from app.customers.schemas import CustomerCreate
from app.db import DbSession, hold_lock, utcnow
from app.users import repository as user_repository
from app.users import service as users
from app.users.models import Role
from app.users.schemas import UserCreate

DEMO_PASSWORD = "demo"  # the contract's fixed demo password: the only credential ever printed

USERS = [
    ("super", "Sam Super", Role.supervisor, []),
    ("alice", "Alice Adams", Role.agent, ["billing", "cards"]),
    ("bob", "Bob Brown", Role.agent, ["cards", "loans"]),
    ("carol", "Carol Clark", Role.agent, ["escalations", "billing"]),
]

# name, account, pin, phones, segment, language
CUSTOMERS = [
    ("Jane Doe", "12345678", "1234", ["+15551230001"], "standard", "en"),
    ("Victor Ortiz", "23456789", "4321", ["+15551230002"], "vip", "es"),
    ("Priya Patel", "34567890", "5678", ["+15551230003", "+447700900123"], "vip", "en"),
    ("Tom Baker", "45678901", "8765", ["+15551230004"], "at_risk", "en"),
    ("Lucía Fernández", "56789012", "2468", ["+34600123456"], "standard", "es"),
    ("Kenji Sato", "67890123", "1357", ["+15551230006"], "standard", "en"),
    ("Amara Okafor", "78901234", "9999", ["+15551230007"], "at_risk", "en"),
    ("Diego Ramírez", "89012345", "112233", ["+15551230008"], "standard", "es"),
    ("Hannah Schmidt", "90123456", "445566", ["+4915112345678"], "vip", "en"),
    ("Omar Haddad", "11223344", "7777", ["+15551230010"], "standard", "en"),
    ("Sofia Rossi", "22334455", "8080", ["+393471234567"], "standard", "en"),
    ("Carmen Vega", "33445566", "6060", ["+15551230012", "+15551230013"], "at_risk", "es"),
    ("Noah Williams", "44556677", "3030", ["+15551230014"], "standard", "en"),
]


# Any constant works; every instance must use the same one (not the migration's).
DEMO_LOCK_ID = 7_271_119


async def load(session: DbSession) -> None:
    """Idempotent: what exists already is left as it is. The demo's secrets are hashed inside
    its one transaction: it runs before the server serves, with nobody waiting.

    Instances started together on one fresh database load in turn, so the second finds the
    first's data and adds nothing (on PostgreSQL both would otherwise insert `super`)."""
    await hold_lock(session, DEMO_LOCK_ID)
    for username, name, role, skills in USERS:
        if await user_repository.get_by_username(session, username) is None:
            await users.create(
                session,
                password_hash=await hash_secret_async(DEMO_PASSWORD),
                data=UserCreate(
                    username=username,
                    password=DEMO_PASSWORD,
                    display_name=name,
                    role=role,
                    skills=skills,
                ),
            )
    for name, account, pin, phones, segment, language in CUSTOMERS:
        if await customer_repository.get_by_account(session, account) is None:
            await customers.create(
                session,
                pin_hash=await hash_secret_async(pin),
                data=CustomerCreate(
                    name=name,
                    account_number=account,
                    pin=pin,
                    phone_numbers=phones,
                    segment=segment,
                    language=language,
                ),
            )
    jane = await customer_repository.get_by_account(session, "12345678")
    assert jane is not None
    if not await call_repository.history(session, [jane.id], per_customer=1):
        now = utcnow()
        past = [
            (40, "billing", "billing", "resolved", "positive", 5, False),
            (12, "card_lost", "cards", "follow_up", "neutral", 3, True),
            (2, "loans", "loans", "unresolved", "negative", 2, True),
        ]
        for days, intent, queue, disposition, sentiment, csat, repeated in past:
            start = now - timedelta(days=days, minutes=7)
            session.add(
                Call(
                    state=CallState.ended,
                    caller_number="+15551230001",
                    language="en",
                    customer_id=jane.id,
                    caller_known=True,
                    verified=True,
                    verify_method="account_pin",
                    verified_at=start + timedelta(seconds=40),
                    intent=intent,
                    queue=queue,
                    collected={},
                    rejected_by=[],
                    disposition=disposition,
                    sentiment=sentiment,
                    csat=csat,
                    had_to_repeat=repeated,
                    created_at=start,
                    queued_at=start + timedelta(seconds=60),
                    first_queued_at=start + timedelta(seconds=60),
                    waited_s=35.0,
                    connected_at=start + timedelta(seconds=95),
                    first_connected_at=start + timedelta(seconds=95),
                    hungup_at=start + timedelta(minutes=6),
                    ended_at=start + timedelta(minutes=7),
                )
            )
    await session.flush()
