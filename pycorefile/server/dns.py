"""UDP and TCP transports and the server lifecycle (start, reload, graceful stop)."""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Awaitable
from typing import Any

from ..chain import Resume
from ..routing import Engine, Server

log = logging.getLogger("pycorefile.server")

#: Socket receive buffer asked for UDP listeners. A large buffer absorbs GC pauses
#: and scheduling stalls under load (the kernel caps it at net.core.rmem_max).
UDP_RCVBUF = 4 * 1024 * 1024
TCP_IDLE_TIMEOUT = 10.0
TCP_MAX_CONNECTIONS = 1024
#: Replies in flight per TCP connection before reading pauses (pipelining bound).
TCP_MAX_INFLIGHT = 128


class _UDP(asyncio.DatagramProtocol):
    def __init__(self, listener: Listener) -> None:
        self.listener = listener
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: Any) -> None:
        listener = self.listener
        if not listener.accepting:
            return
        host = addr[0]
        if host.startswith("::ffff:") and "." in host:
            host = host[7:]  # IPv4 client on a dual-stack socket
        try:
            out = listener.server.dispatch(data, (host, addr[1]), "udp")
        except Exception:  # never let one datagram kill the listener
            log.exception("dispatch failed")
            return
        if out is None:
            return
        if type(out) is bytes:
            self.transport.sendto(out, addr)  # type: ignore[union-attr]
            return
        listener.spawn(self._later(out, addr))  # type: ignore[arg-type]

    async def _later(self, pending: Awaitable[bytes | None], addr: Any) -> None:
        out = await pending
        if out is not None and self.transport is not None and not self.transport.is_closing():
            self.transport.sendto(out, addr)

    def error_received(self, exc: Exception) -> None:  # ICMP errors from earlier sends
        pass


class _TCP(asyncio.Protocol):
    """RFC 7766 framing: a 2-byte length before each message; pipelined queries are
    answered as they complete, possibly out of order."""

    def __init__(self, listener: Listener) -> None:
        self.listener = listener
        self.buf = bytearray()
        self.transport: asyncio.Transport | None = None
        self.peer: tuple[str, int] = ("", 0)
        self.inflight = 0
        self.idle: asyncio.TimerHandle | None = None
        self.paused = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        peer = transport.get_extra_info("peername") or ("", 0)
        host = peer[0]
        if host.startswith("::ffff:") and "." in host:
            host = host[7:]  # IPv4 client on a dual-stack socket
        self.peer = (host, peer[1])
        if len(self.listener.connections) >= TCP_MAX_CONNECTIONS:
            self.listener.server.engine.count_drop("tcp-connection-limit")
            transport.abort()  # type: ignore[attr-defined]
            return
        self.listener.connections.add(self)
        self._arm()

    def _arm(self) -> None:
        if self.idle is not None:
            self.idle.cancel()
        loop = asyncio.get_running_loop()
        self.idle = loop.call_later(self.listener.idle_timeout, self._timeout)

    def _timeout(self) -> None:
        if self.inflight == 0 and self.transport is not None:
            self.transport.close()
        else:
            self._arm()

    def data_received(self, data: bytes) -> None:
        self.buf += data
        self._arm()
        buf = self.buf
        while len(buf) >= 2:
            n = (buf[0] << 8) | buf[1]
            if n < 12:
                # Not even a header fits: garbage framing; drop the connection.
                self.listener.server.engine.count_drop("short")
                self.transport.close()  # type: ignore[union-attr]
                return
            if len(buf) < 2 + n:
                break
            msg = bytes(buf[2 : 2 + n])
            del buf[: 2 + n]
            self._handle(msg)
        if self.inflight >= TCP_MAX_INFLIGHT and not self.paused:
            self.paused = True
            self.transport.pause_reading()  # type: ignore[union-attr]

    def _handle(self, msg: bytes) -> None:
        if not self.listener.accepting:
            return
        try:
            out = self.listener.server.dispatch(msg, self.peer, "tcp")
        except Exception:
            log.exception("dispatch failed")
            return
        if out is None:
            return
        if type(out) is bytes:
            self._send(out)
            return
        self.inflight += 1
        self.listener.spawn(self._later(out))  # type: ignore[arg-type]

    async def _later(self, pending: Awaitable[bytes | None]) -> None:
        try:
            out = await pending
        finally:
            self.inflight -= 1
            if self.paused and self.inflight < TCP_MAX_INFLIGHT // 2 and self.transport is not None:
                self.paused = False
                self.transport.resume_reading()
        if out is not None:
            self._send(out)

    def _send(self, out: bytes) -> None:
        t = self.transport
        if t is not None and not t.is_closing():
            t.write(len(out).to_bytes(2, "big") + out)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.idle is not None:
            self.idle.cancel()
        self.listener.connections.discard(self)
        self.transport = None


