"""CoreDNS's ``loop``: detect a forwarding loop at startup and stop the server."""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from typing import Any

from pycorefile import wire as w
from pycorefile.chain import Next, Plugin, Reply, Request, SetupContext
from pycorefile.corefile.model import Directive
from pycorefile.fall import is_subdomain

log = logging.getLogger("pycorefile.plugins.loop")

PROBE_WINDOW = 30.0
HINFO = 13


class _Reply(asyncio.DatagramProtocol):
    """Resolves a future with the first datagram (or the first socket error)."""

    def __init__(self, fut: asyncio.Future[bytes]) -> None:
        self.fut = fut

    def datagram_received(self, data: bytes, addr: Any) -> None:
        if not self.fut.done():
            self.fut.set_result(data)

    def error_received(self, exc: Exception) -> None:
        if not self.fut.done():
            self.fut.set_exception(exc)


class Loop(Plugin):
    """At startup the server sends itself ``<random>.<random>.<zone> HINFO``. If that
    query comes back into this plugin more than twice, queries loop (typically
    ``forward . /etc/resolv.conf`` where resolv.conf points back at this server):
    the error is logged and the server stops with a failure, as CoreDNS does.
    Detection ends with the first probe that gets any answer, or after 30 s."""

    name = "loop"
    once = True

    def __init__(self, zone: str) -> None:
        self.zone = zone
        self.qname = f"{secrets.randbits(62)}.{secrets.randbits(62)}.{'' if zone == '.' else zone}"
        self.seen = 0
        self.disabled = True   # armed only by a running server (start)
        self.address = ""
        self._task: asyncio.Task[Any] | None = None
        self._engine: Any = None

    @classmethod
    def setup(cls, directive: Directive, ctx: SetupContext) -> Plugin:
        if directive.args:
            raise directive.arg_error(cls.name)
        zones = ctx.zones
        return cls(zones[0] if zones else ".")

    async def serve(self, request: Request, next: Next) -> Reply:
        if request.qtype != HINFO or self.disabled or not is_subdomain(self.zone, request.name):
            return await next(request)
        if request.name == self.qname:
            self.seen += 1
        if self.seen > 2:
            self.disabled = True
            message = (
                f"Loop ({request.client[0]}:{request.client[1]} -> {self.address}) detected for zone "
                f'"{self.zone}", see https://coredns.io/plugins/loop#troubleshooting. Query: "HINFO {self.qname}"'
            )
            log.critical(message)
            fatal = self._engine.shared.get("fatal") if self._engine is not None else None
            if fatal is not None:
                fatal(message)
        return await next(request)

    async def start(self, engine: Any) -> None:
        self._engine = engine
        server = next(
            (s for s in engine.servers
             if self.server_block is not None and any(k in self.server_block.keys for k in s.keys)),
            None,
        )
        if server is None or server.scheme != "dns":
            return
        host = server.addresses[0] or "127.0.0.1"
        self.address = f"{host}:{server.port}"
        self.disabled = False
        self._task = asyncio.get_running_loop().create_task(self._probe(host, int(server.port)))

    async def _probe(self, host: str, port: int) -> None:
        loop = asyncio.get_running_loop()
        deadline = time.monotonic() + PROBE_WINDOW
        query = w.build_query(self.qname, HINFO, qid=secrets.randbits(16))
        try:
            while time.monotonic() < deadline and not self.disabled:
                got: asyncio.Future[bytes] = loop.create_future()
                transport, _ = await loop.create_datagram_endpoint(
                    lambda fut=got: _Reply(fut), remote_addr=(host, port)  # type: ignore[misc]
                )
                try:
                    transport.sendto(query)
                    await asyncio.wait_for(got, 2.0)
                    break  # any answer: no loop
                except (OSError, asyncio.TimeoutError):
                    self.seen = 0
                    await asyncio.sleep(1.0)
                finally:
                    transport.close()
        finally:
            self.disabled = True

    async def stop(self) -> None:
        self.disabled = True
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
