"""Published poll content in process memory, dropped the moment a poll changes: a subscriber
of the bus of changes (store/changes.py), trusted only while that listens, so most page loads need no
database round trip and no render, yet every change shows on the next one.
"""

import asyncio
import math
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Hashable
from typing import Any

from aiohttp import web

from .. import metrics
from .database import changes_key

# Keys are tuples whose second item is the poll id, e.g. ("results", 7); a key whose
# second item is None (e.g. ("index", None, 2)) depends on every poll.
Key = tuple[Hashable, ...]
Loader = Callable[[], Awaitable[tuple[Any, float]]]  # -> (value, expiry as time.time(); inf: none)

MAX_ENTRIES = 20_000


class Cache:
    """Values computed from published polls, keyed by tuples naming the poll they show."""

    def __init__(self, max_entries: int = MAX_ENTRIES, trusted: Callable[[], bool] = lambda: True) -> None:
        self.max_entries = max_entries
        self.trusted = trusted
        self._entries: dict[Key, tuple[Any, float]] = {}
        self._by_poll: dict[int | None, set[Key]] = {}
        self._loading: dict[Key, tuple[tuple[int, int], asyncio.Future]] = {}
        self._generation = 0  # bumped when everything is dropped
        self._poll_generation: dict[int | None, int] = {}  # bumped by changed(); None: index

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: Key) -> bool:
        return key in self._entries

    def peek(self, key: Key) -> Any:
        """The value kept for `key`, or None; never loads (tests see what is served from memory)."""
        entry = self._entries.get(key)
        return None if entry is None else entry[0]

    async def get(self, key: Key, load: Loader) -> Any:
        """The cached value for `key`, or `load()`'s (kept unless it changed meanwhile)."""
        entry = self._entries.get(key)
        if entry is not None and entry[1] > time.time() and self.trusted():
            metrics.cache_hit(key[0])
            return entry[0]
        metrics.cache_miss(key[0])
        token = self._token(key)
        loading = self._loading.get(key)
        if loading is not None and loading[0] == token:
            return await asyncio.shield(loading[1])
        future = asyncio.ensure_future(self._load(key, token, load))
        self._loading[key] = (token, future)
        return await asyncio.shield(future)

    async def _load(self, key: Key, token: tuple[int, int], load: Loader) -> Any:
        try:
            value, expires = await load()
        finally:
            if self._loading.get(key, (None,))[0] == token:
                del self._loading[key]
        if value is not None and self._token(key) == token and self.trusted() and expires > time.time():
            self._put(key, value, expires)
        return value

    def _token(self, key: Key) -> tuple[int, int]:
        return self._generation, self._poll_generation.get(key[1], 0)

    def _put(self, key: Key, value: Any, expires: float) -> None:
        if key not in self._entries and len(self._entries) >= self.max_entries:
            # Bounded memory: drop the oldest entry (dicts keep insertion order).
            self._forget(next(iter(self._entries)))
        self._entries[key] = (value, expires)
        self._by_poll.setdefault(key[1], set()).add(key)

    def _forget(self, key: Key) -> None:
        del self._entries[key]
        keys = self._by_poll.get(key[1])
        if keys is not None:
            keys.discard(key)
            if not keys:
                del self._by_poll[key[1]]

    def changed(self, question_id: int | None) -> None:
        """A subscriber of the bus of changes: drop what shows this poll and every index page; None: all."""
        if question_id is None:
            self._generation += 1
            self._poll_generation.clear()
            self._entries.clear()
            self._by_poll.clear()
            return
        for poll in (question_id, None):
            self._poll_generation[poll] = self._poll_generation.get(poll, 0) + 1
            for key in self._by_poll.pop(poll, ()):
                del self._entries[key]


def expiry(*moments: Any) -> float:
    """The earliest of these datetimes (None ignored) as a `time.time()` value; inf if none."""
    stamps = [m.timestamp() for m in moments if m is not None]
    return min(stamps, default=math.inf)


cache_key = web.AppKey("cache", Cache)


def setup(app: web.Application) -> None:
    app.cleanup_ctx.append(_page_cache)


async def _page_cache(app: web.Application) -> AsyncIterator[None]:
    """Poll content in memory, trusted only while the bus of changes can hear of them."""
    bus = app[changes_key]
    app[cache_key] = pages = Cache(trusted=lambda: bus.listening)
    with bus.subscribe(pages.changed):
        yield