class Listener:
    """One address: a UDP socket and a TCP listener feeding one :class:`Server`."""

    def __init__(self, server: Server, host: str, port: int) -> None:
        self.server = server
        self.host = host
        self.port = port
        self.udp: asyncio.DatagramTransport | None = None
        self.tcp: asyncio.AbstractServer | None = None
        self.connections: set[_TCP] = set()
        self.tasks: set[asyncio.Task[Any]] = set()
        self.idle_timeout = TCP_IDLE_TIMEOUT
        self.accepting = True

    def spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def open(self) -> None:
        loop = asyncio.get_running_loop()
        host = self.host or None
        family = socket.AF_INET6 if self.host and ":" in self.host else socket.AF_INET
        if not self.host:
            family = socket.AF_INET6 if _has_ipv6() else socket.AF_INET
        last: OSError | None = None
        for _ in range(20 if self.port == 0 else 1):
            usock = socket.socket(family, socket.SOCK_DGRAM)
            try:
                if family == socket.AF_INET6 and not self.host:
                    usock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
                try:
                    usock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, UDP_RCVBUF)
                except OSError:
                    pass
                usock.bind((host or ("::" if family == socket.AF_INET6 else "0.0.0.0"), self.port))
                port = usock.getsockname()[1]
                tsock = socket.socket(family, socket.SOCK_STREAM)
                try:
                    tsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                    if family == socket.AF_INET6 and not self.host:
                        tsock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
                    tsock.bind((host or ("::" if family == socket.AF_INET6 else "0.0.0.0"), port))
                except OSError as exc:
                    tsock.close()
                    raise exc
            except OSError as exc:
                usock.close()
                last = exc
                continue
            self.port = port
            self.udp, _ = await loop.create_datagram_endpoint(lambda: _UDP(self), sock=usock)
            tsock.listen(1024)
            tsock.setblocking(False)
            self.tcp = await loop.create_server(lambda: _TCP(self), sock=tsock)
            return
        raise last or OSError("could not bind")

    def stop_accepting(self) -> None:
        """Refuse new work; the UDP socket stays open until :meth:`drain` so replies
        to queries already in flight can still be sent."""
        self.accepting = False
        if self.tcp is not None:
            self.tcp.close()

    def close(self) -> None:
        """Close at once (nothing in flight to wait for)."""
        self.stop_accepting()
        if self.udp is not None:
            self.udp.close()

    async def drain(self, timeout: float) -> None:
        """Wait (bounded) for in-flight queries, then close TCP connections."""
        if self.tasks:
            await asyncio.wait(list(self.tasks), timeout=timeout)
        for c in list(self.connections):
            if c.transport is not None:
                c.transport.close()
        for t in list(self.tasks):
            t.cancel()
        if self.udp is not None:
            self.udp.close()


def _has_ipv6() -> bool:
    if not socket.has_ipv6:
        return False
    try:
        s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
        s.bind(("::", 0))
        s.close()
        return True
    except OSError:
        return False


class DNSServer:
    """Every listener of one engine, with start, reload and graceful stop."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.listeners: list[Listener] = []

    @property
    def addresses(self) -> list[tuple[str, int]]:
        """``(host, port)`` of each listener as bound (ephemeral ports resolved)."""
        return [(lst.host or "0.0.0.0", lst.port) for lst in self.listeners]

    async def start(self) -> None:
        engine = self.engine
        engine.loop = asyncio.get_running_loop()
        try:
            for server in engine.servers:
                if server.scheme != "dns":
                    log.warning("%s: only dns:// servers are served; skipping", server.label)
                    continue
                for host in server.addresses:
                    lst = Listener(server, host, int(server.port))
                    await lst.open()
                    self.listeners.append(lst)
                    if server.port == "0":
                        # Ephemeral: every key of this server now shares the bound port.
                        server.port = str(lst.port)
            await start_plugins(engine)
        except BaseException:
            await self.stop(0)
            raise

    async def stop(self, grace: float = 5.0) -> None:
        """Stop accepting, let in-flight queries finish (within ``grace``), stop plugins."""
        for lst in self.listeners:
            lst.stop_accepting()
        for lst in self.listeners:
            await lst.drain(grace)
        self.listeners = []
        await stop_plugins(self.engine)
        if self.engine.loop is asyncio.get_running_loop():
            self.engine.loop = None

    async def swap(self, engine: Engine) -> None:
        """Replace the engine (reload): keep listeners whose address stays, open new
        ones, close the rest. The caller built ``engine`` already, so a bad Corefile
        never reaches this point and the old config keeps serving."""
        old = self.engine
        await stop_plugins(old)
        engine.loop = asyncio.get_running_loop()
        keep: dict[tuple[str, int], Listener] = {(lst.host, lst.port): lst for lst in self.listeners}
        new_listeners: list[Listener] = []
        try:
            for server in engine.servers:
                if server.scheme != "dns":
                    continue
                for host in server.addresses:
                    k = (host, int(server.port))
                    lst = keep.pop(k, None)
                    if lst is None:
                        lst = Listener(server, host, int(server.port))
                        await lst.open()
                    lst.server = server
                    new_listeners.append(lst)
            await start_plugins(engine)
        except BaseException:
            # Roll back: the old engine keeps serving.
            for lst in new_listeners:
                if (lst.host, lst.port) not in {(x.host, x.port) for x in self.listeners}:
                    lst.close()
            for lst in self.listeners:
                for server in old.servers:
                    if str(lst.port) == server.port and lst.host in server.addresses:
                        lst.server = server
            old.loop = asyncio.get_running_loop()
            await start_plugins(old)
            raise
        for lst in keep.values():
            lst.stop_accepting()
            await lst.drain(1.0)
        self.listeners = new_listeners
        self.engine = engine


async def start_plugins(engine: Engine) -> None:
    for p in engine.plugins():
        await p.start(engine)


async def stop_plugins(engine: Engine) -> None:
    for p in engine.plugins():
        try:
            await p.stop()
        except Exception:
            log.exception("stopping plugin %s failed", p.name)


__all__ = ["DNSServer", "Listener", "Resume"]
