"""Wire schemas of users and agents."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from app.users.models import AgentStatus, Role
from app.validation import AgentPhone, Name, Password, Skill, Username


class Person(BaseModel):
    """A user as other shapes name them: a note's author, a transfer's agents."""

    id: int
    display_name: str


class UserCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    username: Username
    password: Password
    display_name: Name | None = None
    role: Role
    skills: list[Skill] = Field(default_factory=list, max_length=32)
    # Where phone calls are put through when this agent accepts one (docs/TELEPHONY.md).
    phone: AgentPhone | None = None


class UserRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    username: str
    display_name: str
    role: Role
    skills: list[str]
    status: AgentStatus
    # While status is wrapup: when the after-call work ends (TELLONCE_WRAPUP_S), else null.
    wrapup_until: datetime | None = None
    # A disabled user cannot sign in (POST /api/users/{id}/disable, /enable).
    disabled: bool = False
    # An E.164 number or "client:NAME": where real phone calls reach this agent.
    phone: str | None = None


class AgentRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    display_name: str
    status: AgentStatus
    skills: list[str]


class StatusUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    status: Literal["available", "away", "offline"]


class TokenUser(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    username: str
    display_name: str
    role: Role


class Token(BaseModel):
    access_token: str
    token_type: Literal["bearer"] = "bearer"
    user: TokenUser
