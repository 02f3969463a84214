"""The sans-I/O core: Corefile model → chains → ``bytes in, bytes out``.

An :class:`Engine` holds every chain of one Corefile and groups the server-block
keys into :class:`Server` objects, one per ``scheme://listen-address:port``, the
way CoreDNS creates one DNS server per address. A :class:`Server` routes one query
(spec §2.2): header checks, longest zone match, the chain, then the reply is
"scrubbed" (EDNS normalised to the client's, truncated to its size).
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Awaitable, Callable
from time import perf_counter
from typing import Any

from dnslib import EDNS0, DNSHeader, DNSRecord

from . import wire as w
from .chain import Chain, Plugin, Reply, Request, Resume, build_chain
from .corefile.model import Corefile, Key
from .metrics import MetricsRegistry
from .registry import Registry, default_registry

log = logging.getLogger("pycorefile")

Listener = Callable[[Request, Reply, float], None]


class Server:
    """The zones served on one listen address (CoreDNS: one ``dnsserver.Server``)."""

    def __init__(self, engine: Engine, scheme: str, port: str, addresses: tuple[str, ...]) -> None:
        self.engine = engine
        self.scheme = scheme
        self.addresses = addresses      # bind addresses; ("",) = all interfaces
        self.zones: dict[str, Chain] = {}
        self.keys: list[Key] = []
        #: Routing decisions by (name, is-DS): names repeat, so a look-up usually
        #: replaces the label walk. Bounded; cleared when full.
        self._routes: dict[tuple[str, bool], tuple[str, Chain] | None] = {}
        self.port = port

    @property
    def port(self) -> str:
        return self._port

    @port.setter
    def port(self, value: str) -> None:
        # The label is recomputed when an ephemeral port (":0") gets its real value.
        self._port = value
        host = self.addresses[0] if self.addresses else ""
        if ":" in host:
            host = f"[{host}]"
        self.label = f"{self.scheme}://{host}:{value}"
        """The ``server`` metric label: ``dns://127.0.0.1:1053`` or ``dns://:53``."""

    def add(self, key: Key, chain: Chain) -> None:
        if key.zone in self.zones:
            raise_duplicate(key)
        self.zones[key.zone] = chain
        self.keys.append(key)
        self._routes.clear()

    # -- routing ------------------------------------------------------------
    def route(self, name: str, qtype: int = 1) -> tuple[str, Chain] | None:
        """Longest zone match for ``name`` (lower-cased FQDN), then ``.``.

        DS queries prefer the parent zone (the deepest match is remembered and
        the walk continues), as CoreDNS does (RFC 4035 §3.1.4.1).
        """
        key = (name, qtype == 43)
        routes = self._routes
        try:
            return routes[key]
        except KeyError:
            pass
        hit = self._walk(name, qtype)
        if len(routes) >= 16384:
            routes.clear()
        routes[key] = hit
        return hit

    def _walk(self, name: str, qtype: int) -> tuple[str, Chain] | None:
        zones = self.zones
        found: tuple[str, Chain] | None = None
        n = name
        while n and n != ".":
            chain = zones.get(n)
            if chain is not None:
                if qtype != 43:  # DS
                    return n, chain
                if found is None:
                    found = (n, chain)
                else:
                    return n, chain
            i = n.find(".")
            if i < 0:
                break
            n = n[i + 1 :]
        if found is not None:
            return found
        chain = zones.get(".")
        return (".", chain) if chain is not None else None

    async def serve(self, req: Request) -> Reply:
        """Run the chain for ``req`` and return its (possibly unwritten) reply."""
        engine = self.engine
        req.server = self.label
        req.engine = engine
        start = perf_counter() if engine.listeners else 0.0
        if req.qdcount == 0:
            reply = Reply.fail(w.SERVFAIL, "no question")
            engine.report_unrouted(req, reply)
        else:
            hit = self.route(req.name, req.qtype)
            if hit is None:
                reply = Reply.fail(w.REFUSED, "no zone")
                engine.report_unrouted(req, reply)
            else:
                zone, chain = hit
                req.zone = zone
                head = chain.head
                if head is None:
                    reply = Reply.fail(w.REFUSED, "empty server block")
                    engine.report_unrouted(req, reply)
                elif req.qclass != 1 and not chain.enables_chaos:
                    reply = Reply.fail(w.REFUSED, "class not IN")
                    engine.report_unrouted(req, reply)
                elif req.edns_version > 0:
                    reply = Reply.fail(w.BADVERS, "unsupported EDNS version")
                else:
                    observer = chain.observer
                    if observer is not None:
                        t0 = perf_counter()
                    try:
                        reply = await head.serve(req, head.next)  # type: ignore[attr-defined]
                    except Exception as exc:  # a broken plugin must not kill the server
                        engine.report_panic(req, exc)
                        reply = Reply.fail(w.SERVFAIL, exc)
                    if observer is not None:
                        observer.observe(req, reply, perf_counter() - t0, chain.after_observer)
        if engine.listeners:
            took = perf_counter() - start
            for fn in engine.listeners:
                fn(req, reply, took)
        return reply

    def dispatch(
        self, data: bytes, client: tuple[str, int], proto: str
    ) -> bytes | None | Awaitable[bytes | None]:
        """Handle one datagram/message: bytes, ``None`` (drop) or an awaitable.

        The awaitable is returned only when a plugin actually had to wait (forward,
        a cache miss); everything else completes here without an event loop.
        """
        try:
            req = Request.from_wire(data, client, proto)
        except w.WireError as exc:
            return self.engine.malformed(data, exc)
        if req.flags & w.QR:
            self.engine.count_drop("response")
            return None
        opcode = (req.flags >> 11) & 0xF
        if opcode != 0 and opcode != 4:
            return rejected(data, w.NOTIMP)
        coro = self.serve(req)
        try:
            first = coro.send(None)
        except StopIteration as stop:
            return finish(req, stop.value)
        return self._finish_later(req, Resume(coro, first))

    async def _finish_later(self, req: Request, pending: Resume) -> bytes | None:
        reply = await pending
        return finish(req, reply)


