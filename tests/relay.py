"""A TCP relay between the app and PostgreSQL that a test can freeze, as a cut network link:
while frozen nothing passes either way and nothing is refused (connections are taken and
then left unanswered), and what was sent meanwhile arrives once it thaws."""

import asyncio

import psycopg2.extensions


class _Half(asyncio.Protocol):
    """One side of a relayed connection: what it reads goes to its peer's transport."""

    def __init__(self, relay: "Relay") -> None:
        self.relay = relay
        self.transport: asyncio.Transport | None = None
        self.peer: _Half | None = None
        self.pending: list[bytes] = []  # read before the peer was connected

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.relay.halves.add(self)
        if self.relay.frozen:
            self.transport.pause_reading()

    def data_received(self, data: bytes) -> None:
        if self.peer is not None and self.peer.transport is not None:
            self.peer.transport.write(data)
        else:
            self.pending.append(data)

    def connection_lost(self, exc: Exception | None) -> None:
        self.relay.halves.discard(self)
        if self.peer is not None and self.peer.transport is not None:
            self.peer.transport.close()


class Relay:
    """`await Relay(database_url).start()`; `url` reaches the database through it."""

    def __init__(self, database_url: str) -> None:
        self.target = psycopg2.extensions.parse_dsn(database_url)
        self.frozen = False
        self.halves: set[_Half] = set()
        self._server: asyncio.Server | None = None
        self._waiting: list[_Half] = []  # accepted while frozen, not yet connected onwards
        self._connecting: set[asyncio.Task] = set()
        self.url = ""

    async def start(self) -> "Relay":
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(self._accepted, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        self.url = psycopg2.extensions.make_dsn(
            **{**self.target, "host": "127.0.0.1", "port": str(port), "connect_timeout": "5"}
        )
        return self

    def _accepted(self) -> _Half:
        client = _Half(self)
        if self.frozen:
            self._waiting.append(client)
        else:
            self._connect_later(client)
        return client

    def _connect_later(self, client: _Half) -> None:
        task = asyncio.ensure_future(self._connect_onwards(client))
        self._connecting.add(task)
        task.add_done_callback(self._connecting.discard)

    async def _connect_onwards(self, client: _Half) -> None:
        loop = asyncio.get_running_loop()
        host, port = self.target.get("host", "127.0.0.1"), int(self.target.get("port", "5432"))
        server = _Half(self)
        if host.startswith("/"):
            await loop.create_unix_connection(lambda: server, f"{host}/.s.PGSQL.{port}")
        else:
            await loop.create_connection(lambda: server, host, port)
        client.peer, server.peer = server, client
        for data in client.pending:
            server.transport.write(data)  # type: ignore[union-attr]
        client.pending.clear()

    def freeze(self) -> None:
        """Stop everything passing: reads pause on both sides, new connections wait."""
        self.frozen = True
        for half in self.halves:
            if half.transport is not None and not half.transport.is_closing():
                half.transport.pause_reading()

    def thaw(self) -> None:
        """Let through what waited, and everything from now on."""
        self.frozen = False
        for half in list(self.halves):
            if half.transport is not None and not half.transport.is_closing():
                half.transport.resume_reading()
        waiting, self._waiting = self._waiting, []
        for client in waiting:
            if client.transport is not None and not client.transport.is_closing():
                self._connect_later(client)

    async def close(self) -> None:
        """Cut every relayed connection, then stop listening (since Python 3.12 the server's
        `wait_closed` also waits for the connections it accepted)."""
        for half in list(self.halves):
            if half.transport is not None:
                half.transport.abort()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
