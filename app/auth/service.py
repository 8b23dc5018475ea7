"""Password and PIN hashing (argon2id) and signed bearer tokens with an expiry."""

from __future__ import annotations

import functools
import os
from datetime import UTC, datetime, timedelta

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

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


def create_token(secret_key: str, *, user_id: int, role: str, ttl_s: int) -> str:
    now = datetime.now(UTC)
    claims = {"sub": str(user_id), "role": role, "iat": now, "exp": now + timedelta(seconds=ttl_s)}
    return jwt.encode(claims, secret_key, algorithm=_ALGORITHM)


def decode_token(secret_key: str, token: str) -> int | None:
    """The user id of a valid, unexpired token, else None."""
    try:
        claims = jwt.decode(
            token, secret_key, algorithms=[_ALGORITHM], options={"require": ["exp"]}
        )
        return int(claims["sub"])
    except (jwt.PyJWTError, KeyError, ValueError, TypeError):
        return None