def raise_duplicate(key: Key) -> None:
    from .corefile.errors import CorefileError

    raise CorefileError(
        f"cannot serve {key.scheme}://{key.zone}:{key.port} - it is already defined", kind="plain"
    )


class Engine:
    """Every chain of one Corefile, grouped into servers.

    The engine owns the metrics registry, the listeners that observe replies (the
    pytest plugin, the prometheus plugin), and ``loop``: the event loop its
    plugins do I/O on (set by the driver, the server or the Resolver).
    """

    def __init__(
        self,
        corefile: Corefile,
        *,
        registry: Registry | None = None,
        metrics: MetricsRegistry | None = None,
        config_dir: str | None = None,
    ) -> None:
        self.corefile = corefile
        self.registry = registry or default_registry()
        self.metrics = metrics or MetricsRegistry()
        self.loop: asyncio.AbstractEventLoop | None = None
        self.listeners: list[Listener] = []
        self.unrouted_hooks: list[Callable[[Request, Reply, int], None]] = []
        self.shared: dict[str, Any] = {}
        self.drops = 0
        self.drop_reasons: dict[str, int] = {}
        self.panics = 0
        self.chains: list[Chain] = []
        self.servers: list[Server] = []
        if config_dir is None:
            fn = corefile.filename
            config_dir = os.path.dirname(os.path.abspath(fn)) if fn and os.path.exists(fn) else os.getcwd()
        self.config_dir = config_dir
        self._build()

    def _build(self) -> None:
        by_addr: dict[tuple[str, str, str], Server] = {}
        for block in self.corefile.blocks:
            chain = build_chain(
                block, self.registry, config_dir=self.config_dir, shared=self.shared
            )
            self.chains.append(chain)
            # CoreDNS makes one server per listen address: with "bind A B" a block is
            # served by two servers (and labelled dns://A:port, dns://B:port).
            for addr in bind_addresses(chain):
                for key in block.keys:
                    sk = (key.scheme, key.port, addr)
                    server = by_addr.get(sk)
                    if server is None:
                        server = by_addr[sk] = Server(self, key.scheme, key.port, (addr,))
                        self.servers.append(server)
                    server.add(key, chain)
        for chain in self.chains:
            for p in chain.all_plugins:
                p.engine = self
        for chain in self.chains:
            for p in chain.all_plugins:
                p.register_metrics(self.metrics)

    # -- lookups ------------------------------------------------------------
    def plugins(self) -> list[Plugin]:
        return [p for c in self.chains for p in c.all_plugins]

    def server_for(self, port: int | str | None = None) -> Server:
        """The server that handles in-process queries.

        With several ports, ``port`` picks one; otherwise the first DNS server.
        """
        dns = [s for s in self.servers if s.scheme == "dns"] or self.servers
        if not dns:
            raise LookupError("the Corefile defines no server")
        if port is None:
            return dns[0]
        for s in dns:
            if s.port == str(port):
                return s
        raise LookupError(f"no server block listens on port {port}")

    # -- events -------------------------------------------------------------
    def report_unrouted(self, req: Request, reply: Reply) -> None:
        """A query the server answers itself (no question, no zone, class not IN,
        an empty block): CoreDNS reports these under ``zone="dropped"``, with the
        size of the reply it writes."""
        if self.unrouted_hooks:
            size = len(bare_reply(req, reply.rcode))
            for hook in self.unrouted_hooks:
                hook(req, reply, size)

    def report_panic(self, req: Request, exc: BaseException) -> None:
        self.panics += 1
        m = self.metrics.get("coredns_panics_total")
        if m is not None:
            m.inc()
        log.error("plugin failure for %s %s: %r", req.qname, req.type_name, exc, exc_info=exc)

    def count_drop(self, reason: str) -> None:
        self.drops += 1
        self.drop_reasons[reason] = self.drop_reasons.get(reason, 0) + 1

    def malformed(self, data: bytes, exc: w.WireError) -> bytes | None:
        """FORMERR when the header is readable, otherwise a counted drop."""
        if not exc.header_ok:
            self.count_drop("short")
            return None
        flags = w.HEADER.unpack_from(data)[1]
        if flags & w.QR:
            self.count_drop("response")
            return None
        opcode = (flags >> 11) & 0xF
        if opcode != 0 and opcode != 4:
            return rejected(data, w.NOTIMP)  # the opcode is checked first
        self.count_drop("formerr")
        return rejected(data, w.FORMERR, exc.question_end)


