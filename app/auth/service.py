"""Password and PIN hashing (argon2id) and signed bearer tokens with an expiry."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

# OWASP's argon2id minimum (19 MiB, 2 passes): slow for an attacker, ~20 ms for us.
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


async def hash_secret_async(secret: str) -> str:
    # argon2 holds the CPU for milliseconds: keep it off the event loop.
    return await asyncio.to_thread(hash_secret, secret)


async def verify_secret_async(secret_hash: str | None, secret: str) -> bool:
    return await asyncio.to_thread(verify_secret, secret_hash, secret)


def create_token(secret_key: str, *, user_id: int, role: str, ttl_s: int) -> str:
    now = datetime.now(UTC)
    claims = {"sub": str(user_id), "role": role, "iat": now, "exp": now + timedelta(seconds=ttl_s)}
    return jwt.encode(claims, secret_key, algorithm=_ALGORITHM)


def decode_token(secret_key: str, token: str) -> int | None:
    """The user id of a valid, unexpired token, else None."""
    # A console sends the same token with every request: its signature is checked once, and
    # each use after that checks only the expiry (a signature check is some 30 us of CPU).
    known = _verified.get((secret_key, token))
    if known is not None:
        user_id, expires = known
        return user_id if time.time() < expires else None
    try:
        claims = jwt.decode(
            token, secret_key, algorithms=[_ALGORITHM], options={"require": ["exp"]}
        )
        user_id, expires = int(claims["sub"]), float(claims["exp"])
    except (jwt.PyJWTError, KeyError, ValueError, TypeError):
        return None
    if len(_verified) >= _VERIFIED_MAX:
        _verified.clear()
    _verified[(secret_key, token)] = (user_id, expires)
    return user_id


# (secret key, token) -> (user id, expiry as a POSIX time) of tokens whose signature was valid.
_verified: dict[tuple[str, str], tuple[int, float]] = {}
_VERIFIED_MAX = 10_000
