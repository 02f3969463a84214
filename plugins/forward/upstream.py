"""Talking to one upstream: UDP, TCP and DNS-over-TLS exchanges with connection reuse.

The forward plugin asks an :class:`Upstream` for one exchange at a time; the
upstream hands it to its :class:`Transport`. :class:`NetTransport` is the real one,
:class:`MockTransport` a test double that answers from a function.

How :class:`NetTransport` uses sockets (all asyncio, on the engine's loop; nothing
ever blocks):

* **UDP: ID multiplexing over a few connected sockets.** Each upstream keeps a
  small set of *channels*: a connected, non-blocking UDP socket from a kernel-chosen
  (random) source port, read by a loop reader callback. One channel carries up to
  :data:`UDP_INFLIGHT_PER_SOCKET` queries at once, told apart by their random IDs;
  a reply is handed to the waiting query only when its ID *and* question match
  (RFC 5452 §9.1). Anything else is ignored and counted
  (``pycorefile_forward_spoofed_replies_total``), and the query keeps waiting until
  its read deadline. The oldest usable channel is taken first; a new one is opened
  when all are full, up to :data:`UDP_MAX_SOCKETS` per upstream. A channel is
  retired after :data:`UDP_QUERIES_PER_SOCKET` queries (so the source port keeps
  changing under steady load), when idle for longer than ``expire`` or older than
  ``max_age``. Because the socket is connected, an ICMP port unreachable surfaces
  as ``ECONNREFUSED`` and fails the queries at once, as in CoreDNS.
* **TCP and TLS: one query at a time per connection**, idle connections pooled and
  reused oldest first (CoreDNS's ``persistConn`` cache), dropped when idle longer
  than ``expire``, older than ``max_age``, closed by the peer, or beyond
  ``max_idle_conns``. At most :data:`STREAM_MAX_CONNECTIONS` exchanges per
  upstream run at once; more wait (within their read deadline) for a slot.
* Every upstream query gets a fresh ID from :mod:`secrets`; the client's ID is put
  back on the reply by the caller.
"""

from __future__ import annotations

import abc
import asyncio
import errno
import inspect
import secrets
import socket
import ssl
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

from pycorefile import wire as w
from pycorefile.chain import Request
from pycorefile.metrics import MetricsRegistry

from .replies import truncated, udp_accepts
from .setup import UpstreamSpec

#: Queries in flight on one UDP socket before another socket is opened.
UDP_INFLIGHT_PER_SOCKET = 100
#: UDP sockets per upstream (beyond it, the least busy socket takes more queries).
UDP_MAX_SOCKETS = 16
#: Queries one UDP socket carries before it is retired for a fresh source port.
UDP_QUERIES_PER_SOCKET = 1000
#: Concurrent TCP/TLS exchanges per upstream.
STREAM_MAX_CONNECTIONS = 256
#: Write deadline for TCP/TLS (CoreDNS: 2 s).
WRITE_TIMEOUT = 2.0
#: Dial timeout bounds; the value in between adapts to recent dial times.
MIN_DIAL_TIMEOUT = 1.0
MAX_DIAL_TIMEOUT = 30.0
#: How often idle connections are looked at (CoreDNS's janitor runs every 10 s).
JANITOR_INTERVAL = 10.0

PROTO_UDP = "udp"
PROTO_TCP = "tcp"
PROTO_TLS = "tcp-tls"


class _RandomIds:
    """Unpredictable 16-bit message IDs from the OS CSPRNG (:mod:`secrets`), fetched
    256 at a time so that a query costs no system call of its own."""

    __slots__ = ("buf", "pos")

    def __init__(self) -> None:
        self.buf = b""
        self.pos = 0

    def __call__(self) -> int:
        pos = self.pos
        buf = self.buf
        if pos + 2 > len(buf):
            buf = self.buf = secrets.token_bytes(512)
            pos = 0
        self.pos = pos + 2
        return (buf[pos] << 8) | buf[pos + 1]


#: A fresh random ID for every upstream query (RFC 5452 §9.2).
new_id = _RandomIds()


