"""The private manage token a poll's maker gets: 256 random bits, of which only the SHA-256
is stored, so a copy of the database cannot manage anyone's poll.
"""

import hashlib
import hmac
import secrets

TOKEN_BYTES = 32


def new_token() -> tuple[str, bytes]:
    """A fresh token for the maker's link, and the hash to store instead of it."""
    token = secrets.token_urlsafe(TOKEN_BYTES)
    return token, hash_token(token)


def hash_token(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def token_matches(token: str, stored: bytes | None) -> bool:
    """Whether `token` is the one whose hash was stored; in constant time.

    Polls made with SQL or init_db.py store no hash: no token manages them.
    """
    if stored is None:
        return False
    return hmac.compare_digest(hash_token(token), bytes(stored))
