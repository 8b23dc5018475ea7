"""Password and PIN hashing (argon2id) and signed bearer tokens with an expiry, which the
user's row can revoke."""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

if TYPE_CHECKING:
    from app.users.models import User

from app.auth.hashing import HashingThreads, Priority

# OWASP's argon2id minimum (19 MiB, 2 passes): slow for an attacker, tens of ms for us.
_hasher = PasswordHasher(time_cost=2, memory_cost=19456, parallelism=1)
_ALGORITHM = "HS256"
# A hash to verify against when the user does not exist, so that timing does not tell.
_DUMMY_HASH = _hasher.hash("tellonce-dummy-password")


def hash_secret(secret: str) -> str:
    return _hasher.hash(secret)


def verify_secret(secret_hash: str | None, secret: str) -> bool:
    try:
        return _hasher.verify(secret_hash or _DUMMY_HASH, secret) and secret_hash is not None
    except (VerificationError, InvalidHashError):
        return False


@functools.cache
def hashing_threads() -> HashingThreads:
    """Where argon2 runs: off the event loop, and on all cores but one, so that a burst of
    sign-ins or PIN checks waits its turn here instead of taking the CPU from the calls; PIN
    checks first (app/auth/hashing.py)."""
    return HashingThreads(max(1, (os.cpu_count() or 2) - 1))


# Call these with no transaction open: on SQLite a transaction holds the one connection that
# every request waits for.
async def hash_secret_async(secret: str) -> str:
    """A new user's password or customer's PIN, hashed."""
    return await hashing_threads().run(Priority.PEOPLE, hash_secret, secret)


async def verify_secret_async(secret_hash: str | None, secret: str) -> bool:
    """A PIN check of the phone tree, taken before any sign-in waiting."""
    return await hashing_threads().run(Priority.PIN, verify_secret, secret_hash, secret)


async def verify_password_async(password_hash: str | None, password: str) -> bool:
    """A sign-in's password check, after any PIN check waiting."""
    return await hashing_threads().run(Priority.PEOPLE, verify_secret, password_hash, password)


@dataclass(frozen=True, slots=True)
class TokenClaims:
    """What a valid token says: whose it is, and what makes it stop working."""

    user_id: int
    role: str
    # The user's token_version when it was issued: signing out or being disabled bumps the
    # user's, and every token issued before then is refused (app/users/models.py).
    version: int
    # When it expires, in seconds since the epoch.
    expires_at: float


def create_token(secret_key: str, *, user_id: int, role: str, ttl_s: int, version: int = 0) -> str:
    now = datetime.now(UTC)
    claims = {
        "sub": str(user_id),
        "role": role,
        "ver": version,
        "iat": now,
        "exp": now + timedelta(seconds=ttl_s),
    }
    return jwt.encode(claims, secret_key, algorithm=_ALGORITHM)


def read_token(secret_key: str, token: str) -> TokenClaims | None:
    """The claims of a token signed with the key and unexpired, else None. Whether it was
    revoked since is the user row's to say (accepts)."""
    try:
        claims = jwt.decode(
            token, secret_key, algorithms=[_ALGORITHM], options={"require": ["exp", "sub"]}
        )
        version = claims.get("ver", 0)
        role = claims.get("role", "")
        if type(version) is not int or not isinstance(role, str):
            return None
        return TokenClaims(int(claims["sub"]), role, version, float(claims["exp"]))
    except (jwt.PyJWTError, KeyError, ValueError, TypeError):
        return None


def accepts(user: User, version: int) -> bool:
    """Whether the user, as the database has them now, still honours a token of that version."""
    return user.disabled_at is None and user.token_version == version