class ExchangeError(Exception):
    """A network failure talking to an upstream (timeout, refused, reset, TLS...).

    The text follows Go's ``net`` errors, as CoreDNS's ``errors`` plugin shows
    them: ``read udp 127.0.0.1:40001->127.0.0.1:53: i/o timeout``.
    """

    def __init__(self, message: str, *, timeout: bool = False) -> None:
        super().__init__(message)
        self.timeout = timeout


class CachedClosed(ExchangeError):
    """A pooled connection turned out closed by the peer: retry at once on a new one."""


class InvalidRequest(Exception):
    """The request cannot be sent as a DNS message (the client gets FORMERR)."""


def _reason(exc: BaseException) -> str:
    """Go-style lower-case reason for an OS error."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"tls: failed to verify certificate: {exc.verify_message}"
    if isinstance(exc, ssl.SSLError):
        return f"tls: {exc.reason or exc}"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror.lower()
    return str(exc) or type(exc).__name__


def _fmt_addr(addr: Any) -> str:
    host, port = addr[0], addr[1]
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class Query:
    """One upstream query: the client's message (sent with a fresh ID), its
    question key for matching replies, and the UDP receive size."""

    __slots__ = ("body", "key", "bufsize")

    def __init__(self, body: bytes, key: bytes, bufsize: int = 512) -> None:
        self.body = body
        self.key = key
        self.bufsize = bufsize

    def with_id(self, qid: int) -> bytes:
        return w.U16.pack(qid) + self.body[2:]


class Stats:
    """The metric children a transport updates (bound once per upstream)."""

    __slots__ = ("hits", "misses", "ignored")

    def __init__(
        self,
        metrics: MetricsRegistry | None,
        proxy_name: str,
        to: str,
        protos: tuple[str, ...] = (PROTO_UDP, PROTO_TCP, PROTO_TLS),
    ) -> None:
        metrics = metrics or MetricsRegistry()
        hits = metrics.counter(
            "coredns_proxy_conn_cache_hits_total",
            "Upstream connections taken from the connection cache, per upstream and protocol.",
            ["proxy_name", "to", "proto"],
        )
        misses = metrics.counter(
            "coredns_proxy_conn_cache_misses_total",
            "Upstream connections that had to be opened, per upstream and protocol.",
            ["proxy_name", "to", "proto"],
        )
        ignored = metrics.counter(
            "pycorefile_forward_spoofed_replies_total",
            "Upstream datagrams or messages ignored because they matched no query in "
            "flight (wrong ID or question, undecodable, or late).",
            ["to"],
        )
        # Children for the protocols this upstream can use exist from the start (at 0).
        self.hits = {p: hits.labels(proxy_name, to, p) for p in protos}
        self.misses = {p: misses.labels(proxy_name, to, p) for p in protos}
        self.ignored = ignored.labels(to)


class Transport(abc.ABC):
    """How an :class:`Upstream` reaches its server.

    ``exchange`` sends one query over ``proto`` (``"udp"`` or ``"tcp"``; a TLS
    upstream always uses TLS) on a reusable connection and returns the reply bytes
    (ID and question already checked); ``probe`` does the same on a fresh
    connection with its own timeout (health checks). Both raise
    :class:`ExchangeError` on network failures.
    """

    stats: Stats

    @abc.abstractmethod
    async def exchange(self, query: Query, proto: str) -> bytes:
        """Send ``query`` and return the checked reply bytes."""

    async def probe(self, query: Query, proto: str, timeout: float) -> bytes:
        return await self.exchange(query, proto)

    async def close(self) -> None:  # noqa: B027 - optional: transports without connections
        """Close every connection; exchanges fail until :meth:`reopen`."""

    def reopen(self) -> None:  # noqa: B027 - optional, like close()
        """Allow exchanges again after :meth:`close` (a server restarting its plugins)."""

    def pool_sizes(self) -> dict[str, int]:
        """Open connections per protocol (for tests and debugging)."""
        return {}


Handler = Callable[[bytes, str], "bytes | None | Awaitable[bytes | None]"]


class MockTransport(Transport):
    """A transport answering from ``handler(query_bytes, proto)``, for tests.

    The handler gets the query as it would be sent (with a fresh random ID) and
    returns the reply bytes (returned as they are), or ``None`` for a timeout
    (reported at once, to keep tests fast), or raises ``OSError`` (a network
    error). It may be a coroutine function. ``calls`` records ``(query, proto)``.
    """

    def __init__(self, handler: Handler, *, to: str = "mock") -> None:
        self.handler = handler
        self.calls: list[tuple[bytes, str]] = []
        self.stats = Stats(None, "forward", to)

    async def exchange(self, query: Query, proto: str) -> bytes:
        wire = query.with_id(new_id())
        self.calls.append((wire, proto))
        try:
            out = self.handler(wire, proto)
            if inspect.isawaitable(out):
                out = await out
        except OSError as exc:
            raise ExchangeError(f"read {proto} mock: {_reason(exc)}") from exc
        if out is None:
            raise ExchangeError(f"read {proto} mock: i/o timeout", timeout=True)
        return out


# ---------------------------------------------------------------------------
# UDP
# ---------------------------------------------------------------------------


class _UDPChannel:
    """One connected UDP socket carrying many queries, matched by ID and question."""

    __slots__ = (
        "owner", "loop", "sock", "fd", "pending", "created", "used", "queries", "closed",
        "name",
    )

    def __init__(self, owner: NetTransport, loop: asyncio.AbstractEventLoop, sock: socket.socket):
        self.owner = owner
        self.loop = loop
        self.sock = sock
        self.fd = sock.fileno()
        self.pending: dict[int, tuple[asyncio.Future[bytes], bytes]] = {}
        self.created = self.used = loop.time()
        self.queries = 0
        self.closed = False
        try:
            local = _fmt_addr(sock.getsockname())
        except OSError:
            local = "?"
        self.name = f"{local}->{owner.addr}"
        loop.add_reader(self.fd, self._readable)

    def _readable(self) -> None:
        sock = self.sock
        pending = self.pending
        for _ in range(64):  # bounded per wake-up; the reader fires again if more wait
            try:
                data = sock.recv(65535)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                # ECONNREFUSED (ICMP port unreachable) and friends: the upstream
                # is not there; every query on this socket fails now.
                self.fail(exc)
                return
            if len(data) >= 12:
                qid = (data[0] << 8) | data[1]
                entry = pending.get(qid)
                if entry is not None and udp_accepts(data, entry[1]):
                    del pending[qid]
                    if not entry[0].done():
                        entry[0].set_result(data)
                    continue
            self.owner.stats.ignored.inc()

    async def exchange(self, query: Query, timeout: float) -> bytes:
        if self.closed:
            raise CachedClosed("use of closed socket")
        pending = self.pending
        qid = new_id()
        while qid in pending:
            qid = new_id()
        fut: asyncio.Future[bytes] = self.loop.create_future()
        pending[qid] = (fut, query.key)
        self.queries += 1
        try:
            self.sock.send(query.with_id(qid))
        except OSError as exc:
            pending.pop(qid, None)
            if exc.errno == errno.EMSGSIZE:
                raise InvalidRequest(f"write udp {self.name}: {_reason(exc)}") from exc
            if exc.errno == errno.ECONNREFUSED:
                self.fail(exc)
            raise ExchangeError(f"write udp {self.name}: {_reason(exc)}") from exc
        timer = self.loop.call_later(timeout, _time_out, fut)
        try:
            data = await fut
        except TimeoutError:
            raise ExchangeError(f"read udp {self.name}: i/o timeout", timeout=True) from None
        except OSError as exc:
            raise ExchangeError(f"read udp {self.name}: read: {_reason(exc)}") from exc
        finally:
            timer.cancel()
            if pending.get(qid, (None,))[0] is fut:
                del pending[qid]
            self.used = self.loop.time()
        if len(data) > query.bufsize:
            # Larger than we said we could take (a non-compliant upstream): CoreDNS
            # turns it into an empty reply with TC so the client retries over TCP.
            data = truncated(data, udp_accepts(data, query.key))
        return data

    def fail(self, exc: OSError) -> None:
        for fut, _ in self.pending.values():
            if not fut.done():
                fut.set_exception(OSError(exc.errno, exc.strerror))
        self.pending.clear()
        self.close()

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        try:
            self.loop.remove_reader(self.fd)
        except (RuntimeError, ValueError, OSError):  # the loop is already closed
            pass
        self.sock.close()
        for fut, _ in self.pending.values():
            if not fut.done():
                fut.set_exception(OSError(errno.ECONNABORTED, "use of closed network connection"))
        self.pending.clear()


def _time_out(fut: asyncio.Future[bytes]) -> None:
    if not fut.done():
        fut.set_exception(TimeoutError())


# ---------------------------------------------------------------------------
# TCP and TLS
# ---------------------------------------------------------------------------


class _Stream:
    """One pooled TCP or TLS connection."""

    __slots__ = ("reader", "writer", "created", "used", "name", "kind")

    def __init__(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, kind: str,
        now: float, remote: str,
    ) -> None:
        self.reader = reader
        self.writer = writer
        self.kind = kind
        self.created = self.used = now
        try:
            local = _fmt_addr(writer.get_extra_info("sockname"))
        except (TypeError, IndexError):
            local = "?"
        self.name = f"{local}->{remote}"

    def usable(self) -> bool:
        return not self.writer.is_closing() and not self.reader.at_eof()

    def close(self) -> None:
        try:
            self.writer.close()
        except RuntimeError:  # the loop is already closed
            pass


async def _read_frame(reader: asyncio.StreamReader) -> bytes:
    head = await reader.readexactly(2)
    return await reader.readexactly((head[0] << 8) | head[1])


# ---------------------------------------------------------------------------
# The real transport
# ---------------------------------------------------------------------------


class NetTransport(Transport):
    """UDP, TCP and TLS to one upstream address (see the module docstring)."""

    def __init__(
        self,
        spec: UpstreamSpec,
        *,
        tls: ssl.SSLContext | None = None,
        source_address: str | None = None,
        expire: float = 10.0,
        max_age: float = 0.0,
        max_idle_conns: int = 0,
        read_timeout: float = 2.0,
        stats: Stats | None = None,
    ) -> None:
        self.addr = spec.addr
        self.host = spec.host
        self.port = spec.port
        self.tls = tls if spec.scheme == "tls" else None
        self.server_name = spec.server_name
        self.source_address = source_address
        self.family = socket.AF_INET6 if ":" in spec.host else socket.AF_INET
        self.expire = expire
        self.max_age = max_age
        self.max_idle_conns = max_idle_conns
        self.read_timeout = read_timeout
        self.stats = stats or Stats(None, "forward", spec.addr)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._udp: list[_UDPChannel] = []
        self._streams: deque[_Stream] = deque()
        self._slots: asyncio.Semaphore | None = None
        self._janitor: asyncio.TimerHandle | None = None
        self._closed = False
        # CoreDNS starts its moving average at half the maximum dial timeout.
        self._avg_dial = MAX_DIAL_TIMEOUT / 2

    # -- loop binding ------------------------------------------------------------
    def _bind(self) -> asyncio.AbstractEventLoop:
        if self._closed:
            # Stopped (server shutdown or reload): open nothing new that nobody would close.
            raise ExchangeError("proxy: transport stopped")
        loop = asyncio.get_running_loop()
        if loop is not self._loop:
            # First use, or the engine moved to a new loop (a Resolver re-created its
            # loop): whatever belonged to the old loop cannot be used any more.
            self._drop_all()
            self._loop = loop
            self._slots = asyncio.Semaphore(STREAM_MAX_CONNECTIONS)
        return loop

    def _schedule_janitor(self) -> None:
        if self._janitor is None and self._loop is not None:
            interval = min(JANITOR_INTERVAL, max(self.expire, 0.05))
            self._janitor = self._loop.call_later(interval, self._sweep)

    def _sweep(self) -> None:
        """Close idle connections that expired (CoreDNS's connection manager)."""
        self._janitor = None
        loop = self._loop
        if loop is None:
            return
        now = loop.time()
        keep = []
        for ch in self._udp:
            if ch.closed:
                continue
            if not ch.pending and self._stale(ch.created, ch.used, now, ch.queries):
                ch.close()
            else:
                keep.append(ch)
        self._udp = keep
        streams: deque[_Stream] = deque()
        for st in self._streams:
            if st.usable() and not self._stale(st.created, st.used, now, 0):
                streams.append(st)
            else:
                st.close()
        self._streams = streams
        if self._udp or self._streams:
            self._schedule_janitor()

    def _stale(self, created: float, used: float, now: float, queries: int) -> bool:
        if now - used > self.expire:
            return True
        if self.max_age > 0 and now - created > self.max_age:
            return True
        return queries >= UDP_QUERIES_PER_SOCKET

    def pool_sizes(self) -> dict[str, int]:
        kind = PROTO_TLS if self.tls is not None else PROTO_TCP
        return {
            PROTO_UDP: sum(1 for ch in self._udp if not ch.closed),
            kind: len(self._streams),
        }

    # -- exchange --------------------------------------------------------------------
    async def exchange(self, query: Query, proto: str) -> bytes:
        self._bind()
        if self.tls is not None:
            return await self._exchange_stream(query, PROTO_TLS, self.read_timeout)
        if proto == PROTO_UDP:
            ch = self._take_channel()
            try:
                return await ch.exchange(query, self.read_timeout)
            finally:
                self._release_channel(ch)
        return await self._exchange_stream(query, PROTO_TCP, self.read_timeout)

    async def probe(self, query: Query, proto: str, timeout: float) -> bytes:
        """One exchange on a fresh connection that is closed afterwards."""
        loop = self._bind()
        if self.tls is None and proto == PROTO_UDP:
            ch = self._open_channel(loop)
            try:
                return await ch.exchange(query, timeout)
            finally:
                ch.close()
        kind = PROTO_TLS if self.tls is not None else PROTO_TCP
        st = await self._dial(kind, timeout)
        try:
            return await self._roundtrip(st, False, query, timeout)
        finally:
            st.close()

    # -- UDP channels ------------------------------------------------------------------
    def _open_channel(self, loop: asyncio.AbstractEventLoop) -> _UDPChannel:
        sock = socket.socket(self.family, socket.SOCK_DGRAM)
        try:
            sock.setblocking(False)
            if self.source_address:
                sock.bind((self.source_address, 0))
            # Connected: only the upstream's address can reach it, and an ICMP port
            # unreachable becomes ECONNREFUSED on the next read.
            sock.connect((self.host, self.port))
            return _UDPChannel(self, loop, sock)
        except OSError as exc:
            sock.close()
            raise ExchangeError(f"dial udp {self.addr}: {_reason(exc)}") from exc

    def _take_channel(self) -> _UDPChannel:
        loop = self._loop
        assert loop is not None
        now = loop.time()
        chans = self._udp
        least: _UDPChannel | None = None
        i = 0
        while i < len(chans):
            ch = chans[i]
            if ch.closed:
                del chans[i]
                continue
            if self._stale(ch.created, ch.used if not ch.pending else now, now, ch.queries):
                if not ch.pending:
                    ch.close()
                    del chans[i]
                    continue
                i += 1  # draining: takes no new queries, closes when the last one is done
                continue
            if len(ch.pending) < UDP_INFLIGHT_PER_SOCKET:
                self.stats.hits[PROTO_UDP].inc()
                return ch
            if least is None or len(ch.pending) < len(least.pending):
                least = ch
            i += 1
        if least is not None and len(chans) >= UDP_MAX_SOCKETS:
            self.stats.hits[PROTO_UDP].inc()
            return least
        self.stats.misses[PROTO_UDP].inc()
        ch = self._open_channel(loop)
        chans.append(ch)
        self._schedule_janitor()
        return ch

    def _release_channel(self, ch: _UDPChannel) -> None:
        if ch.closed or ch.pending:
            return
        now = ch.used
        if self._stale(ch.created, now, now, ch.queries) or self.expire == 0:
            ch.close()
            return
        if self.max_idle_conns > 0:
            idle = sum(1 for c in self._udp if not c.closed and not c.pending)
            if idle > self.max_idle_conns:
                ch.close()

    # -- TCP and TLS ---------------------------------------------------------------------
    def _dial_timeout(self) -> float:
        avg = self._avg_dial
        if avg < MIN_DIAL_TIMEOUT:
            return MIN_DIAL_TIMEOUT
        if avg < MAX_DIAL_TIMEOUT / 2:
            return 2 * avg
        return MAX_DIAL_TIMEOUT

    async def _dial(self, kind: str, timeout: float | None = None) -> _Stream:
        loop = self._loop
        assert loop is not None
        adaptive = timeout is None
        limit = self._dial_timeout() if timeout is None else timeout
        start = loop.time()
        kwargs: dict[str, Any] = {"family": self.family}
        if self.source_address:
            kwargs["local_addr"] = (self.source_address, 0)
        if kind == PROTO_TLS:
            kwargs["ssl"] = self.tls
            # No name configured: verify the certificate against the IP address.
            kwargs["server_hostname"] = self.server_name or self.host
            kwargs["ssl_handshake_timeout"] = limit
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(self.host, self.port, **kwargs), limit
            )
        except (asyncio.TimeoutError, TimeoutError):
            raise ExchangeError(f"dial {kind} {self.addr}: i/o timeout", timeout=True) from None
        except (OSError, ssl.SSLError) as exc:
            verb = "" if isinstance(exc, ssl.SSLError) else "connect: "
            raise ExchangeError(f"dial {kind} {self.addr}: {verb}{_reason(exc)}") from exc
        finally:
            if adaptive:
                # CoreDNS's moving average (weight 1/4) of dial times.
                self._avg_dial += (loop.time() - start - self._avg_dial) / 4
        return _Stream(reader, writer, kind, loop.time(), self.addr)

    def _take_stream(self) -> _Stream | None:
        loop = self._loop
        assert loop is not None
        now = loop.time()
        streams = self._streams
        while streams:
            st = streams.popleft()  # oldest first, for source-port spread
            if st.usable() and not self._stale(st.created, st.used, now, 0):
                return st
            st.close()
        return None

    def _release_stream(self, st: _Stream) -> None:
        if self.max_idle_conns > 0 and len(self._streams) >= self.max_idle_conns:
            st.close()
            return
        st.used = self._loop.time() if self._loop is not None else time.monotonic()
        self._streams.append(st)
        self._schedule_janitor()

    async def _exchange_stream(self, query: Query, kind: str, timeout: float) -> bytes:
        slots = self._slots
        assert slots is not None
        if slots.locked():
            try:
                await asyncio.wait_for(slots.acquire(), timeout)
            except (asyncio.TimeoutError, TimeoutError):
                raise ExchangeError(
                    f"dial {kind} {self.addr}: too many connections in use", timeout=True
                ) from None
        else:
            await slots.acquire()
        try:
            st = self._take_stream()
            cached = st is not None
            if st is None:
                self.stats.misses[kind].inc()
                st = await self._dial(kind)
            else:
                self.stats.hits[kind].inc()
            data = await self._roundtrip(st, cached, query, timeout)
            self._release_stream(st)
            return data
        finally:
            slots.release()

    async def _roundtrip(self, st: _Stream, cached: bool, query: Query, timeout: float) -> bytes:
        loop = self._loop
        assert loop is not None
        qid = new_id()
        msg = query.with_id(qid)
        writer = st.writer
        try:
            writer.write(w.U16.pack(len(msg)) + msg)
            if writer.transport.get_write_buffer_size():
                await asyncio.wait_for(writer.drain(), WRITE_TIMEOUT)
        except (asyncio.TimeoutError, TimeoutError):
            st.close()
            raise ExchangeError(f"write {st.kind} {st.name}: i/o timeout", timeout=True) from None
        except (OSError, RuntimeError) as exc:
            st.close()
            if cached:
                raise CachedClosed(f"write {st.kind} {st.name}: {_reason(exc)}") from exc
            raise ExchangeError(f"write {st.kind} {st.name}: {_reason(exc)}") from exc
        deadline = loop.time() + timeout
        want = w.U16.pack(qid)
        first = True
        try:
            while True:
                data = await asyncio.wait_for(
                    _read_frame(st.reader), max(deadline - loop.time(), 0.0)
                )
                if data[:2] == want:
                    return data
                # Another ID on our own connection: a stray reply, skip it.
                first = False
                self.stats.ignored.inc()
        except (asyncio.TimeoutError, TimeoutError):
            st.close()
            raise ExchangeError(f"read {st.kind} {st.name}: i/o timeout", timeout=True) from None
        except asyncio.IncompleteReadError as exc:
            st.close()
            if cached and first and not exc.partial:
                raise CachedClosed(f"read {st.kind} {st.name}: EOF") from None
            raise ExchangeError(f"read {st.kind} {st.name}: EOF") from None
        except (OSError, ssl.SSLError) as exc:
            st.close()
            if cached and first:
                raise CachedClosed(f"read {st.kind} {st.name}: {_reason(exc)}") from exc
            raise ExchangeError(f"read {st.kind} {st.name}: {_reason(exc)}") from exc

    # -- shutdown ---------------------------------------------------------------------------
    def _drop_all(self) -> None:
        if self._janitor is not None:
            self._janitor.cancel()
            self._janitor = None
        for ch in self._udp:
            ch.close()
        self._udp = []
        for st in self._streams:
            st.close()
        self._streams = deque()

    async def close(self) -> None:
        self._closed = True
        self._drop_all()

    def reopen(self) -> None:
        self._closed = False


