"""Every ORM model, imported in one place for Alembic and create_all."""

from app.audit.models import AuditEntry
from app.calls.models import AskedAgain, Call, CallAgent, IvrStep, Note, Transfer
from app.customers.models import Customer, CustomerPhone, VerificationFailure
from app.db import Base
from app.promises.models import Promise
from app.realtime.models import Counter, Event
from app.reports.models import ExceptionMark
from app.users.models import User
from app.voice.models import VoiceSession

__all__ = [
    "AskedAgain",
    "AuditEntry",
    "Base",
    "Call",
    "CallAgent",
    "Counter",
    "Customer",
    "CustomerPhone",
    "Event",
    "ExceptionMark",
    "IvrStep",
    "Note",
    "Promise",
    "Transfer",
    "User",
    "VerificationFailure",
    "VoiceSession",
]
