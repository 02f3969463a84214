"""The in-process front end: :class:`Resolver`.

``Resolver.resolve("api.example", "A")`` runs the same chains as ``pycorefile
serve`` without any socket. A chain that never waits (template, hosts, cache hits)
runs right here in the caller's thread. A chain that must wait for the network
(forward) is moved to the resolver's own event loop, started on first need in a
background thread and kept for the resolver's lifetime, so that ``resolve`` works
from plain code, from threads and beside an unrelated running loop, and
``resolve_async`` works inside one.
"""

from __future__ import annotations

import asyncio
import os
import threading
from concurrent.futures import Future
from typing import Any

from dnslib import DNSRecord

from . import wire as w
from .chain import Reply, Request, Resume
from .corefile.model import Corefile
from .metrics import MetricsRegistry
from .registry import Registry
from .routing import Engine, Server, bare_reply, copy_message, finish_both


def _load(
    corefile: str | Corefile, filename: str = "Corefile", registry: Registry | None = None
) -> Corefile:
    if isinstance(corefile, Corefile):
        return corefile
    from . import corefile as cf

    return cf.loads(corefile, filename=filename, registry=registry)


class Resolver:
    """Resolve names through a Corefile's chains, in process.

    ``port`` picks the server when the Corefile listens on several ports.
    DNS failures are rcodes on the returned reply, never exceptions.
    """

    def __init__(
        self,
        engine: Engine,
        *,
        port: int | str | None = None,
        client: tuple[str, int] = ("127.0.0.1", 0),
    ) -> None:
        self.engine = engine
        self.server: Server = engine.server_for(port)
        self.client = client
        self._thread: threading.Thread | None = None
        self._own_loop: asyncio.AbstractEventLoop | None = None
        #: Query bytes by (name, type, class, DO): names repeat, encoding them does not.
        self._queries: dict[tuple[Any, ...], bytes] = {}
        self._loop_lock = threading.Lock()
        self._closed = False
        self._qid = 0

    # -- construction ---------------------------------------------------------
    @classmethod
    def from_corefile(
        cls,
        corefile: str | Corefile,
        *,
        port: int | str | None = None,
        filename: str = "Corefile",
        registry: Registry | None = None,
    ) -> Resolver:
        """Build from Corefile text or an already loaded model."""
        model = _load(corefile, filename, registry)
        if not model.blocks:
            model = _load(DEFAULT_COREFILE, filename, registry)
        return cls(Engine(model, registry=registry), port=port)

    @classmethod
    def from_path(cls, path: str | os.PathLike[str], *, port: int | str | None = None) -> Resolver:
        from . import corefile as cf

        return cls(Engine(cf.load(os.fspath(path))), port=port)

    @property
    def metrics(self) -> MetricsRegistry:
        """This resolver's own metrics (never prometheus_client's global registry)."""
        return self.engine.metrics

    # -- the event loop, only when a plugin must wait ---------------------------
    def _ensure_loop(self) -> asyncio.AbstractEventLoop:
        loop = self.engine.loop
        if loop is not None:
            return loop
        with self._loop_lock:
            if self.engine.loop is not None:
                return self.engine.loop
            if self._closed:
                raise RuntimeError("resolver is closed")
            loop = new_event_loop()
            ready = threading.Event()

            def run() -> None:
                asyncio.set_event_loop(loop)
                loop.call_soon(ready.set)
                loop.run_forever()

            t = threading.Thread(target=run, name="pycorefile-resolver", daemon=True)
            t.start()
            ready.wait()
            self._thread = t
            self._own_loop = loop
            self.engine.loop = loop
            return loop

    def _continue(self, pending: Resume) -> Future[Any]:
        loop = self._ensure_loop()

        async def run() -> Any:
            return await pending

        return asyncio.run_coroutine_threadsafe(run(), loop)

    # -- queries ----------------------------------------------------------------
    def _drive(self, coro: Any) -> Any:
        """Run a chain coroutine from synchronous code."""
        try:
            first = coro.send(None)
        except StopIteration as stop:
            return stop.value
        return self._continue(Resume(coro, first)).result()

    async def _drive_async(self, coro: Any) -> Any:
        try:
            first = coro.send(None)
        except StopIteration as stop:
            return stop.value
        pending = Resume(coro, first)
        if first is not None and asyncio.isfuture(first):
            # A plugin awaited something on the caller's own loop: continue there.
            return await pending
        return await asyncio.wrap_future(self._continue(pending))

    async def _serve(self, req: Request) -> tuple[Reply, DNSRecord]:
        reply = await self.server.serve(req)
        if reply.final and reply.written:
            msg = reply.message if reply.cached else reply._msg
            if msg is not None:
                # A cache hit or a memoised answer keeps a record: share its RRs
                # instead of decoding the bytes again.
                return reply, copy_message(msg, req.id)
        data, msg = finish_both(req, reply)
        if msg is not None:
            return reply, msg
        if data is None:
            # Dropped (a client would time out): in process this reads as SERVFAIL.
            data = bare_reply(req, 2)
        return reply, DNSRecord.parse(data)

    def resolve(
        self,
        qname: str,
        qtype: str | int = "A",
        qclass: str | int = "IN",
        *,
        client: tuple[str, int] | None = None,
        dnssec: bool = False,
    ) -> DNSRecord:
        """Resolve and return the reply as a dnslib record (rcode on its header)."""
        req = self._make(qname, qtype, qclass, client, dnssec)
        msg = self._drive(self._serve(req))[1]
        if msg.header.tc:
            # A truncated answer: retry over TCP, as any stub resolver would.
            msg = self._drive(self._serve(self._make(qname, qtype, qclass, client, dnssec, "tcp")))[1]
        return msg

    async def resolve_async(
        self,
        qname: str,
        qtype: str | int = "A",
        qclass: str | int = "IN",
        *,
        client: tuple[str, int] | None = None,
        dnssec: bool = False,
    ) -> DNSRecord:
        """``resolve`` for async code (never blocks the caller's loop)."""
        req = self._make(qname, qtype, qclass, client, dnssec)
        msg = (await self._drive_async(self._serve(req)))[1]
        if msg.header.tc:
            tcp = self._make(qname, qtype, qclass, client, dnssec, "tcp")
            msg = (await self._drive_async(self._serve(tcp)))[1]
        return msg

    def resolve_reply(
        self, qname: str, qtype: str | int = "A", qclass: str | int = "IN"
    ) -> tuple[Reply, DNSRecord]:
        """Like :meth:`resolve`, also returning the chain's :class:`Reply`
        (which plugin answered, whether it was a cache hit, the error)."""
        req = self._make(qname, qtype, qclass, None, False)
        reply, msg = self._drive(self._serve(req))
        return reply, msg

    def _make(
        self, qname: str, qtype: str | int, qclass: str | int,
        client: tuple[str, int] | None, dnssec: bool, proto: str = "udp",
    ) -> Request:
        self._qid = qid = (self._qid + 1) & 0xFFFF
        key = (qname, qtype, qclass, dnssec)
        query = self._queries.get(key)
        if query is None:
            query = w.build_query(
                qname, w.qtype_code(qtype), w.qclass_code(qclass),
                edns_size=1232 if dnssec else None, do=dnssec,
            )
            if len(self._queries) >= 4096:
                self._queries.clear()
            self._queries[key] = query
        data = w.U16.pack(qid) + query[2:]
        req = Request.from_wire(data, client or self.client, proto)
        # In-process callers have no datagram limit of their own.
        req.udp_size = 65535
        return req

    def handle(
        self, query: bytes, client: tuple[str, int] = ("127.0.0.1", 0), proto: str = "udp"
    ) -> bytes:
        """Bytes in, bytes out, exactly as the server would answer (empty bytes
        when the server would drop the message)."""
        out = self.server.dispatch(bytes(query), client, proto)
        if out is None:
            return b""
        if isinstance(out, bytes):
            return out
        return self._continue(out).result() or b""  # type: ignore[arg-type]

    async def handle_async(
        self, query: bytes, client: tuple[str, int] = ("127.0.0.1", 0), proto: str = "udp"
    ) -> bytes:
        out = self.server.dispatch(bytes(query), client, proto)
        if out is None:
            return b""
        if isinstance(out, bytes):
            return out
        return await asyncio.wrap_future(self._continue(out)) or b""  # type: ignore[arg-type]

    # -- lifetime -----------------------------------------------------------------
    def close(self) -> None:
        """Stop plugins (closing upstream sockets, flushing pending logs) and the
        background loop, if this resolver started one. An engine that another
        driver runs on its own loop (a server) is left to that driver."""
        if self._closed:
            return

        async def stop_all() -> None:
            for p in self.engine.plugins():
                try:
                    await p.stop()
                except Exception:  # closing must not fail halfway
                    pass

        loop = self.engine.loop
        if loop is None:
            # Nothing ever needed a loop; stopping usually needs none either.
            self._drive(stop_all())
        elif self._thread is not None and loop is self._own_loop:
            asyncio.run_coroutine_threadsafe(stop_all(), loop).result(timeout=5)
        self._closed = True
        own = self._own_loop
        if own is None:
            return
        own.call_soon_threadsafe(own.stop)
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self.engine.loop is own:
            self.engine.loop = None
        own.close()
        self._own_loop = None

    def __enter__(self) -> Resolver:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:  # pragma: no cover - best effort
        try:
            if not self._closed and self.engine.loop is not None:
                self.close()
        except Exception:
            pass


def new_event_loop() -> asyncio.AbstractEventLoop:
    """uvloop when installed (its datagram path is several times faster)."""
    try:
        import uvloop

        return uvloop.new_event_loop()
    except ImportError:  # pragma: no cover - uvloop is a dependency on Linux
        return asyncio.new_event_loop()


DEFAULT_COREFILE = """.:1053 {
    whoami
    log
}
"""