def bind_addresses(chain: Chain) -> tuple[str, ...]:
    for p in chain.all_plugins:
        addrs = getattr(p, "bind_addresses", None)
        if addrs:
            return tuple(addrs)
    return ("",)


# ---------------------------------------------------------------------------
# Replies leaving the server
# ---------------------------------------------------------------------------


def rejected(data: bytes, rcode: int, question_end: int | None = None) -> bytes:
    """What miekg/dns sends for a message it rejects before CoreDNS sees it: the
    query's header with QR set, AA and Z cleared, the rcode, and no records. FORMERR
    also sets the opcode to QUERY; NOTIMP keeps it. The question is repeated only
    when it decoded before the error."""
    qid, flags = w.HEADER.unpack_from(data)[:2]
    keep = flags & (w.TC | w.RD | w.RA | w.AD | w.CD)
    if rcode == w.NOTIMP:
        keep |= flags & w.OPCODE_MASK
    question = data[12:question_end] if question_end else b""
    return w.HEADER.pack(qid, w.QR | keep | rcode, 1 if question else 0, 0, 0, 0) + question


def bare_reply(req: Request, rcode: int) -> bytes:
    """A reply with no records: ID, opcode and RD copied, question echoed, and an
    OPT record when the query had one (CoreDNS's ``dnsutil``-style error reply)."""
    flags = w.QR | (req.flags & (w.OPCODE_MASK | w.RD | w.CD)) | (rcode & 0xF)
    question = req.wire[12 : req.qend] if req.qdcount else b""
    ar = 1 if req.edns else 0
    out = w.HEADER.pack(req.id, flags, 1 if req.qdcount else 0, 0, 0, ar) + question
    if req.edns:
        ext = (rcode >> 4) & 0xFF
        ttl = (ext << 24) | (w.DO_BIT if req.do else 0)
        out += b"\x00" + w.RRHEAD.pack(w.OPT, max(req.udp_size, 512), ttl, 0)
    return out


