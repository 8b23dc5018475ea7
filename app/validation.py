"""Field types shared by the wire schemas: E.164 numbers, account numbers, PINs."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, StringConstraints

E164 = Annotated[str, StringConstraints(pattern=r"^\+[1-9]\d{6,14}$")]
# Where an agent takes phone calls: an E.164 number, or a softphone's "client:NAME".
AgentPhone = Annotated[
    str, StringConstraints(pattern=r"^(\+[1-9]\d{6,14}|client:[A-Za-z0-9_.@-]{1,64})$")
]
AccountNumber = Annotated[str, StringConstraints(pattern=r"^\d{8}$")]
Pin = Annotated[str, StringConstraints(pattern=r"^\d{4,6}$")]
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=128)]
Username = Annotated[
    str, StringConstraints(strip_whitespace=True, pattern=r"^[A-Za-z0-9_.-]{2,64}$")
]
Password = Annotated[str, StringConstraints(min_length=4, max_length=256)]
Skill = Annotated[str, StringConstraints(strip_whitespace=True, pattern=r"^[a-z0-9_-]{1,64}$")]
Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=4000)]

# Ids in paths and bodies: bounded so that no database integer overflows into a 500.
Id = Annotated[int, Field(ge=1, le=2_147_483_647)]
Word = Annotated[str, StringConstraints(strip_whitespace=True, pattern=r"^[a-z][a-z0-9_]{0,63}$")]
