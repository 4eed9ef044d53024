"""The operator's password as an Argon2 hash (argon2-cffi's argon2id defaults, RFC 9106), made
by `set-admin-password` and checked at sign-in off the event loop. No HTTP here."""

import asyncio

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

MIN_LENGTH = 12
_HASHER = PasswordHasher()


def hash_password(password: str) -> str:
    return _HASHER.hash(password)


def problem(password: str) -> str | None:
    """Why this password cannot be the operator's, or None."""
    if len(password) < MIN_LENGTH:
        return f"the password must be at least {MIN_LENGTH} characters long"
    if password != password.strip():
        return "the password must not start or end with a space"
    return None


def verify(stored: str, given: str) -> bool:
    """Whether `given` is the password `stored` is the hash of (argon2 raises when it is not)."""
    try:
        return _HASHER.verify(stored, given)
    except (VerificationError, InvalidHashError):
        return False


async def matches(stored: str, given: str) -> bool:
    """`verify` in a worker thread: a hash takes tens of milliseconds of CPU, which would
    otherwise stop every other request of this process."""
    return await asyncio.get_running_loop().run_in_executor(None, verify, stored, given)