# ---------------------------------------------------------------------------
# Upstream
# ---------------------------------------------------------------------------


class Upstream:
    """One TO address of a ``forward`` line: transport, health state and metrics.

    ``fails`` counts consecutive failed health checks; the upstream is *down* when
    it exceeds ``max_fails`` (never, when ``max_fails`` is 0).
    """

    def __init__(self, spec: UpstreamSpec, transport: Transport, proxy_name: str = "forward"):
        self.spec = spec
        self.addr = spec.addr
        self.transport = transport
        self.proxy_name = proxy_name
        self.fails = 0
        self.health: Any = None  # a HealthCheck, attached by the plugin
        self._durations: dict[int, Any] = {}
        self._histogram: Any = None
        self.bind_metrics(None)

    def bind_metrics(self, metrics: MetricsRegistry | None) -> None:
        """Resolve this upstream's metric children on ``metrics`` (once per engine)."""
        registry = metrics or MetricsRegistry()
        self._histogram = registry.histogram(
            "coredns_proxy_request_duration_seconds",
            "Time each upstream exchange took, per upstream and reply rcode.",
            ["proxy_name", "to", "rcode"],
        )
        self._durations = {}
        protos = (PROTO_TLS,) if self.spec.scheme == "tls" else (PROTO_UDP, PROTO_TCP)
        self.transport.stats = Stats(registry, self.proxy_name, self.addr, protos)
        self.hc_failures = registry.counter(
            "coredns_proxy_healthcheck_failures_total",
            "Failed upstream health checks, per upstream.",
            ["proxy_name", "to"],
        ).labels(self.proxy_name, self.addr)

    def down(self, max_fails: int) -> bool:
        return max_fails != 0 and self.fails > max_fails

    async def exchange(self, request: Request, proto: str) -> bytes:
        """Send ``request`` over ``proto`` and return the upstream's reply bytes (with
        the upstream ID; the caller restores the client's)."""
        data = request.wire
        if len(data) < 12 or len(data) > 65535 or request.qdcount != 1:
            raise InvalidRequest(f"proxy: invalid request: a message of {len(data)} bytes")
        query = Query(data, request.key, max(request.max_size, 512))
        start = time.perf_counter()
        reply = await self.transport.exchange(query, proto)
        took = time.perf_counter() - start
        rcode = reply[3] & 0xF
        child = self._durations.get(rcode)
        if child is None:
            child = self._durations[rcode] = self._histogram.labels(
                self.proxy_name, self.addr, w.rcode_name(rcode)
            )
        child.observe(took)
        return reply

    def __repr__(self) -> str:
        return f"<Upstream {self.spec.scheme}://{self.addr} fails={self.fails}>"
