"""Password and PIN hashing (argon2id) and signed bearer tokens with an expiry."""

from __future__ import annotations

import asyncio
import functools
import os
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

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
def _phone_tree_threads() -> ThreadPoolExecutor:
    """Where the phone tree's PIN checks run: off the event loop, on all cores but one (the
    loop's), and never behind a password: a caller waits on the line for this answer."""
    return ThreadPoolExecutor(_cores_for_hashing(), thread_name_prefix="argon2-pin")


@functools.cache
def _people_threads() -> ThreadPoolExecutor:
    """Where sign-ins' password checks and the hashes of new users and customers run: threads of
    their own, so that a flood of sign-ins queues here and takes no turn from a PIN check. Half
    the PIN threads (one at least): a shift signing in waits a little, a caller does not."""
    return ThreadPoolExecutor(max(1, _cores_for_hashing() // 2), thread_name_prefix="argon2-people")


def _cores_for_hashing() -> int:
    return max(1, (os.cpu_count() or 2) - 1)


# Call these with no transaction open: on SQLite a transaction holds the one connection that
# every request waits for.
async def hash_secret_async(secret: str) -> str:
    """A new user's password or customer's PIN, hashed on the people's threads."""
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(_people_threads(), hash_secret, secret)


async def verify_secret_async(secret_hash: str | None, secret: str) -> bool:
    """A PIN check of the phone tree, on the threads kept for it."""
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(_phone_tree_threads(), verify_secret, secret_hash, secret)


async def verify_password_async(password_hash: str | None, password: str) -> bool:
    """A sign-in's password check, on the people's threads."""
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(_people_threads(), verify_secret, password_hash, password)


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
