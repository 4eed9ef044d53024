"""The operator's session cookie: a random token whose SHA-256 alone is stored (store/admin.py),
sent only to /admin, never to scripts or other sites."""

import re
from typing import Any

from aiohttp import web

from ..store import admin, tokens

COOKIE = "polls_admin"
PATH = "/admin"
_TOKEN = re.compile(r"[A-Za-z0-9_-]{43}")  # secrets.token_urlsafe(32)


def new_token() -> tuple[str, bytes]:
    """A token for the cookie, and its hash for the database."""
    return tokens.new_token()


def token_hash(request: web.Request) -> bytes | None:
    """The hash of the request's session token, when it sent a well-formed one."""
    value = request.cookies.get(COOKIE, "")
    return tokens.hash_token(value) if _TOKEN.fullmatch(value) else None


async def signed_in(request: web.Request, conn: Any) -> bool:
    """Whether the request carries a session that is started, not ended and not expired."""
    hashed = token_hash(request)
    return hashed is not None and await admin.session_is_valid(conn, hashed)


def give_cookie(response: web.StreamResponse, token: str, secure: bool) -> None:
    """HttpOnly (no script reads it), SameSite=Strict (no other site's link or form sends it),
    Secure under https; it lasts as long as the session may."""
    response.set_cookie(
        COOKIE,
        token,
        max_age=int(admin.SESSION_LIFETIME.total_seconds()),
        path=PATH,
        httponly=True,
        samesite="Strict",
        secure=secure,
    )


def take_cookie(response: web.StreamResponse, secure: bool) -> None:
    response.del_cookie(COOKIE, path=PATH, httponly=True, samesite="Strict", secure=secure)