def finish(req: Request, reply: Reply) -> bytes | None:
    """Turn a chain's reply into the bytes sent to the client (spec §0 "scrubbed");
    ``None`` when nothing is to be sent."""
    data = reply._wire
    if data is not None and reply.final:
        # The hot path (memoised and cached answers), written out: only the ID, and
        # the question's spelling if it differs, are patched.
        if len(data) <= (req.udp_size if req.proto == "udp" else 65535):
            wire = req.wire
            qend = req.qend
            if data[12:qend] == wire[12:qend]:
                return wire[:2] + data[2:]
            return wire[:2] + data[2:12] + wire[12:qend] + data[qend:]
    return finish_both(req, reply)[0]


def finish_both(req: Request, reply: Reply) -> tuple[bytes | None, DNSRecord | None]:
    """Like :func:`finish`, also returning the scrubbed record when one was built
    (the in-process resolver returns it without decoding the bytes again)."""
    if not reply.written:
        if reply.rcode == 0:
            # A plugin returned "success" without writing: CoreDNS sends nothing.
            return None, None
        return bare_reply(req, reply.rcode), None
    if reply.final and reply.has_wire:
        data = reply.wire
        if len(data) <= req.max_size:
            wire = req.wire
            qend = req.qend
            if data[12:qend] == wire[12:qend]:
                return wire[:2] + data[2:], None   # only the ID to patch
            # Patch the ID and the question as the client spelled it (same length).
            return wire[:2] + data[2:12] + wire[12:qend] + data[qend:], None
    msg = scrub(req, reply.message)
    data = bytes(msg.pack())
    if len(data) > req.max_size:
        return truncate(msg, req.max_size), None
    return data, msg


def copy_message(msg: DNSRecord, qid: int | None = None) -> DNSRecord:
    """A new record sharing the RR objects (RRs are never mutated), optionally with
    another ID. Copies the objects' fields directly: dnslib's constructors run a
    descriptor per header bit, which costs more than the whole hot path."""
    header = DNSHeader.__new__(DNSHeader)
    header.__dict__.update(msg.header.__dict__)
    if qid is not None:
        header.__dict__["_id"] = qid
    out = DNSRecord.__new__(DNSRecord)
    out.__dict__.update(
        header=header, questions=list(msg.questions), rr=list(msg.rr),
        auth=list(msg.auth), ar=list(msg.ar),
    )
    return out


def scrub(req: Request, msg: DNSRecord) -> DNSRecord:
    """A copy of ``msg`` with the request's ID and, for EDNS clients, the OPT record
    normalised as CoreDNS's ``SizeAndDo`` does: version 0, the client's UDP size, DO
    iff the client set it, the reply's options and extended rcode kept (an OPT is
    added if the reply had none). Replies to clients without EDNS keep whatever OPT
    they carry, as in CoreDNS."""
    out = copy_message(msg)
    out.header.id = req.id
    if not req.edns:
        return out
    opts: list[Any] = []
    ext_rcode = 0
    rest = []
    for rr in out.ar:
        if rr.rtype == w.OPT:
            opts.extend(getattr(rr, "rdata", None) or [])
            ext_rcode = (rr.ttl >> 24) & 0xFF
        else:
            rest.append(rr)
    rest.append(
        EDNS0(udp_len=max(req.udp_size, 512), ext_rcode=ext_rcode, flags="do" if req.do else "", opts=opts)
    )
    out.ar = rest
    return out


def truncate(msg: DNSRecord, size: int) -> bytes:
    """Drop records until the packed message fits ``size`` (at least 512).

    As miekg/dns ``Msg.Truncate`` (what CoreDNS uses): the records that fit are
    kept in order, answers first, then authority, then additional, so records go
    from the end; TC is set whenever any record had to go. The OPT record is
    always kept.
    """
    size = max(size, 512)
    opt = [rr for rr in msg.ar if rr.rtype == w.OPT]
    extra = [rr for rr in msg.ar if rr.rtype != w.OPT]
    while True:
        msg.ar = extra + opt
        data = bytes(msg.pack())
        if len(data) <= size:
            return data
        msg.header.tc = 1
        if extra:
            extra.pop()
        elif msg.auth:
            msg.auth.pop()
        elif msg.rr:
            msg.rr.pop()
        else:
            return data[:size]
